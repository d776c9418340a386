//! Reliable sessions: sequence ids, replay after recovery, the recovery window, 1008 when a
//! session cannot be recovered, and the ack faults that drive idempotent resends.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::eventually;
use support::hub::*;
use support::ws::*;
use webpubsub_fleet::hub::Hub;

fn text(group: &str, data: &str) -> Value {
    json!({"type":"sendToGroup","group":group,"dataType":"text","data":data})
}

/// Sends `sequenceAck` and waits for a pong, so the hub has processed the ack.
async fn ack_up_to(client: &mut Peer, sequence_id: u64) {
    client
        .send_json(json!({"type":"sequenceAck","sequenceId":sequence_id}))
        .await;
    client.send_json(json!({"type":"ping"})).await;
    loop {
        if client.next_json().await["type"] == "pong" {
            return;
        }
    }
}

async fn recover(hub: &Hub, client: &Peer) -> Peer {
    let token = client
        .reconnection_token
        .as_deref()
        .expect("reliable client");
    let ws = open(
        &recovery_url(hub, &client.connection_id, token),
        Some(RELIABLE),
    )
    .await
    .expect("upgrade accepted");
    Peer::from_socket(ws).await
}

async fn recovery_close_code(hub: &Hub, connection_id: &str, token: &str) -> Option<u16> {
    let mut ws = open(&recovery_url(hub, connection_id, token), Some(RELIABLE))
        .await
        .expect("a refused recovery is still upgraded, then closed");
    close_code(&mut ws).await
}

#[tokio::test]
async fn recovery_replays_exactly_the_unacked_messages_in_order_then_continues() {
    let hub = start_hub().await;
    let mut sender = connect_all(&hub, JSON, "s").await;
    let mut receiver = connect_all(&hub, RELIABLE, "r").await;
    receiver.join("g", 1).await;
    for n in 1..=5 {
        sender.request(text("g", &format!("m{n}")), n).await;
    }
    for n in 1..=5u64 {
        assert_eq!(receiver.next_json().await["sequenceId"], n);
    }
    ack_up_to(&mut receiver, 3).await;

    assert!(hub.drop_connection(&receiver.connection_id));
    let (code, _) = receiver.until_closed().await;
    assert_eq!(code, None, "a dropped socket ends without a close frame");
    eventually("the session to be detached", async || {
        hub.stats().detached_sessions == 1
    })
    .await;
    // Published while detached: buffered for the session.
    for n in 6..=7 {
        sender.request(text("g", &format!("m{n}")), n).await;
    }

    let mut recovered = recover(&hub, &receiver).await;
    assert_eq!(recovered.connection_id, receiver.connection_id);
    for n in 4..=7u64 {
        let m = recovered.next_data().await;
        assert_eq!(m["sequenceId"], n);
        assert_eq!(m["data"], format!("m{n}"));
    }
    recovered.expect_silence().await;
    sender.request(text("g", "m8"), 8).await;
    assert_eq!(recovered.next_json().await["sequenceId"], 8);
    // Groups survived the recovery without a rejoin.
    assert_eq!(hub.stats().recoveries, 1);
    assert_eq!(hub.stats().detached_sessions, 0);
    hub.stop().await;
}

#[tokio::test]
async fn unrecoverable_sessions_are_closed_with_1008() {
    let hub = start_hub().await;
    let mut client = connect(&hub, RELIABLE, Some("u"), &[], &[]).await;
    let token = client.reconnection_token.clone().unwrap();
    hub.drop_connection(&client.connection_id);
    client.until_closed().await;
    eventually("the session to be detached", async || {
        hub.stats().detached_sessions == 1
    })
    .await;

    // Unknown connection, right token for another connection, no token at all.
    assert_eq!(
        recovery_close_code(&hub, "no-such-connection", &token).await,
        Some(1008)
    );
    let other = connect(&hub, RELIABLE, Some("v"), &[], &[]).await;
    let other_token = other.reconnection_token.clone().unwrap();
    assert_eq!(
        recovery_close_code(&hub, &client.connection_id, &other_token).await,
        Some(1008)
    );
    assert_eq!(
        recovery_close_code(&hub, &client.connection_id, "").await,
        Some(1008)
    );
    // The failed attempts did not consume the session: it still recovers.
    let mut recovered = recover(&hub, &client).await;
    assert_eq!(recovered.connection_id, client.connection_id);
    assert_eq!(hub.stats().recoveries_refused, 3);

    // Refused by a fault: the session is gone, as if it had expired.
    hub.drop_connection(&client.connection_id);
    recovered.until_closed().await;
    hub.refuse_recoveries(1);
    assert_eq!(
        recovery_close_code(&hub, &client.connection_id, &token).await,
        Some(1008)
    );
    assert_eq!(hub.stats().detached_sessions, 0);
    assert_eq!(
        recovery_close_code(&hub, &client.connection_id, &token).await,
        Some(1008)
    );
    assert_eq!(hub.stats().recoveries_refused, 5);
    hub.stop().await;
}

