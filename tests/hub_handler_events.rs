//! User events as the service handles them (protocol.md 8.2): the reply body goes back to
//! the sender as a server message typed by its Content-Type; a failed call answers an ack id
//! with an `InvocationFailed` ack and, without one, ends the connection.

mod support;

use futures::SinkExt;
use serde_json::json;
use support::app_server::{Answer, AppServer, Received, app_server, event};
use support::eventually;
use support::hub::*;
use support::ws::*;
use tokio_tungstenite::tungstenite::Message;
use webpubsub_fleet::hub::{EventHandler, Hub};

async fn scripted_app() -> AppServer {
    app_server(false, |r: &Received| {
        if r.method == "OPTIONS" {
            return Answer::allow_all();
        }
        match r.header("ce-eventname") {
            Some("json") => Answer::status(200).body("application/json", r#"{"a":1}"#),
            Some("bin") => Answer::status(200).body("application/octet-stream", vec![0, 1, 2]),
            Some("text") => Answer::status(200).body("text/plain; charset=utf-8", "plain"),
            Some("fail") | Some("message") => Answer::status(500),
            _ => Answer::status(204),
        }
    })
    .await
}

async fn hub_for(app: &AppServer) -> Hub {
    let template = format!("{}/{{event}}", app.base());
    start_hub_with(|c| c.handler(EventHandler::new(template))).await
}

#[tokio::test]
async fn reply_bodies_come_back_typed_by_their_content_type() {
    let app = scripted_app().await;
    let hub = hub_for(&app).await;
    let mut client = connect(&hub, JSON, Some("alice"), &[], &[]).await;
    for (ack_id, name, data_type, data) in [
        (1, "json", "json", json!({"a":1})),
        (2, "bin", "binary", json!("AAEC")),
        (3, "text", "text", json!("plain")),
    ] {
        let ack = event(&mut client, name, "x", ack_id).await;
        assert_eq!(ack["success"], true, "{ack}");
        assert_eq!(
            client.next_json().await,
            json!({"type":"message","from":"server","dataType":data_type,"data":data})
        );
    }
    // 204: nothing comes back.
    let ack = event(&mut client, "quiet", "x", 4).await;
    assert_eq!(ack["success"], true, "{ack}");
    client.expect_silence().await;
    hub.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_failed_event_without_an_ack_id_ends_the_connection() {
    let app = scripted_app().await;
    let hub = hub_for(&app).await;
    let mut client = connect(&hub, RELIABLE, Some("alice"), &[], &[]).await;
    client
        .send_json(json!({"type":"event","event":"fail","dataType":"text","data":"x"}))
        .await;
    let (code, frames) = client.until_closed().await;
    assert_eq!(code, Some(1008), "{frames:?}");
    let disconnected = frames
        .iter()
        .find(|f| f["event"] == "disconnected")
        .unwrap_or_else(|| panic!("{frames:?}"));
    assert!(
        disconnected["message"]
            .as_str()
            .unwrap()
            .contains("answered 500"),
        "{disconnected}"
    );
    eventually("the session is gone", async || hub.stats().connections == 0).await;

    // A simple client's message event fails the same way.
    let token = client_token(&hub, HUB, Some("bob"), &[], &[]);
    let mut ws = open(&client_url(&hub, HUB, &token), None).await.unwrap();
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1008));
    hub.stop().await;
    app.stop().await;
}
