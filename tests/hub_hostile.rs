//! Hostile input (reliability.md section 3): each row sends one bad thing from one client
//! while a canary in the same group keeps working and must see nothing but its own traffic.

mod support;

use std::time::Duration;

use serde_json::json;
use support::eventually;
use support::hub::*;
use support::ws::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use webpubsub_fleet::hub::Hub;

const LIMIT: usize = 4096;

/// A hub with a small message limit, a publisher and a canary in group `g`.
async fn setup() -> (Hub, Peer, Peer) {
    let hub = start_hub_with(|c| c.max_message_size(LIMIT)).await;
    let publisher = connect_all(&hub, JSON, "publisher").await;
    let mut canary = connect_all(&hub, RELIABLE, "canary").await;
    canary.join("g", 1).await;
    (hub, publisher, canary)
}

/// The canary still gets group messages and pongs, in order, and nothing else.
async fn canary_is_fine(publisher: &mut Peer, canary: &mut Peer, round: u64) {
    let data = format!("still here {round}");
    let ack = publisher
        .request(
            json!({"type":"sendToGroup","group":"g","dataType":"text","data":data}),
            100 + round,
        )
        .await;
    assert_eq!(ack["success"], true);
    assert_eq!(canary.next_json().await["data"], data);
    canary.send_json(json!({"type":"ping"})).await;
    assert_eq!(canary.next_json().await, json!({"type":"pong"}));
}

/// A hostile client in the same group.
async fn hostile(hub: &Hub) -> Peer {
    let mut c = connect_all(hub, RELIABLE, "hostile").await;
    c.join("g", 1).await;
    c
}

async fn expect_closed_with(client: &mut Peer, code: u16) -> Vec<serde_json::Value> {
    let (got, frames) = client.until_closed().await;
    assert_eq!(got, Some(code), "frames before the close: {frames:?}");
    frames
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let (hub, mut publisher, mut canary) = setup().await;
    let mut bad = hostile(&hub).await;
    let big = json!({"type":"sendToGroup","group":"g","dataType":"text","data":"x".repeat(LIMIT)});
    bad.send_raw(Message::Text(big.to_string())).await;
    let frames = expect_closed_with(&mut bad, 1009).await;
    assert!(
        frames.iter().all(|f| f["type"] != "message"),
        "nothing was published"
    );
    canary_is_fine(&mut publisher, &mut canary, 1).await;
    hub.stop().await;
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    let (hub, mut publisher, mut canary) = setup().await;
    let mut bad = hostile(&hub).await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    bad.send_raw(Message::Frame(frame)).await;
    expect_closed_with(&mut bad, 1007).await;
    canary_is_fine(&mut publisher, &mut canary, 1).await;
    hub.stop().await;
}

#[tokio::test]
async fn malformed_json_gets_disconnected_then_1008() {
    let (hub, mut publisher, mut canary) = setup().await;
    for (round, garbage) in [
        "{not json",
        "[1,2,3]",
        r#"{"type":"teleport"}"#,
        r#"{"type":"joinGroup","ackId":-1,"group":"g"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let mut bad = hostile(&hub).await;
        bad.send_raw(Message::Text(garbage.into())).await;
        let frames = expect_closed_with(&mut bad, 1008).await;
        let last = frames
            .last()
            .unwrap_or_else(|| panic!("{garbage}: no disconnected message"));
        assert_eq!(last["event"], "disconnected", "{garbage}");
        assert!(
            last["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid request"),
            "{garbage}: {last}"
        );
        canary_is_fine(&mut publisher, &mut canary, round as u64).await;
    }
    hub.stop().await;
}

#[tokio::test]
async fn binary_frames_on_a_json_subprotocol_close_with_1003() {
    let (hub, mut publisher, mut canary) = setup().await;
    let mut bad = hostile(&hub).await;
    let request = json!({"type":"sendToGroup","group":"g","dataType":"text","data":"sneaky"});
    bad.send_raw(Message::Binary(request.to_string().into_bytes()))
        .await;
    let frames = expect_closed_with(&mut bad, 1003).await;
    assert!(frames.iter().any(|f| f["event"] == "disconnected"));
    canary_is_fine(&mut publisher, &mut canary, 1).await;
    hub.stop().await;
}

#[tokio::test]
async fn fragmented_messages_are_refused_with_1003() {
    let (hub, mut publisher, mut canary) = setup().await;
    let mut bad = hostile(&hub).await;
    let first = Frame::message(b"{\"type\":".to_vec(), OpCode::Data(Data::Text), false);
    let last = Frame::message(b"\"ping\"}".to_vec(), OpCode::Data(Data::Continue), true);
    bad.send_raw(Message::Frame(first)).await;
    bad.send_raw(Message::Frame(last)).await;
    expect_closed_with(&mut bad, 1003).await;
    canary_is_fine(&mut publisher, &mut canary, 1).await;
    hub.stop().await;
}

