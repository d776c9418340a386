//! The hub's WebSocket input path under its message size limit: the `FrameGuard` that
//! `hub/socket.rs` puts in front of the decoder, then actix-http's `ws::Codec` in server mode
//! with `max_size` set (`frame_size`), fed chunk by chunk as the socket reads them.
//!
//! Two kinds of input (see `Input`), each with a limit from 0 to 4 KiB so that oversized
//! frames are cheap:
//! - arbitrary bytes cut into chunks: nothing panics; no decoded frame carries more than the
//!   limit; the bytes held (the decoder's buffer) never exceed one header (14 bytes) plus
//!   the limit, i.e. an oversized frame is refused from its header, before its payload
//!   (issue 8 item 2); and the guarded path decodes exactly the frames the bare decoder
//!   decodes from the same bytes, up to where either stops;
//! - binary and ping messages encoded by a client-mode codec (masked), cut at arbitrary
//!   points: every message within the limit comes out intact and in order whatever the
//!   cuts, and the first one over it is refused with the length its header announced.
#![no_main]

use actix_http::ws::{Codec, Frame, Message, ProtocolError};
use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};
use webpubsub_fleet::hub::{FrameGuard, Guarded};

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

/// How a stream ended.
#[derive(Debug)]
enum End {
    /// All input was read.
    Read,
    /// The guard refused a header announcing this many bytes.
    Oversized(u64),
    /// The decoder failed.
    Decoder(ProtocolError),
}

/// The hub's path: each chunk through the guard, what it forwards into the decoder.
fn guarded<'c>(limit: usize, chunks: impl Iterator<Item = &'c [u8]>) -> (Vec<Frame>, End) {
    let mut guard = FrameGuard::new(limit);
    let mut codec = Codec::new().max_size(limit);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        let (forward, refused) = match guard.feed(Bytes::copy_from_slice(chunk)) {
            Guarded::Forward(bytes) => (bytes, None),
            Guarded::Oversized { before, announced } => {
                assert!(
                    announced > limit as u64,
                    "refused {announced} bytes under a {limit}-byte limit"
                );
                (before, Some(announced))
            }
        };
        if let Err(e) = decode(&mut codec, &mut buf, &forward, limit, &mut frames) {
            return (frames, End::Decoder(e));
        }
        if let Some(announced) = refused {
            return (frames, End::Oversized(announced));
        }
        assert!(
            buf.len() <= MAX_HEADER + limit,
            "{} bytes held for one frame under a {limit}-byte limit",
            buf.len()
        );
    }
    (frames, End::Read)
}

/// Feeds bytes to the decoder and decodes what they complete.
fn decode(
    codec: &mut Codec,
    buf: &mut BytesMut,
    bytes: &[u8],
    limit: usize,
    out: &mut Vec<Frame>,
) -> Result<(), ProtocolError> {
    buf.extend_from_slice(bytes);
    while let Some(frame) = codec.decode(buf)? {
        let len = match &frame {
            Frame::Text(b) | Frame::Binary(b) | Frame::Ping(b) | Frame::Pong(b) => b.len(),
            Frame::Continuation(_) | Frame::Close(_) => 0,
        };
        assert!(
            len <= limit,
            "a frame of {len} bytes passed a {limit}-byte limit"
        );
        out.push(frame);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    match input {
        Input::Raw { limit, chunk, wire } => {
            let (frames, end) = guarded(limit, wire.chunks(chunk));
            // The bare decoder given everything at once (no guard, no limit on holding).
            let mut bare = Vec::new();
            let mut bare_buf = BytesMut::new();
            let bare_result = decode(
                &mut Codec::new().max_size(limit),
                &mut bare_buf,
                wire,
                limit,
                &mut bare,
            );
            assert!(
                frames.len() <= bare.len() && frames[..] == bare[..frames.len()],
                "the guard changed the frames decoded"
            );
            match &end {
                End::Read => {
                    assert_eq!(frames.len(), bare.len(), "the guard lost frames");
                    // The bare decoder may fail on a header that has not fully arrived; the
                    // guard holds such a header back until it has, which is not a miss.
                    assert!(
                        bare_result.is_ok() || bare_buf.len() < MAX_HEADER,
                        "the guard let through {bare_result:?}"
                    );
                }
                // The decoder fails on the same frame, the same way, with or without the guard.
                End::Decoder(e) => {
                    assert_eq!(frames.len(), bare.len(), "the guard lost frames");
                    assert_eq!(
                        bare_result.map_err(|b| b.to_string()),
                        Err(e.to_string()),
                        "the guard changed the error"
                    );
                }
                End::Oversized(_) => {}
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
                    Sent::Binary(_) => Message::Binary(Bytes::copy_from_slice(payload(m))),
                    Sent::Ping(_) => Message::Ping(Bytes::copy_from_slice(payload(m))),
                };
                client
                    .encode(msg, &mut wire)
                    .expect("encoding a message succeeds");
            }
            // Empty chunks are kept: a read may return nothing new.
            let mut chunks = Vec::new();
            let mut rest = &wire[..];
            for cut in cuts.iter().map(|c| usize::from(*c)).chain([usize::MAX]) {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(cut.min(rest.len()));
                chunks.push(chunk);
                rest = tail;
            }
            let (frames, end) = guarded(limit, chunks.into_iter());
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
            match messages.get(within.len()) {
                Some(over) => assert!(
                    matches!(end, End::Oversized(n) if n == payload(over).len() as u64),
                    "an oversized message gave {end:?}"
                ),
                None => assert!(
                    matches!(end, End::Read),
                    "a stream of valid messages failed: {end:?}"
                ),
            }
        }
    }
});

fn payload(m: &Sent) -> &[u8] {
    match m {
        Sent::Binary(b) => b,
        // Control frames carry at most 125 bytes (RFC 6455 5.5).
        Sent::Ping(b) => &b[..b.len().min(125)],
    }
}
