//! What the hub publishes: a [`Publication`] (one message on its way to any number of
//! sockets, serialized at most once per wire form and shared by every receiver), its source,
//! and the [`Mode`] of the connection that decides which form a socket gets. Pure values,
//! no lock and no I/O.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::protocol::json::{MessageFrame, STAMP_EXTRA};
use crate::protocol::{Payload, Subprotocol, protobuf};

/// How a connection speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `json.webpubsub.azure.v1`.
    Json,
    /// `json.reliable.webpubsub.azure.v1`: sequence ids, replay, recovery.
    JsonReliable,
    /// `protobuf.webpubsub.azure.v1`: binary frames, one protobuf message each.
    Protobuf,
    /// `protobuf.reliable.webpubsub.azure.v1`: protobuf with sequence ids, replay, recovery.
    ProtobufReliable,
    /// A simple WebSocket client (no supported subprotocol): receives raw payloads. With a
    /// group (`webpubsub_mode=sendToGroup&group=g`) every frame it sends is published there.
    Simple {
        /// The group its frames are published to, if any.
        publish_to: Option<String>,
    },
}

impl Mode {
    /// The mode of a connection that negotiated `subprotocol`.
    pub(crate) fn of(subprotocol: Subprotocol) -> Mode {
        match subprotocol {
            Subprotocol::Json => Mode::Json,
            Subprotocol::JsonReliable => Mode::JsonReliable,
            Subprotocol::Protobuf => Mode::Protobuf,
            Subprotocol::ProtobufReliable => Mode::ProtobufReliable,
        }
    }

    /// The subprotocol it speaks (none for a simple client).
    pub(crate) fn subprotocol(&self) -> Option<Subprotocol> {
        match self {
            Mode::Json => Some(Subprotocol::Json),
            Mode::JsonReliable => Some(Subprotocol::JsonReliable),
            Mode::Protobuf => Some(Subprotocol::Protobuf),
            Mode::ProtobufReliable => Some(Subprotocol::ProtobufReliable),
            Mode::Simple { .. } => None,
        }
    }

    pub(crate) fn is_reliable(&self) -> bool {
        matches!(self, Mode::JsonReliable | Mode::ProtobufReliable)
    }

    /// One of the Web PubSub subprotocols (JSON or protobuf): requests, acks, `connected`.
    pub(crate) fn speaks_protocol(&self) -> bool {
        self.subprotocol().is_some()
    }

    pub(crate) fn is_protobuf(&self) -> bool {
        matches!(self, Mode::Protobuf | Mode::ProtobufReliable)
    }
}

/// Where a published message comes from.
#[derive(Clone, Debug)]
enum Source {
    Group {
        group: String,
        from_user_id: Option<String>,
    },
    Server,
}

/// A raw frame for simple WebSocket clients.
#[derive(Clone, Debug)]
pub(crate) enum RawFrame {
    /// A text frame (text data, or JSON data serialized).
    Text(Bytes),
    /// A binary frame (binary or protobuf data).
    Binary(Bytes),
}

/// One message on its way to any number of sockets. Each wire form is serialized at most once,
/// on first use, and then shared by every receiver.
#[derive(Debug)]
pub(crate) struct Publication {
    source: Source,
    data: Payload,
    json: OnceLock<MessageFrame>,
    protobuf: OnceLock<protobuf::MessageFrame>,
    raw: OnceLock<RawFrame>,
    /// When it stops being worth sending (`messageTtlSeconds` of a REST send).
    expires_at: Option<Instant>,
}

impl Publication {
    /// A message published to `group`.
    pub(crate) fn group(
        group: &str,
        from_user_id: Option<&str>,
        data: Payload,
    ) -> Arc<Publication> {
        Arc::new(Publication {
            source: Source::Group {
                group: group.to_owned(),
                from_user_id: from_user_id.map(str::to_owned),
            },
            data,
            json: OnceLock::new(),
            protobuf: OnceLock::new(),
            raw: OnceLock::new(),
            expires_at: None,
        })
    }

    /// A message from the server (REST sends, echoed events).
    pub(crate) fn server(data: Payload) -> Arc<Publication> {
        Publication::server_until(data, None)
    }

