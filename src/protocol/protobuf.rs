//! The codec of `protobuf.webpubsub.azure.v1` and `protobuf.reliable.webpubsub.azure.v1`
//! (protocol.md 4): one `UpstreamMessage` (client to service) or `DownstreamMessage` (service
//! to client) per binary WebSocket frame, on the same [`Outbound`] and [`Inbound`] types as the
//! JSON codec, so the rest of the crate does not care which subprotocol a connection speaks.
//!
//! Payloads (protocol.md 2.5): [`Payload`] is the common form of both codecs, so the
//! cross-protocol conversion is decode with one codec and encode with the other:
//! [`message_data`] and [`payload`] are the protobuf half of that table. A protobuf
//! `protobuf_data` becomes [`Payload::Protobuf`] holding the bytes of its `google.protobuf.Any`,
//! which the JSON codec writes as `dataType:"protobuf"` with base64 of those bytes; a JSON
//! `dataType:json` payload becomes `json_data` (PROTO-CS, PROTO-V1; the service docs say
//! `text_data`, see docs/protobuf.md).
//!
//! Bounds: decoding reads from the frame already in memory and never allocates more for a field
//! than the frame's remaining length (prost checks each length prefix against the bytes left
//! before copying), so the frame size limit of the transport bounds every allocation. Nesting is
//! at most four levels here and prost stops at 100.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

pub mod wire;

use super::error::{ProtobufFault, shorten};
use super::json::{ECHO_MAX, check_name};
use super::{AckError, AckErrorName, Inbound, Outbound, Payload, ProtocolError, Secret};
use wire::downstream_message::{
    self as down, AckMessage, DataMessage, PongMessage, SystemMessage, ack_message::ErrorMessage,
    system_message,
};
use wire::message_data::Data;
use wire::upstream_message::{self as up};
use wire::{Any, DownstreamMessage, MessageData, UpstreamMessage};

/// `from` of a data message published to a group.
const FROM_GROUP: &str = "group";
/// `from` of a data message sent by the server (REST or an event handler's response).
const FROM_SERVER: &str = "server";

fn invalid(message: &'static str, e: prost::DecodeError) -> ProtocolError {
    let reason = e.to_string();
    // prost's DecodeError has no public kind; its descriptions are stable strings
    // (the table test `decode_faults_are_classified` pins them, so an upgrade that changes
    // them fails there rather than silently making every fault `Malformed`).
    let fault = if reason.contains("buffer underflow") || reason.contains("length exceeded") {
        ProtobufFault::Truncated
    } else if reason.contains("invalid wire type") {
        ProtobufFault::WrongWireType
    } else if reason.contains("not UTF-8") {
        ProtobufFault::InvalidUtf8
    } else {
        ProtobufFault::Malformed
    };
    ProtocolError::InvalidProtobuf {
        message,
        fault,
        reason: shorten(&reason, 4 * ECHO_MAX),
    }
}

/// Checks that `protobuf_data` bytes are a `google.protobuf.Any` naming a message type
/// (`.../<full.type.Name>`): the service and the receivers need the type to route and parse it.
fn check_any(bytes: &Bytes) -> Result<(), ProtocolError> {
    let any = Any::decode(bytes.clone()).map_err(|e| invalid("google.protobuf.Any", e))?;
    match any.type_url.rsplit_once('/') {
        Some((_, name)) if !name.is_empty() => Ok(()),
        _ => Err(ProtocolError::UnknownAnyType(shorten(
            &any.type_url,
            ECHO_MAX,
        ))),
    }
}

/// A [`Payload`] as a protobuf `MessageData` (the protobuf-receiver column of protocol.md 2.5).
pub fn message_data(data: &Payload) -> MessageData {
    MessageData {
        data: Some(match data {
            Payload::Text(s) => Data::TextData(s.clone()),
            Payload::Json(v) => Data::JsonData(v.to_string()),
            Payload::Binary(b) => Data::BinaryData(b.clone()),
            Payload::Protobuf(b) => Data::ProtobufData(b.clone()),
        }),
    }
}

