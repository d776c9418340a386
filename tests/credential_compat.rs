//! Token compatibility with the official Python server SDK (`azure-messaging-webpubsubservice`)
//! and PyJWT, both pinned and installed by `bash scripts/setup-interop.sh` into
//! `target/interop/venv`. The Python side lives in `tests/interop/webpubsub_tokens.py`.
//!
//! - tokens and URLs the SDK hands out validate with our `validate_token` and parse as a
//!   `ClientAccessUrl`, with the same user, roles, groups and hub;
//! - tokens we mint pass `jwt.decode(token, key, algorithms=["HS256"], audience=...)`, the
//!   check the service makes, with the same claims;
//! - the SDK and we build the same client URL from the same connection string.
//!
//! Run: `bash scripts/setup-interop.sh && cargo test --test credential_compat`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use url::Position;
use webpubsub_fleet::credential::{
    ClientAccessUrl, ConnectionString, CredentialError, TokenOptions, mint_rest_token,
    validate_token,
};
use webpubsub_fleet::protocol::Secret;

/// A key shaped like the service's (base64, ends with `=`), to prove the value is split at
/// the first `=` and used as its UTF-8 text by both sides.
const KEY: &str = "WmVyb0tleUZvckludGVyb3BUZXN0c09ubHkxMjM0NTY3OA==";

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup-interop.sh` from the repository root first \
         (it installs the pinned azure-messaging-webpubsubservice and PyJWT into a venv)",
        python.display()
    );
    python
}

/// Runs one command of the Python helper with `request` on stdin; returns its JSON answer.
fn run_python(command: &str, request: &Value) -> Value {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/webpubsub_tokens.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(request.to_string().as_bytes())
        .expect("request written");
    let output = child.wait_with_output().expect("python finishes");
    assert!(
        output.status.success(),
        "python helper `{command}` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the helper prints one JSON object")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn python_sdk_tokens_and_urls_are_accepted_here() {
    // (connection string, hub, kwargs of get_client_access_token, lifetime in minutes)
    let local = ConnectionString::new(
        "http://127.0.0.1:54321".parse().expect("URL"),
        Secret::new(KEY),
    )
    .expect("valid");
    let cases = [
        (
            format!("Endpoint=https://Contoso.WebPubSub.Azure.com/;AccessKey={KEY};Version=1.0;"),
            "chat",
            json!({
                "user_id": "alice",
                "roles": ["webpubsub.sendToGroup", "webpubsub.joinLeaveGroup.lobby"],
                "groups": ["lobby", "news"],
                "minutes_to_expire": 30,
            }),
            30,
        ),
        (
            format!("endpoint=http://127.0.0.1;port=8080;accesskey={KEY}"),
            "Hub_1",
            json!({}),
            60,
        ),
        (
            format!("Endpoint=http://localhost:8080;AccessKey={KEY};Version=1.0;"),
            "h",
            json!({"user_id": "u", "groups": ["only-group"]}),
            60,
        ),
        (
            local.expose(),
            "loadtest",
            json!({"user_id": "user-7", "roles": ["webpubsub.sendToGroup.g"], "minutes_to_expire": 1}),
            1,
        ),
    ];
    for (connection_string, hub, kwargs, minutes) in cases {
        let ours = ConnectionString::parse(&connection_string).expect("our parser accepts it");
        let before = unix_now();
        let answer = run_python(
            "mint",
            &json!({"connection_string": connection_string, "hub": hub, "kwargs": kwargs}),
        );
        let token = answer["token"].as_str().expect("token");
        let now = SystemTime::now();

        // The hub's check, against the https audience the SDK signs and against the ws URL
        // the client actually connects to.
        let claims = validate_token(token, ours.access_key(), &ours.client_audience(hub), now)
            .unwrap_or_else(|e| panic!("{hub}: SDK token refused: {e}"));
        let base = answer["baseUrl"].as_str().expect("baseUrl");
        validate_token(token, ours.access_key(), base, now).expect("ws form of the audience");

        assert_eq!(
            claims.user_id.as_deref(),
            kwargs["user_id"].as_str(),
            "{hub}"
        );
        assert_eq!(claims.roles, strings(&kwargs["roles"]), "{hub}");
        assert_eq!(claims.groups, strings(&kwargs["groups"]), "{hub}");
        let issued_at = claims.issued_at.expect("the SDK writes iat");
        assert!(
            (before..=unix_now()).contains(&issued_at),
            "{hub}: iat {issued_at}"
        );
        // iat and exp come from two clock reads in the SDK, which may straddle a second.
        let lifetime = claims.expires_at - issued_at;
        assert!(
            lifetime == minutes * 60 || lifetime == minutes * 60 + 1,
            "{hub}: lifetime {lifetime}"
        );

        assert_eq!(
            validate_token(
                token,
                &Secret::new("another key"),
                &ours.client_audience(hub),
                now
            ),
            Err(CredentialError::BadSignature)
        );
        assert!(matches!(
            validate_token(
                token,
                ours.access_key(),
                &ours.client_audience("otherHub"),
                now
            ),
            Err(CredentialError::WrongAudience { .. })
        ));

        let url =
            ClientAccessUrl::parse(answer["url"].as_str().expect("url")).expect("SDK URL parses");
        assert_eq!(url.hub().as_deref(), Some(hub));
        assert_eq!(url.access_token(), Some(Secret::new(token)));
        assert_eq!(&url.expose()[..Position::AfterPath], base);
        let shown = url.to_string();
        assert!(!shown.contains(token), "Display leaks the token: {shown}");

        // Same client URL built by us from the same connection string.
        let built = ours
            .client_access_url(hub, &TokenOptions::new(), now)
            .expect("we build it");
        assert_eq!(&built.expose()[..Position::AfterPath], base, "{hub}");
    }
}

#[test]
fn our_tokens_pass_the_check_the_service_makes_with_pyjwt() {
    let cs = ConnectionString::parse(&format!(
        "Endpoint=https://contoso.webpubsub.azure.com;AccessKey={KEY};Version=1.0;"
    ))
    .expect("valid");
    let hub = "chat";
    let audience = cs.client_audience(hub);
    let now = SystemTime::now();
    let iat = now
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let cases = [
        (
            TokenOptions::new()
                .user_id("bob")
                .roles(["webpubsub.sendToGroup", "webpubsub.joinLeaveGroup"])
                .groups(["g1", "g2"])
                .lifetime(Duration::from_secs(600)),
            json!({
                "aud": audience,
                "sub": "bob",
                "exp": iat + 600,
                "iat": iat,
                "role": ["webpubsub.sendToGroup", "webpubsub.joinLeaveGroup"],
                "webpubsub.group": ["g1", "g2"],
            }),
        ),
        (
            TokenOptions::new(),
            json!({"aud": audience, "exp": iat + 3600, "iat": iat}),
        ),
    ];
    for (options, expected_claims) in cases {
        let token = cs.client_access_token(hub, &options, now).expect("minted");
        let answer = run_python(
            "decode",
            &json!({"token": token.expose(), "key": KEY, "audience": audience}),
        );
        assert_eq!(answer["header"], json!({"alg": "HS256", "typ": "JWT"}));
        assert_eq!(answer["claims"], expected_claims);

        // PyJWT really checks: another key or another audience fails there too.
        let wrong_key = run_python(
            "decode",
            &json!({"token": token.expose(), "key": "another key", "audience": audience}),
        );
        assert_eq!(wrong_key["error"], "InvalidSignatureError");
        let wrong_audience = run_python(
            "decode",
            &json!({"token": token.expose(), "key": KEY, "audience": cs.client_audience("other")}),
        );
        assert_eq!(wrong_audience["error"], "InvalidAudienceError");
    }

    let rest_url = "https://contoso.webpubsub.azure.com/api/hubs/chat/:send";
    let rest = mint_rest_token(&Secret::new(KEY), rest_url, Duration::from_secs(300), now)
        .expect("minted");
    let answer = run_python(
        "decode",
        &json!({"token": rest.expose(), "key": KEY, "audience": rest_url}),
    );
    assert_eq!(
        answer["claims"],
        json!({"aud": rest_url, "exp": iat + 300, "iat": iat})
    );
}

/// Why `ConnectionString::expose` writes `Endpoint=http://host;Port=N` and never the port
/// twice: the pinned Python SDK appends `:{Port}` to the endpoint text as given.
#[test]
fn python_sdk_appends_port_to_the_endpoint_text() {
    let answer = run_python(
        "mint",
        &json!({
            "connection_string": format!("Endpoint=http://127.0.0.1:8080;Port=8080;AccessKey={KEY}"),
            "hub": "h",
            "kwargs": {},
        }),
    );
    assert_eq!(answer["baseUrl"], "ws://127.0.0.1:8080:8080/client/hubs/h");
    let ours = ConnectionString::parse(&format!(
        "Endpoint=http://127.0.0.1:8080;Port=8080;AccessKey={KEY}"
    ))
    .expect("we accept both spellings");
    assert!(
        ours.expose()
            .starts_with("Endpoint=http://127.0.0.1;Port=8080;")
    );
}
