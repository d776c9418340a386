//! The hub's client endpoint: start and stop, handshake refusals, subprotocol negotiation,
//! the first frame, simple WebSocket clients.

mod support;

use serde_json::json;
use support::hub::*;
use support::within;
use support::ws::*;
use tokio_tungstenite::tungstenite::Message;
use webpubsub_fleet::hub::{Hub, HubConfig, HubError};

#[tokio::test]
async fn starts_on_a_free_port_and_reports_where() {
    let hub = start_hub().await;
    assert_ne!(hub.addr().port(), 0);
    assert_eq!(
        hub.endpoint(),
        format!("http://127.0.0.1:{}", hub.addr().port())
    );
    let cs = hub.connection_string();
    assert!(!format!("{cs} {cs:?}").contains(hub.access_key().expose()));
    let exposed = cs.expose();
    let port = hub.addr().port();
    assert!(
        exposed.starts_with(&format!("Endpoint=http://127.0.0.1;Port={port};")),
        "{exposed}"
    );
    assert!(exposed.contains(&format!("AccessKey={};", hub.access_key().expose())));
    let parsed = webpubsub_fleet::credential::ConnectionString::parse(&exposed).unwrap();
    assert_eq!(parsed.endpoint_str(), hub.endpoint());
    hub.stop().await;
    // After stop, nothing listens any more.
    assert!(tokio::net::TcpStream::connect(hub.addr()).await.is_err());
}

#[tokio::test]
async fn refuses_the_development_key_off_loopback_and_short_keys() {
    let public = HubConfig::new().bind("0.0.0.0:0".parse().unwrap());
    assert!(matches!(
        Hub::start(public).await,
        Err(HubError::DevelopmentKeyOnPublicAddress(_))
    ));
    let short = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .access_key("short");
    assert!(matches!(
        Hub::start(short).await,
        Err(HubError::InvalidAccessKey(_))
    ));
}

#[tokio::test]
async fn first_frame_is_connected_with_a_reconnection_token_on_reliable_only() {
    let hub = start_hub().await;
    let reliable = connect(&hub, RELIABLE, Some("alice"), &[], &[]).await;
    assert_eq!(reliable.connected["userId"], "alice");
    assert_eq!(reliable.connection_id.len(), 22);
    assert!(
        reliable
            .reconnection_token
            .as_ref()
            .is_some_and(|t| t.len() >= 32)
    );

    let plain = connect(&hub, JSON, None, &[], &[]).await;
    assert!(
        plain.connected.get("reconnectionToken").is_none(),
        "{}",
        plain.connected
    );
    assert!(plain.connected["userId"].is_null());
    assert_ne!(plain.connection_id, reliable.connection_id);
    assert_eq!(hub.stats().connections, 2);
    hub.stop().await;
}

#[tokio::test]
async fn token_in_the_authorization_header_and_hub_in_the_query() {
    let hub = start_hub().await;
    let token = client_token(&hub, HUB, Some("u"), &[], &[]);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/client/?hub={HUB}",
            hub.addr()
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", RELIABLE.parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    assert_eq!(response.headers()["sec-websocket-protocol"], RELIABLE);
    let client = Peer::from_socket(ws).await;
    assert_eq!(client.connected["userId"], "u");
    hub.stop().await;
}

#[tokio::test]
async fn bad_tokens_get_401_before_the_upgrade_without_echoing_the_token() {
    let hub = start_hub().await;
    let aud = format!("{}/client/hubs/{HUB}", hub.endpoint());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let wrong_key = sign(&"w".repeat(40), &json!({"aud": aud, "exp": now + 60}));
    let expired = sign(
        hub.access_key().expose(),
        &json!({"aud": aud, "exp": now - 600}),
    );
    let other_hub = client_token(&hub, "other", None, &[], &[]);
    // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
    let alg_none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        base64_url(&json!({"aud": aud, "exp": now + 60}).to_string())
    );
    for (name, token) in [
        ("wrong key", wrong_key.as_str()),
        ("expired", expired.as_str()),
        ("other hub", other_hub.as_str()),
        ("alg none", alg_none.as_str()),
        ("garbage", "not-a-jwt"),
    ] {
        let refusal = open(&client_url(&hub, HUB, token), Some(RELIABLE))
            .await
            .err();
        let (status, body) = refusal.unwrap_or_else(|| panic!("{name}: must be refused"));
        assert_eq!(status, 401, "{name}");
        assert!(body.starts_with("Unauthorized"), "{name}: {body}");
        assert!(
            !body.contains(token),
            "{name}: the reason must not echo the token"
        );
    }
    let missing = open(
        &format!("ws://{}/client/hubs/{HUB}", hub.addr()),
        Some(RELIABLE),
    )
    .await;
    assert_eq!(missing.err().map(|e| e.0), Some(401));
    assert_eq!(hub.stats().unauthorized, 6);
    assert_eq!(hub.stats().connections, 0);
    hub.stop().await;
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn bad_hub_names_get_400() {
    let hub = start_hub().await;
    for bad in ["1chat", "a-b", "%2E%2E", "x%00"] {
        let token = client_token(&hub, "chat", None, &[], &[]);
        let refusal = open(&client_url(&hub, bad, &token), Some(RELIABLE))
            .await
            .err();
        assert_eq!(refusal.map(|e| e.0), Some(400), "{bad}");
    }
    let token = client_token(&hub, HUB, None, &[], &[]);
    let mismatch = format!(
        "ws://{}/client/hubs/{HUB}?hub=other&access_token={token}",
        hub.addr()
    );
    assert_eq!(
        open(&mismatch, Some(RELIABLE)).await.err().map(|e| e.0),
        Some(400)
    );
    hub.stop().await;
}

