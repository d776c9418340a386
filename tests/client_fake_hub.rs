//! Client actor tests against a scripted fake hub: the protocol rules where the client alone
//! decides (acks, retries, sequence ids, recovery, reconnect, stop races, hostile frames).

mod support;

use std::time::Duration;

use support::client::next_of;
use support::fake_hub::{FakeHub, Handshake};
use support::{eventually, within};
use webpubsub_fleet::client::{
    Client, ClientError, ClientOptions, ClientState, Event, EventKind, EventStream, SendOptions,
    StopReason,
};
use webpubsub_fleet::protocol::{AckErrorName, Payload, Subprotocol};
use webpubsub_fleet::session::{RetryMode, RetryPolicy};

/// Waits until the client delivered `n` messages to its subscribers.
async fn delivered(client: &Client, n: u64) {
    eventually(format!("{n} messages delivered"), async || {
        let delivered = client.status().await.unwrap().counters.delivered;
        if delivered >= n {
            Ok(())
        } else {
            Err(format!("{delivered} delivered"))
        }
    })
    .await
}

fn quick_options() -> ClientOptions {
    ClientOptions::new()
        .with_start_timeout(Duration::from_secs(5))
        .with_message_retry(RetryPolicy {
            max_retries: 2,
            delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            mode: RetryMode::Fixed,
        })
        .with_reconnect_retry(RetryPolicy {
            max_retries: 5,
            delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            mode: RetryMode::Fixed,
        })
}

/// After `stopped`: no socket is opened for longer than a recovery interval (1 s), and no
/// event follows.
async fn assert_nothing_after_stop(hub: &mut FakeHub, events: &EventStream) {
    assert!(
        hub.accept_within(Duration::from_millis(1500))
            .await
            .is_none()
    );
    assert!(events.is_empty());
}

#[actix_rt::test]
async fn start_resolves_on_connected_with_the_offered_subprotocol() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, conn) = hub.connected_client(quick_options()).await;
    assert_eq!(conn.query("access_token").as_deref(), Some("tok-SECRET"));
    match next_of(&mut events, EventKind::Connected).await {
        Event::Connected {
            connection_id,
            user_id,
        } => {
            assert_eq!(connection_id, "conn-1");
            assert_eq!(user_id.as_deref(), Some("user1"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.status().await.unwrap().state, ClientState::Connected);
}

#[actix_rt::test]
async fn start_fails_with_unauthorized_on_http_401_and_stops() {
    let hub = FakeHub::start(Handshake::Unauthorized).await;
    let client = Client::from_url(&hub.url("tok-SECRET"), quick_options()).unwrap();
    let mut events = client.events().await.unwrap();
    assert_eq!(client.start().await, Err(ClientError::Unauthorized));
    match next_of(&mut events, EventKind::Stopped).await {
        Event::Stopped {
            reason: StopReason::StartFailed(ClientError::Unauthorized),
        } => {}
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn start_fails_when_the_endpoint_chooses_no_subprotocol() {
    let hub = FakeHub::start(Handshake::AcceptWithoutSubprotocol).await;
    let client = Client::from_url(&hub.url("t"), quick_options()).unwrap();
    assert_eq!(client.start().await, Err(ClientError::NoSubprotocol));
}

#[actix_rt::test]
async fn start_times_out_when_connected_never_arrives() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let options = quick_options().with_start_timeout(Duration::from_millis(300));
    let client = Client::from_url(&hub.url("t"), options).unwrap();
    let started = {
        let client = client.clone();
        actix_rt::spawn(async move { client.start().await })
    };
    let _silent = hub.accept().await;
    assert!(matches!(
        started.await.unwrap(),
        Err(ClientError::StartTimeout(_))
    ));
}

#[actix_rt::test]
async fn start_fails_on_a_refused_tcp_connection() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("ws://127.0.0.1:{port}/client/hubs/h?access_token=t");
    let client = Client::from_url(&url, quick_options()).unwrap();
    assert!(matches!(client.start().await, Err(ClientError::Tcp(_))));
}

#[actix_rt::test]
async fn operations_wait_for_their_ack_and_ack_ids_increase_from_one() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, _events, mut conn) = hub.connected_client(quick_options()).await;
    let join = {
        let c = client.clone();
        actix_rt::spawn(async move { c.join_group("g1").await })
    };
    let frame = conn.recv_json().await;
    assert_eq!(frame["type"], "joinGroup");
    assert_eq!(frame["group"], "g1");
    assert_eq!(frame["ackId"], 1);
    conn.send_ack(1).await;
    let result = join.await.unwrap().unwrap();
    assert_eq!(result.ack_id, Some(1));
    assert!(!result.duplicated);

    let send = {
        let c = client.clone();
        actix_rt::spawn(async move {
            c.send_to_group("g1", "hi", SendOptions::new().no_echo(true))
                .await
        })
    };
    let frame = conn.recv_json().await;
    assert_eq!(frame["type"], "sendToGroup");
    assert_eq!(frame["ackId"], 2);
    assert_eq!(frame["noEcho"], true);
    assert_eq!(frame["dataType"], "text");
    conn.send_ack(2).await;
    send.await.unwrap().unwrap();
    assert_eq!(
        client.status().await.unwrap().groups,
        vec!["g1".to_string()]
    );
}

