//! The hub's protocol: groups, publishing, noEcho, roles, acks, duplicates, events; JSON and
//! protobuf clients in the same groups.

mod support;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use support::http::*;
use support::hub::*;
use support::within;
use support::ws::*;
use tokio_tungstenite::tungstenite::Message;
use webpubsub_fleet::protocol::{Inbound, Outbound, Payload, protobuf};

#[tokio::test]
async fn join_send_receive_with_no_echo_and_from_user_id() {
    let hub = start_hub().await;
    // Two connections of the same user: noEcho excludes only the sending connection.
    let mut a1 = connect_all(&hub, RELIABLE, "alice").await;
    let mut a2 = connect_all(&hub, JSON, "alice").await;
    let mut b = connect_all(&hub, RELIABLE, "bob").await;
    for (c, id) in [(&mut a1, 1), (&mut a2, 1), (&mut b, 1)] {
        assert_eq!(
            c.join("g", id).await,
            json!({"type":"ack","ackId":1,"success":true})
        );
    }

    let ack = a1
        .request(
            json!({"type":"sendToGroup","group":"g","noEcho":true,"dataType":"text","data":"hi"}),
            2,
        )
        .await;
    assert_eq!(ack["success"], true);
    let expected = json!({"type":"message","from":"group","group":"g","fromUserId":"alice","dataType":"text","data":"hi"});
    assert_eq!(
        a2.next_json().await,
        expected,
        "other connection of the same user receives"
    );
    let mut with_seq = expected.clone();
    with_seq["sequenceId"] = json!(1);
    assert_eq!(
        b.next_json().await,
        with_seq,
        "reliable receivers get a sequence id"
    );
    a1.expect_silence().await;

    // Without noEcho the sender receives its own message, with its own next sequence id.
    a1.send_json(json!({"type":"sendToGroup","group":"g","dataType":"json","data":{"n":1}}))
        .await;
    let own = a1.next_json().await;
    assert_eq!(own["data"], json!({"n":1}));
    assert_eq!(own["sequenceId"], 1);
    assert_eq!(b.next_json().await["sequenceId"], 2);
    // No ackId: no ack.
    a1.expect_silence().await;
    hub.stop().await;
}

#[tokio::test]
async fn token_groups_are_joined_before_any_traffic() {
    let hub = start_hub().await;
    let mut member = connect(&hub, JSON, Some("m"), &[], &["g1", "g2"]).await;
    let mut sender = connect_all(&hub, JSON, "s").await;
    sender
        .request(
            json!({"type":"sendToGroup","group":"g2","dataType":"text","data":"x"}),
            1,
        )
        .await;
    assert_eq!(member.next_json().await["group"], "g2");
    hub.stop().await;
}

#[tokio::test]
async fn forbidden_without_the_role_and_exact_per_group_roles() {
    let hub = start_hub().await;
    let mut c = connect(
        &hub,
        RELIABLE,
        Some("u"),
        &[
            "webpubsub.sendToGroup.a",
            "webpubsub.joinLeaveGroups.room.*",
        ],
        &[],
    )
    .await;
    let denied = c.join("a", 1).await;
    assert_eq!(denied["success"], false);
    assert_eq!(denied["error"]["name"], "Forbidden");
    assert_eq!(c.join("room.1", 2).await["success"], true);
    assert_eq!(c.join("room.1.x", 3).await["error"]["name"], "Forbidden");
    let send =
        |group: &str| json!({"type":"sendToGroup","group":group,"dataType":"text","data":"x"});
    assert_eq!(c.request(send("a"), 4).await["success"], true);
    for (i, other) in ["a.b", "A", "a*"].into_iter().enumerate() {
        let ack = c.request(send(other), 10 + i as u64).await;
        assert_eq!(ack["error"]["name"], "Forbidden", "{other}");
        assert_eq!(
            ack["error"]["message"],
            format!("The client has no permission to send message to group '{other}'.")
        );
    }
    // Events need no role.
    let event = c
        .request(
            json!({"type":"event","event":"e","dataType":"text","data":"x"}),
            20,
        )
        .await;
    assert_eq!(event["success"], true);
    assert!(hub.stats().forbidden >= 5);
    hub.stop().await;
}

