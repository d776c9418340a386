use super::*;
use crate::protocol::json;
use serde_json::json;

/// An `Any` naming `test.Point` with a two-byte value.
fn any_bytes(type_url: &str) -> Bytes {
    Bytes::from(
        Any {
            type_url: type_url.to_owned(),
            value: Bytes::from_static(&[0x08, 0x2a]),
        }
        .encode_to_vec(),
    )
}

fn every_payload() -> Vec<Payload> {
    vec![
        Payload::Text("hé".into()),
        Payload::Text(String::new()),
        Payload::Json(json!({"a": [1, 2.5, null, "x"]})),
        Payload::Json(json!("a string")),
        Payload::Binary(Bytes::from_static(&[0, 1, 255])),
        Payload::Binary(Bytes::new()),
        Payload::Protobuf(any_bytes("type.googleapis.com/test.Point")),
    ]
}

fn every_outbound() -> Vec<Outbound> {
    let mut frames = vec![
        Outbound::JoinGroup {
            group: "g".into(),
            ack_id: Some(1),
        },
        Outbound::JoinGroup {
            group: "g".into(),
            ack_id: None,
        },
        Outbound::LeaveGroup {
            group: "g".into(),
            ack_id: Some(u64::MAX),
        },
        Outbound::SequenceAck { sequence_id: 12 },
        Outbound::Ping,
    ];
    for (i, data) in every_payload().into_iter().enumerate() {
        frames.push(Outbound::SendToGroup {
            group: "group1".into(),
            ack_id: (i % 2 == 0).then_some(i as u64),
            no_echo: i % 3 == 0,
            data: data.clone(),
        });
        frames.push(Outbound::Event {
            event: "message".into(),
            ack_id: (i % 2 == 1).then_some(i as u64),
            data,
        });
    }
    frames
}

fn every_inbound() -> Vec<Inbound> {
    let mut frames = vec![
        Inbound::Ack {
            ack_id: 1,
            success: true,
            error: None,
        },
        Inbound::Ack {
            ack_id: 2,
            success: false,
            error: Some(AckError {
                name: AckErrorName::Duplicate,
                message: "Message with ack-id: 2 has been processed".into(),
            }),
        },
        Inbound::Connected {
            connection_id: "abc".into(),
            user_id: Some("user1".into()),
            reconnection_token: Some(Secret::new("token")),
        },
        Inbound::Connected {
            connection_id: "abc".into(),
            user_id: None,
            reconnection_token: None,
        },
        Inbound::Disconnected {
            message: Some("Service reload".into()),
        },
        Inbound::Disconnected { message: None },
        Inbound::Pong,
    ];
    for (i, data) in every_payload().into_iter().enumerate() {
        frames.push(Inbound::GroupMessage {
            sequence_id: (i % 2 == 0).then_some(i as u64 + 1),
            group: "group1".into(),
            from_user_id: None,
            data: data.clone(),
        });
        frames.push(Inbound::ServerMessage {
            sequence_id: (i % 2 == 1).then_some(u64::MAX - i as u64),
            data,
        });
    }
    frames
}

#[test]
fn every_outbound_frame_round_trips() {
    for frame in every_outbound() {
        let bytes = encode_outbound(&frame);
        assert_eq!(decode_outbound(&bytes).as_ref(), Ok(&frame), "{bytes:02x?}");
    }
}

#[test]
fn every_inbound_frame_round_trips() {
    for frame in every_inbound() {
        let bytes = encode_inbound(&frame).unwrap();
        assert_eq!(decode_inbound(&bytes).as_ref(), Ok(&frame), "{bytes:02x?}");
    }
}

