//! The blocking `connect` event: the handler's answer admits, shapes or refuses a connection
//! before the upgrade, and the connection state it sets rides on later events.

mod support;

use std::time::Duration;

use serde_json::json;
use support::app_server::{Answer, AppServer, Received, app_server, event};
use support::hub::*;
use support::ws::*;
use webpubsub_fleet::hub::{EventHandler, Hub, HubConfig, SystemEvent};

/// A hub whose handler at `app` takes `connect`, `connected` and every user event of `chat`.
async fn hub_with_connect(app: &AppServer, tweak: impl FnOnce(HubConfig) -> HubConfig) -> Hub {
    let handler = EventHandler::new(format!("{}/{{hub}}/{{event}}", app.base()))
        .hub(HUB)
        .system_events([SystemEvent::Connect, SystemEvent::Connected]);
    start_hub_with(|c| tweak(c.handler(handler))).await
}

fn url_with_query(hub: &Hub, token: &str) -> String {
    format!("{}&extra=1&extra=2", client_url(hub, HUB, token))
}

#[tokio::test]
async fn a_connect_answer_sets_user_groups_roles_subprotocol_and_state() {
    let app = app_server(false, |r: &Received| {
        match (r.method.as_str(), r.path.as_str()) {
            ("OPTIONS", _) => Answer::allow_all(),
            ("POST", "/chat/connect") => Answer::status(200)
                .header("ce-connectionState", "c3RhdGUtMQ==")
                .body(
                    "application/json",
                    json!({
                        "userId": "from-handler",
                        "groups": ["lobby"],
                        "roles": ["webpubsub.sendToGroup.lobby"],
                        "subprotocol": JSON,
                    })
                    .to_string(),
                ),
            ("POST", "/chat/state") => {
                Answer::status(200).header("ce-connectionState", "c3RhdGUtMg==")
            }
            _ => Answer::status(204),
        }
    })
    .await;
    let mut app = app;
    let hub = hub_with_connect(&app, |c| c).await;
    let token = client_token(&hub, HUB, Some("from-token"), &[], &[]);
    // Reliable first: without the handler's choice the hub would pick it.
    let offered = format!("{RELIABLE},{JSON}");
    let ws = open(&url_with_query(&hub, &token), Some(&offered))
        .await
        .expect("admitted");
    let mut client = Peer::from_socket(ws).await;
    assert_eq!(client.connected["userId"], "from-handler");
    assert!(
        client.connected.get("reconnectionToken").is_none(),
        "the handler chose the non-reliable subprotocol: {}",
        client.connected
    );

    let connect = app.next_event().await;
    assert_eq!(connect.path, "/chat/connect");
    assert_eq!(
        connect.header("ce-type"),
        Some("azure.webpubsub.sys.connect")
    );
    assert_eq!(connect.header("ce-userid"), Some("from-token"));
    assert_eq!(
        connect.header("ce-connectionid"),
        Some(client.connection_id.as_str())
    );
    let body = connect.json();
    assert_eq!(body["claims"]["sub"], json!(["from-token"]));
    assert_eq!(body["query"]["extra"], json!(["1", "2"]));
    assert!(body["query"].get("access_token").is_none(), "{body}");
    assert!(body["headers"].get("authorization").is_none(), "{body}");
    assert_eq!(body["subprotocols"], json!([RELIABLE, JSON]));
    assert_eq!(body["clientCertificates"], json!([]));

    // `connected` carries the new user id and the state the connect answer set.
    let connected = app.next_event().await;
    assert_eq!(
        connected.header("ce-type"),
        Some("azure.webpubsub.sys.connected")
    );
    assert_eq!(connected.header("ce-userid"), Some("from-handler"));
    assert_eq!(connected.header("ce-subprotocol"), Some(JSON));
    assert_eq!(connected.header("ce-connectionstate"), Some("c3RhdGUtMQ=="));

    // The group was joined before the first frame, and the role allows sending to it.
    let ack = client
        .request(
            json!({"type":"sendToGroup","group":"lobby","dataType":"text","data":"hi"}),
            1,
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let echo = client.next_json().await;
    assert_eq!(echo["group"], "lobby", "{echo}");
    assert_eq!(echo["fromUserId"], "from-handler", "{echo}");

    // A user event's answer replaces the state; the next event carries the new one.
    for (ack_id, name) in [(2, "state"), (3, "after")] {
        let ack = event(&mut client, name, "x", ack_id).await;
        assert_eq!(ack["success"], true, "{ack}");
    }
    assert_eq!(
        app.next_event().await.header("ce-connectionstate"),
        Some("c3RhdGUtMQ==")
    );
    assert_eq!(
        app.next_event().await.header("ce-connectionstate"),
        Some("c3RhdGUtMg==")
    );
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_4xx_answer_refuses_the_upgrade_with_that_status_and_text() {
    let app = app_server(false, |r: &Received| match r.method.as_str() {
        "OPTIONS" => Answer::allow_all(),
        _ if r.header("ce-userid") == Some("mallory") => {
            Answer::status(403).body("text/plain", "mallory may not connect")
        }
        _ => Answer::status(204),
    })
    .await;
    let hub = hub_with_connect(&app, |c| c).await;
    let token = client_token(&hub, HUB, Some("mallory"), &[], &[]);
    let refused = open(&client_url(&hub, HUB, &token), Some(JSON)).await;
    assert_eq!(
        refused.err(),
        Some((403, "mallory may not connect".to_owned()))
    );
    assert_eq!(hub.stats().connections_opened, 0);
    // Another user is let in by the same handler (204: the token decides).
    let ok = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    assert_eq!(ok.connected["userId"], "alice");
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn failing_slow_or_garbled_connect_handlers_refuse_with_a_clear_status() {
    let app = app_server(false, |r: &Received| match r.method.as_str() {
        "OPTIONS" => Answer::allow_all(),
        _ => match r.header("ce-userid") {
            Some("five-hundred") => Answer::status(500),
            Some("slow") => {
                std::thread::sleep(Duration::from_millis(800));
                Answer::status(204)
            }
            Some("garbled") => Answer::status(200).body("application/json", "{\"groups\": 5}"),
            Some("bad-group") => {
                Answer::status(200).body("application/json", json!({"groups": [""]}).to_string())
            }
            Some("odd-protocol") => Answer::status(200).body(
                "application/json",
                json!({"subprotocol": "mqtt"}).to_string(),
            ),
            _ => Answer::status(204),
        },
    })
    .await;
    let hub = hub_with_connect(&app, |c| c.upstream_timeout(Duration::from_millis(300))).await;
    for (user, status, says) in [
        ("five-hundred", 500, "answered 500"),
        ("garbled", 502, "not the JSON object"),
        ("bad-group", 502, "invalid group"),
        ("odd-protocol", 502, "did not offer"),
        // Last: it holds the app server's one worker.
        ("slow", 504, "in time"),
    ] {
        let token = client_token(&hub, HUB, Some(user), &[], &[]);
        let (got, text) = open(&client_url(&hub, HUB, &token), Some(JSON))
            .await
            .err()
            .unwrap_or_else(|| panic!("{user} was admitted"));
        assert_eq!(got, status, "{user}: {text}");
        assert!(text.contains(says), "{user}: {text}");
    }
    // The hub goes on serving: a hub name the handler does not take needs no connect.
    let token = client_token(&hub, "other", Some("u"), &[], &[]);
    assert!(
        open(&client_url(&hub, "other", &token), Some(JSON))
            .await
            .is_ok()
    );
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn with_a_connect_handler_a_connection_needs_a_user_id() {
    let app = app_server(false, |r: &Received| match r.method.as_str() {
        "OPTIONS" => Answer::allow_all(),
        _ => Answer::status(204),
    })
    .await;
    let hub = hub_with_connect(&app, |c| c).await;
    let token = client_token(&hub, HUB, None, &[], &[]);
    let (status, text) = open(&client_url(&hub, HUB, &token), Some(JSON))
        .await
        .expect_err("refused");
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("user id"), "{text}");
    hub.stop().await;
    app.stop().await;
}
