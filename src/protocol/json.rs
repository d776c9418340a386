//! The JSON codec (placeholder signatures; implemented next).
use super::*;

/// Decodes a frame a client sent (used by the hub).
pub fn decode_outbound(_text: &str) -> Result<Outbound, ProtocolError> {
    todo!()
}
/// Decodes a frame the service sent (used by clients). Unknown types give [`Inbound::Unknown`].
pub fn decode_inbound(_text: &str) -> Result<Inbound, ProtocolError> {
    todo!()
}
/// Encodes a client frame.
pub fn encode_outbound(_frame: &Outbound) -> String {
    todo!()
}
/// Encodes a service frame.
pub fn encode_inbound(_frame: &Inbound) -> String {
    todo!()
}