#[tokio::test]
async fn bad_field_values_with_an_ack_id_are_refused_by_ack_not_by_close() {
    let (hub, mut publisher, mut canary) = setup().await;
    let mut bad = hostile(&hub).await;
    let long = "g".repeat(1025);
    for (ack_id, request) in [
        (10, json!({"type":"joinGroup","group":long})),
        (
            11,
            json!({"type":"sendToGroup","group":"   ","dataType":"text","data":"x"}),
        ),
        (
            12,
            json!({"type":"sendToGroup","group":"g","dataType":"binary","data":"not base64!"}),
        ),
        (
            13,
            json!({"type":"event","event":"e","dataType":"text","data":5}),
        ),
    ] {
        let ack = bad.request(request, ack_id).await;
        assert_eq!(ack["success"], false, "{ack}");
        assert_eq!(ack["error"]["name"], "BadRequest", "{ack}");
    }
    // A sequenceAck going backwards changes nothing.
    bad.send_json(json!({"type":"sequenceAck","sequenceId":1}))
        .await;
    bad.send_json(json!({"type":"ping"})).await;
    assert_eq!(bad.next_json().await["type"], "pong");
    canary_is_fine(&mut publisher, &mut canary, 1).await;
    hub.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_as_slow_and_others_are_unaffected() {
    let hub = start_hub_with(|c| c.max_message_size(256 * 1024).outbound_queue(20, 1 << 20)).await;
    let mut publisher = connect_all(&hub, JSON, "publisher").await;
    let mut canary = connect_all(&hub, JSON, "canary").await;
    canary.join("g", 1).await;
    // Non-reliable, so only the outbound queue bound applies (no replay buffer).
    let mut slow = connect_all(&hub, JSON, "slow").await;
    slow.join("g", 1).await;
    let chunk = "x".repeat(100 * 1024);
    // Enough to fill the kernel's socket buffers and then the hub's queue of 20 frames.
    let mut n = 0u64;
    while hub.stats().slow_clients == 0 {
        n += 1;
        assert!(n < 2000, "the slow client was never closed");
        let ack = publisher
            .request(
                json!({"type":"sendToGroup","group":"g","dataType":"text","data":chunk}),
                n,
            )
            .await;
        assert_eq!(ack["success"], true);
        // The canary keeps reading, so it never falls behind.
        assert_eq!(
            canary.next_json().await["data"].as_str().map(str::len),
            Some(chunk.len())
        );
    }
    canary_is_fine_json(&mut publisher, &mut canary, n + 1).await;
    eventually("the slow connection to be removed", async || {
        hub.stats().connections == 2
    })
    .await;
    // When it reads again, it finds the frames queued before the bound, then the close.
    let (code, frames) = slow.until_closed().await;
    assert_eq!(code, Some(1008));
    let last = frames.last().unwrap();
    assert!(
        last["message"].as_str().unwrap().starts_with("SlowClient"),
        "{last}"
    );
    hub.stop().await;
}

async fn canary_is_fine_json(publisher: &mut Peer, canary: &mut Peer, ack_id: u64) {
    publisher
        .request(
            json!({"type":"sendToGroup","group":"g","dataType":"text","data":"fine"}),
            ack_id,
        )
        .await;
    assert_eq!(canary.next_json().await["data"], "fine");
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_timeout_and_can_recover() {
    let hub = start_hub_with(|c| {
        c.keepalive_interval(Duration::from_millis(50))
            .client_timeout(Duration::from_millis(200))
    })
    .await;
    // tungstenite answers pings only while it is read; this client is never read.
    let silent = connect(&hub, RELIABLE, None, &[], &[]).await;
    eventually("the silent socket to be dropped", async || {
        hub.stats().detached_sessions == 1
    })
    .await;
    assert!(hub.stats().drops >= 1);
    let token = silent.reconnection_token.clone().unwrap();
    let ws = open(
        &recovery_url(&hub, &silent.connection_id, &token),
        Some(RELIABLE),
    )
    .await
    .unwrap();
    let recovered = Peer::from_socket(ws).await;
    assert_eq!(recovered.connection_id, silent.connection_id);
    hub.stop().await;
}

#[tokio::test]
async fn the_connection_limit_answers_429() {
    let hub = start_hub_with(|c| c.max_connections(2)).await;
    let _a = connect(&hub, JSON, None, &[], &[]).await;
    let _b = connect(&hub, JSON, None, &[], &[]).await;
    let token = client_token(&hub, HUB, None, &[], &[]);
    let refused = open(&client_url(&hub, HUB, &token), Some(JSON)).await.err();
    let (status, body) = refused.expect("over the limit");
    assert_eq!(status, 429);
    assert!(body.starts_with("ConnectionCountLimitReached"));
    hub.stop().await;
}
