//! Wire types and codecs of the Web PubSub subprotocols. No I/O.
//!
//! - [`types`]: [`Outbound`] (client to service) and [`Inbound`] (service to client) frames,
//!   payloads, ack errors, subprotocol names;
//! - [`json`]: the codec of `json.webpubsub.azure.v1` and `json.reliable.webpubsub.azure.v1`,
//!   both directions (clients encode `Outbound` and decode `Inbound`, the hub the reverse);
//! - [`protobuf`]: the codec of `protobuf.webpubsub.azure.v1` and
//!   `protobuf.reliable.webpubsub.azure.v1` on the same types (docs/protobuf.md);
//! - [`codec`]: [`Codec`], the codec of a subprotocol, which callers use instead of choosing
//!   between [`json`] and [`protobuf`] themselves (the client does; the hub not yet);
//! - [`Secret`]: a string whose `Debug` and `Display` print `[REDACTED]`.

pub mod codec;
pub mod error;
pub mod json;
pub mod protobuf;
pub mod secret;
pub mod types;

pub use codec::{Codec, FrameKind, WireFrame};
pub use error::{ProtobufFault, ProtocolError};
pub use secret::Secret;
pub use types::{
    AckError, AckErrorName, AckId, DataType, Inbound, Outbound, Payload, SequenceId, Subprotocol,
};

/// WebSocket close code for "policy violation". On a reliable subprotocol it means the
/// session cannot be recovered: the client must start a new connection (protocol.md 3.4).
pub const CLOSE_UNRECOVERABLE: u16 = 1008;
/// Close code for a message larger than the limit.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a text frame that is not UTF-8.
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code for a data type the endpoint cannot accept (binary frame on a JSON subprotocol).
pub const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// Close code for a protocol error (malformed frame).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code of a normal close.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code of a server going away (hub shutdown or restart).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code of an internal server error.
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;
