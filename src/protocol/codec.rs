//! [`Codec`]: the one place that picks the JSON or the protobuf codec for a subprotocol, so
//! the client (and later the hub) asks the connection's codec to encode and decode instead of
//! testing the subprotocol at each frame.
//!
//! Frame kinds (protocol.md 2.1 and 4): a JSON subprotocol sends text frames and accepts text
//! or binary frames holding UTF-8 JSON; a protobuf subprotocol sends and accepts binary
//! frames only, so a text frame there is a decode error like any other malformed frame.

use super::error::ProtocolError;
use super::{Inbound, Outbound, Subprotocol, json, protobuf};

/// The codec of a subprotocol: the two JSON subprotocols share one, the two protobuf ones
/// the other (the reliable variants add sequence ids, not a different encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `json.webpubsub.azure.v1` and `json.reliable.webpubsub.azure.v1`: [`json`].
    Json,
    /// `protobuf.webpubsub.azure.v1` and `protobuf.reliable.webpubsub.azure.v1`: [`protobuf`].
    Protobuf,
}

/// The WebSocket message type a frame travels in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A text message (UTF-8).
    Text,
    /// A binary message.
    Binary,
}

/// An encoded frame with the WebSocket message type it must be sent as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireFrame {
    /// JSON text, sent as a text message.
    Text(String),
    /// Protobuf bytes, sent as a binary message.
    Binary(Vec<u8>),
}

impl WireFrame {
    /// Length of the encoded frame in bytes.
    pub fn len(&self) -> usize {
        match self {
            WireFrame::Text(s) => s.len(),
            WireFrame::Binary(b) => b.len(),
        }
    }

    /// Whether the encoded frame is empty (a protobuf frame can be: no field set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Codec {
    /// The codec of `protocol`.
    pub const fn of(protocol: Subprotocol) -> Codec {
        match protocol {
            Subprotocol::Json | Subprotocol::JsonReliable => Codec::Json,
            Subprotocol::Protobuf | Subprotocol::ProtobufReliable => Codec::Protobuf,
        }
    }

    /// Encodes a client frame (client side). A frame with no protobuf form
    /// ([`Codec::carries`] is false) becomes an empty protobuf frame: use
    /// [`Codec::try_encode_outbound`] where one may come.
    pub fn encode_outbound(self, frame: &Outbound) -> WireFrame {
        match self {
            Codec::Json => WireFrame::Text(json::encode_outbound(frame)),
            Codec::Protobuf => WireFrame::Binary(protobuf::encode_outbound(frame)),
        }
    }

    /// Encodes a client frame, or says the codec has no form for it
    /// ([`ProtocolError::NoProtobufForm`] for `invoke` and `cancelInvocation` on protobuf).
    pub fn try_encode_outbound(self, frame: &Outbound) -> Result<WireFrame, ProtocolError> {
        match self {
            Codec::Json => Ok(WireFrame::Text(json::encode_outbound(frame))),
            Codec::Protobuf => protobuf::try_encode_outbound(frame).map(WireFrame::Binary),
        }
    }

    /// Whether this codec can carry `frame` (protobuf has no invoke frames, protocol.md 8.3).
    pub fn carries(self, frame: &Outbound) -> bool {
        self == Codec::Json
            || !matches!(
                frame,
                Outbound::Invoke { .. } | Outbound::CancelInvocation { .. }
            )
    }

    /// Decodes a service frame that arrived as a `kind` message (client side).
    pub fn decode_inbound(self, kind: FrameKind, bytes: &[u8]) -> Result<Inbound, ProtocolError> {
        match (self, kind) {
            // Binary frames holding UTF-8 JSON are accepted as text ones (protocol.md 2.1).
            (Codec::Json, _) => json::decode_inbound_bytes(bytes),
            (Codec::Protobuf, FrameKind::Binary) => protobuf::decode_inbound(bytes),
            (Codec::Protobuf, FrameKind::Text) => Err(ProtocolError::TextFrameOnProtobuf),
        }
    }

    /// Encodes a service frame (hub side). Only [`Inbound::Unknown`] has no protobuf form.
    pub fn encode_inbound(self, frame: &Inbound) -> Result<WireFrame, ProtocolError> {
        match self {
            Codec::Json => Ok(WireFrame::Text(json::encode_inbound(frame))),
            Codec::Protobuf => protobuf::encode_inbound(frame).map(WireFrame::Binary),
        }
    }

    /// Decodes a client frame that arrived as a `kind` message (hub side).
    pub fn decode_outbound(self, kind: FrameKind, bytes: &[u8]) -> Result<Outbound, ProtocolError> {
        match (self, kind) {
            (Codec::Json, _) => json::decode_outbound_bytes(bytes),
            (Codec::Protobuf, FrameKind::Binary) => protobuf::decode_outbound(bytes),
            (Codec::Protobuf, FrameKind::Text) => Err(ProtocolError::TextFrameOnProtobuf),
        }
    }
}