#[actix_rt::test]
async fn duplicate_ack_is_success_flagged_duplicated() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, _events, mut conn) = hub.connected_client(quick_options()).await;
    let send = {
        let c = client.clone();
        actix_rt::spawn(async move {
            c.send_event(
                "e",
                Payload::Json(serde_json::json!({"a": 1})),
                SendOptions::new().ack_id(77),
            )
            .await
        })
    };
    let frame = conn.recv_json().await;
    assert_eq!(frame["ackId"], 77);
    conn.send_ack_error(77, "Duplicate").await;
    let result = send.await.unwrap().unwrap();
    assert_eq!(result.ack_id, Some(77));
    assert!(result.duplicated);
}

#[actix_rt::test]
async fn forbidden_fails_at_once_with_the_ack_id_and_no_retry() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, _events, mut conn) = hub.connected_client(quick_options()).await;
    let join = {
        let c = client.clone();
        actix_rt::spawn(async move { c.join_group("secret").await })
    };
    let frame = conn.recv_json().await;
    conn.send_ack_error(frame["ackId"].as_u64().unwrap(), "Forbidden")
        .await;
    match join.await.unwrap() {
        Err(ClientError::Ack { ack_id, error }) => {
            assert_eq!(ack_id, 1);
            assert_eq!(error.name, AckErrorName::Forbidden);
        }
        other => panic!("{other:?}"),
    }
    // The next frame is the next operation, not a retry of the forbidden one.
    let c = client.clone();
    actix_rt::spawn(async move { c.leave_group("x").await });
    assert_eq!(conn.recv_json().await["type"], "leaveGroup");
}

#[actix_rt::test]
async fn internal_server_error_is_retried_with_the_same_ack_id() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, _events, mut conn) = hub.connected_client(quick_options()).await;
    let send = {
        let c = client.clone();
        actix_rt::spawn(async move { c.send_to_group("g", "x", SendOptions::new()).await })
    };
    let first = conn.recv_json().await;
    conn.send_ack_error(1, "InternalServerError").await;
    let second = conn.recv_json().await;
    assert_eq!(first, second, "a retry resends the same frame, same ack id");
    conn.send_ack(1).await;
    assert_eq!(send.await.unwrap().unwrap().ack_id, Some(1));
    assert_eq!(client.status().await.unwrap().counters.resends, 1);
}

#[actix_rt::test]
async fn duplicate_sequence_id_is_dropped_but_reacked() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = hub.connected_client(quick_options()).await;
    for (seq, text) in [(1, "a"), (2, "b"), (2, "b-again"), (1, "a-again"), (3, "c")] {
        conn.send_group_message(seq, "g", text).await;
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        if let Event::GroupMessage(m) = next_of(&mut events, EventKind::GroupMessage).await {
            got.push(m.data.as_text().unwrap().to_owned());
        }
    }
    assert_eq!(got, ["a", "b", "c"]);
    let ack = conn.recv_matching(|v| v["type"] == "sequenceAck").await;
    assert_eq!(ack["sequenceId"], 3);
    let status = client.status().await.unwrap();
    assert_eq!(status.counters.duplicates_dropped, 2);
    assert_eq!(status.counters.delivered, 3);
}

#[actix_rt::test]
async fn hostile_frames_are_counted_and_the_next_valid_one_is_delivered() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = hub.connected_client(quick_options()).await;
    for junk in [
        "not json",
        "[1,2,3]",
        r#"{"type":"message","from":"group","group":"g","dataType":"binary","data":"@@"}"#,
        r#"{"type":"ack","ackId":-4,"success":true}"#,
        r#"{"sequenceId":0,"type":"message","from":"server","dataType":"text","data":"x"}"#,
        r#"{"type":"brandNewType","x":1}"#,
        r#"{"type":"ack","ackId":999,"success":true}"#,
    ] {
        conn.send_text(junk).await;
    }
    conn.send_binary(&[0xff, 0xfe, 0x00]).await;
    conn.send_group_message(1, "g", "valid").await;
    match next_of(&mut events, EventKind::GroupMessage).await {
        Event::GroupMessage(m) => assert_eq!(m.data.as_text(), Some("valid")),
        other => panic!("{other:?}"),
    }
    let counters = client.status().await.unwrap().counters;
    assert_eq!(counters.bad_frames, 6);
    assert_eq!(counters.unknown_frames, 1);
    assert_eq!(counters.unknown_acks, 1);
    assert_eq!(client.status().await.unwrap().state, ClientState::Connected);
}