/// Bytes worked out by hand from protocol.md 4's field numbers, independent of wire.rs.
#[test]
fn field_numbers_are_the_services() {
    let cases: Vec<(Outbound, Vec<u8>)> = vec![
        (
            Outbound::JoinGroup {
                group: "g".into(),
                ack_id: Some(1),
            },
            vec![0x32, 0x05, 0x0a, 0x01, b'g', 0x10, 0x01],
        ),
        (
            Outbound::LeaveGroup {
                group: "g".into(),
                ack_id: None,
            },
            vec![0x3a, 0x03, 0x0a, 0x01, b'g'],
        ),
        (
            Outbound::SendToGroup {
                group: "g".into(),
                ack_id: Some(3),
                no_echo: true,
                data: Payload::Text("hi".into()),
            },
            vec![
                0x0a, 0x0d, 0x0a, 0x01, b'g', 0x10, 0x03, 0x1a, 0x04, 0x0a, 0x02, b'h', b'i', 0x20,
                0x01,
            ],
        ),
        (
            Outbound::Event {
                event: "e".into(),
                ack_id: Some(5),
                data: Payload::Binary(Bytes::from_static(&[7])),
            },
            vec![
                0x2a, 0x0a, 0x0a, 0x01, b'e', 0x12, 0x03, 0x12, 0x01, 0x07, 0x18, 0x05,
            ],
        ),
        (
            Outbound::SequenceAck { sequence_id: 12 },
            vec![0x42, 0x02, 0x08, 0x0c],
        ),
        (Outbound::Ping, vec![0x4a, 0x00]),
    ];
    for (frame, bytes) in cases {
        assert_eq!(encode_outbound(&frame), bytes, "{frame:?}");
    }
    let inbound: Vec<(Inbound, Vec<u8>)> = vec![
        (
            Inbound::Ack {
                ack_id: 1,
                success: true,
                error: None,
            },
            vec![0x0a, 0x04, 0x08, 0x01, 0x10, 0x01],
        ),
        (
            Inbound::ServerMessage {
                sequence_id: Some(2),
                data: Payload::Json(json!(1)),
            },
            vec![
                0x12, 0x0f, 0x0a, 0x06, b's', b'e', b'r', b'v', b'e', b'r', 0x1a, 0x03, 0x22, 0x01,
                b'1', 0x20, 0x02,
            ],
        ),
        (
            Inbound::Disconnected {
                message: Some("r".into()),
            },
            vec![0x1a, 0x05, 0x12, 0x03, 0x12, 0x01, b'r'],
        ),
        (Inbound::Pong, vec![0x22, 0x00]),
    ];
    for (frame, bytes) in inbound {
        assert_eq!(encode_inbound(&frame).unwrap(), bytes, "{frame:?}");
    }
}

