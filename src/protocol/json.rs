//! The codec of `json.webpubsub.azure.v1` and `json.reliable.webpubsub.azure.v1`.
//!
//! Decoding has two paths. The fast one (`json/fast.rs`) reads the common frames in one pass
//! straight into typed fields, allocating only what the decoded frame owns; it gives up on
//! anything unusual. The precise one reads a frame into borrowed raw fields, then checks each
//! field it needs, so every malformed input gets an error that names the field and what was
//! wrong with it. Both answer the same for every input (the fast path answers only when it is
//! sure to agree). Unknown fields are ignored, as the schema allows.
//!
//! Encoding writes fields in the order the official SDKs use (`type` first). For the hub's
//! fan-out, [`MessageFrame`] serializes a message once and stamps a per-receiver `sequenceId`
//! in front of it without touching the payload again.

use base64::Engine as _;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::error::shorten;
use super::{AckError, AckErrorName, AckId, Inbound, Outbound, Payload, ProtocolError, Secret};

/// Most characters of a peer's value (a `type`, a `dataType`, a number) an error repeats.
pub(super) const ECHO_MAX: usize = 64;

/// Every field either direction may carry, kept raw so each can be checked with a precise error.
#[derive(Deserialize, Default)]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    group: Option<&'a RawValue>,
    #[serde(rename = "ackId", borrow)]
    ack_id: Option<&'a RawValue>,
    #[serde(rename = "noEcho", borrow)]
    no_echo: Option<&'a RawValue>,
    #[serde(rename = "dataType", borrow)]
    data_type: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(rename = "sequenceId", borrow)]
    sequence_id: Option<&'a RawValue>,
    #[serde(borrow)]
    success: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    from: Option<&'a RawValue>,
    #[serde(rename = "fromUserId", borrow)]
    from_user_id: Option<&'a RawValue>,
    #[serde(rename = "connectionId", borrow)]
    connection_id: Option<&'a RawValue>,
    #[serde(rename = "userId", borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(rename = "reconnectionToken", borrow)]
    reconnection_token: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "invocationId", borrow)]
    invocation_id: Option<&'a RawValue>,
    #[serde(borrow)]
    target: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawAckError<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
}

/// The JSON kind of a raw value, for error messages.
fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn parse_frame(text: &str) -> Result<RawFrame<'_>, ProtocolError> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        // Distinguish "valid JSON, wrong shape" from "not JSON at all".
        return match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Err(ProtocolError::NotAnObject),
            Err(e) => Err(ProtocolError::NotJson {
                reason: e.to_string(),
            }),
        };
    }
    serde_json::from_str::<RawFrame<'_>>(text).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix("duplicate field `") {
            Some(rest) => ProtocolError::DuplicateField {
                field: rest.split('`').next().unwrap_or_default().to_owned(),
            },
            None => ProtocolError::NotJson { reason: msg },
        }
    })
}

fn string_field(
    raw: Option<&RawValue>,
    frame: &'static str,
    field: &'static str,
) -> Result<String, ProtocolError> {
    match raw {
        None => Err(ProtocolError::MissingField { frame, field }),
        Some(r) => as_string(r, field),
    }
}

fn as_string(raw: &RawValue, field: &'static str) -> Result<String, ProtocolError> {
    serde_json::from_str::<String>(raw.get()).map_err(|_| ProtocolError::WrongType {
        field,
        expected: "a string",
        found: kind_of(raw),
    })
}

/// An optional string where JSON `null` also means absent (userId of anonymous connections).
fn optional_string(
    raw: Option<&RawValue>,
    field: &'static str,
) -> Result<Option<String>, ProtocolError> {
    match raw {
        None => Ok(None),
        Some(r) if r.get() == "null" => Ok(None),
        Some(r) => as_string(r, field).map(Some),
    }
}

fn id_field(raw: &RawValue, field: &'static str) -> Result<u64, ProtocolError> {
    let text = raw.get();
    if let Ok(v) = text.parse::<u64>() {
        return Ok(v);
    }
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(ProtocolError::WrongType {
            field,
            expected: "an unsigned integer",
            found: kind_of(raw),
        });
    }
    match text.parse::<i64>() {
        Ok(v) if v < 0 => Err(ProtocolError::NegativeId { field, value: v }),
        _ => Err(ProtocolError::IdNotAnInteger {
            field,
            value: shorten(text, ECHO_MAX),
        }),
    }
}

