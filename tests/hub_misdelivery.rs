//! Misdelivery faults on the wire: `POST /_fleet/faults` arms a loss, a duplicate or a
//! reorder on chosen connections (by connection id or user id), the sockets see exactly that,
//! and `/_fleet/stats` counts what was injected.

mod support;

use serde_json::{Value, json};
use support::http::rest;
use support::hub::{HUB, JSON, RELIABLE, start_hub};
use support::ws::{Peer, connect};

const V: &str = "api-version=2024-01-01";

async fn fault(hub: &webpubsub_fleet::hub::Hub, body: Value) -> Value {
    let r = rest(
        hub,
        "POST",
        "/_fleet/faults",
        Some("application/json"),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

/// Sends `texts` to every connection over REST, in order.
async fn send_all(hub: &webpubsub_fleet::hub::Hub, texts: &[&str]) {
    let path = format!("/api/hubs/{HUB}/:send?{V}");
    for text in texts {
        let r = rest(hub, "POST", &path, Some("text/plain"), text.as_bytes()).await;
        assert_eq!(r.status, 202);
    }
}

/// The next `n` data messages: (sequence id, data).
async fn messages(client: &mut Peer, n: usize) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = client.next_data().await;
        out.push((v["sequenceId"].clone(), v["data"].clone()));
    }
    out
}

#[tokio::test]
async fn lost_duplicated_and_reordered_deliveries_are_silent_exact_and_counted() {
    let hub = start_hub().await;
    let mut alice = connect(&hub, RELIABLE, Some("alice"), &[], &[]).await;
    let mut bob = connect(&hub, JSON, Some("bob"), &[], &[]).await;
    let mut carol = connect(&hub, RELIABLE, Some("carol"), &[], &[]).await;

    let armed = fault(
        &hub,
        json!({"fault":"lose","connection_id":alice.connection_id,"count":2}),
    )
    .await;
    assert_eq!(armed["affected"], 1);
    let armed = fault(&hub, json!({"fault":"duplicate","user_id":"bob"})).await;
    assert_eq!(armed["affected"], 1);
    let armed = fault(&hub, json!({"fault":"reorder","user_id":"carol"})).await;
    assert_eq!(armed["affected"], 1);
    let armed = fault(&hub, json!({"fault":"lose","user_id":"nobody"})).await;
    assert_eq!(armed["affected"], 0);

    send_all(&hub, &["m1", "m2", "m3", "m4"]).await;
    // Alice loses the first two without a gap in her sequence ids.
    assert_eq!(
        messages(&mut alice, 2).await,
        [(json!(1), json!("m3")), (json!(2), json!("m4"))]
    );
    // Bob gets the first twice (no sequence ids on his subprotocol).
    assert_eq!(
        messages(&mut bob, 5).await,
        [
            (Value::Null, json!("m1")),
            (Value::Null, json!("m1")),
            (Value::Null, json!("m2")),
            (Value::Null, json!("m3")),
            (Value::Null, json!("m4")),
        ]
    );
    // Carol gets the first after the second, with sequence ids in wire order.
    assert_eq!(
        messages(&mut carol, 4).await,
        [
            (json!(1), json!("m2")),
            (json!(2), json!("m1")),
            (json!(3), json!("m3")),
            (json!(4), json!("m4")),
        ]
    );
    for client in [&mut alice, &mut bob, &mut carol] {
        client.expect_silence().await;
    }
    let stats = rest(&hub, "GET", "/_fleet/stats", None, b"").await.json();
    assert_eq!(
        (
            &stats["injected_lost"],
            &stats["injected_duplicated"],
            &stats["injected_reordered"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "{stats}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_duplicate_on_the_reliable_subprotocol_gets_a_sequence_id_of_its_own() {
    let hub = start_hub().await;
    let mut alice = connect(&hub, RELIABLE, Some("alice"), &[], &[]).await;
    let armed = hub.duplicate_deliveries(
        webpubsub_fleet::hub::Target::Connection(alice.connection_id.clone()),
        1,
    );
    assert_eq!(armed, 1);
    send_all(&hub, &["m1", "m2"]).await;
    assert_eq!(
        messages(&mut alice, 3).await,
        [
            (json!(1), json!("m1")),
            (json!(2), json!("m1")),
            (json!(3), json!("m2")),
        ]
    );
    assert_eq!(hub.stats().injected_duplicated, 1);
    hub.stop().await;
}