#[actix_rt::test]
async fn abrupt_drop_recovers_same_connection_and_resends_in_flight_operation() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = hub.connected_client(quick_options()).await;
    conn.send_group_message(1, "g", "before").await;
    next_of(&mut events, EventKind::GroupMessage).await;
    let send = {
        let c = client.clone();
        actix_rt::spawn(async move { c.send_to_group("g", "in-flight", SendOptions::new()).await })
    };
    let sent = conn.recv_json().await;
    assert_eq!(sent["ackId"], 1);
    conn.drop_abruptly();

    next_of(&mut events, EventKind::Recovering).await;
    let mut recovered = hub.accept_recovery("conn-1").await;
    assert_eq!(
        recovered.query("access_token").as_deref(),
        Some("tok-SECRET")
    );
    // The in-flight operation goes again with the same ack id; the hub deduplicates it.
    let resent = recovered.recv_json().await;
    assert_eq!(resent, sent);
    recovered.send_ack_error(1, "Duplicate").await;
    assert!(send.await.unwrap().unwrap().duplicated);
    next_of(&mut events, EventKind::Recovered).await;
    // Replay of an old id is dropped; a new one is delivered; no second `connected` event.
    recovered.send_group_message(1, "g", "before").await;
    recovered.send_group_message(2, "g", "after").await;
    match next_of(&mut events, EventKind::GroupMessage).await {
        Event::GroupMessage(m) => assert_eq!(m.data.as_text(), Some("after")),
        other => panic!("{other:?}"),
    }
    let status = client.status().await.unwrap();
    assert_eq!(status.connection_id.as_deref(), Some("conn-1"));
    assert_eq!(status.counters.recoveries, 1);
    assert_eq!(status.counters.reconnects, 0);
}

#[actix_rt::test]
async fn close_1008_starts_a_new_connection_that_rejoins_groups() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = hub.connected_client(quick_options()).await;
    let join = {
        let c = client.clone();
        actix_rt::spawn(async move { c.join_group("room").await })
    };
    conn.recv_json().await;
    conn.send_ack(1).await;
    join.await.unwrap().unwrap();
    let pending = {
        let c = client.clone();
        actix_rt::spawn(async move { c.send_to_group("room", "lost?", SendOptions::new()).await })
    };
    conn.recv_json().await;
    conn.close(1008).await;

    match next_of(&mut events, EventKind::Disconnected).await {
        Event::Disconnected { connection_id, .. } => {
            assert_eq!(connection_id.as_deref(), Some("conn-1"))
        }
        other => panic!("{other:?}"),
    }
    // On a new connection the operation fails with its ack id, so the caller can decide.
    assert_eq!(
        pending.await.unwrap(),
        Err(ClientError::ConnectionLost { ack_id: 2 })
    );
    let mut fresh = hub.accept().await;
    assert_eq!(fresh.query("awps_connection_id"), None);
    fresh.send_connected("conn-2").await;
    let rejoin = fresh.recv_json().await;
    assert_eq!(rejoin["type"], "joinGroup");
    assert_eq!(rejoin["group"], "room");
    match next_of(&mut events, EventKind::Connected).await {
        Event::Connected { connection_id, .. } => assert_eq!(connection_id, "conn-2"),
        other => panic!("{other:?}"),
    }
    fresh
        .send_ack_error(rejoin["ackId"].as_u64().unwrap(), "Forbidden")
        .await;
    match next_of(&mut events, EventKind::RejoinGroupFailed).await {
        Event::RejoinGroupFailed { group, .. } => assert_eq!(group, "room"),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.status().await.unwrap().counters.reconnects, 1);
}

#[actix_rt::test]
async fn plain_json_protocol_reconnects_instead_of_recovering() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let options = quick_options().with_protocol(Subprotocol::Json);
    let (_client, mut events, conn) = hub.connected_client(options).await;
    conn.drop_abruptly();
    next_of(&mut events, EventKind::Disconnected).await;
    let fresh = hub.accept().await;
    assert_eq!(fresh.query("awps_connection_id"), None);
}