fn optional_id(raw: Option<&RawValue>, field: &'static str) -> Result<Option<u64>, ProtocolError> {
    match raw {
        None => Ok(None),
        Some(r) if r.get() == "null" => Ok(None),
        Some(r) => id_field(r, field).map(Some),
    }
}

fn sequence_id(raw: Option<&RawValue>) -> Result<Option<u64>, ProtocolError> {
    match optional_id(raw, "sequenceId")? {
        Some(0) => Err(ProtocolError::ZeroSequenceId),
        other => Ok(other),
    }
}

fn bool_field(raw: Option<&RawValue>, field: &'static str) -> Result<Option<bool>, ProtocolError> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ProtocolError::WrongType {
            field,
            expected: "a boolean",
            found: raw.map(kind_of).unwrap_or("null"),
        }),
    }
}

fn payload(
    data_type: Option<&RawValue>,
    data: Option<&RawValue>,
    frame: &'static str,
) -> Result<Payload, ProtocolError> {
    let kind = match data_type {
        // A request without dataType is JSON (protocol.md 2.1).
        None => "json".to_owned(),
        Some(r) => as_string(r, "dataType")?,
    };
    let data = data.ok_or(ProtocolError::MissingField {
        frame,
        field: "data",
    })?;
    match kind.as_str() {
        "text" => Ok(Payload::Text(serde_json::from_str(data.get()).map_err(
            |_| ProtocolError::WrongType {
                field: "data",
                expected: "a string (dataType text)",
                found: kind_of(data),
            },
        )?)),
        "json" => serde_json::from_str(data.get())
            .map(Payload::Json)
            .map_err(|e| ProtocolError::NotJson {
                reason: e.to_string(),
            }),
        "binary" => base64_data(data, "binary").map(Payload::Binary),
        "protobuf" => base64_data(data, "protobuf").map(Payload::Protobuf),
        _ => Err(ProtocolError::UnknownDataType(shorten(&kind, ECHO_MAX))),
    }
}

fn base64_data(raw: &RawValue, data_type: &'static str) -> Result<Bytes, ProtocolError> {
    let text: std::borrow::Cow<'_, str> =
        serde_json::from_str(raw.get()).map_err(|_| ProtocolError::WrongType {
            field: "data",
            expected: "a base64 string",
            found: kind_of(raw),
        })?;
    BASE64
        .decode(text.as_bytes())
        .map(Bytes::from)
        .map_err(|e| ProtocolError::BadBase64 {
            data_type,
            reason: e.to_string(),
        })
}

fn type_name<'a>(raw: &RawFrame<'a>) -> Result<std::borrow::Cow<'a, str>, ProtocolError> {
    let kind = raw.kind.ok_or(ProtocolError::MissingType)?;
    serde_json::from_str(kind.get()).map_err(|_| ProtocolError::WrongType {
        field: "type",
        expected: "a string",
        found: kind_of(kind),
    })
}

pub(super) fn check_name(value: String, field: &'static str) -> Result<String, ProtocolError> {
    if value.is_empty() {
        Err(ProtocolError::InvalidName {
            field,
            reason: "it is empty",
        })
    } else {
        Ok(value)
    }
}

/// Decodes a frame a client sent (used by the hub). A `type` that is not a client request
/// is an error, since the service closes clients that send such frames.
pub fn decode_outbound(text: &str) -> Result<Outbound, ProtocolError> {
    fast::outbound(text).map_or_else(|| precise_outbound(text), Ok)
}

