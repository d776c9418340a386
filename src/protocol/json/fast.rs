//! The one-pass decoder of the JSON codec: the common frames straight into their typed
//! fields, no second parse of any field and no allocation beyond what the decoded frame owns.
//!
//! It answers only what it is sure of. Anything unusual (a field of the wrong JSON type, a
//! duplicate, an id out of range, an unknown `dataType`, bad base64, a frame it does not
//! handle) makes it answer `None`, and the precise decoder in `json.rs` decodes the frame
//! again and names what is wrong. So the fast path's rule is: whenever it answers
//! `Some(frame)`, the precise decoder answers `Ok(frame)` for the same text (the differential
//! test in `json/fast_tests.rs` and the `inbound_decode`/`request_decode` fuzz targets check it).
//!
//! Why the answers agree: [`FastFrame`] has the very field names of the precise `RawFrame`,
//! is read by the same serde_json deserializer (same duplicate detection, unknown fields
//! skipped the same way, `null` read as absent for both), and each typed field accepts a
//! subset of what the precise path's per-field check accepts, decoded by the same code
//! (serde_json's string and integer parsers, `Value`'s own `Deserialize` for JSON data). The
//! one difference is depth: JSON data nested here is one level deeper in serde_json's
//! recursion budget than the precise path's separate parse of it, so at the limit the fast
//! path gives up first, never the other way round.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{BASE64, ack_error};
use crate::protocol::{AckError, Inbound, Outbound, Payload, Secret};
use base64::Engine as _;

/// Every field of the precise path's `RawFrame` (the same names, so the same fields are
/// duplicates and the same are unknown), each typed as the common frames carry it.
#[derive(Deserialize)]
struct FastFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    event: Option<Text<'a>>,
    #[serde(borrow)]
    group: Option<Text<'a>>,
    #[serde(rename = "ackId")]
    ack_id: Option<u64>,
    #[serde(rename = "noEcho")]
    no_echo: Option<bool>,
    #[serde(rename = "dataType", borrow)]
    data_type: Option<Text<'a>>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
    #[serde(rename = "sequenceId")]
    sequence_id: Option<u64>,
    success: Option<bool>,
    /// Kept raw: failed acks are rare, and the precise path's own check reads it.
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    from: Option<Text<'a>>,
    #[serde(rename = "fromUserId", borrow)]
    from_user_id: Option<Text<'a>>,
    #[serde(rename = "connectionId", borrow)]
    connection_id: Option<Text<'a>>,
    #[serde(rename = "userId", borrow)]
    user_id: Option<Text<'a>>,
    #[serde(rename = "reconnectionToken", borrow)]
    reconnection_token: Option<Text<'a>>,
    #[serde(borrow)]
    message: Option<Text<'a>>,
    #[serde(rename = "invocationId", borrow)]
    invocation_id: Option<Text<'a>>,
    #[serde(borrow)]
    target: Option<Text<'a>>,
}

/// A JSON string, borrowed from the frame when it has no escapes. (serde borrows a
/// `Cow<str>` field only when it is not wrapped in an `Option`: `Option<Cow<str>>` always
/// allocates, hence this type.)
struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(PhantomData))
    }
}

struct TextVisitor<'a>(PhantomData<&'a str>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// A `data` value read before its `dataType` is known (it may come later in the frame): a
/// string (text, base64 or a JSON string), borrowed when it has no escapes, or any other
/// JSON value, built as the precise path's `serde_json::from_str::<Value>` builds it.
enum Data<'a> {
    Str(Text<'a>),
    Other(Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DataVisitor(PhantomData))
    }
}

struct DataVisitor<'a>(PhantomData<&'a str>);

/// Every non-string value goes to `Value`'s own `Deserialize`, so it is built exactly as a
/// direct parse builds it (numbers, `null`, nested objects).
impl<'de: 'a, 'a> Visitor<'de> for DataVisitor<'a> {
    type Value = Data<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Data<'a>, E> {
        TextVisitor(PhantomData)
            .visit_borrowed_str(v)
            .map(Data::Str)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Data<'a>, E> {
        TextVisitor(PhantomData).visit_str(v).map(Data::Str)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Data<'a>, E> {
        Value::deserialize(v.into_deserializer()).map(Data::Other)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Data<'a>, E> {
        Value::deserialize(v.into_deserializer()).map(Data::Other)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Data<'a>, E> {
        Value::deserialize(v.into_deserializer()).map(Data::Other)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Data<'a>, E> {
        Value::deserialize(v.into_deserializer()).map(Data::Other)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Data<'a>, E> {
        Ok(Data::Other(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Data<'a>, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Data::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Data<'a>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Data::Other)
    }
}