/// A protobuf `MessageData` as a [`Payload`]: `text_data` is text, `binary_data` binary,
/// `json_data` JSON (parsed), `protobuf_data` the Any's bytes (checked to be an Any with a type).
pub fn payload(data: Option<MessageData>, frame: &'static str) -> Result<Payload, ProtocolError> {
    let missing = ProtocolError::MissingField {
        frame,
        field: "data",
    };
    match data.and_then(|d| d.data).ok_or(missing)? {
        Data::TextData(s) => Ok(Payload::Text(s)),
        Data::BinaryData(b) => Ok(Payload::Binary(b)),
        Data::JsonData(s) => {
            serde_json::from_str(&s)
                .map(Payload::Json)
                .map_err(|e| ProtocolError::NotJson {
                    reason: format!("json_data: {e}"),
                })
        }
        Data::ProtobufData(b) => check_any(&b).map(|()| Payload::Protobuf(b)),
    }
}

/// Encodes a client frame as an `UpstreamMessage`. `no_echo` is always written (as the JSON
/// codec writes `noEcho`), so the service never has to guess its default.
///
/// `invoke` and `cancelInvocation` have no protobuf form (protocol.md 8.3 defines them for
/// JSON only): they encode as an empty `UpstreamMessage`, which the service refuses. Callers
/// that may hold one use [`try_encode_outbound`] (as [`super::Codec::try_encode_outbound`]
/// does) to get [`ProtocolError::NoProtobufForm`] instead.
pub fn encode_outbound(frame: &Outbound) -> Vec<u8> {
    try_encode_outbound(frame).unwrap_or_else(|_| UpstreamMessage { message: None }.encode_to_vec())
}

/// Encodes a client frame as an `UpstreamMessage`, or says it has no protobuf form
/// (`invoke`, `cancelInvocation`).
pub fn try_encode_outbound(frame: &Outbound) -> Result<Vec<u8>, ProtocolError> {
    let message = match frame {
        Outbound::JoinGroup { group, ack_id } => {
            up::Message::JoinGroupMessage(up::JoinGroupMessage {
                group: group.clone(),
                ack_id: *ack_id,
            })
        }
        Outbound::LeaveGroup { group, ack_id } => {
            up::Message::LeaveGroupMessage(up::LeaveGroupMessage {
                group: group.clone(),
                ack_id: *ack_id,
            })
        }
        Outbound::SendToGroup {
            group,
            ack_id,
            no_echo,
            data,
        } => up::Message::SendToGroupMessage(up::SendToGroupMessage {
            group: group.clone(),
            ack_id: *ack_id,
            data: Some(message_data(data)),
            no_echo: Some(*no_echo),
        }),
        Outbound::Event {
            event,
            ack_id,
            data,
        } => up::Message::EventMessage(up::EventMessage {
            event: event.clone(),
            data: Some(message_data(data)),
            ack_id: *ack_id,
        }),
        Outbound::SequenceAck { sequence_id } => {
            up::Message::SequenceAckMessage(up::SequenceAckMessage {
                sequence_id: *sequence_id,
            })
        }
        Outbound::Ping => up::Message::PingMessage(up::PingMessage {}),
        Outbound::Invoke { .. } => return Err(ProtocolError::NoProtobufForm("invoke")),
        Outbound::CancelInvocation { .. } => {
            return Err(ProtocolError::NoProtobufForm("cancelInvocation"));
        }
    };
    Ok(UpstreamMessage {
        message: Some(message),
    }
    .encode_to_vec())
}

/// Decodes a frame a client sent (used by the hub). A frame with no known request is an
/// error, since the service closes clients that send such frames.
pub fn decode_outbound(bytes: &[u8]) -> Result<Outbound, ProtocolError> {
    let frame = UpstreamMessage::decode(bytes).map_err(|e| invalid("UpstreamMessage", e))?;
    let message = frame.message.ok_or(ProtocolError::EmptyProtobuf {
        message: "UpstreamMessage",
    })?;
    Ok(match message {
        up::Message::JoinGroupMessage(m) => Outbound::JoinGroup {
            group: check_name(m.group, "group")?,
            ack_id: m.ack_id,
        },
        up::Message::LeaveGroupMessage(m) => Outbound::LeaveGroup {
            group: check_name(m.group, "group")?,
            ack_id: m.ack_id,
        },
        up::Message::SendToGroupMessage(m) => Outbound::SendToGroup {
            group: check_name(m.group, "group")?,
            ack_id: m.ack_id,
            no_echo: m.no_echo.unwrap_or(false),
            data: payload(m.data, "sendToGroup")?,
        },
        up::Message::EventMessage(m) => Outbound::Event {
            event: check_name(m.event, "event")?,
            ack_id: m.ack_id,
            data: payload(m.data, "event")?,
        },
        up::Message::SequenceAckMessage(m) => Outbound::SequenceAck {
            sequence_id: m.sequence_id,
        },
        up::Message::PingMessage(_) => Outbound::Ping,
    })
}

