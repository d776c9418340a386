//! What a protobuf client decodes from the service and what the hub decodes from a protobuf
//! client: the same bytes go to `protocol::protobuf::decode_inbound` and `decode_outbound`.
//!
//! Checks beyond "no panic": an error's message stays under 512 bytes; a decoded frame encodes
//! back to bytes that decode to the same frame; a data message encoded once by the hub's
//! fan-out encoder (`protobuf::MessageFrame`) and stamped with a sequence id decodes to the same
//! message with that id; a reconnection token never shows in `Debug`; a decoded client request
//! crosses to the JSON codec and back unchanged (protocol.md 2.5: `Payload` is the common form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpubsub_fleet::protocol::protobuf::{
    MessageFrame, decode_inbound, decode_outbound, encode_inbound, encode_outbound,
};
use webpubsub_fleet::protocol::{Inbound, json};
use webpubsub_fleet_fuzz::{assert_reconnection_token_hidden, decoded_or_short_error};

fuzz_target!(|data: &[u8]| {
    if let Some(request) = decoded_or_short_error(decode_outbound(data)) {
        let bytes = encode_outbound(&request);
        let again = decode_outbound(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded request does not decode: {e}\n{bytes:02x?}"));
        assert_eq!(again, request, "decode(encode(request)) differs");
        let text = json::encode_outbound(&request);
        let crossed = json::decode_outbound(&text)
            .unwrap_or_else(|e| panic!("the request in JSON does not decode: {e}\n{text}"));
        assert_eq!(
            crossed, request,
            "the request changed crossing to JSON\n{text}"
        );
    }

    let Some(frame) = decoded_or_short_error(decode_inbound(data)) else {
        return;
    };
    if let Inbound::Unknown { .. } = frame {
        return;
    }
    let bytes = encode_inbound(&frame).expect("a known frame has a protobuf form");
    let again = decode_inbound(&bytes)
        .unwrap_or_else(|e| panic!("re-encoded frame does not decode: {e}\n{bytes:02x?}"));
    assert_eq!(again, frame, "decode(encode(frame)) differs");
    match &frame {
        Inbound::GroupMessage {
            group,
            data,
            sequence_id,
            ..
        } => {
            let stamp = sequence_id.unwrap_or(data.len() as u64 + 1);
            let stamped = decode_inbound(&MessageFrame::group(group, data).with_sequence_id(stamp))
                .expect("a stamped group message decodes");
            assert_eq!(
                stamped,
                Inbound::GroupMessage {
                    sequence_id: Some(stamp),
                    group: group.clone(),
                    from_user_id: None,
                    data: data.clone(),
                }
            );
        }
        Inbound::ServerMessage { data, sequence_id } => {
            let stamp = sequence_id.unwrap_or(u64::MAX);
            let stamped = decode_inbound(&MessageFrame::server(data).with_sequence_id(stamp))
                .expect("a stamped server message decodes");
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
