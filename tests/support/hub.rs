//! The hub in this process for its integration tests: started on a free loopback port with
//! test-sized windows, and the tokens and URLs its clients and REST callers present.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use webpubsub_fleet::hub::{Hub, HubConfig};

/// The reliable JSON subprotocol.
pub const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";
/// The JSON subprotocol.
pub const JSON: &str = "json.webpubsub.azure.v1";
/// The hub name the tests use.
pub const HUB: &str = "chat";

/// A hub on a free loopback port with test-sized windows.
pub async fn start_hub() -> Hub {
    start_hub_with(|c| c).await
}

/// A hub as [`start_hub`] starts it, with `tweak` applied to its configuration.
pub async fn start_hub_with(tweak: impl FnOnce(HubConfig) -> HubConfig) -> Hub {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .workers(1)
        .recovery_window(Duration::from_secs(2));
    Hub::start(tweak(config)).await.expect("hub starts")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs claims with `key` (HS256), as the server SDKs do.
pub fn sign(key: &str, claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// A client token for `hub_name` on this hub.
pub fn client_token(
    hub: &Hub,
    hub_name: &str,
    user: Option<&str>,
    roles: &[&str],
    groups: &[&str],
) -> String {
    let mut claims = json!({
        "aud": format!("{}/client/hubs/{hub_name}", hub.endpoint()),
        "iat": now(),
        "exp": now() + 3600,
        "role": roles,
        "webpubsub.group": groups,
    });
    if let Some(user) = user {
        claims["sub"] = json!(user);
    }
    sign(hub.access_key().expose(), &claims)
}

/// A REST token for a path (audience = the URL without query).
pub fn rest_token(hub: &Hub, path: &str) -> String {
    let claims = json!({
        "aud": format!("{}{path}", hub.endpoint()),
        "iat": now(),
        "exp": now() + 300,
    });
    sign(hub.access_key().expose(), &claims)
}

/// The URL a client recovers `connection_id` with, on [`HUB`].
pub fn recovery_url(hub: &Hub, connection_id: &str, token: &str) -> String {
    format!(
        "ws://{}/client/hubs/{HUB}?awps_connection_id={connection_id}&awps_reconnection_token={token}",
        hub.addr()
    )
}

/// The client access URL of `hub_name` on this hub, with `token`.
pub fn client_url(hub: &Hub, hub_name: &str, token: &str) -> String {
    format!(
        "ws://{}/client/hubs/{hub_name}?access_token={token}",
        hub.addr()
    )
}