fn data_message(
    from: &str,
    group: Option<&str>,
    data: &Payload,
    sequence_id: Option<u64>,
) -> DownstreamMessage {
    DownstreamMessage {
        message: Some(down::Message::DataMessage(DataMessage {
            from: from.to_owned(),
            group: group.map(str::to_owned),
            data: Some(message_data(data)),
            sequence_id,
        })),
    }
}

fn downstream(frame: &Inbound) -> Result<DownstreamMessage, ProtocolError> {
    let system = |m| DownstreamMessage {
        message: Some(down::Message::SystemMessage(SystemMessage {
            message: Some(m),
        })),
    };
    Ok(match frame {
        Inbound::Ack {
            ack_id,
            success,
            error,
        } => DownstreamMessage {
            message: Some(down::Message::AckMessage(AckMessage {
                ack_id: *ack_id,
                success: *success,
                error: error.as_ref().map(|e| ErrorMessage {
                    name: e.name.as_str().to_owned(),
                    message: e.message.clone(),
                }),
            })),
        },
        // `fromUserId` has no protobuf field (protocol.md 4): a protobuf receiver never sees it.
        Inbound::GroupMessage {
            sequence_id,
            group,
            data,
            ..
        } => data_message(FROM_GROUP, Some(group), data, *sequence_id),
        Inbound::ServerMessage { sequence_id, data } => {
            data_message(FROM_SERVER, None, data, *sequence_id)
        }
        Inbound::Connected {
            connection_id,
            user_id,
            reconnection_token,
        } => system(system_message::Message::ConnectedMessage(
            system_message::ConnectedMessage {
                connection_id: connection_id.clone(),
                user_id: user_id.clone().unwrap_or_default(),
                reconnection_token: reconnection_token.as_ref().map(|t| t.expose().to_owned()),
            },
        )),
        Inbound::Disconnected { message } => system(system_message::Message::DisconnectedMessage(
            system_message::DisconnectedMessage {
                reason: message.clone().unwrap_or_default(),
            },
        )),
        Inbound::Pong => DownstreamMessage {
            message: Some(down::Message::PongMessage(PongMessage {})),
        },
        Inbound::Unknown { .. } => return Err(ProtocolError::NoProtobufForm("an unknown frame")),
        Inbound::InvokeResponse { .. } => {
            return Err(ProtocolError::NoProtobufForm("invokeResponse"));
        }
    })
}