impl Subprotocol {
    /// The codec of this subprotocol ([`Codec::of`]).
    pub const fn codec(self) -> Codec {
        Codec::of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Payload, ProtobufFault};

    fn send() -> Outbound {
        Outbound::SendToGroup {
            group: "g".into(),
            ack_id: Some(7),
            no_echo: false,
            data: Payload::Text("hi".into()),
        }
    }

    #[test]
    fn each_subprotocol_has_its_codec() {
        assert_eq!(Subprotocol::Json.codec(), Codec::Json);
        assert_eq!(Subprotocol::JsonReliable.codec(), Codec::Json);
        assert_eq!(Subprotocol::Protobuf.codec(), Codec::Protobuf);
        assert_eq!(Subprotocol::ProtobufReliable.codec(), Codec::Protobuf);
    }

    #[test]
    fn json_is_text_and_protobuf_binary_with_the_layers_own_bytes() {
        assert_eq!(
            Codec::Json.encode_outbound(&send()),
            WireFrame::Text(json::encode_outbound(&send()))
        );
        assert_eq!(
            Codec::Protobuf.encode_outbound(&send()),
            WireFrame::Binary(protobuf::encode_outbound(&send()))
        );
    }

    #[test]
    fn each_codec_reads_what_the_other_side_of_it_writes() {
        let ack = Inbound::Ack {
            ack_id: 7,
            success: true,
            error: None,
        };
        for codec in [Codec::Json, Codec::Protobuf] {
            let (kind, bytes) = match codec.encode_inbound(&ack).unwrap() {
                WireFrame::Text(s) => (FrameKind::Text, s.into_bytes()),
                WireFrame::Binary(b) => (FrameKind::Binary, b),
            };
            assert_eq!(codec.decode_inbound(kind, &bytes), Ok(ack.clone()));
            let (kind, bytes) = match codec.encode_outbound(&send()) {
                WireFrame::Text(s) => (FrameKind::Text, s.into_bytes()),
                WireFrame::Binary(b) => (FrameKind::Binary, b),
            };
            assert_eq!(codec.decode_outbound(kind, &bytes), Ok(send()));
        }
    }

    #[test]
    fn protobuf_refuses_the_invoke_frames_with_a_typed_error() {
        let invoke = Outbound::Invoke {
            invocation_id: "1".into(),
            event: "e".into(),
            data: Payload::Text("hi".into()),
        };
        let cancel = Outbound::CancelInvocation {
            invocation_id: "1".into(),
        };
        for (frame, name) in [(&invoke, "invoke"), (&cancel, "cancelInvocation")] {
            assert!(!Codec::Protobuf.carries(frame));
            assert!(Codec::Json.carries(frame));
            assert_eq!(
                Codec::Protobuf.try_encode_outbound(frame),
                Err(ProtocolError::NoProtobufForm(name))
            );
            assert!(Codec::Json.try_encode_outbound(frame).is_ok());
        }
        let response = Inbound::InvokeResponse {
            invocation_id: "1".into(),
            success: true,
            data: None,
            error: None,
        };
        assert_eq!(
            Codec::Protobuf.encode_inbound(&response),
            Err(ProtocolError::NoProtobufForm("invokeResponse"))
        );
    }

    #[test]
    fn json_in_a_binary_frame_is_json_but_a_text_frame_is_never_protobuf() {
        let json = br#"{"type":"ack","ackId":1,"success":true}"#;
        assert!(Codec::Json.decode_inbound(FrameKind::Binary, json).is_ok());
        // Bytes that would even parse as protobuf are refused in a text frame.
        let pong = protobuf::encode_inbound(&Inbound::Pong).unwrap();
        assert!(
            Codec::Protobuf
                .decode_inbound(FrameKind::Binary, &pong)
                .is_ok()
        );
        for refused in [
            Codec::Protobuf.decode_inbound(FrameKind::Text, &pong).err(),
            Codec::Protobuf
                .decode_outbound(FrameKind::Text, &protobuf::encode_outbound(&send()))
                .err(),
        ] {
            assert_eq!(refused, Some(ProtocolError::TextFrameOnProtobuf));
        }
        // A JSON frame sent to a protobuf client is a decode error, not a panic.
        assert!(matches!(
            Codec::Protobuf.decode_inbound(FrameKind::Binary, json),
            Err(ProtocolError::InvalidProtobuf {
                fault: ProtobufFault::Truncated,
                ..
            })
        ));
    }
}