#[tokio::test]
async fn sessions_expire_after_the_recovery_window() {
    let hub = start_hub_with(|c| c.recovery_window(Duration::from_millis(300))).await;
    let mut client = connect(&hub, RELIABLE, None, &[], &[]).await;
    hub.drop_connection(&client.connection_id);
    client.until_closed().await;
    eventually("the session to expire", async || {
        hub.stats().connections == 0
    })
    .await;
    let token = client.reconnection_token.clone().unwrap();
    assert_eq!(
        recovery_close_code(&hub, &client.connection_id, &token).await,
        Some(1008)
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_recovery_supersedes_a_stale_socket() {
    let hub = start_hub().await;
    let mut sender = connect_all(&hub, JSON, "s").await;
    let mut stale = connect_all(&hub, RELIABLE, "r").await;
    stale.join("g", 1).await;
    sender.request(text("g", "before"), 1).await;
    assert_eq!(stale.next_json().await["data"], "before");
    // The hub still holds `stale` (half-open from the client's point of view).
    let mut fresh = recover(&hub, &stale).await;
    assert_eq!(
        fresh.next_data().await["data"],
        "before",
        "unacked, so replayed"
    );
    let (code, _) = stale.until_closed().await;
    assert_eq!(code, None, "the stale socket is dropped");
    sender.request(text("g", "after"), 2).await;
    let m = fresh.next_json().await;
    assert_eq!(
        (m["data"].clone(), m["sequenceId"].clone()),
        (json!("after"), json!(2))
    );
    assert_eq!(hub.stats().connections, 2);
    hub.stop().await;
}

#[tokio::test]
async fn overflowing_the_replay_buffer_ends_the_session_with_1008() {
    let hub = start_hub_with(|c| c.replay_buffer(5, 1 << 20)).await;
    let mut sender = connect_all(&hub, JSON, "s").await;
    let mut slow = connect_all(&hub, RELIABLE, "slow").await;
    slow.join("g", 1).await;
    for n in 1..=6 {
        sender.request(text("g", &format!("m{n}")), n).await;
    }
    let (code, frames) = slow.until_closed().await;
    assert_eq!(code, Some(1008));
    let last = frames
        .last()
        .expect("a disconnected message before the close");
    assert_eq!(last["event"], "disconnected");
    assert!(last["message"].as_str().unwrap().starts_with("SlowClient"));
    let token = slow.reconnection_token.clone().unwrap();
    assert_eq!(
        recovery_close_code(&hub, &slow.connection_id, &token).await,
        Some(1008)
    );
    assert_eq!(hub.stats().slow_clients, 1);
    hub.stop().await;
}

#[tokio::test]
async fn acks_keep_the_replay_buffer_small() {
    let hub = start_hub_with(|c| c.replay_buffer(5, 1 << 20)).await;
    let mut sender = connect_all(&hub, JSON, "s").await;
    let mut receiver = connect_all(&hub, RELIABLE, "r").await;
    receiver.join("g", 1).await;
    for n in 1..=20u64 {
        sender.request(text("g", &format!("m{n}")), n).await;
        assert_eq!(receiver.next_json().await["sequenceId"], n);
        ack_up_to(&mut receiver, n).await;
    }
    assert_eq!(hub.stats().slow_clients, 0);
    // An ack beyond what was sent is clamped and discards nothing unsent.
    ack_up_to(&mut receiver, 1000).await;
    sender.request(text("g", "next"), 21).await;
    assert_eq!(receiver.next_json().await["sequenceId"], 21);
    hub.drop_connection(&receiver.connection_id);
    receiver.until_closed().await;
    let mut recovered = recover(&hub, &receiver).await;
    assert_eq!(recovered.next_data().await["sequenceId"], 21);
    recovered.expect_silence().await;
    hub.stop().await;
}

#[tokio::test]
async fn non_reliable_connections_are_removed_when_their_socket_drops() {
    let hub = start_hub().await;
    let mut client = connect_all(&hub, JSON, "u").await;
    client.join("g", 1).await;
    assert_eq!(hub.stats().groups, 1);
    hub.drop_connection(&client.connection_id);
    client.until_closed().await;
    eventually("the connection to be removed", async || {
        let s = hub.stats();
        s.connections == 0 && s.detached_sessions == 0 && s.groups == 0
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn a_normal_client_close_ends_a_reliable_session() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let hub = start_hub().await;
    let normal = Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    });
    for (frame, name) in [(normal, "1000"), (None, "no status code")] {
        let mut client = connect(&hub, RELIABLE, None, &[], &[]).await;
        client.ws.close(frame).await.unwrap();
        eventually(name, async || hub.stats().connections == 0).await;
        let token = client.reconnection_token.clone().unwrap();
        let code = recovery_close_code(&hub, &client.connection_id, &token).await;
        assert_eq!(code, Some(1008), "{name}");
    }
    // Any other code is a failure the client may recover from.
    let mut client = connect(&hub, RELIABLE, None, &[], &[]).await;
    let failing = CloseFrame {
        code: CloseCode::Error,
        reason: "".into(),
    };
    client.ws.close(Some(failing)).await.unwrap();
    eventually("a detached session", async || {
        hub.stats().detached_sessions == 1
    })
    .await;
    recover(&hub, &client).await;
    hub.stop().await;
}

#[tokio::test]
async fn a_fault_close_with_another_code_keeps_the_session_recoverable() {
    let hub = start_hub().await;
    let mut client = connect(&hub, RELIABLE, None, &[], &[]).await;
    assert!(hub.close_connection(&client.connection_id, 1011, "injected"));
    let (code, frames) = client.until_closed().await;
    assert_eq!(code, Some(1011));
    assert_eq!(
        frames[0],
        json!({"type":"system","event":"disconnected","message":"injected"})
    );
    let recovered = recover(&hub, &client).await;
    assert_eq!(recovered.connection_id, client.connection_id);
    hub.stop().await;
}

#[tokio::test]
async fn an_ack_lost_after_processing_is_answered_with_duplicate_on_resend() {
    let hub = start_hub().await;
    let mut publisher = connect_all(&hub, RELIABLE, "p").await;
    let mut receiver = connect_all(&hub, RELIABLE, "r").await;
    receiver.join("g", 1).await;
    hub.close_after_processing(1);
    let mut request = text("g", "once");
    request["ackId"] = json!(42);
    publisher.send_json(request.clone()).await;
    let (code, frames) = publisher.until_closed().await;
    assert_eq!(code, None);
    assert!(
        frames.iter().all(|f| f["type"] != "ack"),
        "no ack was sent: {frames:?}"
    );
    assert_eq!(receiver.next_json().await["data"], "once", "processed once");

    let mut publisher = recover(&hub, &publisher).await;
    let ack = publisher.request(text("g", "once"), 42).await;
    assert_eq!(ack["error"]["name"], "Duplicate");
    receiver.expect_silence().await;

    hub.drop_next_acks(1);
    publisher
        .send_json(json!({"type":"joinGroup","group":"h","ackId":43}))
        .await;
    publisher.expect_silence().await;
    assert_eq!(
        publisher.join("h", 43).await["error"]["name"],
        "Duplicate",
        "processed without an ack"
    );
    hub.stop().await;
}

#[tokio::test]
async fn restart_forgets_every_session() {
    let hub = start_hub().await;
    let mut a = connect(&hub, RELIABLE, None, &[], &[]).await;
    let mut b = connect(&hub, RELIABLE, None, &[], &[]).await;
    assert_eq!(hub.restart(), 2);
    assert_eq!(a.until_closed().await.0, None);
    assert_eq!(b.until_closed().await.0, None);
    assert_eq!(hub.stats().connections, 0);
    let token = a.reconnection_token.clone().unwrap();
    assert_eq!(
        recovery_close_code(&hub, &a.connection_id, &token).await,
        Some(1008)
    );
    // New connections still work.
    connect(&hub, RELIABLE, None, &[], &[]).await;
    hub.stop().await;
}

#[tokio::test]
async fn drop_a_fraction_of_the_sockets() {
    let hub = start_hub().await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(connect(&hub, RELIABLE, None, &[], &[]).await);
    }
    assert_eq!(hub.drop_fraction(0.25), 3, "rounded up");
    eventually("three detached sessions", async || {
        hub.stats().detached_sessions == 3
    })
    .await;
    assert_eq!(hub.drop_all(), 7);
    eventually("every session detached", async || {
        hub.stats().detached_sessions == 10
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn recovery_ignores_an_expired_access_token_in_the_url() {
    let hub = start_hub().await;
    let mut client = connect(&hub, RELIABLE, Some("u"), &[], &[]).await;
    hub.drop_connection(&client.connection_id);
    client.until_closed().await;
    // The SDKs append the awps_* parameters to the original URL, old token included.
    let expired = sign(
        hub.access_key().expose(),
        &json!({"aud": format!("{}/client/hubs/{HUB}", hub.endpoint()), "exp": 1}),
    );
    let token = client.reconnection_token.clone().unwrap();
    let url = format!(
        "{}&access_token={expired}",
        recovery_url(&hub, &client.connection_id, &token)
    );
    let ws = open(&url, Some(RELIABLE))
        .await
        .expect("recovery is not a new login");
    let recovered = Peer::from_socket(ws).await;
    assert_eq!(recovered.connection_id, client.connection_id);
    assert_eq!(recovered.connected["userId"], "u");
    hub.stop().await;
}
