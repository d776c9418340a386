//! The client on the protobuf subprotocols (`protobuf.webpubsub.azure.v1` and
//! `protobuf.reliable.webpubsub.azure.v1`, protocol.md 4) against the scripted fake hub playing a
//! protobuf service: binary frames both ways, every request with its ack, each payload type of
//! group and server messages, sequence acks and recovery with replay, and hostile frames
//! counted and survived; and one run against the local hub, where a protobuf and a JSON
//! client in one group see the same messages.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use serde_json::json;
use support::QUIET;
use support::client::next_of;
use support::fake_hub::{FakeConnection, FakeHub, Handshake};
use webpubsub_fleet::client::{
    AckResult, Client, ClientError, ClientOptions, ClientState, Event, EventKind, EventStream,
    GroupMessage, SendOptions, ServerMessage,
};
use webpubsub_fleet::protocol::protobuf::{self, wire};
use webpubsub_fleet::protocol::{AckErrorName, Inbound, Outbound, Payload, Subprotocol};
use webpubsub_fleet::session::{RetryMode, RetryPolicy};

fn options(protocol: Subprotocol) -> ClientOptions {
    let quick = RetryPolicy {
        max_retries: 5,
        delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        mode: RetryMode::Fixed,
    };
    ClientOptions::new()
        .with_protocol(protocol)
        .with_start_timeout(Duration::from_secs(5))
        .with_message_retry(quick)
        .with_reconnect_retry(quick)
}

/// A started client on `protocol` connected to the fake with connection id `conn-1`.
async fn connected(
    hub: &mut FakeHub,
    protocol: Subprotocol,
) -> (Client, EventStream, FakeConnection) {
    let (client, events, conn) = hub.connected_client(options(protocol)).await;
    assert_eq!(conn.protocol, Some(protocol), "the subprotocol offered");
    (client, events, conn)
}

type Op = actix_rt::task::JoinHandle<Result<AckResult, ClientError>>;

/// Runs one operation of `client` in the background, so the fake can answer it.
fn spawn_op<F>(client: &Client, op: impl FnOnce(Client) -> F) -> Op
where
    F: Future<Output = Result<AckResult, ClientError>> + 'static,
{
    actix_rt::spawn(op(client.clone()))
}

/// The bytes of a `google.protobuf.Any` of type `test.Point`.
fn any_point() -> Bytes {
    Bytes::from(
        wire::Any {
            type_url: "type.googleapis.com/test.Point".into(),
            value: Bytes::from_static(&[0x08, 0x01, 0x10, 0x02]),
        }
        .encode_to_vec(),
    )
}

async fn group_message(events: &mut EventStream) -> Arc<GroupMessage> {
    match next_of(events, EventKind::GroupMessage).await {
        Event::GroupMessage(m) => m,
        other => panic!("{other:?}"),
    }
}