#[test]
fn decode_faults_are_classified() {
    let join = encode_outbound(&Outbound::JoinGroup {
        group: "group1".into(),
        ack_id: Some(300),
    });
    let fault = |r: Result<Outbound, ProtocolError>| match r {
        Err(ProtocolError::InvalidProtobuf { fault, .. }) => fault,
        other => panic!("expected InvalidProtobuf, got {other:?}"),
    };
    // Every cut of a valid frame short of the whole is an error, never a panic.
    for cut in 1..join.len() {
        let r = decode_outbound(&join[..cut]);
        assert!(
            matches!(
                r,
                Err(ProtocolError::InvalidProtobuf {
                    fault: ProtobufFault::Truncated | ProtobufFault::Malformed,
                    ..
                })
            ),
            "cut at {cut}: {r:?}"
        );
    }
    assert_eq!(
        fault(decode_outbound(&join[..join.len() - 3])),
        ProtobufFault::Truncated
    );
    // join_group_message (field 6) sent as a varint.
    assert_eq!(
        fault(decode_outbound(&[0x30, 0x01])),
        ProtobufFault::WrongWireType
    );
    // group (string, field 1) inside join_group_message sent as a varint.
    assert_eq!(
        fault(decode_outbound(&[0x32, 0x02, 0x08, 0x01])),
        ProtobufFault::WrongWireType
    );
    // group is not UTF-8.
    assert_eq!(
        fault(decode_outbound(&[0x32, 0x03, 0x0a, 0x01, 0xff])),
        ProtobufFault::InvalidUtf8
    );
    // A length prefix far beyond the frame: refused before anything is allocated for it.
    let r = decode_outbound(&[0x32, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(
        matches!(
            r,
            Err(ProtocolError::InvalidProtobuf {
                fault: ProtobufFault::Truncated,
                ..
            })
        ),
        "{r:?}"
    );
    let message = r.unwrap_err().to_string();
    assert!(message.contains("UpstreamMessage"), "{message}");
    assert!(message.len() < 512, "{message}");
}

#[test]
fn an_any_without_a_type_is_a_decode_error() {
    for type_url in ["", "no-slash", "type.googleapis.com/"] {
        let frame = Outbound::SendToGroup {
            group: "g".into(),
            ack_id: None,
            no_echo: false,
            data: Payload::Protobuf(any_bytes(type_url)),
        };
        let r = decode_outbound(&encode_outbound(&frame));
        assert_eq!(
            r,
            Err(ProtocolError::UnknownAnyType(type_url.to_owned())),
            "{type_url:?}"
        );
    }
    // protobuf_data that is not an Any at all (a varint in field 1, type_url's number).
    let frame = Outbound::Event {
        event: "e".into(),
        ack_id: None,
        data: Payload::Protobuf(Bytes::from_static(&[0x08, 0x01])),
    };
    let r = decode_outbound(&encode_outbound(&frame));
    assert!(
        matches!(
            r,
            Err(ProtocolError::InvalidProtobuf {
                message: "google.protobuf.Any",
                fault: ProtobufFault::WrongWireType,
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn frames_without_a_known_message() {
    assert_eq!(
        decode_outbound(&[]),
        Err(ProtocolError::EmptyProtobuf {
            message: "UpstreamMessage"
        })
    );
    // Field 2 is no upstream message (skipped as unknown, leaving the oneof empty).
    assert_eq!(
        decode_outbound(&[0x12, 0x00]),
        Err(ProtocolError::EmptyProtobuf {
            message: "UpstreamMessage"
        })
    );
    // A newer downstream message (field 5, invoke_response_message in PROTO-V1) is ignored.
    assert_eq!(
        decode_inbound(&[0x2a, 0x00]),
        Ok(Inbound::Unknown {
            kind: "DownstreamMessage".into()
        })
    );
    assert_eq!(
        decode_inbound(&[0x1a, 0x00]),
        Ok(Inbound::Unknown {
            kind: "system".into()
        })
    );
    // A data message from someone new.
    let other = DownstreamMessage {
        message: Some(down::Message::DataMessage(DataMessage {
            from: "stream".into(),
            group: None,
            data: Some(message_data(&Payload::Text("x".into()))),
            sequence_id: None,
        })),
    }
    .encode_to_vec();
    assert_eq!(
        decode_inbound(&other),
        Ok(Inbound::Unknown {
            kind: "message/stream".into()
        })
    );
}

#[test]
fn missing_or_bad_fields_are_named() {
    let send_without_data = UpstreamMessage {
        message: Some(up::Message::SendToGroupMessage(up::SendToGroupMessage {
            group: "g".into(),
            ack_id: None,
            data: None,
            no_echo: None,
        })),
    }
    .encode_to_vec();
    assert_eq!(
        decode_outbound(&send_without_data),
        Err(ProtocolError::MissingField {
            frame: "sendToGroup",
            field: "data"
        })
    );
    assert!(matches!(
        decode_outbound(&encode_outbound(&Outbound::JoinGroup {
            group: String::new(),
            ack_id: None
        })),
        Err(ProtocolError::InvalidName { field: "group", .. })
    ));
    let bad_json = UpstreamMessage {
        message: Some(up::Message::EventMessage(up::EventMessage {
            event: "e".into(),
            data: Some(MessageData {
                data: Some(Data::JsonData("{not json".into())),
            }),
            ack_id: None,
        })),
    }
    .encode_to_vec();
    assert!(matches!(
        decode_outbound(&bad_json),
        Err(ProtocolError::NotJson { .. })
    ));
    let group_without_name = data_message(FROM_GROUP, None, &Payload::Text("x".into()), None);
    assert_eq!(
        decode_inbound(&group_without_name.encode_to_vec()),
        Err(ProtocolError::MissingField {
            frame: "message/group",
            field: "group"
        })
    );
    let zero = data_message(FROM_SERVER, None, &Payload::Text("x".into()), Some(0));
    assert_eq!(
        decode_inbound(&zero.encode_to_vec()),
        Err(ProtocolError::ZeroSequenceId)
    );
    assert_eq!(
        encode_inbound(&Inbound::Unknown { kind: "x".into() }),
        Err(ProtocolError::NoProtobufForm("an unknown frame"))
    );
}

#[test]
fn message_frame_matches_encode_inbound() {
    for data in every_payload() {
        let frame = MessageFrame::group("group1", &data);
        for sequence_id in [1, 127, 128, 300, u64::MAX] {
            let whole = encode_inbound(&Inbound::GroupMessage {
                sequence_id: Some(sequence_id),
                group: "group1".into(),
                from_user_id: Some("dropped".into()),
                data: data.clone(),
            })
            .unwrap();
            assert_eq!(frame.with_sequence_id(sequence_id), whole);
        }
        let plain = encode_inbound(&Inbound::ServerMessage {
            sequence_id: None,
            data: data.clone(),
        })
        .unwrap();
        let server = MessageFrame::server(&data);
        assert_eq!(server.plain(), plain);
        assert_eq!(server.len(), plain.len());
        assert_eq!(
            decode_inbound(&server.with_sequence_id(9)),
            Ok(Inbound::ServerMessage {
                sequence_id: Some(9),
                data
            })
        );
    }
}

/// protocol.md 2.5, the rows whose source is a client: what a JSON receiver and a protobuf
/// receiver get for each source payload, through the common `Payload`.
#[test]
fn cross_protocol_conversion_table() {
    let deliver_json = |data: Payload| {
        json::encode_inbound(&Inbound::ServerMessage {
            sequence_id: None,
            data,
        })
    };
    let deliver_protobuf = |data: Payload| {
        let bytes = encode_inbound(&Inbound::ServerMessage {
            sequence_id: None,
            data,
        })
        .unwrap();
        let Some(down::Message::DataMessage(m)) =
            DownstreamMessage::decode(bytes.as_slice()).unwrap().message
        else {
            panic!("not a data message")
        };
        m.data.unwrap().data.unwrap()
    };
    // JSON sources.
    let from_json = |frame: &str| match json::decode_outbound(frame).unwrap() {
        Outbound::SendToGroup { data, .. } => data,
        other => panic!("{other:?}"),
    };
    let text = from_json(r#"{"type":"sendToGroup","group":"g","dataType":"text","data":"hi"}"#);
    assert_eq!(deliver_protobuf(text), Data::TextData("hi".into()));
    let value = from_json(r#"{"type":"sendToGroup","group":"g","dataType":"json","data":{"a":1}}"#);
    assert_eq!(deliver_protobuf(value), Data::JsonData(r#"{"a":1}"#.into()));
    let binary =
        from_json(r#"{"type":"sendToGroup","group":"g","dataType":"binary","data":"AQID"}"#);
    assert_eq!(
        deliver_protobuf(binary),
        Data::BinaryData(Bytes::from_static(&[1, 2, 3]))
    );
    // A protobuf source: the JSON receiver gets dataType protobuf with base64 of the Any bytes.
    let any = any_bytes("type.googleapis.com/test.Point");
    let sent = encode_outbound(&Outbound::SendToGroup {
        group: "g".into(),
        ack_id: None,
        no_echo: false,
        data: Payload::Protobuf(any.clone()),
    });
    let Outbound::SendToGroup { data, .. } = decode_outbound(&sent).unwrap() else {
        panic!("not a sendToGroup")
    };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&any);
    assert_eq!(
        deliver_json(data.clone()),
        format!(r#"{{"type":"message","from":"server","dataType":"protobuf","data":"{b64}"}}"#)
    );
    assert_eq!(deliver_protobuf(data), Data::ProtobufData(any));
}

#[test]
fn reconnection_token_never_shows_in_errors_or_debug() {
    let bytes = encode_inbound(&Inbound::Connected {
        connection_id: "c".into(),
        user_id: None,
        reconnection_token: Some(Secret::new("s3cret-token")),
    })
    .unwrap();
    let frame = decode_inbound(&bytes).unwrap();
    assert!(!format!("{frame:?}").contains("s3cret"));
    let cut = decode_inbound(&bytes[..bytes.len() - 2]).unwrap_err();
    assert!(!cut.to_string().contains("s3cret"), "{cut}");
}
