//! Golden vectors of the protobuf subprotocols, cross-checked with Python's `protobuf` package
//! (pinned in the interop venv by scripts/setup-interop.sh): Python compiles the same
//! `proto/webpubsub.proto` and builds each message from its field names alone; our encoding
//! must equal its serialization byte for byte, Python must parse ours into an equal message, and
//! we must decode its bytes into the frame we started from.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Value, json};
use webpubsub_fleet::protocol::protobuf::{
    decode_inbound, decode_outbound, encode_inbound, encode_outbound,
};
use webpubsub_fleet::protocol::{AckError, AckErrorName, Inbound, Outbound, Payload, Secret};

use support::DEADLINE;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `google.protobuf.Any` naming `test.Point` with value `08 2a`, encoded by hand.
fn any_bytes() -> (Bytes, Value) {
    let url = "type.googleapis.com/test.Point";
    let mut b = vec![0x0a, url.len() as u8];
    b.extend_from_slice(url.as_bytes());
    b.extend_from_slice(&[0x12, 0x02, 0x08, 0x2a]);
    let fields = json!({"type_url": url, "value": BASE64.encode([0x08, 0x2a])});
    (Bytes::from(b), fields)
}

/// Every payload kind with the `MessageData` fields Python sets for it.
fn payloads() -> Vec<(&'static str, Payload, Value)> {
    let (any, any_fields) = any_bytes();
    vec![
        (
            "text",
            Payload::Text("hé".into()),
            json!({"text_data": "hé"}),
        ),
        (
            "empty_text",
            Payload::Text(String::new()),
            json!({"text_data": ""}),
        ),
        (
            "json",
            Payload::Json(json!({"a": [1, "x"]})),
            json!({"json_data": r#"{"a":[1,"x"]}"#}),
        ),
        (
            "binary",
            Payload::Binary(Bytes::from_static(&[0, 1, 255])),
            json!({"binary_data": BASE64.encode([0, 1, 255])}),
        ),
        (
            "protobuf",
            Payload::Protobuf(any),
            json!({"protobuf_data": any_fields}),
        ),
    ]
}

fn upstream_cases() -> Vec<(String, Outbound, Value)> {
    let mut cases = vec![
        (
            "join_with_ack".to_owned(),
            Outbound::JoinGroup {
                group: "group1".into(),
                ack_id: Some(1),
            },
            json!({"join_group_message": {"group": "group1", "ack_id": 1}}),
        ),
        (
            "join_without_ack".to_owned(),
            Outbound::JoinGroup {
                group: "group1".into(),
                ack_id: None,
            },
            json!({"join_group_message": {"group": "group1"}}),
        ),
        (
            "leave_max_ack".to_owned(),
            Outbound::LeaveGroup {
                group: "group1".into(),
                ack_id: Some(u64::MAX),
            },
            json!({"leave_group_message": {"group": "group1", "ack_id": u64::MAX}}),
        ),
        (
            "sequence_ack".to_owned(),
            Outbound::SequenceAck { sequence_id: 300 },
            json!({"sequence_ack_message": {"sequence_id": 300}}),
        ),
        (
            "ping".to_owned(),
            Outbound::Ping,
            json!({"ping_message": {}}),
        ),
    ];
    for (i, (kind, data, fields)) in payloads().into_iter().enumerate() {
        let no_echo = i % 2 == 0;
        cases.push((
            format!("send_to_group_{kind}"),
            Outbound::SendToGroup {
                group: "group1".into(),
                ack_id: Some(1000 + i as u64),
                no_echo,
                data: data.clone(),
            },
            json!({"send_to_group_message": {
                "group": "group1", "ack_id": 1000 + i as u64, "data": fields, "no_echo": no_echo,
            }}),
        ));
        cases.push((
            format!("event_{kind}"),
            Outbound::Event {
                event: "message".into(),
                ack_id: None,
                data,
            },
            json!({"event_message": {"event": "message", "data": fields}}),
        ));
    }
    cases
}

fn downstream_cases() -> Vec<(String, Inbound, Value)> {
    let mut cases = vec![
        (
            "ack_success".to_owned(),
            Inbound::Ack {
                ack_id: 7,
                success: true,
                error: None,
            },
            json!({"ack_message": {"ack_id": 7, "success": true}}),
        ),
        (
            "ack_duplicate".to_owned(),
            Inbound::Ack {
                ack_id: 8,
                success: false,
                error: Some(AckError {
                    name: AckErrorName::Duplicate,
                    message: "Message with ack-id: 8 has been processed".into(),
                }),
            },
            json!({"ack_message": {"ack_id": 8, "error": {
                "name": "Duplicate", "message": "Message with ack-id: 8 has been processed",
            }}}),
        ),
        (
            "connected_reliable".to_owned(),
            Inbound::Connected {
                connection_id: "abcdefghijklmnop".into(),
                user_id: Some("user1".into()),
                reconnection_token: Some(Secret::new("token-1")),
            },
            json!({"system_message": {"connected_message": {
                "connection_id": "abcdefghijklmnop", "user_id": "user1",
                "reconnection_token": "token-1",
            }}}),
        ),
        (
            "connected_anonymous".to_owned(),
            Inbound::Connected {
                connection_id: "abcdefghijklmnop".into(),
                user_id: None,
                reconnection_token: None,
            },
            json!({"system_message": {"connected_message": {
                "connection_id": "abcdefghijklmnop",
            }}}),
        ),
        (
            "disconnected".to_owned(),
            Inbound::Disconnected {
                message: Some("Service reload".into()),
            },
            json!({"system_message": {"disconnected_message": {"reason": "Service reload"}}}),
        ),
        (
            "pong".to_owned(),
            Inbound::Pong,
            json!({"pong_message": {}}),
        ),
    ];
    for (i, (kind, data, fields)) in payloads().into_iter().enumerate() {
        cases.push((
            format!("group_message_{kind}"),
            Inbound::GroupMessage {
                sequence_id: Some(1 + i as u64 * 200),
                group: "group1".into(),
                from_user_id: None,
                data: data.clone(),
            },
            json!({"data_message": {
                "from": "group", "group": "group1", "data": fields, "sequence_id": 1 + i as u64 * 200,
            }}),
        ));
        cases.push((
            format!("server_message_{kind}"),
            Inbound::ServerMessage {
                sequence_id: None,
                data,
            },
            json!({"data_message": {"from": "server", "data": fields}}),
        ));
    }
    cases
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex from python"))
        .collect()
}

/// Runs the Python side on `cases` and returns its answer, within the suite's deadline.
fn python(cases: Vec<Value>) -> Value {
    let python = root().join("target/interop/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup-interop.sh` from the repository root first \
         (it installs the pinned protobuf and grpcio-tools into a venv)",
        python.display()
    );
    let request = json!({
        "proto": root().join("proto/webpubsub.proto"),
        "cases": cases,
    });
    let mut child = Command::new(python)
        .arg(root().join("tests/interop/protobuf_golden.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(request.to_string().as_bytes())
        .expect("request written");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let output = rx
        .recv_timeout(DEADLINE)
        .expect("the Python golden script answers within the deadline")
        .expect("python finishes");
    assert!(
        output.status.success(),
        "tests/interop/protobuf_golden.py failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints one JSON object")
}

fn check(message: &str, cases: Vec<(String, Vec<u8>, Value)>) -> Value {
    let answer = python(
        cases
            .iter()
            .map(|(name, ours, fields)| {
                json!({"name": name, "message": message, "fields": fields, "ours": hex(ours)})
            })
            .collect(),
    );
    for (name, ours, _) in &cases {
        let theirs = &answer[name];
        assert_eq!(
            theirs["theirs"].as_str(),
            Some(hex(ours).as_str()),
            "{message} `{name}`: our bytes differ from Python's"
        );
        assert_eq!(
            theirs["ours_equal"],
            json!(true),
            "{message} `{name}`: Python parses our bytes into a different message ({})",
            theirs["ours_error"]
        );
    }
    answer
}

#[test]
fn upstream_messages_match_python_byte_for_byte() {
    let cases = upstream_cases();
    let answer = check(
        "UpstreamMessage",
        cases
            .iter()
            .map(|(name, frame, fields)| (name.clone(), encode_outbound(frame), fields.clone()))
            .collect(),
    );
    for (name, frame, _) in cases {
        let theirs = unhex(answer[&name]["theirs"].as_str().expect("hex"));
        assert_eq!(
            decode_outbound(&theirs),
            Ok(frame),
            "decoding Python's `{name}`"
        );
    }
}

#[test]
fn downstream_messages_match_python_byte_for_byte() {
    let cases = downstream_cases();
    let answer = check(
        "DownstreamMessage",
        cases
            .iter()
            .map(|(name, frame, fields)| {
                (
                    name.clone(),
                    encode_inbound(frame).expect("every case has a protobuf form"),
                    fields.clone(),
                )
            })
            .collect(),
    );
    for (name, frame, _) in cases {
        let theirs = unhex(answer[&name]["theirs"].as_str().expect("hex"));
        assert_eq!(
            decode_inbound(&theirs),
            Ok(frame),
            "decoding Python's `{name}`"
        );
    }
}