/// Reads the frame in one pass, or `None` when it is not a well-formed object of the
/// expected field types (the precise path then decides, and names the error).
fn read(text: &str) -> Option<FastFrame<'_>> {
    // serde's derived structs also accept a JSON array (fields by position); the precise
    // path calls anything but an object an error, so only objects are read here.
    if text
        .trim_start_matches([' ', '\n', '\r', '\t'])
        .as_bytes()
        .first()
        != Some(&b'{')
    {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The payload of `dataType` and `data`, as the precise path's `payload` reads it when it
/// succeeds; `None` for what it would refuse.
fn payload(data_type: Option<Text<'_>>, data: Option<Data<'_>>) -> Option<Payload> {
    let data = data?;
    // A frame without dataType is JSON (protocol.md 2.1).
    match (data_type.as_deref().unwrap_or("json"), data) {
        ("text", Data::Str(s)) => Some(Payload::Text(s.into_owned())),
        ("json", Data::Str(s)) => Some(Payload::Json(Value::String(s.into_owned()))),
        ("json", Data::Other(v)) => Some(Payload::Json(v)),
        ("binary", Data::Str(s)) => base64(&s).map(Payload::Binary),
        ("protobuf", Data::Str(s)) => base64(&s).map(Payload::Protobuf),
        _ => None,
    }
}

fn base64(text: &str) -> Option<Bytes> {
    BASE64.decode(text.as_bytes()).ok().map(Bytes::from)
}

/// A non-empty name (the precise path's `check_name`).
fn name(value: Option<Text<'_>>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(Text::into_owned)
}

/// `success` and `error` of an `ack` or `invokeResponse`.
fn outcome(success: Option<bool>, error: Option<&RawValue>) -> Option<(bool, Option<AckError>)> {
    let error = match error {
        None => None,
        Some(raw) => Some(ack_error(raw).ok()?),
    };
    Some((success?, error))
}

/// A frame the service sent, or `None` for the precise path to decide.
pub(super) fn inbound(text: &str) -> Option<Inbound> {
    let f = read(text)?;
    Some(match f.kind?.deref() {
        "message" => match f.from?.deref() {
            "group" => Inbound::GroupMessage {
                sequence_id: sequence_id(f.sequence_id)?,
                group: f.group?.into_owned(),
                from_user_id: f.from_user_id.map(Text::into_owned),
                data: payload(f.data_type, f.data)?,
            },
            "server" => Inbound::ServerMessage {
                sequence_id: sequence_id(f.sequence_id)?,
                data: payload(f.data_type, f.data)?,
            },
            _ => return None,
        },
        "ack" => {
            let ack_id = f.ack_id?;
            let (success, error) = outcome(f.success, f.error)?;
            Inbound::Ack {
                ack_id,
                success,
                error,
            }
        }
        "system" => match f.event?.deref() {
            "connected" => Inbound::Connected {
                connection_id: f.connection_id?.into_owned(),
                user_id: f.user_id.map(Text::into_owned),
                reconnection_token: f.reconnection_token.map(|t| Secret::from(t.into_owned())),
            },
            "disconnected" => Inbound::Disconnected {
                message: f.message.map(Text::into_owned),
            },
            _ => return None,
        },
        "pong" => Inbound::Pong,
        "invokeResponse" => {
            let (success, error) = outcome(f.success, f.error)?;
            // An absent (or null) `data` is no data, whatever the dataType.
            let data = match f.data {
                None => None,
                data => Some(payload(f.data_type, data)?),
            };
            Inbound::InvokeResponse {
                invocation_id: name(f.invocation_id)?,
                success,
                data,
                error,
            }
        }
        _ => return None,
    })
}

/// A non-zero sequence id, or none; `None` (fall back) for zero.
fn sequence_id(id: Option<u64>) -> Option<Option<u64>> {
    match id {
        Some(0) => None,
        other => Some(other),
    }
}

/// A frame a client sent, or `None` for the precise path to decide.
pub(super) fn outbound(text: &str) -> Option<Outbound> {
    let f = read(text)?;
    Some(match f.kind?.deref() {
        "sendToGroup" => Outbound::SendToGroup {
            group: name(f.group)?,
            ack_id: f.ack_id,
            no_echo: f.no_echo.unwrap_or(false),
            data: payload(f.data_type, f.data)?,
        },
        "event" => Outbound::Event {
            event: name(f.event)?,
            ack_id: f.ack_id,
            data: payload(f.data_type, f.data)?,
        },
        "joinGroup" => Outbound::JoinGroup {
            group: name(f.group)?,
            ack_id: f.ack_id,
        },
        "leaveGroup" => Outbound::LeaveGroup {
            group: name(f.group)?,
            ack_id: f.ack_id,
        },
        "sequenceAck" => Outbound::SequenceAck {
            sequence_id: f.sequence_id?,
        },
        "ping" => Outbound::Ping,
        "invoke" => {
            if f.target.is_some_and(|t| &*t != "event") {
                return None;
            }
            Outbound::Invoke {
                invocation_id: name(f.invocation_id)?,
                event: name(f.event)?,
                data: payload(f.data_type, f.data)?,
            }
        }
        "cancelInvocation" => Outbound::CancelInvocation {
            invocation_id: name(f.invocation_id)?,
        },
        _ => return None,
    })
}
