//! Our Rust client next to the official Python client (`azure-messaging-webpubsubclient`
//! 1.1.0, pinned and installed by `bash scripts/setup-interop.sh`) in one group of the local
//! hub: what one publishes the other receives, with the same data types and user ids, and the
//! official Python server SDK reaches our client by its connection id.
//!
//! Run: `bash scripts/setup-interop.sh && cargo test --test interop_rust_client`.

mod support;

use bytes::Bytes;
use serde_json::{Value, json};
use support::DEADLINE;
use support::interop::{Agent, Identity, Sdk};
use webpubsub_fleet::client::{Client, ClientOptions, Event, EventStream, SendOptions};
use webpubsub_fleet::credential::{Credential, TokenOptions};
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::protocol::Payload;

/// Data messages (group or server) received by our client until one carries `marker`, as
/// `(kind, from user, payload)`.
async fn until_marker(
    events: &mut EventStream,
    marker: &str,
) -> Vec<(String, Option<String>, Payload)> {
    let marker = Payload::Text(marker.to_owned());
    let mut received = Vec::new();
    let collect = async {
        loop {
            match events.recv().await {
                Some(Event::GroupMessage(m)) => {
                    let done = m.data == marker;
                    received.push(("group".to_owned(), m.from_user_id.clone(), m.data.clone()));
                    if done {
                        return;
                    }
                }
                Some(Event::ServerMessage(m)) => {
                    let done = m.data == marker;
                    received.push(("server".to_owned(), None, m.data.clone()));
                    if done {
                        return;
                    }
                }
                Some(_) => {}
                None => panic!("our client's event stream ended"),
            }
        }
    };
    if tokio::time::timeout(DEADLINE, collect).await.is_err() {
        panic!("our client did not receive {marker:?} within {DEADLINE:?}; got {received:?}");
    }
    received
}

/// (g) Our client and the official Python client join one group and publish to it both ways.
#[actix_rt::test]
async fn rust_client_and_python_client_exchange_messages_in_one_group() {
    let hub = Hub::start(
        HubConfig::new()
            .bind("127.0.0.1:0".parse().expect("address"))
            .workers(1),
    )
    .await
    .expect("the hub starts");
    let credential = Credential::from_connection_string(
        hub.connection_string(),
        "mixed",
        TokenOptions::new()
            .user_id("rust-user")
            .roles(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]),
    )
    .expect("credential");
    let rust = Client::new(credential, ClientOptions::new()).expect("valid options");
    let mut events = rust.events().await.expect("event stream");
    let info = rust.start().await.expect("our client connects");
    assert_eq!(info.user_id.as_deref(), Some("rust-user"));
    rust.join_group("both").await.expect("our client joins");

    let mut py = Agent::spawn(
        Sdk::PythonSync,
        "py",
        &hub,
        "mixed",
        &Identity::member("py-user"),
    );
    py.start().await;
    py.ok(json!({"op": "join", "group": "both"})).await;

    rust.send_to_group("both", "hello from rust", SendOptions::new())
        .await
        .expect("acked");
    rust.send_to_group(
        "both",
        json!({"from": "rust", "n": [1, 2]}),
        SendOptions::new(),
    )
    .await
    .expect("acked");
    rust.send_to_group(
        "both",
        Bytes::from_static(&[1, 2, 3, 255]),
        SendOptions::new(),
    )
    .await
    .expect("acked");
    py.ok(json!({"op": "send", "group": "both", "data": "hello from py"}))
        .await;
    py.ok(json!({"op": "send", "group": "both", "dataType": "json", "data": {"from": "py"}}))
        .await;
    py.ok(json!({"op": "send", "group": "both", "dataType": "binary", "data": "CQgH"}))
        .await;
    // The official server SDK reaches our client by connection id.
    py.ok(json!({"op": "server", "to": "connection", "target": info.connection_id, "data": "to rust"}))
        .await;
    py.ok(json!({"op": "send", "group": "both", "data": "end"}))
        .await;

    let at_py: Vec<Value> = py
        .data_until("end")
        .await
        .iter()
        .map(|m| json!([m["fromUserId"], m["dataType"], m["data"]]))
        .collect();
    assert_eq!(
        at_py,
        vec![
            json!(["rust-user", "text", "hello from rust"]),
            json!(["rust-user", "json", {"from": "rust", "n": [1, 2]}]),
            json!(["rust-user", "binary", "AQID/w=="]),
            json!(["py-user", "text", "hello from py"]),
            json!(["py-user", "json", {"from": "py"}]),
            json!(["py-user", "binary", "CQgH"]),
            json!(["py-user", "text", "end"]),
        ],
        "{}",
        py.report()
    );

    let rust_user = || Some("rust-user".to_owned());
    let py_user = || Some("py-user".to_owned());
    assert_eq!(
        until_marker(&mut events, "end").await,
        vec![
            (
                "group".to_owned(),
                rust_user(),
                Payload::Text("hello from rust".into())
            ),
            (
                "group".to_owned(),
                rust_user(),
                Payload::Json(json!({"from": "rust", "n": [1, 2]}))
            ),
            (
                "group".to_owned(),
                rust_user(),
                Payload::Binary(Bytes::from_static(&[1, 2, 3, 255]))
            ),
            (
                "group".to_owned(),
                py_user(),
                Payload::Text("hello from py".into())
            ),
            (
                "group".to_owned(),
                py_user(),
                Payload::Json(json!({"from": "py"}))
            ),
            (
                "group".to_owned(),
                py_user(),
                Payload::Binary(Bytes::from_static(&[9, 8, 7]))
            ),
            ("server".to_owned(), None, Payload::Text("to rust".into())),
            ("group".to_owned(), py_user(), Payload::Text("end".into())),
        ]
    );

    py.finish().await;
    rust.stop().await.expect("our client stops");
    hub.stop().await;
}
