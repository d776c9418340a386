//! What the hub decodes from a client: any bytes as a text or binary frame
//! (`decode_outbound_bytes`, the hub's entry point for both).
//!
//! Checks beyond "no panic": the one-pass fast path and the precise path agree (whenever the
//! fast path answers, the precise path answers the same request, and `decode_outbound` gives
//! exactly the precise path's result, error included); a decoded request encodes back (with the client's encoder) to
//! text that decodes to the same request; group and event names of accepted requests are
//! never empty; an error's message stays under 512 bytes (it never echoes a large input back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpubsub_fleet::protocol::Outbound;
use webpubsub_fleet::protocol::json::{
    decode_outbound, decode_outbound_bytes, encode_outbound, fuzzing,
};
use webpubsub_fleet_fuzz::decoded_or_short_error;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let precise = fuzzing::precise_outbound(text);
        if let Some(fast) = fuzzing::fast_outbound(text) {
            assert_eq!(Ok(&fast), precise.as_ref(), "fast path differs");
        }
        assert_eq!(
            decode_outbound(text),
            precise,
            "decode_outbound is not the precise result"
        );
    }
    let Some(request) = decoded_or_short_error(decode_outbound_bytes(data)) else {
        return;
    };
    match &request {
        Outbound::JoinGroup { group, .. }
        | Outbound::LeaveGroup { group, .. }
        | Outbound::SendToGroup { group, .. } => assert!(!group.is_empty()),
        Outbound::Event { event, .. } => assert!(!event.is_empty()),
        Outbound::Invoke {
            invocation_id,
            event,
            ..
        } => assert!(!invocation_id.is_empty() && !event.is_empty()),
        Outbound::CancelInvocation { invocation_id } => assert!(!invocation_id.is_empty()),
        Outbound::SequenceAck { .. } | Outbound::Ping => {}
    }
    let text = encode_outbound(&request);
    let again = decode_outbound(&text)
        .unwrap_or_else(|e| panic!("re-encoded request does not decode: {e}\n{text}"));
    assert_eq!(again, request, "decode(encode(request)) differs\n{text}");
});
