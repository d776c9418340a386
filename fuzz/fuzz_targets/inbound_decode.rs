//! What a client decodes from the service: any bytes as a text or binary frame.
//!
//! Checks beyond "no panic": the one-pass fast path and the precise path agree (whenever the
//! fast path answers, the precise path answers the same frame, and `decode_inbound` gives
//! exactly the precise path's result, error included); a decoded frame encodes back to text
//! that decodes to the same frame; a data message stamped with a sequence id by the hub's fan-out encoder
//! (`MessageFrame`) decodes to the same message with that sequence id; a reconnection token
//! never shows in the frame's `Debug` output; an error's message stays under 512 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpubsub_fleet::protocol::Inbound;
use webpubsub_fleet::protocol::json::{
    MessageFrame, decode_inbound, decode_inbound_bytes, encode_inbound, fuzzing,
};
use webpubsub_fleet_fuzz::{assert_reconnection_token_hidden, decoded_or_short_error};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let precise = fuzzing::precise_inbound(text);
        if let Some(fast) = fuzzing::fast_inbound(text) {
            assert_eq!(Ok(&fast), precise.as_ref(), "fast path differs");
        }
        assert_eq!(
            decode_inbound(text),
            precise,
            "decode_inbound is not the precise result"
        );
    }
    let Some(frame) = decoded_or_short_error(decode_inbound_bytes(data)) else {
        return;
    };
    let text = encode_inbound(&frame);
    let again = decode_inbound(&text)
        .unwrap_or_else(|e| panic!("re-encoded frame does not decode: {e}\n{text}"));
    assert_eq!(again, frame, "decode(encode(frame)) differs\n{text}");

    match &frame {
        Inbound::GroupMessage {
            group,
            from_user_id,
            data,
            sequence_id,
        } => {
            let stamp = sequence_id.unwrap_or(data.len() as u64);
            let bytes =
                MessageFrame::group(group, from_user_id.as_deref(), data).with_sequence_id(stamp);
            let stamped = decode_inbound_bytes(&bytes).expect("a stamped group message decodes");
            assert_eq!(
                stamped,
                Inbound::GroupMessage {
                    sequence_id: Some(stamp),
                    group: group.clone(),
                    from_user_id: from_user_id.clone(),
                    data: data.clone(),
                }
            );
        }
        Inbound::ServerMessage { data, sequence_id } => {
            let stamp = sequence_id.unwrap_or(u64::MAX);
            let bytes = MessageFrame::server(data).with_sequence_id(stamp);
            let stamped = decode_inbound_bytes(&bytes).expect("a stamped server message decodes");
            assert_eq!(
                stamped,
                Inbound::ServerMessage {
                    sequence_id: Some(stamp),
                    data: data.clone(),
                }
            );
        }
        _ => {}
    }
    assert_reconnection_token_hidden(&frame);
});