/// [`decode_outbound`] without the fast path: every field checked on its own, for the
/// precise error (and as the reference the fast path must agree with).
fn precise_outbound(text: &str) -> Result<Outbound, ProtocolError> {
    let raw = parse_frame(text)?;
    let kind = type_name(&raw)?;
    let ack_id = || optional_id(raw.ack_id, "ackId");
    Ok(match kind.as_ref() {
        "joinGroup" => Outbound::JoinGroup {
            group: check_name(string_field(raw.group, "joinGroup", "group")?, "group")?,
            ack_id: ack_id()?,
        },
        "leaveGroup" => Outbound::LeaveGroup {
            group: check_name(string_field(raw.group, "leaveGroup", "group")?, "group")?,
            ack_id: ack_id()?,
        },
        "sendToGroup" => Outbound::SendToGroup {
            group: check_name(string_field(raw.group, "sendToGroup", "group")?, "group")?,
            ack_id: ack_id()?,
            no_echo: bool_field(raw.no_echo, "noEcho")?.unwrap_or(false),
            data: payload(raw.data_type, raw.data, "sendToGroup")?,
        },
        "event" => Outbound::Event {
            event: check_name(string_field(raw.event, "event", "event")?, "event")?,
            ack_id: ack_id()?,
            data: payload(raw.data_type, raw.data, "event")?,
        },
        "sequenceAck" => Outbound::SequenceAck {
            sequence_id: match raw.sequence_id {
                None => {
                    return Err(ProtocolError::MissingField {
                        frame: "sequenceAck",
                        field: "sequenceId",
                    });
                }
                Some(r) => id_field(r, "sequenceId")?,
            },
        },
        "ping" => Outbound::Ping,
        "invoke" => {
            // Only `event` targets exist (protocol.md 8.3); an absent target means it too.
            if let Some(target) = raw.target {
                let target = as_string(target, "target")?;
                if target != "event" {
                    return Err(ProtocolError::UnknownInvokeTarget(shorten(
                        &target, ECHO_MAX,
                    )));
                }
            }
            Outbound::Invoke {
                invocation_id: invocation_id(raw.invocation_id, "invoke")?,
                event: check_name(string_field(raw.event, "invoke", "event")?, "event")?,
                data: payload(raw.data_type, raw.data, "invoke")?,
            }
        }
        "cancelInvocation" => Outbound::CancelInvocation {
            invocation_id: invocation_id(raw.invocation_id, "cancelInvocation")?,
        },
        other => return Err(ProtocolError::UnknownRequestType(shorten(other, ECHO_MAX))),
    })
}

/// Decodes a frame the service sent (used by clients). Unknown `type`, system `event` and
/// message `from` values give [`Inbound::Unknown`], so a newer service cannot break a client.
pub fn decode_inbound(text: &str) -> Result<Inbound, ProtocolError> {
    fast::inbound(text).map_or_else(|| precise_inbound(text), Ok)
}

/// [`decode_inbound`] without the fast path (see [`precise_outbound`]).
fn precise_inbound(text: &str) -> Result<Inbound, ProtocolError> {
    let raw = parse_frame(text)?;
    let kind = type_name(&raw)?;
    Ok(match kind.as_ref() {
        "ack" => {
            let ack_id = match raw.ack_id {
                None => {
                    return Err(ProtocolError::MissingField {
                        frame: "ack",
                        field: "ackId",
                    });
                }
                Some(r) => id_field(r, "ackId")?,
            };
            let (success, error) = outcome(&raw, "ack")?;
            Inbound::Ack {
                ack_id,
                success,
                error,
            }
        }
        "message" => {
            let from = string_field(raw.from, "message", "from")?;
            match from.as_str() {
                "group" => Inbound::GroupMessage {
                    sequence_id: sequence_id(raw.sequence_id)?,
                    group: string_field(raw.group, "message", "group")?,
                    from_user_id: optional_string(raw.from_user_id, "fromUserId")?,
                    data: payload(raw.data_type, raw.data, "message")?,
                },
                "server" => Inbound::ServerMessage {
                    sequence_id: sequence_id(raw.sequence_id)?,
                    data: payload(raw.data_type, raw.data, "message")?,
                },
                other => Inbound::Unknown {
                    kind: format!("message/{other}"),
                },
            }
        }
        "system" => {
            let event = string_field(raw.event, "system", "event")?;
            match event.as_str() {
                "connected" => Inbound::Connected {
                    connection_id: string_field(
                        raw.connection_id,
                        "system/connected",
                        "connectionId",
                    )?,
                    user_id: optional_string(raw.user_id, "userId")?,
                    reconnection_token: optional_string(
                        raw.reconnection_token,
                        "reconnectionToken",
                    )?
                    .map(Secret::from),
                },
                "disconnected" => Inbound::Disconnected {
                    message: optional_string(raw.message, "message")?,
                },
                other => Inbound::Unknown {
                    kind: format!("system/{other}"),
                },
            }
        }
        "pong" => Inbound::Pong,
        "invokeResponse" => {
            let (success, error) = outcome(&raw, "invokeResponse")?;
            let data = match raw.data {
                None => None,
                Some(r) if r.get() == "null" && raw.data_type.is_none() => None,
                Some(_) => Some(payload(raw.data_type, raw.data, "invokeResponse")?),
            };
            Inbound::InvokeResponse {
                invocation_id: invocation_id(raw.invocation_id, "invokeResponse")?,
                success,
                data,
                error,
            }
        }
        other => Inbound::Unknown {
            kind: other.to_owned(),
        },
    })
}

