use super::*;
use crate::protocol::{DataType, Inbound, Outbound};
use serde_json::{Value, json};

/// Client-to-service examples of protocol.md 2.2, verbatim.
const OUTBOUND_VECTORS: &[&str] = &[
    r#"{"type":"joinGroup","group":"group1","ackId":1}"#,
    r#"{"type":"leaveGroup","group":"group1","ackId":2}"#,
    r#"{"type":"sendToGroup","group":"group1","ackId":3,"noEcho":true,"dataType":"text","data":"Hello"}"#,
    r#"{"type":"sendToGroup","group":"group1","dataType":"json","data":{"hello":"world"}}"#,
    r#"{"type":"sendToGroup","group":"group1","ackId":4,"dataType":"binary","data":"AQID"}"#,
    r#"{"type":"event","event":"message","ackId":5,"dataType":"json","data":{"Hello":"world"}}"#,
    r#"{"type":"sequenceAck","sequenceId":12}"#,
    r#"{"type":"ping"}"#,
    // protocol.md 8.3.
    r#"{"type":"invoke","invocationId":"1","target":"event","event":"echo","dataType":"text","data":"hi"}"#,
    r#"{"type":"invoke","invocationId":"2","target":"event","event":"echo","dataType":"binary","data":"AQID"}"#,
    r#"{"type":"cancelInvocation","invocationId":"1"}"#,
];

/// Service-to-client examples of protocol.md 2.3. The binary server message's `<base64>`
/// placeholder is replaced by real base64, and `<token>` is kept (any string is a token).
const INBOUND_VECTORS: &[&str] = &[
    r#"{"type":"ack","ackId":1,"success":true}"#,
    r#"{"type":"ack","ackId":1,"success":false,"error":{"name":"Forbidden","message":"The client has no permission to send message to group 'group1'."}}"#,
    r#"{"type":"ack","ackId":1,"success":false,"error":{"name":"Duplicate","message":"Message with ack-id: 1 has been processed"}}"#,
    r#"{"sequenceId":1,"type":"message","from":"group","group":"group1","fromUserId":"user1","dataType":"json","data":{"hello":"world"}}"#,
    r#"{"sequenceId":2,"type":"message","from":"server","dataType":"text","data":"Hello World"}"#,
    r#"{"type":"message","from":"server","dataType":"binary","data":"AAECAwQ="}"#,
    r#"{"type":"system","event":"connected","userId":"user1","connectionId":"abcdefghijklmnop","reconnectionToken":"<token>"}"#,
    r#"{"type":"system","event":"disconnected","message":"Service reload"}"#,
    r#"{"type":"pong"}"#,
    // protocol.md 8.3.
    r#"{"type":"invokeResponse","invocationId":"1","success":true,"dataType":"json","data":{"a":1}}"#,
    r#"{"type":"invokeResponse","invocationId":"3","success":true}"#,
    r#"{"type":"invokeResponse","invocationId":"2","success":false,"error":{"name":"InvocationFailed","message":"the handler answered 500"}}"#,
];

/// Fields an encoder may add with their default value (the JS client always writes noEcho).
fn is_written_default(key: &str, value: &Value) -> bool {
    matches!((key, value), ("noEcho", Value::Bool(false)))
}

fn assert_equivalent(original: &str, reencoded: &str) {
    let a: Value = serde_json::from_str(original).unwrap();
    let b: Value = serde_json::from_str(reencoded).unwrap();
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    for (k, v) in a {
        assert_eq!(
            b.get(k),
            Some(v),
            "field {k} of {original} lost in {reencoded}"
        );
    }
    for (k, v) in b {
        assert!(
            a.contains_key(k) || is_written_default(k, v),
            "field {k} added to {original}: {reencoded}"
        );
    }
}

