//! A guard in front of the WebSocket decoder that refuses an oversized frame as soon as its
//! header announces the length, before any of the payload is buffered.
//!
//! actix-http's decoder (3.x) checks its size limit only once the whole frame has arrived, and
//! reserves buffer space for it meanwhile: a header announcing 64 MiB made the hub buffer
//! 64 MiB before it answered 1009, and a header may announce up to 2^63 - 1 bytes. The guard
//! follows the frame boundaries of the bytes the socket reads (headers are at most 14 bytes;
//! payloads are skipped by count, never copied) and stops the stream at the first header whose
//! length is over the limit. It holds back at most one incomplete header (13 bytes), so its
//! memory is constant, and it needs no I/O, which is what makes it a fuzzing target.

use bytes::{Bytes, BytesMut};

/// Longest frame header: 2 bytes, an 8-byte extended length, a 4-byte mask key.
const MAX_HEADER: usize = 14;

/// What the guard makes of one chunk the socket read.
#[derive(Debug, PartialEq, Eq)]
pub enum Guarded {
    /// Forward these bytes to the decoder (possibly empty: a header is still incomplete).
    Forward(Bytes),
    /// Forward these bytes (every frame before the oversized one), then stop reading: the
    /// next frame header announces `announced` payload bytes, more than the limit.
    Oversized {
        /// The bytes before the oversized frame's header.
        before: Bytes,
        /// The payload length the header announced.
        announced: u64,
    },
}

/// Tracks frame boundaries in the bytes a client sends. Feed it every chunk in order.
#[derive(Debug)]
pub struct FrameGuard {
    max_payload: u64,
    /// Payload bytes of the current frame still to skip.
    remaining: u64,
    /// The start of a header that has not fully arrived yet (held back, never forwarded
    /// before the guard has judged it).
    pending: BytesMut,
    /// An oversized header was seen: nothing more is forwarded.
    refused: bool,
}

impl FrameGuard {
    /// A guard refusing frames whose payload is longer than `max_payload` bytes, as the
    /// decoder's own limit does (a frame of exactly `max_payload` bytes passes).
    pub fn new(max_payload: usize) -> FrameGuard {
        FrameGuard {
            max_payload: u64::try_from(max_payload).unwrap_or(u64::MAX),
            remaining: 0,
            pending: BytesMut::new(),
            refused: false,
        }
    }

    /// Judges the next chunk the client sent. After [`Guarded::Oversized`] every later chunk
    /// is dropped (`Forward` of nothing).
    pub fn feed(&mut self, chunk: Bytes) -> Guarded {
        if self.refused {
            return Guarded::Forward(Bytes::new());
        }
        let data = if self.pending.is_empty() {
            chunk
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(&chunk);
            joined.freeze()
        };
        let mut pos = 0usize;
        loop {
            let left = (data.len() - pos) as u64;
            if self.remaining >= left {
                self.remaining -= left;
                return Guarded::Forward(data);
            }
            // `remaining < left`, so it fits in usize.
            pos += self.remaining as usize;
            self.remaining = 0;
            match header(&data[pos..]) {
                Header::Incomplete => {
                    self.pending.extend_from_slice(&data[pos..]);
                    return Guarded::Forward(data.slice(..pos));
                }
                Header::Announces(payload) if payload <= self.max_payload => {
                    self.pending.extend_from_slice(&data[pos..]);
                    return Guarded::Forward(data.slice(..pos));
                }
                Header::Complete { len, payload } if payload <= self.max_payload => {
                    pos += len;
                    self.remaining = payload;
                }
                Header::Complete { payload, .. } | Header::Announces(payload) => {
                    self.refused = true;
                    return Guarded::Oversized {
                        before: data.slice(..pos),
                        announced: payload,
                    };
                }
            }
        }
    }
}

enum Header {
    /// More bytes are needed to read the length.
    Incomplete,
    /// The length is known but the mask key has not fully arrived.
    Announces(u64),
    /// The whole header: its length in bytes and the payload length it announces.
    Complete { len: usize, payload: u64 },
}

/// Reads a frame header at the start of `bytes` (RFC 6455 5.2). The length is judged as soon
/// as it is known, before the mask key arrives.
fn header(bytes: &[u8]) -> Header {
    let [_, second, rest @ ..] = bytes else {
        return Header::Incomplete;
    };
    let masked = second & 0x80 != 0;
    let (payload, ext) = match second & 0x7f {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
            _ => return Header::Incomplete,
        },
        127 => match rest.get(..8) {
            Some(ext) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(ext);
                (u64::from_be_bytes(be), 8)
            }
            None => return Header::Incomplete,
        },
        n => (u64::from(n), 0),
    };
    let len = 2 + ext + if masked { 4 } else { 0 };
    debug_assert!(len <= MAX_HEADER);
    if bytes.len() < len {
        return Header::Announces(payload);
    }
    Header::Complete { len, payload }
}

impl Header {
    #[cfg(test)]
    fn payload(&self) -> Option<u64> {
        match self {
            Header::Incomplete => None,
            Header::Announces(p) | Header::Complete { payload: p, .. } => Some(*p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        let mut out = vec![0x81];
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&[9, 9, 9, 9]);
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    fn forwarded(guard: &mut FrameGuard, bytes: &[u8], step: usize) -> (Vec<u8>, Option<u64>) {
        let mut out = Vec::new();
        for chunk in bytes.chunks(step.max(1)) {
            match guard.feed(Bytes::copy_from_slice(chunk)) {
                Guarded::Forward(b) => out.extend_from_slice(&b),
                Guarded::Oversized { before, announced } => {
                    out.extend_from_slice(&before);
                    return (out, Some(announced));
                }
            }
        }
        (out, None)
    }

    #[test]
    fn frames_within_the_limit_pass_unchanged_in_any_chunking() {
        let mut stream = Vec::new();
        for len in [0, 1, 125, 126, 300, 65535, 65536, 70000] {
            stream.extend(frame(len));
        }
        for step in [1, 2, 3, 7, 13, 14, 15, 1000, 1 << 20] {
            let mut guard = FrameGuard::new(70000);
            assert_eq!(forwarded(&mut guard, &stream, step), (stream.clone(), None));
        }
    }

    #[test]
    fn an_oversized_header_stops_the_stream_after_the_frames_before_it() {
        let ok = frame(10);
        let mut stream = ok.clone();
        // Only the header of the big frame: the guard must not wait for its payload.
        stream.extend(&frame(101)[..8]);
        for step in [1, 2, 5, 100] {
            let mut guard = FrameGuard::new(100);
            let (out, refused) = forwarded(&mut guard, &stream, step);
            assert_eq!(out, ok, "step {step}");
            assert_eq!(refused, Some(101));
            assert_eq!(
                guard.feed(Bytes::from_static(b"more")),
                Guarded::Forward(Bytes::new())
            );
        }
    }

    #[test]
    fn the_length_is_judged_before_the_mask_key() {
        let mut guard = FrameGuard::new(100);
        let mut head = vec![0x82, 0xff];
        head.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(
            guard.feed(Bytes::from(head)),
            Guarded::Oversized {
                before: Bytes::new(),
                announced: 1 << 63
            }
        );
        assert_eq!(header(&[0x81, 0xfe, 0x01]).payload(), None);
        assert_eq!(header(&[0x81, 0xfe, 0x01, 0x00]).payload(), Some(256));
    }
}
