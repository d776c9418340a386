//! Client access URL parsing (`ClientAccessUrl::parse`), as a user or a provider hands one in.
//!
//! The input is a URL as text (see `Input`). Checks beyond "no panic", for every URL that parses:
//! - the scheme is ws or wss, there is a host and no fragment, and parsing the exposed URL
//!   again gives an equal value;
//! - `Display` hides every query value and the password: it is exactly the URL with each
//!   query pair written `key=[REDACTED]` (or `[REDACTED]`) and the password `[REDACTED]`;
//! - the recovery URL keeps the hub and the access token, carries exactly one connection id
//!   and one reconnection token with the values given, and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpubsub_fleet::credential::{CONNECTION_ID_PARAM, ClientAccessUrl, RECONNECTION_TOKEN_PARAM};
use webpubsub_fleet::protocol::Secret;

/// The input is text: `url`, optionally followed by NUL, a connection id, NUL and a
/// reconnection token (the values `with_recovery` is given), so seeds are plain URLs.
struct Input<'a> {
    url: &'a str,
    connection_id: &'a str,
    reconnection_token: &'a str,
}

impl<'a> Input<'a> {
    fn split(text: &'a str) -> Input<'a> {
        let mut parts = text.splitn(3, '\0');
        Input {
            url: parts.next().unwrap_or_default(),
            connection_id: parts.next().unwrap_or("conn-1"),
            reconnection_token: parts.next().unwrap_or("reconnection-token-1"),
        }
    }
}

fn values<'a>(url: &'a ClientAccessUrl, key: &'a str) -> Vec<String> {
    url.expose()
        .query_pairs()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = Input::split(text);
    let Ok(url) = ClientAccessUrl::parse(input.url) else {
        return;
    };
    let exposed = url.expose();
    assert!(matches!(exposed.scheme(), "ws" | "wss"));
    assert!(exposed.host_str().is_some_and(|h| !h.is_empty()));
    assert!(exposed.fragment().is_none());
    let again = ClientAccessUrl::parse(exposed.as_str())
        .unwrap_or_else(|e| panic!("the exposed URL does not parse: {e}\n{url}"));
    assert_eq!(again, url);

    // Display shows the scheme, user, host, port and path as they are and each query pair as
    // `key=[REDACTED]` (a pair without `=` as `[REDACTED]`): no value, no password.
    let shown = url.to_string();
    let mut expected = format!("{}://", exposed.scheme());
    if !exposed.username().is_empty() || exposed.password().is_some() {
        expected.push_str(exposed.username());
        if exposed.password().is_some() {
            expected.push_str(":[REDACTED]");
        }
        expected.push('@');
    }
    expected.push_str(&exposed[url::Position::BeforeHost..url::Position::AfterPath]);
    if let Some(query) = exposed.query() {
        expected.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=[REDACTED]"),
                None if pair.is_empty() => String::new(),
                None => "[REDACTED]".to_owned(),
            })
            .collect();
        expected.push_str(&pairs.join("&"));
    }
    assert_eq!(
        shown, expected,
        "Display shows more than scheme, host, path and query keys"
    );
    let token = url.access_token();

    let recovery = url.with_recovery(input.connection_id, &Secret::new(input.reconnection_token));
    assert_eq!(recovery.hub(), url.hub(), "recovery changes the hub");
    assert_eq!(
        recovery.access_token().map(|t| t.expose().to_owned()),
        token.map(|t| t.expose().to_owned()),
        "recovery changes the access token"
    );
    assert_eq!(
        values(&recovery, CONNECTION_ID_PARAM),
        [input.connection_id]
    );
    assert_eq!(
        values(&recovery, RECONNECTION_TOKEN_PARAM),
        [input.reconnection_token]
    );
    let again = ClientAccessUrl::parse(recovery.expose().as_str())
        .unwrap_or_else(|e| panic!("the recovery URL does not parse: {e}\n{recovery}"));
    assert_eq!(again, recovery);
});