/// The `success` and `error` of an `ack` or `invokeResponse`.
fn outcome(
    raw: &RawFrame<'_>,
    frame: &'static str,
) -> Result<(bool, Option<AckError>), ProtocolError> {
    let success = bool_field(raw.success, "success")?.ok_or(ProtocolError::MissingField {
        frame,
        field: "success",
    })?;
    let error = match raw.error {
        None => None,
        Some(r) if r.get() == "null" => None,
        Some(r) => Some(ack_error(r)?),
    };
    Ok((success, error))
}

/// The `invocationId` of an invoke frame: a non-empty string.
fn invocation_id(raw: Option<&RawValue>, frame: &'static str) -> Result<String, ProtocolError> {
    check_name(string_field(raw, frame, "invocationId")?, "invocationId")
}

fn ack_error(raw: &RawValue) -> Result<AckError, ProtocolError> {
    let err: RawAckError<'_> =
        serde_json::from_str(raw.get()).map_err(|_| ProtocolError::WrongType {
            field: "error",
            expected: "an object with name and message",
            found: kind_of(raw),
        })?;
    Ok(AckError {
        name: AckErrorName::from_wire(&string_field(err.name, "ack", "error.name")?),
        message: optional_string(err.message, "error.message")?.unwrap_or_default(),
    })
}

/// Decodes a client frame that arrived as bytes (binary frames holding UTF-8 JSON are allowed).
pub fn decode_outbound_bytes(bytes: &[u8]) -> Result<Outbound, ProtocolError> {
    decode_outbound(utf8(bytes)?)
}

/// Decodes a service frame that arrived as bytes.
pub fn decode_inbound_bytes(bytes: &[u8]) -> Result<Inbound, ProtocolError> {
    decode_inbound(utf8(bytes)?)
}

fn utf8(bytes: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(bytes).map_err(|e| ProtocolError::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// Serializes a payload's `data` without an intermediate base64 string.
struct Data<'a>(&'a Payload);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Payload::Text(t) => s.serialize_str(t),
            Payload::Json(v) => v.serialize(s),
            Payload::Binary(b) | Payload::Protobuf(b) => {
                s.collect_str(&Base64Display::new(b, &BASE64))
            }
        }
    }
}

struct OutboundRef<'a>(&'a Outbound);

fn entry_ack<M: SerializeMap>(map: &mut M, ack_id: Option<AckId>) -> Result<(), M::Error> {
    match ack_id {
        Some(id) => map.serialize_entry("ackId", &id),
        None => Ok(()),
    }
}

fn entry_payload<M: SerializeMap>(map: &mut M, data: &Payload) -> Result<(), M::Error> {
    map.serialize_entry("dataType", data.data_type().name())?;
    map.serialize_entry("data", &Data(data))
}