#[actix_rt::test]
async fn dead_link_is_detected_by_keepalive_and_recovered() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let options =
        quick_options().with_keepalive(Duration::from_millis(200), Duration::from_millis(1200));
    let (_client, mut events, mut conn) = hub.connected_client(options).await;
    // The client pings; the fake never answers and keeps the socket open (half-open link).
    let ping = conn.recv_matching(|v| v["type"] == "ping").await;
    assert_eq!(ping, serde_json::json!({"type": "ping"}));
    next_of(&mut events, EventKind::Recovering).await;
    let recovery = hub.accept().await;
    assert_eq!(
        recovery.query("awps_connection_id").as_deref(),
        Some("conn-1")
    );
    drop(conn);
}

#[actix_rt::test]
async fn stop_fails_pending_operations_and_nothing_follows_stopped() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = hub.connected_client(quick_options()).await;
    let pending = {
        let c = client.clone();
        actix_rt::spawn(async move { c.join_group("g").await })
    };
    conn.recv_json().await;
    client.stop().await.unwrap();
    assert_eq!(
        pending.await.unwrap(),
        Err(ClientError::Stopped { ack_id: Some(1) })
    );
    assert_eq!(conn.closed().await, Some(1000));
    next_of(&mut events, EventKind::Disconnected).await;
    match next_of(&mut events, EventKind::Stopped).await {
        Event::Stopped {
            reason: StopReason::Requested,
        } => {}
        other => panic!("{other:?}"),
    }
    // Operations after stop fail at once; no socket is opened again.
    assert_eq!(client.join_group("g").await, Err(ClientError::NotStarted));
    assert_nothing_after_stop(&mut hub, &events).await;
}

#[actix_rt::test]
async fn stop_while_recovering_wins_the_race() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, conn) = hub.connected_client(quick_options()).await;
    // Refuse the recovery at the handshake so the client keeps trying once a second.
    hub.set_mode(Handshake::Unauthorized);
    conn.drop_abruptly();
    next_of(&mut events, EventKind::Recovering).await;
    client.stop().await.unwrap();
    next_of(&mut events, EventKind::Stopped).await;
    assert_eq!(client.status().await.unwrap().state, ClientState::Stopped);
    hub.set_mode(Handshake::Accept);
    assert_nothing_after_stop(&mut hub, &events).await;
}

#[actix_rt::test]
async fn stop_during_connecting_resolves_start_with_stopped() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let client = Client::from_url(&hub.url("t"), quick_options()).unwrap();
    let started = {
        let client = client.clone();
        actix_rt::spawn(async move { client.start().await })
    };
    let _silent = hub.accept().await;
    client.stop().await.unwrap();
    assert_eq!(
        started.await.unwrap(),
        Err(ClientError::Stopped { ack_id: None })
    );
}

#[actix_rt::test]
async fn a_panicking_callback_is_reported_and_the_client_goes_on() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = hub.connected_client(quick_options()).await;
    client
        .subscribe(EventKind::GroupMessage, |_| panic!("callback bug"))
        .await
        .unwrap();
    conn.send_group_message(1, "g", "one").await;
    match next_of(&mut events, EventKind::GroupMessage).await {
        Event::GroupMessage(m) => assert_eq!(m.data.as_text(), Some("one")),
        other => panic!("{other:?}"),
    }
    match next_of(&mut events, EventKind::CallbackPanicked).await {
        Event::CallbackPanicked { kind, message } => {
            assert_eq!(kind, EventKind::GroupMessage);
            assert_eq!(message, "callback bug");
        }
        other => panic!("{other:?}"),
    }
    conn.send_group_message(2, "g", "two").await;
    match next_of(&mut events, EventKind::GroupMessage).await {
        Event::GroupMessage(m) => assert_eq!(m.data.as_text(), Some("two")),
        other => panic!("{other:?}"),
    }
    // The callback panicked twice; both were caught and the client is still connected.
    next_of(&mut events, EventKind::CallbackPanicked).await;
    assert_eq!(client.status().await.unwrap().state, ClientState::Connected);
}

