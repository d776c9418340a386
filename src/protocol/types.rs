//! Wire types shared by every subprotocol, named from the client's point of view:
//! [`Outbound`] frames go from a client to the service, [`Inbound`] frames come back.
//! The hub uses the same types the other way round (it decodes `Outbound`, encodes `Inbound`).

use bytes::Bytes;
use std::fmt;

use super::secret::Secret;

/// An ack id: a non-negative 64-bit integer, unique per connection (protocol.md 2.1).
pub type AckId = u64;
/// A sequence id of the reliable subprotocols: non-zero, increasing per connection id.
pub type SequenceId = u64;

/// The predefined subprotocols (protocol.md 1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Subprotocol {
    /// `json.webpubsub.azure.v1`: no sequence ids, no recovery.
    Json,
    /// `json.reliable.webpubsub.azure.v1`: sequence ids, sequence acks and recovery. The default,
    /// as in every official client.
    #[default]
    JsonReliable,
    /// `protobuf.webpubsub.azure.v1`: binary frames, no sequence ids, no recovery.
    Protobuf,
    /// `protobuf.reliable.webpubsub.azure.v1`: binary frames, sequence ids, sequence acks and
    /// recovery.
    ProtobufReliable,
}

impl Subprotocol {
    /// Every predefined subprotocol, in the order a hub prefers them.
    pub const ALL: [Subprotocol; 4] = [
        Subprotocol::JsonReliable,
        Subprotocol::Json,
        Subprotocol::ProtobufReliable,
        Subprotocol::Protobuf,
    ];

    /// The name sent in `Sec-WebSocket-Protocol`.
    pub const fn name(self) -> &'static str {
        match self {
            Subprotocol::Json => "json.webpubsub.azure.v1",
            Subprotocol::JsonReliable => "json.reliable.webpubsub.azure.v1",
            Subprotocol::Protobuf => "protobuf.webpubsub.azure.v1",
            Subprotocol::ProtobufReliable => "protobuf.reliable.webpubsub.azure.v1",
        }
    }

    /// The subprotocol with this exact name, if it is a predefined one.
    pub fn from_name(name: &str) -> Option<Subprotocol> {
        Subprotocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the subprotocol carries sequence ids and allows recovery.
    pub const fn is_reliable(self) -> bool {
        matches!(
            self,
            Subprotocol::JsonReliable | Subprotocol::ProtobufReliable
        )
    }

    /// Whether frames are JSON text ([`super::Codec::Json`]).
    pub const fn is_json(self) -> bool {
        matches!(self, Subprotocol::Json | Subprotocol::JsonReliable)
    }
}

impl fmt::Display for Subprotocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `dataType` of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `text`: a string.
    Text,
    /// `json`: any JSON value.
    Json,
    /// `binary`: bytes, base64 on the JSON wire.
    Binary,
    /// `protobuf`: bytes of a `google.protobuf.Any`, base64 on the JSON wire.
    Protobuf,
}

impl DataType {
    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            DataType::Text => "text",
            DataType::Json => "json",
            DataType::Binary => "binary",
            DataType::Protobuf => "protobuf",
        }
    }

    /// The data type with this wire name.
    pub fn from_name(name: &str) -> Option<DataType> {
        match name {
            "text" => Some(DataType::Text),
            "json" => Some(DataType::Json),
            "binary" => Some(DataType::Binary),
            "protobuf" => Some(DataType::Protobuf),
            _ => None,
        }
    }
}

/// A message payload with its data type.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// `dataType: text`.
    Text(String),
    /// `dataType: json`: any JSON value, kept as parsed.
    Json(serde_json::Value),
    /// `dataType: binary`: raw bytes (base64 only on the wire).
    Binary(Bytes),
    /// `dataType: protobuf`: the bytes of a `google.protobuf.Any`, kept opaque.
    Protobuf(Bytes),
}