impl Serialize for OutboundRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", self.0.type_name())?;
        match self.0 {
            Outbound::JoinGroup { group, ack_id } | Outbound::LeaveGroup { group, ack_id } => {
                map.serialize_entry("group", group)?;
                entry_ack(&mut map, *ack_id)?;
            }
            Outbound::SendToGroup {
                group,
                ack_id,
                no_echo,
                data,
            } => {
                map.serialize_entry("group", group)?;
                entry_ack(&mut map, *ack_id)?;
                map.serialize_entry("noEcho", no_echo)?;
                entry_payload(&mut map, data)?;
            }
            Outbound::Event {
                event,
                ack_id,
                data,
            } => {
                map.serialize_entry("event", event)?;
                entry_ack(&mut map, *ack_id)?;
                entry_payload(&mut map, data)?;
            }
            Outbound::SequenceAck { sequence_id } => {
                map.serialize_entry("sequenceId", sequence_id)?;
            }
            Outbound::Ping => {}
            Outbound::Invoke {
                invocation_id,
                event,
                data,
            } => {
                map.serialize_entry("invocationId", invocation_id)?;
                map.serialize_entry("target", "event")?;
                map.serialize_entry("event", event)?;
                entry_payload(&mut map, data)?;
            }
            Outbound::CancelInvocation { invocation_id } => {
                map.serialize_entry("invocationId", invocation_id)?;
            }
        }
        map.end()
    }
}

struct ErrorRef<'a>(&'a AckError);

impl Serialize for ErrorRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("name", self.0.name.as_str())?;
        map.serialize_entry("message", &self.0.message)?;
        map.end()
    }
}

fn entry_error<M: SerializeMap>(map: &mut M, error: Option<&AckError>) -> Result<(), M::Error> {
    match error {
        // `name` first, as the service writes it.
        Some(e) => map.serialize_entry("error", &ErrorRef(e)),
        None => Ok(()),
    }
}

struct InboundRef<'a>(&'a Inbound);

impl Serialize for InboundRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self.0 {
            Inbound::Ack {
                ack_id,
                success,
                error,
            } => {
                map.serialize_entry("type", "ack")?;
                map.serialize_entry("ackId", ack_id)?;
                map.serialize_entry("success", success)?;
                entry_error(&mut map, error.as_ref())?;
            }
            Inbound::InvokeResponse {
                invocation_id,
                success,
                data,
                error,
            } => {
                map.serialize_entry("type", "invokeResponse")?;
                map.serialize_entry("invocationId", invocation_id)?;
                map.serialize_entry("success", success)?;
                if let Some(data) = data {
                    entry_payload(&mut map, data)?;
                }
                entry_error(&mut map, error.as_ref())?;
            }
            Inbound::GroupMessage {
                sequence_id,
                group,
                from_user_id,
                data,
            } => {
                if let Some(seq) = sequence_id {
                    map.serialize_entry("sequenceId", seq)?;
                }
                map.serialize_entry("type", "message")?;
                map.serialize_entry("from", "group")?;
                map.serialize_entry("group", group)?;
                if let Some(user) = from_user_id {
                    map.serialize_entry("fromUserId", user)?;
                }
                entry_payload(&mut map, data)?;
            }
            Inbound::ServerMessage { sequence_id, data } => {
                if let Some(seq) = sequence_id {
                    map.serialize_entry("sequenceId", seq)?;
                }
                map.serialize_entry("type", "message")?;
                map.serialize_entry("from", "server")?;
                entry_payload(&mut map, data)?;
            }
            Inbound::Connected {
                connection_id,
                user_id,
                reconnection_token,
            } => {
                map.serialize_entry("type", "system")?;
                map.serialize_entry("event", "connected")?;
                map.serialize_entry("userId", user_id)?;
                map.serialize_entry("connectionId", connection_id)?;
                if let Some(token) = reconnection_token {
                    map.serialize_entry("reconnectionToken", token.expose())?;
                }
            }
            Inbound::Disconnected { message } => {
                map.serialize_entry("type", "system")?;
                map.serialize_entry("event", "disconnected")?;
                if let Some(m) = message {
                    map.serialize_entry("message", m)?;
                }
            }
            Inbound::Pong => map.serialize_entry("type", "pong")?,
            Inbound::Unknown { kind } => map.serialize_entry("type", kind)?,
        }
        map.end()
    }
}