#[tokio::test]
async fn a_reused_ack_id_gets_duplicate_and_is_not_executed_again() {
    let hub = start_hub().await;
    let mut sender = connect_all(&hub, RELIABLE, "s").await;
    let mut receiver = connect_all(&hub, RELIABLE, "r").await;
    receiver.join("g", 1).await;
    let publish = json!({"type":"sendToGroup","group":"g","dataType":"text","data":"once"});
    assert_eq!(sender.request(publish.clone(), 7).await["success"], true);
    assert_eq!(receiver.next_json().await["data"], "once");
    let again = sender.request(publish, 7).await;
    assert_eq!(
        again,
        json!({"type":"ack","ackId":7,"success":false,"error":{"name":"Duplicate","message":"Message with ack-id: 7 has been processed"}})
    );
    receiver.expect_silence().await;
    // The same id on another connection is independent.
    assert_eq!(receiver.join("g2", 7).await["success"], true);
    assert_eq!(hub.stats().duplicates, 1);
    hub.stop().await;
}

#[tokio::test]
async fn ping_pong_and_events() {
    let hub = start_hub_with(|c| c.echo_events(true)).await;
    let mut c = connect(&hub, RELIABLE, None, &[], &[]).await;
    c.send_json(json!({"type":"ping"})).await;
    assert_eq!(c.next_json().await, json!({"type":"pong"}));
    let ack = c
        .request(
            json!({"type":"event","event":"echo","dataType":"json","data":{"k":[1,2]}}),
            1,
        )
        .await;
    assert_eq!(ack["success"], true);
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId":1,"type":"message","from":"server","dataType":"json","data":{"k":[1,2]}})
    );
    hub.stop().await;
}

#[tokio::test]
async fn invalid_requests_with_an_ack_id_get_a_failed_ack_and_the_connection_stays() {
    let hub = start_hub().await;
    let mut c = connect_all(&hub, JSON, "u").await;
    c.send_json(json!({"type":"sendToGroup","group":"g","ackId":3,"dataType":"nope","data":"x"}))
        .await;
    let ack = c.next_json().await;
    assert_eq!(ack["ackId"], 3);
    assert_eq!(ack["success"], false);
    assert_eq!(ack["error"]["name"], "BadRequest");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dataType")
    );
    // Still usable.
    assert_eq!(c.join("g", 4).await["success"], true);
    hub.stop().await;
}

#[tokio::test]
async fn fan_out_stamps_each_receiver_with_its_own_sequence() {
    let hub = start_hub().await;
    let mut receivers = Vec::new();
    for i in 0..20 {
        let mut r = connect_all(&hub, RELIABLE, &format!("r{i}")).await;
        r.join("big", 1).await;
        receivers.push(r);
    }
    // One receiver already got a message of its own, so its ids are one ahead.
    let mut sender = connect_all(&hub, JSON, "s").await;
    hub_rest_send_to_connection(&hub, &receivers[0].connection_id).await;
    assert_eq!(receivers[0].next_json().await["sequenceId"], 1);
    for n in 0..3 {
        sender
            .request(json!({"type":"sendToGroup","group":"big","dataType":"text","data":format!("m{n}")}), 10 + n)
            .await;
    }
    for (i, r) in receivers.iter_mut().enumerate() {
        for n in 0..3u64 {
            let m = r.next_json().await;
            assert_eq!(m["data"], format!("m{n}"));
            let expected = if i == 0 { n + 2 } else { n + 1 };
            assert_eq!(m["sequenceId"], expected, "receiver {i}");
        }
    }
    hub.stop().await;
}