async fn server_message(events: &mut EventStream) -> Arc<ServerMessage> {
    match next_of(events, EventKind::ServerMessage).await {
        Event::ServerMessage(m) => m,
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn every_request_goes_as_a_binary_protobuf_frame_and_its_ack_resolves_it() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    for protocol in [Subprotocol::Protobuf, Subprotocol::ProtobufReliable] {
        let (client, mut events, mut conn) = connected(&mut hub, protocol).await;
        // The ConnectedMessage's connection and user ids.
        next_of(&mut events, EventKind::Connected).await;
        assert_eq!(client.connection_id().as_deref(), Some("conn-1"));
        assert_eq!(client.user_id().as_deref(), Some("user1"));

        // joinGroup, checked on the wire by hand: UpstreamMessage.join_group_message (field
        // 6, length 5) holding group "g" (field 1) and ack_id 1 (field 2). The fake fails the
        // test on any text frame, so everything below was binary.
        let join = spawn_op(&client, |c| async move { c.join_group("g").await });
        let (frame, bytes) = conn.recv_outbound_raw(|_| true).await;
        assert_eq!(bytes, [0x32, 0x05, 0x0a, 0x01, b'g', 0x10, 0x01]);
        assert_eq!(
            frame,
            Outbound::JoinGroup {
                group: "g".into(),
                ack_id: Some(1)
            }
        );
        conn.send_ack(1).await;
        assert_eq!(join.await.unwrap().unwrap().ack_id, Some(1));

        let send = spawn_op(&client, |c| async move {
            let data = json!({"hello": "world"});
            c.send_to_group("g", data, SendOptions::new().no_echo(true))
                .await
        });
        assert_eq!(
            conn.recv_outbound().await,
            Outbound::SendToGroup {
                group: "g".into(),
                ack_id: Some(2),
                no_echo: true,
                data: Payload::Json(json!({"hello": "world"})),
            }
        );
        conn.send_ack_error(2, "Forbidden").await;
        match send.await.unwrap() {
            Err(ClientError::Ack { ack_id: 2, error }) => {
                assert_eq!(error.name, AckErrorName::Forbidden);
                assert_eq!(error.message, "scripted");
            }
            other => panic!("{other:?}"),
        }

        let event = spawn_op(&client, |c| async move {
            c.send_event("ev", vec![1u8, 2, 3], SendOptions::new())
                .await
        });
        assert_eq!(
            conn.recv_outbound().await,
            Outbound::Event {
                event: "ev".into(),
                ack_id: Some(3),
                data: Payload::Binary(Bytes::from_static(&[1, 2, 3])),
            }
        );
        conn.send_ack_error(3, "Duplicate").await;
        assert!(event.await.unwrap().unwrap().duplicated);

        // A protobuf payload goes out as the Any it is; fire-and-forget carries no ack id.
        let any = spawn_op(&client, |c| async move {
            let options = SendOptions::new().fire_and_forget(true);
            c.send_to_group("g", Payload::Protobuf(any_point()), options)
                .await
        });
        assert_eq!(any.await.unwrap().unwrap().ack_id, None);
        assert_eq!(
            conn.recv_outbound().await,
            Outbound::SendToGroup {
                group: "g".into(),
                ack_id: None,
                no_echo: false,
                data: Payload::Protobuf(any_point()),
            }
        );

        let leave = spawn_op(&client, |c| async move { c.leave_group("g").await });
        assert_eq!(
            conn.recv_outbound().await,
            Outbound::LeaveGroup {
                group: "g".into(),
                ack_id: Some(4)
            }
        );
        conn.send_ack(4).await;
        leave.await.unwrap().unwrap();
        client.stop().await.unwrap();
        next_of(&mut events, EventKind::Stopped).await;
    }
}

#[actix_rt::test]
async fn group_and_server_messages_of_each_payload_type_become_events() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = connected(&mut hub, Subprotocol::ProtobufReliable).await;
    let payloads = [
        Payload::Text("hello".into()),
        Payload::Json(json!({"n": 1, "list": [true, null]})),
        Payload::Binary(Bytes::from_static(&[0, 159, 255])),
        Payload::Protobuf(any_point()),
    ];
    let mut sequence_id = 0;
    for data in &payloads {
        sequence_id += 1;
        conn.send_inbound(&Inbound::GroupMessage {
            sequence_id: Some(sequence_id),
            group: "room".into(),
            from_user_id: Some("dropped-by-protobuf".into()),
            data: data.clone(),
        })
        .await;
        let m = group_message(&mut events).await;
        assert_eq!(&m.data, data);
        assert_eq!(m.group, "room");
        // DataMessage has no fromUserId field (protocol.md 4).
        assert_eq!(m.from_user_id, None);
        assert_eq!(m.sequence_id, Some(sequence_id));

        sequence_id += 1;
        conn.send_inbound(&Inbound::ServerMessage {
            sequence_id: Some(sequence_id),
            data: data.clone(),
        })
        .await;
        let m = server_message(&mut events).await;
        assert_eq!(&m.data, data);
        assert_eq!(m.sequence_id, Some(sequence_id));
    }
    // JSON published by a JSON client reaches a protobuf receiver as `text_data` in the
    // service docs (protocol.md 2.5): it is text to this client, as the docs say.
    let text_data = wire::DownstreamMessage {
        message: Some(wire::downstream_message::Message::DataMessage(
            wire::downstream_message::DataMessage {
                from: "server".into(),
                group: None,
                data: Some(wire::MessageData {
                    data: Some(wire::message_data::Data::TextData(r#"{"a":1}"#.into())),
                }),
                sequence_id: Some(sequence_id + 1),
            },
        )),
    };
    conn.send_binary(&text_data.encode_to_vec()).await;
    assert_eq!(
        server_message(&mut events).await.data,
        Payload::Text(r#"{"a":1}"#.into())
    );
    let counters = client.status().await.unwrap().counters;
    assert_eq!(counters.delivered, 9);
    assert_eq!(counters.bad_frames, 0);
}

#[actix_rt::test]
async fn the_plain_protobuf_subprotocol_pings_has_no_sequence_ids_and_reconnects() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let options = options(Subprotocol::Protobuf)
        .with_keepalive(Duration::from_millis(100), Duration::from_secs(10));
    let (client, mut events, mut conn) = hub.connected_client(options).await;
    // The keepalive ping: UpstreamMessage.ping_message (field 9), empty.
    let (_, ping) = conn
        .recv_outbound_raw(|f| matches!(f, Outbound::Ping))
        .await;
    assert_eq!(ping, [0x4a, 0x00]);
    conn.send_inbound(&Inbound::Pong).await;
    conn.send_inbound(&Inbound::GroupMessage {
        sequence_id: None,
        group: "g".into(),
        from_user_id: None,
        data: Payload::Text("plain".into()),
    })
    .await;
    assert_eq!(group_message(&mut events).await.sequence_id, None);
    // The DisconnectedMessage's reason is the disconnect's message; not reliable, so the
    // close is followed by a new connection (no recovery parameters), never a recovery.
    conn.send_inbound(&Inbound::Disconnected {
        message: Some("Service reload".into()),
    })
    .await;
    conn.close(1000).await;
    match next_of(&mut events, EventKind::Disconnected).await {
        Event::Disconnected { message, .. } => {
            assert_eq!(message.as_deref(), Some("Service reload"))
        }
        other => panic!("{other:?}"),
    }
    let fresh = hub.accept().await;
    assert_eq!(fresh.query("awps_connection_id"), None);
    assert_eq!(fresh.protocol, Some(Subprotocol::Protobuf));
    let counters = client.status().await.unwrap().counters;
    assert_eq!((counters.recoveries, counters.bad_frames), (0, 0));
}

#[actix_rt::test]
async fn reliable_protobuf_acks_sequence_ids_and_recovers_with_replay_without_loss_or_duplicate() {
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = connected(&mut hub, Subprotocol::ProtobufReliable).await;
    for (id, text) in [(1, "m1"), (2, "m2"), (3, "m3")] {
        conn.send_group_message(id, "g", text).await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(group_message(&mut events).await.data.clone());
    }
    // The periodic sequence ack goes as a protobuf SequenceAckMessage (an earlier one may
    // have acked less, if the tick fell between the messages).
    conn.recv_outbound_matching(|f| matches!(f, Outbound::SequenceAck { sequence_id: 3 }))
        .await;

    let send = spawn_op(&client, |c| async move {
        c.send_to_group("g", "in-flight", SendOptions::new()).await
    });
    let (sent, sent_bytes) = conn
        .recv_outbound_raw(|f| matches!(f, Outbound::SendToGroup { .. }))
        .await;
    assert_eq!(sent.ack_id(), Some(1));
    conn.drop_abruptly();

    next_of(&mut events, EventKind::Recovering).await;
    // With the token that came in the protobuf ConnectedMessage.
    let mut recovered = hub.accept_recovery("conn-1").await;
    assert_eq!(recovered.protocol, Some(Subprotocol::ProtobufReliable));
    // The in-flight operation goes again, byte for byte (same ack id); the hub deduplicates.
    let (_, resent) = recovered
        .recv_outbound_raw(|f| matches!(f, Outbound::SendToGroup { .. }))
        .await;
    assert_eq!(resent, sent_bytes);
    recovered.send_ack_error(1, "Duplicate").await;
    assert!(send.await.unwrap().unwrap().duplicated);
    next_of(&mut events, EventKind::Recovered).await;

    // The replay starts before the last sequence ack the hub saw: 2 and 3 again, then new.
    for (id, text) in [(2, "m2"), (3, "m3"), (4, "m4"), (5, "m5")] {
        recovered.send_group_message(id, "g", text).await;
    }
    for _ in 0..2 {
        got.push(group_message(&mut events).await.data.clone());
    }
    let texts: Vec<_> = got.iter().map(|p| p.as_text().unwrap()).collect();
    assert_eq!(texts, ["m1", "m2", "m3", "m4", "m5"]);
    recovered
        .recv_outbound_matching(|f| matches!(f, Outbound::SequenceAck { sequence_id: 5 }))
        .await;
    let status = client.status().await.unwrap();
    assert_eq!(status.connection_id.as_deref(), Some("conn-1"));
    assert_eq!(
        (
            status.counters.delivered,
            status.counters.duplicates_dropped,
            status.counters.recoveries,
            status.counters.reconnects,
        ),
        (5, 2, 1, 0)
    );
    assert!(events.is_empty(), "no second `connected`, no duplicate");
}

/// A `DownstreamMessage` holding a data message with `data` from `from`.
fn data_frame(
    from: &str,
    group: Option<&str>,
    data: wire::message_data::Data,
    seq: u64,
) -> Vec<u8> {
    wire::DownstreamMessage {
        message: Some(wire::downstream_message::Message::DataMessage(
            wire::downstream_message::DataMessage {
                from: from.into(),
                group: group.map(str::to_owned),
                data: Some(wire::MessageData { data: Some(data) }),
                sequence_id: Some(seq),
            },
        )),
    }
    .encode_to_vec()
}

#[actix_rt::test]
async fn hostile_protobuf_frames_are_counted_and_the_connection_goes_on() {
    use wire::message_data::Data;
    let mut hub = FakeHub::start(Handshake::Accept).await;
    let (client, mut events, mut conn) = connected(&mut hub, Subprotocol::ProtobufReliable).await;
    let text = |s: &str| Data::TextData(s.into());
    let valid = data_frame("group", Some("g"), text("x"), 1);
    let no_type = wire::Any {
        type_url: "no-slash".into(),
        value: Bytes::new(),
    }
    .encode_to_vec();
    let bad_frames: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", valid[..valid.len() - 3].to_vec()),
        // DownstreamMessage.ack_message (field 1) as a varint instead of a message.
        ("wrong wire type", vec![0x08, 0x01]),
        (
            "Any without a type",
            data_frame("group", Some("g"), Data::ProtobufData(no_type.into()), 1),
        ),
        (
            "not an Any",
            data_frame("server", None, Data::ProtobufData(vec![0xff].into()), 1),
        ),
        (
            "json_data that is not JSON",
            data_frame("server", None, Data::JsonData("{nope".into()), 1),
        ),
        ("sequence id 0", data_frame("server", None, text("x"), 0)),
        (
            "group message without a group",
            data_frame("group", None, text("x"), 1),
        ),
        // A text_data string that is not UTF-8: field 1 of MessageData, bytes 0xff 0xfe.
        ("text_data not UTF-8", {
            let data = [0x0a, 0x02, 0xff, 0xfe];
            let mut message = vec![0x0a, 0x05, b'g', b'r', b'o', b'u', b'p', 0x12, 0x01, b'g'];
            message.extend([0x1a, data.len() as u8]);
            message.extend(data);
            let mut frame = vec![0x12, message.len() as u8];
            frame.extend(message);
            frame
        }),
    ];
    let bad = bad_frames.len() as u64;
    for (_, frame) in &bad_frames {
        conn.send_binary(frame).await;
    }
    // JSON text on a protobuf connection, even a valid JSON frame, is a bad frame too.
    conn.send_text(r#"{"type":"ack","ackId":1,"success":true}"#)
        .await;
    // Unknown, not bad: an empty DownstreamMessage (a message this version does not know)
    // and a data message from neither group nor server, as a JSON client ignores them.
    conn.send_binary(&[]).await;
    conn.send_binary(&data_frame("elsewhere", None, text("x"), 1))
        .await;
    conn.send_inbound(&Inbound::Ack {
        ack_id: 999,
        success: true,
        error: None,
    })
    .await;
    conn.send_group_message(1, "g", "valid").await;
    assert_eq!(
        group_message(&mut events).await.data,
        Payload::Text("valid".into())
    );
    let counters = client.status().await.unwrap().counters;
    assert_eq!(
        (
            counters.bad_frames,
            counters.unknown_frames,
            counters.unknown_acks
        ),
        (bad + 1, 2, 1),
        "{bad_frames:?}"
    );
    // The connection goes on: same socket, requests still answered.
    assert_eq!(client.state(), ClientState::Connected);
    let join = spawn_op(&client, |c| async move { c.join_group("after").await });
    assert_eq!(conn.recv_outbound().await.ack_id(), Some(1));
    conn.send_ack(1).await;
    join.await.unwrap().unwrap();
    assert!(hub.accept_within(QUIET).await.is_none(), "no new socket");
    // Each of the frames above is refused by the codec itself, not by luck of the fake.
    for (what, frame) in &bad_frames {
        assert!(protobuf::decode_inbound(frame).is_err(), "{what}");
    }
}

/// What a client received: each group message's data, as `Debug` text, sorted (two publishers'
/// messages may interleave in any order).
async fn received(events: &mut EventStream, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(format!("{:?}", group_message(events).await.data));
    }
    got.sort();
    got
}

#[actix_rt::test]
async fn a_protobuf_and_a_json_client_of_the_local_hub_see_the_same_messages() {
    let hub = support::hub::start_hub().await;
    let cs = hub.connection_string();
    let roles = support::client::ROLES;
    let mut clients = Vec::new();
    for (user, protocol) in [
        ("pb-user", Subprotocol::ProtobufReliable),
        ("json-user", Subprotocol::JsonReliable),
    ] {
        let client =
            support::client::client(&cs, support::hub::HUB, user, &roles, options(protocol));
        let events = client.events().await.unwrap();
        client.start().await.unwrap();
        client.join_group("mixed").await.unwrap();
        clients.push((client, events));
    }
    let sent = [
        Payload::Text("from protobuf".into()),
        Payload::Json(json!({"from": "protobuf", "n": [1, 2]})),
        Payload::Binary(Bytes::from_static(&[0, 1, 254, 255])),
    ];
    for data in &sent {
        let acked = clients[0]
            .0
            .send_to_group("mixed", data.clone(), SendOptions::new());
        acked.await.unwrap();
    }
    let from_json = Payload::Text("from json".into());
    let acked = clients[1]
        .0
        .send_to_group("mixed", from_json.clone(), SendOptions::new());
    acked.await.unwrap();
    let mut expected: Vec<String> = sent
        .iter()
        .chain([&from_json])
        .map(|p| format!("{p:?}"))
        .collect();
    expected.sort();
    for (client, events) in &mut clients {
        assert_eq!(received(events, 4).await, expected);
        assert_eq!(client.status().await.unwrap().counters.bad_frames, 0);
    }
}