#[test]
fn every_outbound_example_round_trips() {
    for text in OUTBOUND_VECTORS {
        let frame = decode_outbound(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let encoded = encode_outbound(&frame);
        assert_equivalent(text, &encoded);
        assert_eq!(decode_outbound(&encoded).unwrap(), frame);
    }
}

#[test]
fn every_inbound_example_round_trips() {
    for text in INBOUND_VECTORS {
        let frame = decode_inbound(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let encoded = encode_inbound(&frame);
        assert_equivalent(text, &encoded);
        assert_eq!(decode_inbound(&encoded).unwrap(), frame);
    }
}

#[test]
fn decoded_examples_have_the_documented_meaning() {
    assert_eq!(
        decode_outbound(OUTBOUND_VECTORS[2]).unwrap(),
        Outbound::SendToGroup {
            group: "group1".into(),
            ack_id: Some(3),
            no_echo: true,
            data: Payload::Text("Hello".into()),
        }
    );
    assert_eq!(
        decode_outbound(OUTBOUND_VECTORS[4]).unwrap(),
        Outbound::SendToGroup {
            group: "group1".into(),
            ack_id: Some(4),
            no_echo: false,
            data: Payload::Binary(Bytes::from_static(&[1, 2, 3])),
        }
    );
    match decode_inbound(INBOUND_VECTORS[2]).unwrap() {
        Inbound::Ack {
            ack_id: 1,
            success: false,
            error: Some(e),
        } => assert_eq!(e.name, AckErrorName::Duplicate),
        other => panic!("{other:?}"),
    }
    match decode_inbound(INBOUND_VECTORS[6]).unwrap() {
        Inbound::Connected {
            connection_id,
            user_id,
            reconnection_token: Some(token),
        } => {
            assert_eq!(connection_id, "abcdefghijklmnop");
            assert_eq!(user_id.as_deref(), Some("user1"));
            assert_eq!(token.expose(), "<token>");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn request_without_data_type_is_json() {
    let frame = decode_outbound(r#"{"type":"sendToGroup","group":"g","data":[1,2]}"#).unwrap();
    match frame {
        Outbound::SendToGroup { data, .. } => {
            assert_eq!(data.data_type(), DataType::Json);
            assert_eq!(data, Payload::Json(json!([1, 2])));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_inbound_types_are_ignorable_not_errors() {
    for (text, kind) in [
        (r#"{"type":"streamAck","streamId":"1"}"#, "streamAck"),
        (
            r#"{"type":"system","event":"reloading"}"#,
            "system/reloading",
        ),
        (
            r#"{"type":"message","from":"stream","data":1}"#,
            "message/stream",
        ),
    ] {
        assert_eq!(
            decode_inbound(text).unwrap(),
            Inbound::Unknown { kind: kind.into() }
        );
    }
}

#[test]
fn unknown_fields_and_anonymous_user_are_tolerated() {
    let frame = decode_inbound(
        r#"{"type":"system","event":"connected","userId":null,"connectionId":"c","extra":{"a":1}}"#,
    )
    .unwrap();
    assert_eq!(
        frame,
        Inbound::Connected {
            connection_id: "c".into(),
            user_id: None,
            reconnection_token: None
        }
    );
}

#[test]
fn largest_u64_ids_survive() {
    let text = format!(r#"{{"type":"joinGroup","group":"g","ackId":{}}}"#, u64::MAX);
    assert_eq!(decode_outbound(&text).unwrap().ack_id(), Some(u64::MAX));
}

#[test]
fn json_numbers_in_data_reach_the_receiver_as_the_same_f64() {
    // Found by fuzzing: without serde_json's float_roundtrip these came back one ulp off.
    for number in [-9.999999999999999e-31_f64, 1.1844674407370955e20] {
        let text = format!(r#"{{"type":"sendToGroup","group":"g","data":[{number:e}]}}"#);
        let Outbound::SendToGroup { data, .. } = decode_outbound(&text).unwrap() else {
            panic!("not a sendToGroup: {text}");
        };
        assert_eq!(
            data.as_json().and_then(|v| v[0].as_f64()),
            Some(number),
            "{text}"
        );
    }
}

#[test]
fn binary_frames_holding_json_decode_and_bad_utf8_is_named() {
    assert_eq!(
        decode_outbound_bytes(br#"{"type":"ping"}"#).unwrap(),
        Outbound::Ping
    );
    assert_eq!(
        decode_inbound_bytes(b"{\"type\":\xff}"),
        Err(ProtocolError::InvalidUtf8 { valid_up_to: 8 })
    );
}

#[test]
fn message_frame_stamps_sequence_ids_without_reserializing() {
    let data = Payload::Text("hi".into());
    let frame = MessageFrame::group("g1", Some("u1"), &data);
    let stamped = frame.with_sequence_id(42);
    let decoded = decode_inbound(std::str::from_utf8(&stamped).unwrap()).unwrap();
    assert_eq!(
        decoded,
        Inbound::GroupMessage {
            sequence_id: Some(42),
            group: "g1".into(),
            from_user_id: Some("u1".into()),
            data: data.clone()
        }
    );
    let plain = decode_inbound(std::str::from_utf8(&frame.plain()).unwrap()).unwrap();
    assert_eq!(plain.sequence_id(), None);
    let server = MessageFrame::server(&data).with_sequence_id(7);
    assert_eq!(
        decode_inbound(std::str::from_utf8(&server).unwrap()).unwrap(),
        Inbound::ServerMessage {
            sequence_id: Some(7),
            data
        }
    );
}

#[test]
fn encoded_reconnection_token_is_on_the_wire_but_not_in_debug() {
    let frame = Inbound::Connected {
        connection_id: "c".into(),
        user_id: None,
        reconnection_token: Some(Secret::new("s3cr3t")),
    };
    assert!(encode_inbound(&frame).contains("s3cr3t"));
    assert!(!format!("{frame:?}").contains("s3cr3t"));
}

fn wrong(field: &'static str, expected: &'static str, found: &'static str) -> ProtocolError {
    ProtocolError::WrongType {
        field,
        expected,
        found,
    }
}

fn missing(frame: &'static str, field: &'static str) -> ProtocolError {
    ProtocolError::MissingField { frame, field }
}

#[test]
fn malformed_client_frames_map_to_their_exact_error() {
    use ProtocolError::*;
    let cases: Vec<(&str, ProtocolError)> = vec![
        (
            "",
            NotJson {
                reason: "EOF while parsing a value at line 1 column 0".into(),
            },
        ),
        (
            "hello",
            NotJson {
                reason: "expected value at line 1 column 1".into(),
            },
        ),
        ("[1,2]", NotAnObject),
        ("42", NotAnObject),
        (r#""ping""#, NotAnObject),
        (
            r#"{"type":"ping""#,
            NotJson {
                reason: "EOF while parsing an object at line 1 column 14".into(),
            },
        ),
        (r#"{}"#, MissingType),
        (r#"{"type":7}"#, wrong("type", "a string", "a number")),
        (
            r#"{"type":"ping","type":"ping"}"#,
            DuplicateField {
                field: "type".into(),
            },
        ),
        (
            r#"{"type":"sendEvent"}"#,
            UnknownRequestType("sendEvent".into()),
        ),
        (r#"{"type":"joinGroup"}"#, missing("joinGroup", "group")),
        (
            r#"{"type":"joinGroup","group":5}"#,
            wrong("group", "a string", "a number"),
        ),
        (
            r#"{"type":"joinGroup","group":""}"#,
            InvalidName {
                field: "group",
                reason: "it is empty",
            },
        ),
        (
            r#"{"type":"leaveGroup","group":["g"]}"#,
            wrong("group", "a string", "an array"),
        ),
        (
            r#"{"type":"joinGroup","group":"g","ackId":-1}"#,
            NegativeId {
                field: "ackId",
                value: -1,
            },
        ),
        (
            r#"{"type":"joinGroup","group":"g","ackId":1.5}"#,
            IdNotAnInteger {
                field: "ackId",
                value: "1.5".into(),
            },
        ),
        (
            r#"{"type":"joinGroup","group":"g","ackId":"1"}"#,
            wrong("ackId", "an unsigned integer", "a string"),
        ),
        (
            r#"{"type":"joinGroup","group":"g","ackId":18446744073709551616}"#,
            IdNotAnInteger {
                field: "ackId",
                value: "18446744073709551616".into(),
            },
        ),
        (
            r#"{"type":"sendToGroup","group":"g","dataType":"text"}"#,
            missing("sendToGroup", "data"),
        ),
        (
            r#"{"type":"sendToGroup","group":"g","dataType":"text","data":1}"#,
            wrong("data", "a string (dataType text)", "a number"),
        ),
        (
            r#"{"type":"sendToGroup","group":"g","dataType":"xml","data":"<a/>"}"#,
            UnknownDataType("xml".into()),
        ),
        (
            r#"{"type":"sendToGroup","group":"g","dataType":1,"data":"x"}"#,
            wrong("dataType", "a string", "a number"),
        ),
        (
            r#"{"type":"sendToGroup","group":"g","dataType":"binary","data":"@@@"}"#,
            BadBase64 {
                data_type: "binary",
                reason: "Invalid symbol 64, offset 0.".into(),
            },
        ),
        (
            r#"{"type":"sendToGroup","group":"g","dataType":"binary","data":{"a":1}}"#,
            wrong("data", "a base64 string", "an object"),
        ),
        (
            r#"{"type":"sendToGroup","group":"g","dataType":"protobuf","data":"AQI"}"#,
            BadBase64 {
                data_type: "protobuf",
                reason: "Invalid padding".into(),
            },
        ),
        (
            r#"{"type":"sendToGroup","group":"g","noEcho":"yes","data":1}"#,
            wrong("noEcho", "a boolean", "a string"),
        ),
        (r#"{"type":"event","data":1}"#, missing("event", "event")),
        (r#"{"type":"event","event":"e"}"#, missing("event", "data")),
        (
            r#"{"type":"sequenceAck"}"#,
            missing("sequenceAck", "sequenceId"),
        ),
        (
            r#"{"type":"sequenceAck","sequenceId":-3}"#,
            NegativeId {
                field: "sequenceId",
                value: -3,
            },
        ),
        (
            r#"{"type":"sequenceAck","sequenceId":true}"#,
            wrong("sequenceId", "an unsigned integer", "a boolean"),
        ),
    ];
    assert!(cases.len() >= 25);
    for (text, expected) in cases {
        assert_eq!(decode_outbound(text), Err(expected), "input: {text}");
    }
}

#[test]
fn malformed_service_frames_map_to_their_exact_error() {
    use ProtocolError::*;
    let cases: Vec<(&str, ProtocolError)> = vec![
        (r#"{"type":"ack","success":true}"#, missing("ack", "ackId")),
        (r#"{"type":"ack","ackId":1}"#, missing("ack", "success")),
        (
            r#"{"type":"ack","ackId":1,"success":"no"}"#,
            wrong("success", "a boolean", "a string"),
        ),
        (
            r#"{"type":"ack","ackId":1,"success":false,"error":"Forbidden"}"#,
            wrong("error", "an object with name and message", "a string"),
        ),
        (
            r#"{"type":"ack","ackId":1,"success":false,"error":{"message":"m"}}"#,
            missing("ack", "error.name"),
        ),
        (
            r#"{"type":"message","group":"g","data":"x"}"#,
            missing("message", "from"),
        ),
        (
            r#"{"type":"message","from":"group","data":"x","dataType":"text"}"#,
            missing("message", "group"),
        ),
        (
            r#"{"sequenceId":0,"type":"message","from":"server","dataType":"text","data":"x"}"#,
            ZeroSequenceId,
        ),
        (
            r#"{"sequenceId":-1,"type":"message","from":"server","dataType":"text","data":"x"}"#,
            NegativeId {
                field: "sequenceId",
                value: -1,
            },
        ),
        (
            r#"{"type":"message","from":"group","group":"g","fromUserId":3,"dataType":"text","data":"x"}"#,
            wrong("fromUserId", "a string", "a number"),
        ),
        (
            r#"{"type":"system","event":"connected"}"#,
            missing("system/connected", "connectionId"),
        ),
        (r#"{"type":"system"}"#, missing("system", "event")),
        (
            r#"{"type":"system","event":"disconnected","message":false}"#,
            wrong("message", "a string", "a boolean"),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(decode_inbound(text), Err(expected), "input: {text}");
    }
}

#[test]
fn errors_say_what_to_do() {
    let e = decode_outbound(r#"{"type":"joinGroup","group":"g","ackId":-1}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "field `ackId` is negative (-1): ids are unsigned 64-bit integers"
    );
}

/// The hub sends an error's text back in a failed ack or a close reason and logs it: a
/// peer's megabyte-long `type`, `dataType` or number must not come back whole (found by the
/// request_decode fuzz target).
#[test]
fn errors_echo_at_most_a_short_prefix_of_what_the_peer_sent() {
    let long = "x".repeat(10_000);
    let digits = "9".repeat(10_000);
    for text in [
        format!(r#"{{"type":"{long}"}}"#),
        format!(r#"{{"type":"sendToGroup","group":"g","dataType":"{long}","data":"x"}}"#),
        format!(r#"{{"type":"joinGroup","group":"g","ackId":{digits}}}"#),
        format!(r#"{{"type":"joinGroup","group":"g","ackId":1.{digits}}}"#),
    ] {
        let message = decode_outbound(&text).unwrap_err().to_string();
        assert!(
            message.len() < 300,
            "{} bytes: {message:.120}",
            message.len()
        );
        assert!(
            message.contains("xxxx") || message.contains("9999"),
            "{message:.120}"
        );
    }
}

#[test]
fn invoke_frames_are_written_in_the_documented_shape() {
    let invoke = Outbound::Invoke {
        invocation_id: "7".into(),
        event: "echo".into(),
        data: Payload::Json(json!({"a": 1})),
    };
    assert_eq!(
        encode_outbound(&invoke),
        r#"{"type":"invoke","invocationId":"7","target":"event","event":"echo","dataType":"json","data":{"a":1}}"#
    );
    let failed = Inbound::InvokeResponse {
        invocation_id: "7".into(),
        success: false,
        data: None,
        error: Some(AckError {
            name: AckErrorName::Other("InvocationFailed".into()),
            message: "no".into(),
        }),
    };
    assert_eq!(
        encode_inbound(&failed),
        r#"{"type":"invokeResponse","invocationId":"7","success":false,"error":{"name":"InvocationFailed","message":"no"}}"#
    );
}

#[test]
fn hostile_invoke_frames_name_what_is_wrong() {
    let cases: &[(&str, ProtocolError)] = &[
        (
            r#"{"type":"invoke","event":"e","dataType":"text","data":"x"}"#,
            ProtocolError::MissingField {
                frame: "invoke",
                field: "invocationId",
            },
        ),
        (
            r#"{"type":"invoke","invocationId":7,"event":"e","data":1}"#,
            ProtocolError::WrongType {
                field: "invocationId",
                expected: "a string",
                found: "a number",
            },
        ),
        (
            r#"{"type":"invoke","invocationId":"","event":"e","data":1}"#,
            ProtocolError::InvalidName {
                field: "invocationId",
                reason: "it is empty",
            },
        ),
        (
            r#"{"type":"invoke","invocationId":"1","target":"hub","event":"e","data":1}"#,
            ProtocolError::UnknownInvokeTarget("hub".into()),
        ),
        (
            r#"{"type":"invoke","invocationId":"1","dataType":"text","data":"x"}"#,
            ProtocolError::MissingField {
                frame: "invoke",
                field: "event",
            },
        ),
        (
            r#"{"type":"cancelInvocation"}"#,
            ProtocolError::MissingField {
                frame: "cancelInvocation",
                field: "invocationId",
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(decode_outbound(text).as_ref(), Err(expected), "{text}");
    }
    assert_eq!(
        decode_inbound(r#"{"type":"invokeResponse","invocationId":"1"}"#),
        Err(ProtocolError::MissingField {
            frame: "invokeResponse",
            field: "success",
        })
    );
}