async fn hub_rest_send_to_connection(hub: &webpubsub_fleet::hub::Hub, id: &str) {
    let r = rest(
        hub,
        "POST",
        &format!("/api/hubs/{HUB}/connections/{id}/:send?api-version=2024-01-01"),
        Some("text/plain"),
        b"direct",
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
}

const PROTOBUF_RELIABLE: &str = "protobuf.reliable.webpubsub.azure.v1";

/// A protobuf client of the hub: binary frames decoded with the crate's codec.
struct PbPeer {
    ws: Socket,
    connection_id: String,
    reconnection_token: Option<String>,
}

impl PbPeer {
    async fn open(url: &str) -> PbPeer {
        let ws = open(url, Some(PROTOBUF_RELIABLE)).await.expect("upgrade");
        let mut peer = PbPeer {
            ws,
            connection_id: String::new(),
            reconnection_token: None,
        };
        match peer.next().await {
            Inbound::Connected {
                connection_id,
                reconnection_token,
                ..
            } => {
                peer.connection_id = connection_id;
                peer.reconnection_token = reconnection_token.map(|t| t.expose().to_owned());
            }
            other => panic!("the first frame must be connected, got {other:?}"),
        }
        peer
    }

    async fn send(&mut self, frame: &Outbound) {
        let bytes = protobuf::encode_outbound(frame);
        self.ws.send(Message::Binary(bytes)).await.expect("send");
    }

    /// The next frame, which must be a binary protobuf `DownstreamMessage`.
    async fn next(&mut self) -> Inbound {
        loop {
            let message = within("a frame from the hub", self.ws.next())
                .await
                .expect("socket open")
                .expect("frame ok");
            match message {
                Message::Binary(b) => {
                    return protobuf::decode_inbound(&b).expect("a protobuf frame");
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("a protobuf client got a non-binary frame: {other:?}"),
            }
        }
    }
}

/// A `google.protobuf.Any` naming `test.Ping`, encoded by hand (field 1 type_url, field 2 value).
fn any_bytes() -> Vec<u8> {
    let url = b"type.googleapis.com/test.Ping";
    let mut out = vec![0x0a, url.len() as u8];
    out.extend_from_slice(url);
    out.extend_from_slice(&[0x12, 2, 0x08, 0x2a]);
    out
}

#[tokio::test]
async fn protobuf_and_json_clients_share_groups_with_each_payload_converted() {
    let hub = start_hub().await;
    let token = client_token(
        &hub,
        HUB,
        Some("pat"),
        &["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"],
        &[],
    );
    let mut pb = PbPeer::open(&client_url(&hub, HUB, &token)).await;
    assert!(
        pb.reconnection_token.is_some(),
        "a reliable protobuf connection gets a token"
    );
    let mut js = connect_all(&hub, JSON, "jo").await;
    pb.send(&Outbound::JoinGroup {
        group: "g".into(),
        ack_id: Some(1),
    })
    .await;
    assert!(matches!(
        pb.next().await,
        Inbound::Ack {
            ack_id: 1,
            success: true,
            ..
        }
    ));
    js.join("g", 1).await;

    // (JSON request's dataType and data, the payload the protobuf client decodes)
    let table = [
        (json!("text"), json!("hi"), Payload::Text("hi".into())),
        (
            json!("json"),
            json!({"a": [1, 2]}),
            Payload::Json(json!({"a": [1, 2]})),
        ),
        (
            json!("binary"),
            json!("AQID"),
            Payload::Binary(vec![1, 2, 3].into()),
        ),
    ];
    for (n, (data_type, data, want)) in table.into_iter().enumerate() {
        let request = json!({"type":"sendToGroup","group":"g","noEcho":true,"dataType":data_type,"data":data});
        assert_eq!(js.request(request, 10 + n as u64).await["success"], true);
        match pb.next().await {
            Inbound::GroupMessage {
                sequence_id,
                group,
                data,
                ..
            } => {
                assert_eq!((sequence_id, group.as_str()), (Some(n as u64 + 1), "g"));
                assert_eq!(data, want, "{data_type}");
            }
            other => panic!("expected a group message, got {other:?}"),
        }
    }

    // A protobuf payload from the protobuf client: base64 of the Any for the JSON client.
    let any = any_bytes();
    let send = Outbound::SendToGroup {
        group: "g".into(),
        ack_id: Some(2),
        no_echo: false,
        data: Payload::Protobuf(any.clone().into()),
    };
    pb.send(&send).await;
    let mut acked = false;
    let mut echoed = None;
    while !acked || echoed.is_none() {
        match pb.next().await {
            Inbound::Ack {
                ack_id: 2,
                success: true,
                ..
            } => acked = true,
            Inbound::GroupMessage {
                sequence_id, data, ..
            } => echoed = Some((sequence_id, data)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        echoed,
        Some((Some(4), Payload::Protobuf(any.clone().into())))
    );
    let m = js.next_data().await;
    assert_eq!(
        (m["dataType"].as_str(), m["fromUserId"].as_str()),
        (Some("protobuf"), Some("pat"))
    );
    use base64::Engine as _;
    assert_eq!(
        m["data"],
        base64::engine::general_purpose::STANDARD.encode(&any)
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_protobuf_session_recovers_with_its_replay() {
    let hub = start_hub().await;
    let token = client_token(&hub, HUB, None, &["webpubsub.joinLeaveGroup"], &["g"]);
    let pb = PbPeer::open(&client_url(&hub, HUB, &token)).await;
    let mut js = connect_all(&hub, JSON, "jo").await;
    assert!(hub.drop_connection(&pb.connection_id));
    support::eventually("the session to be detached", async || {
        hub.stats().detached_sessions == 1
    })
    .await;
    for n in 1..=3u64 {
        let request =
            json!({"type":"sendToGroup","group":"g","dataType":"text","data":format!("m{n}")});
        assert_eq!(js.request(request, n).await["success"], true);
    }
    let token = pb.reconnection_token.as_deref().unwrap();
    // In JSON it cannot go on; the refusal spends nothing, so the protobuf recovery still works.
    let mut json = open(
        &recovery_url(&hub, &pb.connection_id, token),
        Some(RELIABLE),
    )
    .await
    .expect("a refused recovery is upgraded, then closed");
    assert_eq!(close_code(&mut json).await, Some(1008));
    let mut recovered = PbPeer::open(&recovery_url(&hub, &pb.connection_id, token)).await;
    assert_eq!(recovered.connection_id, pb.connection_id);
    for n in 1..=3u64 {
        match recovered.next().await {
            Inbound::GroupMessage {
                sequence_id, data, ..
            } => {
                assert_eq!(
                    (sequence_id, data),
                    (Some(n), Payload::Text(format!("m{n}")))
                );
            }
            other => panic!("expected the replay, got {other:?}"),
        }
    }
    recovered
        .send(&Outbound::SequenceAck { sequence_id: 3 })
        .await;
    recovered.send(&Outbound::Ping).await;
    assert!(matches!(recovered.next().await, Inbound::Pong));
    assert_eq!(hub.stats().messages_replayed, 3);
    hub.stop().await;
}

#[tokio::test]
async fn a_protobuf_frame_that_does_not_decode_closes_with_a_reason_and_the_hub_goes_on() {
    let hub = start_hub().await;
    // (frame, close code): garbage is 1008 like unparsable JSON; text is the wrong kind, 1003.
    let table = [
        (Message::Binary(vec![0xff, 0xff, 0xff]), 1008),
        (Message::Binary(vec![0x0a, 0x05, 0x0a]), 1008),
        (Message::Text("{\"type\":\"ping\"}".into()), 1003),
    ];
    for (frame, code) in table {
        let token = client_token(&hub, HUB, None, &[], &[]);
        let mut pb = PbPeer::open(&client_url(&hub, HUB, &token)).await;
        pb.ws.send(frame.clone()).await.expect("send");
        let mut frames = Vec::new();
        let closed = loop {
            match within("the close", pb.ws.next()).await {
                Some(Ok(Message::Close(f))) => {
                    break f.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(Message::Binary(b))) => {
                    frames.push(protobuf::decode_inbound(&b).expect("protobuf"))
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => break None,
            }
        };
        let (got, reason) = closed.unwrap_or_else(|| panic!("{frame:?}: no close frame"));
        assert_eq!(got, code, "{frame:?}: {reason}");
        assert!(!reason.is_empty(), "{frame:?}: the close says why");
        assert!(
            matches!(
                frames.as_slice(),
                [Inbound::Disconnected { message: Some(_) }]
            ),
            "{frame:?}: system/disconnected before the close, got {frames:?}"
        );
    }
    let mut still = connect_all(&hub, JSON, "after").await;
    assert_eq!(still.join("g", 1).await["success"], true);
    hub.stop().await;
}