    /// A message from the server that is dropped instead of sent after `expires_at`.
    pub(crate) fn server_until(data: Payload, expires_at: Option<Instant>) -> Arc<Publication> {
        Arc::new(Publication {
            source: Source::Server,
            data,
            json: OnceLock::new(),
            protobuf: OnceLock::new(),
            raw: OnceLock::new(),
            expires_at,
        })
    }

    /// Whether it expired by `now` (`now` is read only for a message that can expire).
    pub(crate) fn expired(&self, now: impl FnOnce() -> Instant) -> bool {
        self.expires_at.is_some_and(|at| now() >= at)
    }

    /// The JSON subprotocol form, serialized once.
    pub(crate) fn json(&self) -> &MessageFrame {
        self.json.get_or_init(|| match &self.source {
            Source::Group {
                group,
                from_user_id,
            } => MessageFrame::group(group, from_user_id.as_deref(), &self.data),
            Source::Server => MessageFrame::server(&self.data),
        })
    }

    /// The protobuf subprotocol form, encoded once.
    fn protobuf(&self) -> &protobuf::MessageFrame {
        self.protobuf.get_or_init(|| match &self.source {
            // `fromUserId` has no protobuf field (protocol.md 4).
            Source::Group { group, .. } => protobuf::MessageFrame::group(group, &self.data),
            Source::Server => protobuf::MessageFrame::server(&self.data),
        })
    }

    /// The protobuf form for one receiver, with its `sequence_id` when reliable: stamped into
    /// the same per-thread chunk as [`Self::json_for`]'s.
    pub(crate) fn protobuf_for(&self, sequence_id: Option<u64>) -> Bytes {
        let frame = self.protobuf();
        match sequence_id {
            None => frame.plain(),
            Some(seq) => STAMPS.with_borrow_mut(|chunk| {
                make_room(chunk, frame.len() + protobuf::STAMP_EXTRA);
                frame.stamp_into(seq, chunk)
            }),
        }
    }

    /// The JSON form for one receiver: the shared frame as is, or, for a reliable receiver,
    /// with its `sequenceId` written in front. The stamped copy is cut from a per-thread
    /// chunk ([`STAMP_CHUNK`]), so stamping costs a copy of the frame but an allocation only
    /// once per chunk, not once per receiver.
    pub(crate) fn json_for(&self, sequence_id: Option<u64>) -> Bytes {
        let frame = self.json();
        match sequence_id {
            None => frame.plain(),
            Some(seq) => STAMPS.with_borrow_mut(|chunk| {
                make_room(chunk, frame.len() + STAMP_EXTRA);
                frame.stamp_into(seq, chunk)
            }),
        }
    }

    /// The simple-client form (protocol.md 2.5), built once.
    pub(crate) fn raw(&self) -> &RawFrame {
        self.raw.get_or_init(|| match &self.data {
            Payload::Text(s) => RawFrame::Text(Bytes::copy_from_slice(s.as_bytes())),
            Payload::Json(v) => RawFrame::Text(Bytes::from(v.to_string())),
            Payload::Binary(b) | Payload::Protobuf(b) => RawFrame::Binary(b.clone()),
        })
    }

    /// Whether two messages come from the same publisher (group and sender, or the server):
    /// what an injected reorder swaps.
    pub(crate) fn same_source(a: &Arc<Publication>, b: &Arc<Publication>) -> bool {
        match (&a.source, &b.source) {
            (
                Source::Group {
                    group: ga,
                    from_user_id: ua,
                },
                Source::Group {
                    group: gb,
                    from_user_id: ub,
                },
            ) => ga == gb && ua == ub,
            (Source::Server, Source::Server) => true,
            _ => false,
        }
    }

    /// Approximate bytes this message costs on a socket of `mode` (for buffer bounds).
    pub(crate) fn wire_len(&self, mode: &Mode) -> usize {
        match mode {
            // `{"sequenceId":N,` adds at most 35 bytes.
            Mode::Json | Mode::JsonReliable => self.json().len() + 35,
            // The sequence id (key and varint) adds at most 11, the longer length 9 more.
            Mode::Protobuf | Mode::ProtobufReliable => self.protobuf().len() + 20,
            Mode::Simple { .. } => match self.raw() {
                RawFrame::Text(b) | RawFrame::Binary(b) => b.len(),
            },
        }
    }
}

/// Bytes per thread from which stamped frames are cut; a larger frame gets its own.
const STAMP_CHUNK: usize = 64 * 1024;