#[actix_rt::test]
async fn a_slow_stream_drops_newest_and_is_told_how_many() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, _events, mut conn) = hub.connected_client(quick_options()).await;
    let mut slow = client
        .events_with_capacity(Some(EventKind::GroupMessage), 2)
        .await
        .unwrap();
    for seq in 1..=6 {
        conn.send_group_message(seq, "g", &format!("m{seq}")).await;
    }
    // A barrier: once the client delivered all six, the slow queue has had its chance.
    delivered(&client, 6).await;
    let first: Vec<_> = [slow.recv().await.unwrap(), slow.recv().await.unwrap()]
        .into_iter()
        .map(|e| match e {
            Event::GroupMessage(m) => m.data.as_text().unwrap().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(first, ["m1", "m2"], "the oldest events are kept, in order");
    conn.send_group_message(7, "g", "m7").await;
    // The next event that fits goes first; the count of what was dropped follows it.
    match slow.recv().await.unwrap() {
        Event::GroupMessage(m) => assert_eq!(m.data.as_text(), Some("m7")),
        other => panic!("{other:?}"),
    }
    match slow.recv().await.unwrap() {
        Event::SlowConsumer { dropped } => assert_eq!(dropped, 4),
        other => panic!("{other:?}"),
    }
    assert!(client.status().await.unwrap().counters.events_dropped >= 4);
}

#[actix_rt::test]
async fn operations_and_start_during_an_unconfirmed_recovery_complete_after_it() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, conn) = hub.connected_client(quick_options()).await;
    conn.drop_abruptly();
    next_of(&mut events, EventKind::Recovering).await;
    // The recovered socket says nothing: it is confirmed after a second open.
    let mut recovered = hub.accept().await;
    let send = {
        let c = client.clone();
        actix_rt::spawn(async move { c.send_to_group("g", "during", SendOptions::new()).await })
    };
    let start = {
        let c = client.clone();
        actix_rt::spawn(async move { c.start().await })
    };
    let frame = recovered.recv_json().await;
    assert_eq!(frame["type"], "sendToGroup");
    recovered.send_ack(frame["ackId"].as_u64().unwrap()).await;
    send.await.unwrap().unwrap();
    assert_eq!(start.await.unwrap().unwrap().connection_id, "conn-1");
}

#[actix_rt::test]
async fn a_recovered_socket_lost_before_confirmation_continues_the_same_recovery() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, conn) = hub.connected_client(quick_options()).await;
    next_of(&mut events, EventKind::Connected).await;
    conn.drop_abruptly();
    hub.accept().await.drop_abruptly();
    let mut second = hub.accept().await;
    assert_eq!(
        second.query("awps_connection_id").as_deref(),
        Some("conn-1")
    );
    second.send_connected("conn-1").await;
    let mut recovering = 0;
    loop {
        let e = within("the next event", events.recv())
            .await
            .expect("the event stream is open");
        match e.kind() {
            EventKind::Recovering => recovering += 1,
            EventKind::Recovered => break,
            EventKind::Disconnected | EventKind::Connected => panic!("{e:?}"),
            _ => {}
        }
    }
    assert_eq!(recovering, 1, "one recovery episode, not one per socket");
    assert_eq!(client.status().await.unwrap().counters.recoveries, 1);
}

#[actix_rt::test]
async fn a_recovery_refused_after_disconnected_is_not_reported_as_recovered() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, conn) = hub.connected_client(quick_options()).await;
    conn.drop_abruptly();
    let mut refused = hub.accept().await;
    refused
        .send_text(r#"{"type":"system","event":"disconnected","message":"session expired"}"#)
        .await;
    refused.close(1008).await;
    let mut fresh = hub.accept().await;
    assert_eq!(fresh.query("awps_connection_id"), None);
    fresh.send_connected("conn-2").await;
    loop {
        let e = within("the next event", events.recv())
            .await
            .expect("the event stream is open");
        match e {
            Event::Recovered { .. } => panic!("a refused recovery was reported as recovered"),
            Event::Disconnected { message, .. } => {
                assert_eq!(message.as_deref(), Some("session expired"))
            }
            Event::Connected { connection_id, .. } if connection_id == "conn-2" => break,
            _ => {}
        }
    }
    assert_eq!(client.status().await.unwrap().counters.recoveries, 0);
}

#[actix_rt::test]
async fn stopped_reaches_a_stream_whose_queue_is_full() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, _events, mut conn) = hub.connected_client(quick_options()).await;
    let mut slow = client.events_with_capacity(None, 2).await.unwrap();
    for seq in 1..=5 {
        conn.send_group_message(seq, "g", "x").await;
    }
    delivered(&client, 5).await;
    client.stop().await.unwrap();
    let last = within("stopped to reach the full stream", async {
        loop {
            let e = slow.recv().await.expect("stream ended");
            if e.kind() == EventKind::Stopped {
                return e;
            }
        }
    })
    .await;
    assert!(matches!(
        last,
        Event::Stopped {
            reason: StopReason::Requested
        }
    ));
}