impl Payload {
    /// The payload's data type.
    pub fn data_type(&self) -> DataType {
        match self {
            Payload::Text(_) => DataType::Text,
            Payload::Json(_) => DataType::Json,
            Payload::Binary(_) => DataType::Binary,
            Payload::Protobuf(_) => DataType::Protobuf,
        }
    }

    /// The text of a `text` payload.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Payload::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a `json` payload.
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Payload::Json(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a `binary` payload (a `protobuf` payload's bytes are not binary data:
    /// match [`Payload::Protobuf`] for them).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Payload::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// Size of the payload's content in bytes (text and binary length; JSON serialized length).
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(s) => s.len(),
            Payload::Json(v) => serde_json::to_string(v).map(|s| s.len()).unwrap_or(0),
            Payload::Binary(b) | Payload::Protobuf(b) => b.len(),
        }
    }

    /// Whether [`Payload::len`] is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::Text(s.to_owned())
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::Text(s)
    }
}

impl From<serde_json::Value> for Payload {
    fn from(v: serde_json::Value) -> Self {
        Payload::Json(v)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(b: Vec<u8>) -> Self {
        Payload::Binary(Bytes::from(b))
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload::Binary(b)
    }
}

/// The `error.name` of a failed ack: an open set (protocol.md 2.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AckErrorName {
    /// The connection lacks the role for the operation.
    Forbidden,
    /// A transient service failure; worth a retry.
    InternalServerError,
    /// The ack id was already processed on this connection; the operation took effect once.
    Duplicate,
    /// Any other name the service sends (`InvocationFailed`, `NotFound`, `Timeout`, ...).
    Other(String),
}

impl AckErrorName {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            AckErrorName::Forbidden => "Forbidden",
            AckErrorName::InternalServerError => "InternalServerError",
            AckErrorName::Duplicate => "Duplicate",
            AckErrorName::Other(s) => s,
        }
    }

    /// The name for this wire string.
    pub fn from_wire(s: &str) -> AckErrorName {
        match s {
            "Forbidden" => AckErrorName::Forbidden,
            "InternalServerError" => AckErrorName::InternalServerError,
            "Duplicate" => AckErrorName::Duplicate,
            other => AckErrorName::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for AckErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `error` object of a failed ack, and of a failed `invokeResponse` (the same
/// `{"name","message"}` shape, protocol.md 8.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckError {
    /// The error name.
    pub name: AckErrorName,
    /// The service's human-readable message (may be empty).
    pub message: String,
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}: {}", self.name, self.message)
        }
    }
}

/// A frame a client sends to the service (client -> service, protocol.md 2.2).
#[derive(Clone, Debug, PartialEq)]
pub enum Outbound {
    /// `joinGroup`.
    JoinGroup {
        /// Group name.
        group: String,
        /// Ack id; `None` for fire-and-forget.
        ack_id: Option<AckId>,
    },
    /// `leaveGroup`.
    LeaveGroup {
        /// Group name.
        group: String,
        /// Ack id; `None` for fire-and-forget.
        ack_id: Option<AckId>,
    },
    /// `sendToGroup`.
    SendToGroup {
        /// Group name.
        group: String,
        /// Ack id; `None` for fire-and-forget.
        ack_id: Option<AckId>,
        /// When true the sending connection does not receive its own message.
        no_echo: bool,
        /// The payload.
        data: Payload,
    },
    /// `event`: a user event for the app server.
    Event {
        /// Event name.
        event: String,
        /// Ack id; `None` for fire-and-forget.
        ack_id: Option<AckId>,
        /// The payload.
        data: Payload,
    },
    /// `sequenceAck` (reliable subprotocols): everything up to `sequence_id` arrived.
    SequenceAck {
        /// The largest sequence id received.
        sequence_id: SequenceId,
    },
    /// `ping`: application-level keepalive, answered by `pong`.
    Ping,
    /// `invoke` (protocol.md 8.3): a user event whose handler's reply comes back as an
    /// [`Inbound::InvokeResponse`] with the same invocation id. JSON subprotocols only.
    Invoke {
        /// The client's id for the call, unique among its calls in flight.
        invocation_id: String,
        /// The user event's name (the wire's `target` is always `event`).
        event: String,
        /// The payload.
        data: Payload,
    },
    /// `cancelInvocation`: the client stopped waiting; the service sends nothing more for it.
    CancelInvocation {
        /// The invocation to cancel.
        invocation_id: String,
    },
}