thread_local! {
    /// Where this thread writes stamped frames. Each frame is handed out as a slice of the
    /// chunk, which is freed once every frame cut from it has been written.
    static STAMPS: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Makes `chunk` hold room for `need` more bytes: a new chunk when it is short (the old one
/// is freed once every frame cut from it has been written).
fn make_room(chunk: &mut BytesMut, need: usize) {
    if chunk.capacity() - chunk.len() < need {
        *chunk = BytesMut::with_capacity(STAMP_CHUNK.max(need));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wire_form_is_built_once_and_shared() {
        let p = Publication::group("g", Some("u"), Payload::Text("hi".into()));
        assert!(std::ptr::eq(p.json(), p.json()));
        assert!(std::ptr::eq(p.raw(), p.raw()));
        let json = String::from_utf8(p.json().plain().to_vec()).unwrap();
        assert!(
            json.contains(r#""group":"g""#) && json.contains(r#""fromUserId":"u""#),
            "{json}"
        );
        // (mode, bytes counted against the buffers)
        let table = [
            (Mode::Json, p.json().len() + 35),
            (Mode::JsonReliable, p.json().len() + 35),
            (Mode::ProtobufReliable, p.protobuf().len() + 20),
            (Mode::Simple { publish_to: None }, 2),
        ];
        for (mode, len) in table {
            assert_eq!(p.wire_len(&mode), len, "{mode:?}");
        }
        let binary = Publication::server(Payload::Binary(Bytes::from_static(&[1, 2, 3])));
        assert!(matches!(binary.raw(), RawFrame::Binary(b) if b.as_ref() == [1, 2, 3]));
    }

    #[test]
    fn a_stamped_frame_is_the_codec_s_and_frames_share_a_chunk() {
        let small = Publication::group("g", Some("u"), Payload::Text("hi".into()));
        let big = Publication::server(Payload::Text("x".repeat(STAMP_CHUNK)));
        assert_eq!(small.json_for(None), small.json().plain());
        assert_eq!(small.protobuf_for(None), small.protobuf().plain());
        // Enough stamps to cross chunk boundaries, with ids of every width.
        let mut previous: Option<Bytes> = None;
        let mut shared = 0;
        for (i, seq) in (0..2_000u64)
            .map(|i| (i, i * 9_223_372_036_854_775))
            .chain([(0, u64::MAX)])
        {
            let p = if i % 500 == 499 { &big } else { &small };
            // JSON and protobuf receivers alternate, cutting from the same chunk.
            let (stamped, whole, plain, extra) = if i % 2 == 0 {
                let f = p.json();
                (
                    p.json_for(Some(seq)),
                    f.with_sequence_id(seq),
                    f.len(),
                    STAMP_EXTRA,
                )
            } else {
                let f = p.protobuf();
                let extra = protobuf::STAMP_EXTRA;
                (
                    p.protobuf_for(Some(seq)),
                    f.with_sequence_id(seq),
                    f.len(),
                    extra,
                )
            };
            assert_eq!(stamped, whole, "sequence id {seq}");
            assert!(
                stamped.len() <= plain + extra,
                "sequence id {seq} overran its room"
            );
            if let Some(prev) = &previous {
                // Cut from the same chunk: this frame starts where the last one ended.
                if prev.as_ptr().wrapping_add(prev.len()) == stamped.as_ptr() {
                    shared += 1;
                }
            }
            previous = Some(stamped);
        }
        assert!(
            shared > 1_500,
            "only {shared} of 2,000 stamps shared a chunk"
        );
    }

    #[test]
    fn the_source_is_the_group_and_sender_or_the_server() {
        let data = || Payload::Text("x".into());
        let a = Publication::group("g", Some("u"), data());
        // (other, same source as `a`)
        let table = [
            (Publication::group("g", Some("u"), data()), true),
            (Publication::group("g", Some("v"), data()), false),
            (Publication::group("h", Some("u"), data()), false),
            (Publication::group("g", None, data()), false),
            (Publication::server(data()), false),
        ];
        for (other, same) in table {
            assert_eq!(Publication::same_source(&a, &other), same, "{other:?}");
        }
        let s = Publication::server(data());
        assert!(Publication::same_source(&s, &Publication::server(data())));
    }
}