fn to_string<T: Serialize>(value: &T) -> String {
    // Serializing our own types into a Vec cannot fail: every map key is a string and
    // serde_json::Value holds no non-string keys.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

/// Encodes a client frame.
pub fn encode_outbound(frame: &Outbound) -> String {
    to_string(&OutboundRef(frame))
}

/// Encodes a service frame.
pub fn encode_inbound(frame: &Inbound) -> String {
    to_string(&InboundRef(frame))
}

/// Bytes a sequence id adds to a JSON frame at most: `{"sequenceId":` (14), 20 digits and a
/// comma, less the opening brace it replaces.
pub const STAMP_EXTRA: usize = 34;

/// A data message (group or server) serialized once, to be sent to many receivers with a
/// different `sequenceId` each: [`MessageFrame::with_sequence_id`] writes
/// `{"sequenceId":N,` and then the rest of the frame, copying the payload bytes only once.
#[derive(Clone, Debug)]
pub struct MessageFrame {
    /// The frame without a sequence id, starting with `{`.
    plain: Bytes,
}

impl MessageFrame {
    /// Serializes a group message.
    pub fn group(group: &str, from_user_id: Option<&str>, data: &Payload) -> MessageFrame {
        MessageFrame::from_inbound(&Inbound::GroupMessage {
            sequence_id: None,
            group: group.to_owned(),
            from_user_id: from_user_id.map(str::to_owned),
            data: data.clone(),
        })
    }

    /// Serializes a server message.
    pub fn server(data: &Payload) -> MessageFrame {
        MessageFrame::from_inbound(&Inbound::ServerMessage {
            sequence_id: None,
            data: data.clone(),
        })
    }

    fn from_inbound(frame: &Inbound) -> MessageFrame {
        MessageFrame {
            plain: Bytes::from(encode_inbound(frame)),
        }
    }

    /// The frame for the non-reliable subprotocol (no sequence id). Cheap: shares the bytes.
    pub fn plain(&self) -> Bytes {
        self.plain.clone()
    }

    /// The frame stamped with a sequence id, for the reliable subprotocol.
    pub fn with_sequence_id(&self, sequence_id: u64) -> Bytes {
        let mut out = BytesMut::with_capacity(self.plain.len() + STAMP_EXTRA);
        self.stamp_into(sequence_id, &mut out)
    }

    /// The stamped frame written at the end of `buf` and split off it, so a caller can cut
    /// many frames from one allocation (the hub's per-thread chunk). `buf` needs room for
    /// [`MessageFrame::len`] plus [`STAMP_EXTRA`] bytes to avoid growing.
    pub fn stamp_into(&self, sequence_id: u64, buf: &mut BytesMut) -> Bytes {
        buf.extend_from_slice(b"{\"sequenceId\":");
        // Writing a number into a BytesMut cannot fail.
        let _ = write!(buf, "{sequence_id}");
        buf.put_u8(b',');
        buf.extend_from_slice(self.plain.get(1..).unwrap_or_default());
        buf.split().freeze()
    }

    /// Length of the frame without a sequence id.
    pub fn len(&self) -> usize {
        self.plain.len()
    }

    /// Whether the frame is empty (never, for a frame built by this type).
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }
}

/// The two decoders of each direction, apart, for the fuzz targets' differential checks
/// (cargo feature `fuzzing`); not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use super::{Inbound, Outbound, ProtocolError};

    /// The one-pass decoder of service frames: `None` where it leaves the frame to the
    /// precise one.
    pub fn fast_inbound(text: &str) -> Option<Inbound> {
        super::fast::inbound(text)
    }

    /// The precise decoder of service frames alone.
    pub fn precise_inbound(text: &str) -> Result<Inbound, ProtocolError> {
        super::precise_inbound(text)
    }

    /// The one-pass decoder of client frames: `None` where it leaves the frame to the
    /// precise one.
    pub fn fast_outbound(text: &str) -> Option<Outbound> {
        super::fast::outbound(text)
    }

    /// The precise decoder of client frames alone.
    pub fn precise_outbound(text: &str) -> Result<Outbound, ProtocolError> {
        super::precise_outbound(text)
    }
}

mod fast;
#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod tests;