impl Outbound {
    /// The ack id this frame carries, if any.
    pub fn ack_id(&self) -> Option<AckId> {
        match self {
            Outbound::JoinGroup { ack_id, .. }
            | Outbound::LeaveGroup { ack_id, .. }
            | Outbound::SendToGroup { ack_id, .. }
            | Outbound::Event { ack_id, .. } => *ack_id,
            Outbound::SequenceAck { .. }
            | Outbound::Ping
            | Outbound::Invoke { .. }
            | Outbound::CancelInvocation { .. } => None,
        }
    }

    /// The wire `type` of this frame.
    pub fn type_name(&self) -> &'static str {
        match self {
            Outbound::JoinGroup { .. } => "joinGroup",
            Outbound::LeaveGroup { .. } => "leaveGroup",
            Outbound::SendToGroup { .. } => "sendToGroup",
            Outbound::Event { .. } => "event",
            Outbound::SequenceAck { .. } => "sequenceAck",
            Outbound::Ping => "ping",
            Outbound::Invoke { .. } => "invoke",
            Outbound::CancelInvocation { .. } => "cancelInvocation",
        }
    }
}

/// A frame the service sends to a client (service -> client, protocol.md 2.3).
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// `ack`: the result of a request that carried an ack id.
    Ack {
        /// The request's ack id.
        ack_id: AckId,
        /// Whether the request succeeded.
        success: bool,
        /// Why it failed (present when `success` is false).
        error: Option<AckError>,
    },
    /// `message` from a group.
    GroupMessage {
        /// Sequence id (reliable subprotocols only).
        sequence_id: Option<SequenceId>,
        /// The group it was published to.
        group: String,
        /// The publisher's user id, when it has one.
        from_user_id: Option<String>,
        /// The payload.
        data: Payload,
    },
    /// `message` from the server (REST send APIs or an event handler's response).
    ServerMessage {
        /// Sequence id (reliable subprotocols only).
        sequence_id: Option<SequenceId>,
        /// The payload.
        data: Payload,
    },
    /// `system` / `connected`: always the first frame of a connection.
    Connected {
        /// The connection id (kept across recoveries).
        connection_id: String,
        /// The user id, absent for anonymous connections.
        user_id: Option<String>,
        /// Reliable subprotocols only: the secret that allows recovery.
        reconnection_token: Option<Secret>,
    },
    /// `system` / `disconnected`: the service is closing the connection.
    Disconnected {
        /// The reason.
        message: Option<String>,
    },
    /// `pong`: the answer to a `ping`.
    Pong,
    /// `invokeResponse` (protocol.md 8.3): the answer to an [`Outbound::Invoke`].
    InvokeResponse {
        /// The invocation's id, as the client sent it.
        invocation_id: String,
        /// Whether the event handler answered.
        success: bool,
        /// The handler's reply body, when it had one.
        data: Option<Payload>,
        /// Why it failed (present when `success` is false).
        error: Option<AckError>,
    },
    /// A frame with a `type` (or a `system` event, or a `from`) this version does not know. Clients ignore
    /// it, as the official JS and Python clients do, so a newer service cannot break them.
    Unknown {
        /// The unknown `type` (with `/event` or `/from` appended for system and message frames).
        kind: String,
    },
}

impl Inbound {
    /// The sequence id of a data message, if any.
    pub fn sequence_id(&self) -> Option<SequenceId> {
        match self {
            Inbound::GroupMessage { sequence_id, .. }
            | Inbound::ServerMessage { sequence_id, .. } => *sequence_id,
            _ => None,
        }
    }
}