/// Encodes a service frame as a `DownstreamMessage` (used by the hub). [`Inbound::Unknown`]
/// and `invokeResponse` have no protobuf form; a group message's `from_user_id` is not carried.
pub fn encode_inbound(frame: &Inbound) -> Result<Vec<u8>, ProtocolError> {
    downstream(frame).map(|m| m.encode_to_vec())
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Decodes a frame the service sent (used by clients). A `DownstreamMessage` or
/// `SystemMessage` with no known message, or a data message from neither `group` nor
/// `server`, gives [`Inbound::Unknown`], so a newer service cannot break a client (as in JSON).
pub fn decode_inbound(bytes: &[u8]) -> Result<Inbound, ProtocolError> {
    let frame = DownstreamMessage::decode(bytes).map_err(|e| invalid("DownstreamMessage", e))?;
    let Some(message) = frame.message else {
        return Ok(Inbound::Unknown {
            kind: "DownstreamMessage".to_owned(),
        });
    };
    Ok(match message {
        down::Message::AckMessage(m) => Inbound::Ack {
            ack_id: m.ack_id,
            success: m.success,
            error: m.error.map(|e| AckError {
                name: AckErrorName::from_wire(&e.name),
                message: e.message,
            }),
        },
        down::Message::DataMessage(m) => {
            let sequence_id = match m.sequence_id {
                Some(0) => return Err(ProtocolError::ZeroSequenceId),
                other => other,
            };
            match m.from.as_str() {
                FROM_GROUP => Inbound::GroupMessage {
                    sequence_id,
                    group: m.group.ok_or(ProtocolError::MissingField {
                        frame: "message/group",
                        field: "group",
                    })?,
                    from_user_id: None,
                    data: payload(m.data, "message/group")?,
                },
                FROM_SERVER => Inbound::ServerMessage {
                    sequence_id,
                    data: payload(m.data, "message/server")?,
                },
                other => Inbound::Unknown {
                    kind: format!("message/{}", shorten(other, ECHO_MAX)),
                },
            }
        }
        down::Message::SystemMessage(m) => match m.message {
            Some(system_message::Message::ConnectedMessage(c)) => Inbound::Connected {
                connection_id: c.connection_id,
                user_id: non_empty(c.user_id),
                reconnection_token: c.reconnection_token.and_then(non_empty).map(Secret::new),
            },
            Some(system_message::Message::DisconnectedMessage(d)) => Inbound::Disconnected {
                message: non_empty(d.reason),
            },
            None => Inbound::Unknown {
                kind: "system".to_owned(),
            },
        },
        down::Message::PongMessage(_) => Inbound::Pong,
    })
}

/// Length of `value` as a varint.
fn varint_len(value: u64) -> usize {
    prost::encoding::encoded_len_varint(value)
}

/// `DownstreamMessage.data_message` is field 2, length-delimited.
const DATA_MESSAGE_KEY: u8 = 2 << 3 | 2;
/// `DataMessage.sequence_id` is field 4, varint.
const SEQUENCE_ID_KEY: u8 = 4 << 3;

/// A data message (group or server) encoded once, to be sent to many receivers with a
/// different `sequence_id` each, as [`super::json::MessageFrame`] does for JSON:
/// [`MessageFrame::with_sequence_id`] writes the `data_message` key and its new length, copies
/// the encoded `from`, `group` and `data` fields, and appends `sequence_id` (field 4, so the
/// bytes are exactly what encoding the whole message would give).
#[derive(Clone, Debug)]
pub struct MessageFrame {
    /// The encoded `DataMessage` fields 1 to 3 (without the outer key and length).
    body: Bytes,
    /// The whole frame without a sequence id.
    plain: Bytes,
}

/// Bytes a sequence id adds to a protobuf frame at most: the sequence id's key and varint
/// (1 + 10), and a longer length varint of the data message (at most 10 where the plain frame
/// has at least 1).
pub const STAMP_EXTRA: usize = 1 + 10 + 9;

impl MessageFrame {
    /// Encodes a group message (`from_user_id` has no protobuf field).
    pub fn group(group: &str, data: &Payload) -> MessageFrame {
        MessageFrame::from_message(data_message(FROM_GROUP, Some(group), data, None))
    }

    /// Encodes a server message.
    pub fn server(data: &Payload) -> MessageFrame {
        MessageFrame::from_message(data_message(FROM_SERVER, None, data, None))
    }

    fn from_message(message: DownstreamMessage) -> MessageFrame {
        let plain = Bytes::from(message.encode_to_vec());
        let Some(down::Message::DataMessage(data)) = message.message else {
            unreachable!("built from a data message just above")
        };
        MessageFrame {
            body: Bytes::from(data.encode_to_vec()),
            plain,
        }
    }

    /// The frame for the non-reliable subprotocol (no sequence id). Cheap: shares the bytes.
    pub fn plain(&self) -> Bytes {
        self.plain.clone()
    }

    /// The frame with a sequence id, for the reliable subprotocol.
    pub fn with_sequence_id(&self, sequence_id: u64) -> Bytes {
        let mut out = BytesMut::with_capacity(self.plain.len() + STAMP_EXTRA);
        self.stamp_into(sequence_id, &mut out)
    }

    /// The stamped frame written at the end of `buf` and split off it, so a caller can cut
    /// many frames from one allocation (the hub's per-thread chunk). `buf` needs room for
    /// [`MessageFrame::len`] plus [`STAMP_EXTRA`] bytes to avoid growing.
    pub fn stamp_into(&self, sequence_id: u64, buf: &mut BytesMut) -> Bytes {
        let inner = self.body.len() + 1 + varint_len(sequence_id);
        buf.put_u8(DATA_MESSAGE_KEY);
        prost::encoding::encode_varint(inner as u64, buf);
        buf.extend_from_slice(&self.body);
        buf.put_u8(SEQUENCE_ID_KEY);
        prost::encoding::encode_varint(sequence_id, buf);
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

#[cfg(test)]
mod tests;
