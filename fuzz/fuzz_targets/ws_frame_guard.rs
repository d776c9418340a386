//! The hub's WebSocket frame decoding under a message size limit: actix-http's `ws::Codec`
//! in server mode with `max_size` set, as `hub/socket.rs` configures it (`frame_size`).
//!
//! Two kinds of input (see `Input`), each with a limit from 0 to 4 KiB so that oversized frames are cheap:
//! - arbitrary bytes cut into arbitrary chunks: decoding never panics, no decoded frame
//!   carries more than the limit, and decoding stops at the first error as the hub does;
//! - binary and ping messages encoded by a client-mode codec (masked), cut at arbitrary
//!   points: every message within the limit comes out intact and in order whatever the
//!   cuts, and the first one over it gives `Overflow` (the hub's 1009 close).
//!
//! `HEADER_GUARD` adds the property of issue 8 item 2: an oversized frame is refused as soon
//! as its header has arrived, so the bytes held never exceed header + limit. The bare codec
//! fails it (it waits for the whole announced payload); it is off until the hub's guard
//! wraps the stream, when this target must decode through that guard with it on.
#![no_main]

use actix_http::ws::{Codec, Frame, Message, ProtocolError};
use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

/// See the module doc: on once the hub's header guard is wired in here.
const HEADER_GUARD: bool = false;
/// Largest WebSocket frame header a client sends: 2 + 8 (64-bit length) + 4 (mask).
const MAX_HEADER: usize = 14;

#[derive(Arbitrary, Debug)]
enum Sent {
    Binary(Vec<u8>),
    Ping(Vec<u8>),
}

/// Byte 0 picks the kind, bytes 1-2 the limit (little-endian, modulo 4097). Raw: byte 3 is
/// the chunk size (0: one chunk) and the rest the bytes a client sent, so seeds are real
/// frames behind a 4-byte prefix. Encoded: the rest gives messages and cuts via `arbitrary`.
enum Input<'a> {
    Raw {
        limit: usize,
        chunk: usize,
        wire: &'a [u8],
    },
    Encoded {
        limit: usize,
        messages: Vec<Sent>,
        cuts: Vec<u16>,
    },
}

impl<'a> Input<'a> {
    fn read(data: &'a [u8]) -> Option<Input<'a>> {
        let [kind, lo, hi, rest @ ..] = data else {
            return None;
        };
        let limit = usize::from(u16::from_le_bytes([*lo, *hi]) % 4097);
        if kind % 2 == 0 {
            let (&chunk, wire) = rest.split_first()?;
            let chunk = if chunk == 0 {
                wire.len().max(1)
            } else {
                usize::from(chunk)
            };
            Some(Input::Raw { limit, chunk, wire })
        } else {
            let mut u = Unstructured::new(rest);
            Some(Input::Encoded {
                limit,
                messages: u.arbitrary().ok()?,
                cuts: Vec::<u16>::arbitrary_take_rest(u).ok()?,
            })
        }
    }
}

/// Feeds one chunk and decodes what it completes. `Err` ends the stream (the hub closes).
fn feed(
    codec: &mut Codec,
    buf: &mut BytesMut,
    chunk: &[u8],
    limit: usize,
    out: &mut Vec<Frame>,
) -> Result<(), ProtocolError> {
    buf.extend_from_slice(chunk);
    loop {
        match codec.decode(buf)? {
            Some(frame) => {
                let len = match &frame {
                    Frame::Text(b) | Frame::Binary(b) => b.len(),
                    Frame::Ping(b) | Frame::Pong(b) => b.len(),
                    Frame::Continuation(_) | Frame::Close(_) => 0,
                };
                assert!(
                    len <= limit,
                    "a frame of {len} bytes passed a {limit}-byte limit"
                );
                out.push(frame);
            }
            None => {
                if HEADER_GUARD {
                    assert!(
                        buf.len() <= MAX_HEADER + limit,
                        "{} bytes held for one frame under a {limit}-byte limit",
                        buf.len()
                    );
                }
                return Ok(());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    match input {
        Input::Raw { limit, chunk, wire } => {
            let mut codec = Codec::new().max_size(limit);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for piece in wire.chunks(chunk) {
                if feed(&mut codec, &mut buf, piece, limit, &mut frames).is_err() {
                    return;
                }
            }
        }
        Input::Encoded {
            limit,
            messages,
            cuts,
        } => {
            let mut client = Codec::new().client_mode();
            let mut wire = BytesMut::new();
            for m in &messages {
                let msg = match m {
                    Sent::Binary(b) => Message::Binary(Bytes::copy_from_slice(b)),
                    // Control frames carry at most 125 bytes (RFC 6455 5.5).
                    Sent::Ping(b) => Message::Ping(Bytes::copy_from_slice(&b[..b.len().min(125)])),
                };
                client
                    .encode(msg, &mut wire)
                    .expect("encoding a message succeeds");
            }
            let mut server = Codec::new().max_size(limit);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            let mut rest = &wire[..];
            let mut result = Ok(());
            for cut in cuts.iter().map(|c| usize::from(*c)).chain([usize::MAX]) {
                let (chunk, tail) = rest.split_at(cut.min(rest.len()));
                rest = tail;
                result = feed(&mut server, &mut buf, chunk, limit, &mut frames);
                if result.is_err() || rest.is_empty() {
                    break;
                }
            }
            let within: Vec<&Sent> = messages
                .iter()
                .take_while(|m| payload(m).len() <= limit)
                .collect();
            assert_eq!(
                frames.len(),
                within.len(),
                "messages within the limit were lost or split"
            );
            for (frame, sent) in frames.iter().zip(&within) {
                let same = match (frame, sent) {
                    (Frame::Binary(got), Sent::Binary(_)) | (Frame::Ping(got), Sent::Ping(_)) => {
                        got[..] == *payload(sent)
                    }
                    _ => false,
                };
                assert!(same, "a message came out changed: {frame:?}");
            }
            if within.len() < messages.len() {
                assert!(
                    matches!(result, Err(ProtocolError::Overflow)),
                    "an oversized message gave {result:?}"
                );
            } else {
                assert!(
                    result.is_ok(),
                    "a stream of valid messages failed: {result:?}"
                );
            }
        }
    }
});

fn payload(m: &Sent) -> &[u8] {
    match m {
        Sent::Binary(b) => b,
        Sent::Ping(b) => &b[..b.len().min(125)],
    }
}
