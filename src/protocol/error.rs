//! What can be wrong with a frame.

use thiserror::Error;

/// A frame that could not be decoded. Each variant says what was wrong, so a peer that
/// sends bad input can be told precisely and the connection's counters can say why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The frame is not valid UTF-8 (a binary frame holding JSON must be UTF-8).
    #[error("frame is not valid UTF-8 at byte {valid_up_to}: send JSON text encoded as UTF-8")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// The frame is not JSON at all.
    #[error("frame is not JSON ({reason}): send one JSON object per WebSocket message")]
    NotJson {
        /// The parser's description, with line and column.
        reason: String,
    },
    /// The frame is JSON but not an object.
    #[error("frame is JSON but not an object: send one JSON object per WebSocket message")]
    NotAnObject,
    /// The same field appears twice.
    #[error("field `{field}` appears more than once: send each field once")]
    DuplicateField {
        /// The field name.
        field: String,
    },
    /// The `type` field is missing.
    #[error("frame has no `type` field: every frame needs one")]
    MissingType,
    /// A field the frame needs is missing.
    #[error("`{frame}` frame has no `{field}` field: it is required")]
    MissingField {
        /// The frame's `type` (or `type/event`).
        frame: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("field `{field}` is {found}, expected {expected}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
        /// What it was.
        found: &'static str,
    },
    /// An ack id or sequence id is negative.
    #[error("field `{field}` is negative ({value}): ids are unsigned 64-bit integers")]
    NegativeId {
        /// The field name.
        field: &'static str,
        /// The value sent.
        value: i64,
    },
    /// An ack id or sequence id is a number that is not an unsigned 64-bit integer.
    #[error("field `{field}` is {value}, not an unsigned 64-bit integer")]
    IdNotAnInteger {
        /// The field name.
        field: &'static str,
        /// The number as sent, cut after 64 characters.
        value: String,
    },
    /// `dataType` names no known data type (kept: its first 64 characters).
    #[error("`dataType` is `{0}`: use text, json, binary or protobuf")]
    UnknownDataType(String),
    /// `data` of a binary or protobuf payload is not valid base64.
    #[error("`data` is not valid base64 for dataType {data_type} ({reason})")]
    BadBase64 {
        /// `binary` or `protobuf`.
        data_type: &'static str,
        /// The decoder's description.
        reason: String,
    },
    /// A `sequenceId` of zero: sequence ids start at 1.
    #[error("`sequenceId` is 0: sequence ids start at 1")]
    ZeroSequenceId,
    /// A client frame whose `type` the service does not know (kept: its first 64 characters).
    #[error(
        "frame type `{0}` is not a client request: use joinGroup, leaveGroup, sendToGroup, event, invoke, cancelInvocation, sequenceAck or ping"
    )]
    UnknownRequestType(String),
    /// An `invoke` whose `target` is not `event`, the only target (protocol.md 8.3; kept: its
    /// first 64 characters).
    #[error("invoke `target` is `{0}`: the only target is `event`")]
    UnknownInvokeTarget(String),
    /// A name (group, event) that is empty or too long.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidName {
        /// The field name.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A binary frame that is not a valid protobuf message of the expected type: truncated, a
    /// field with the wrong wire type, a string that is not UTF-8, a bad varint.
    #[error(
        "frame is not a valid protobuf {message} ({fault}: {reason}): send one {message} per binary WebSocket message"
    )]
    InvalidProtobuf {
        /// `UpstreamMessage` or `DownstreamMessage` (or the nested message that failed).
        message: &'static str,
        /// What kind of fault it is.
        fault: ProtobufFault,
        /// The decoder's description, with the path of fields to the fault.
        reason: String,
    },
    /// A protobuf frame with none of the messages this subprotocol defines (an empty frame, or a
    /// `oneof` field number this version does not know).
    #[error(
        "protobuf {message} carries no known message: set one of its `message` fields (protocol.md 4)"
    )]
    EmptyProtobuf {
        /// The message whose `oneof` was empty.
        message: &'static str,
    },
    /// `protobuf_data` is a `google.protobuf.Any` whose `type_url` names no type (kept: its
    /// first 64 characters).
    #[error(
        "`protobuf_data` has type_url `{0}`, which names no message type: use `type.googleapis.com/<package>.<Message>`"
    )]
    UnknownAnyType(String),
    /// A text WebSocket message on a protobuf subprotocol, whose messages travel in binary
    /// ones (protocol.md 4).
    #[error(
        "a text frame arrived on a protobuf subprotocol: send one protobuf message per binary WebSocket message"
    )]
    TextFrameOnProtobuf,
    /// A frame that has no protobuf form ([`crate::protocol::Inbound::Unknown`], and the
    /// invoke frames of protocol.md 8.3, which are defined for JSON only).
    #[error("`{0}` has no protobuf encoding: use a JSON subprotocol for it")]
    NoProtobufForm(&'static str),
}

/// The kind of a protobuf decode failure, so counters and tests can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtobufFault {
    /// The frame ends inside a field (a length or varint runs past the end).
    Truncated,
    /// A known field arrived with a wire type its declaration does not have.
    WrongWireType,
    /// A string field that is not UTF-8.
    InvalidUtf8,
    /// Anything else the decoder refused (bad tag, over-long varint, nesting too deep).
    Malformed,
}

impl std::fmt::Display for ProtobufFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProtobufFault::Truncated => "truncated",
            ProtobufFault::WrongWireType => "wrong wire type",
            ProtobufFault::InvalidUtf8 => "string not UTF-8",
            ProtobufFault::Malformed => "malformed",
        })
    }
}

/// Keeps at most `max` characters of a value a peer chose, so an error stays short and a
/// huge frame or token cannot blow up an ack, a close reason or a log line.
pub(crate) fn shorten(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_keeps_short_values_and_cuts_long_ones_on_char_boundaries() {
        assert_eq!(shorten("HS256", 16), "HS256");
        assert_eq!(shorten("abcdef", 3), "abc...");
        assert_eq!(shorten("ééééé", 2), "éé...");
        assert_eq!(shorten("", 2), "");
    }
}
