//! Connection string parsing, as a user pastes one (`ConnectionString::parse`).
//!
//! Checks beyond "no panic", for every string that parses:
//! - `expose()` parses back to an equal value (its doc promises this);
//! - `Display` is `expose()` with the key replaced by `[REDACTED]`, and nothing else differs;
//! - the endpoint is http(s) with a host and no query, fragment, user or trailing `/`;
//! - the client access URL minted from it parses as a `ClientAccessUrl`, names the hub, carries
//!   a token that the hub's check accepts for the connection string's audience, and that
//!   audience names the same place as the URL the client will connect to.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use webpubsub_fleet::credential::{
    ClientAccessUrl, ConnectionString, TokenOptions, audience_matches, validate_token,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cs) = ConnectionString::parse(text) else {
        return;
    };
    let exposed = cs.expose();
    let reparsed = ConnectionString::parse(&exposed)
        .unwrap_or_else(|e| panic!("expose() does not parse back: {e}\n{cs}"));
    assert_eq!(reparsed, cs, "expose() parses back to another value");

    let key = cs.access_key().expose();
    let secret_part = format!("AccessKey={key};Version=1.0;");
    let redacted_part = "AccessKey=[REDACTED];Version=1.0;";
    let shown = cs.to_string();
    let prefix = exposed
        .strip_suffix(&secret_part)
        .expect("expose() ends with the key and the version");
    assert_eq!(
        shown,
        format!("{prefix}{redacted_part}"),
        "Display differs from expose() beyond the key"
    );

    let endpoint = cs.endpoint();
    assert!(matches!(endpoint.scheme(), "http" | "https"));
    assert!(endpoint.host_str().is_some_and(|h| !h.is_empty()));
    assert!(endpoint.query().is_none() && endpoint.fragment().is_none());
    assert!(endpoint.username().is_empty() && endpoint.password().is_none());
    assert!(!cs.endpoint_str().ends_with('/'));

    let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let url = cs
        .client_access_url("chat", &TokenOptions::new().user_id("u"), now)
        .unwrap_or_else(|e| panic!("a parsed connection string cannot mint a URL: {e}\n{cs}"));
    let url = ClientAccessUrl::parse(url.expose().as_str())
        .unwrap_or_else(|e| panic!("a minted URL does not parse: {e}\n{url}"));
    assert_eq!(url.hub().as_deref(), Some("chat"), "{url}");
    let audience = cs.client_audience("chat");
    let token = url.access_token().expect("a minted URL carries a token");
    let claims = validate_token(token.expose(), cs.access_key(), &audience, now)
        .unwrap_or_else(|e| panic!("a minted token is refused: {e}\n{cs}"));
    assert_eq!(claims.user_id.as_deref(), Some("u"));
    let mut connect_to = url.expose().clone();
    connect_to.set_query(None);
    assert!(
        audience_matches(&audience, connect_to.as_str()),
        "the token's audience {audience} does not name the URL {connect_to}"
    );
});