#[tokio::test]
async fn negotiates_the_first_supported_subprotocol_the_client_offers() {
    let hub = start_hub().await;
    let token = client_token(&hub, HUB, None, &[], &[]);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(client_url(
            &hub, HUB, &token,
        ))
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        // No spaces: tungstenite compares the reply with untrimmed pieces of its own header.
        format!("mqtt.v5,{JSON},{RELIABLE}").parse().unwrap(),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    assert_eq!(response.headers()["sec-websocket-protocol"], JSON);
    let client = Peer::from_socket(ws).await;
    assert!(client.reconnection_token.is_none());
    hub.stop().await;
}

#[tokio::test]
async fn simple_clients_get_raw_payloads_and_can_publish_to_their_group() {
    let hub = start_hub().await;
    // A simple subscriber: no subprotocol, in group g through its token.
    let token = client_token(&hub, HUB, Some("sub"), &[], &["g"]);
    let mut subscriber = open(&client_url(&hub, HUB, &token), None)
        .await
        .expect("connects");
    // A simple publisher in sendToGroup mode, with the role for g.
    let token = client_token(&hub, HUB, Some("pub"), &["webpubsub.sendToGroup.g"], &[]);
    let url = format!(
        "{}&webpubsub_mode=sendToGroup&group=g",
        client_url(&hub, HUB, &token)
    );
    let mut publisher = open(&url, None).await.expect("connects");
    // A JSON client in g sees the same publications as group messages.
    let mut json_client = connect(&hub, JSON, Some("j"), &[], &["g"]).await;

    use futures::{SinkExt, StreamExt};
    publisher.send(Message::Text("hello".into())).await.unwrap();
    publisher
        .send(Message::Binary(vec![1, 2, 3]))
        .await
        .unwrap();

    async fn next(ws: &mut Socket) -> Message {
        within("a frame", ws.next()).await.unwrap().unwrap()
    }
    assert_eq!(next(&mut subscriber).await, Message::Text("hello".into()));
    assert_eq!(next(&mut subscriber).await, Message::Binary(vec![1, 2, 3]));
    assert_eq!(
        json_client.next_json().await,
        json!({"type":"message","from":"group","group":"g","fromUserId":"pub","dataType":"text","data":"hello"})
    );
    assert_eq!(json_client.next_json().await["data"], "AQID");
    hub.stop().await;
}

#[tokio::test]
async fn stop_closes_clients_with_going_away() {
    let hub = start_hub().await;
    let mut client = connect(&hub, RELIABLE, None, &[], &[]).await;
    let stopping = hub.clone();
    let stop = tokio::spawn(async move { stopping.stop().await });
    let (code, frames) = client.until_closed().await;
    assert_eq!(code, Some(1001));
    assert_eq!(
        frames.last().map(|f| f["event"].clone()),
        Some(json!("disconnected"))
    );
    within("the hub's stop", stop).await.unwrap();
}

#[tokio::test]
async fn invalid_group_claims_get_400() {
    let hub = start_hub().await;
    let token = client_token(&hub, HUB, None, &[], &["ok", "   "]);
    let refusal = open(&client_url(&hub, HUB, &token), Some(RELIABLE))
        .await
        .err();
    let (status, body) = refusal.expect("refused");
    assert_eq!(status, 400);
    assert!(body.contains("webpubsub.group"), "{body}");
    hub.stop().await;
}

/// The hub runs on its own thread and actix system, so an actix test (a system of its own on
/// this thread) can start it, talk to it and stop it as a tokio test does.
#[actix_rt::test]
async fn starts_and_stops_from_an_actix_test() {
    let hub = start_hub().await;
    let mut client = connect(&hub, JSON, None, &[], &[]).await;
    client.send_json(json!({"type":"ping"})).await;
    assert_eq!(client.next_json().await, json!({"type":"pong"}));
    hub.stop().await;
}
