//! The pure parts of a connection's outbox: the replay buffer of a reliable connection
//! (sequence ids, the message and byte bounds, trimming on `sequenceAck`) and the memory of
//! ack ids already claimed. No lock, no socket, no clock: `state.rs` holds these under its
//! mutexes, and the deterministic simulator drives them directly.

use std::collections::{HashSet, VecDeque};

/// Messages of a reliable connection not yet acknowledged, with their sequence ids.
///
/// Sequence ids start at 1 and increase by one per message for the connection's life. A
/// message stays buffered until a `sequenceAck` at or above its id, so a recovered socket
/// replays exactly what the client may have missed. `M` is the message (shared, so one
/// serialization serves every receiver).
#[derive(Debug)]
pub(crate) struct ReplayBuffer<M> {
    last_sequence_id: u64,
    entries: VecDeque<(u64, M, usize)>,
    bytes: usize,
}

impl<M> Default for ReplayBuffer<M> {
    fn default() -> Self {
        ReplayBuffer {
            last_sequence_id: 0,
            entries: VecDeque::new(),
            bytes: 0,
        }
    }
}

/// The buffer is over one of its bounds: the client acks too slowly (a slow client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

impl<M> ReplayBuffer<M> {
    /// Stamps the next sequence id on a message of `size` bytes and buffers it. `Err` when
    /// the buffer then holds more than `max_messages` or `max_bytes`: the connection must be
    /// closed as unrecoverable (the message stays stamped, nothing is sent).
    pub(crate) fn push(
        &mut self,
        message: M,
        size: usize,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<u64, Overflow> {
        self.last_sequence_id += 1;
        let sequence_id = self.last_sequence_id;
        self.entries.push_back((sequence_id, message, size));
        self.bytes += size;
        if self.entries.len() > max_messages || self.bytes > max_bytes {
            return Err(Overflow);
        }
        Ok(sequence_id)
    }

    /// A `sequenceAck`: drops every message up to `sequence_id`. An id beyond the last one
    /// sent is clamped, so nothing unsent is ever discarded; a lower one changes nothing.
    pub(crate) fn ack(&mut self, sequence_id: u64) {
        let upto = sequence_id.min(self.last_sequence_id);
        while let Some((seq, _, size)) = self.entries.front() {
            if *seq > upto {
                break;
            }
            self.bytes = self.bytes.saturating_sub(*size);
            self.entries.pop_front();
        }
    }

    /// What a recovered socket writes right after `connected`, in order.
    pub(crate) fn unacked(&self) -> impl ExactSizeIterator<Item = (u64, &M, usize)> {
        self.entries.iter().map(|(seq, m, size)| (*seq, m, *size))
    }

    /// Forgets every message (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Messages buffered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes buffered.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Ack ids already claimed by a connection's requests, bounded: the oldest is forgotten first.
///
/// A request claims its id *before* it runs, in one step, so two sockets of the same
/// connection (a stale one and its recovery) cannot both run it; a request that did not take
/// effect gives its id back so a retry is judged again.
#[derive(Debug, Default)]
pub(crate) struct AckMemory {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
}

impl AckMemory {
    /// Claims the id; false when it was already claimed (answer `Duplicate`).
    pub(crate) fn insert(&mut self, id: u64, capacity: usize) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// Gives a claimed id back.
    pub(crate) fn remove(&mut self, id: u64) {
        if self.seen.remove(&id) {
            self.order.retain(|&o| o != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_id_is_claimed_once_released_on_failure_and_bounded() {
        let mut acks = AckMemory::default();
        assert!(acks.insert(1, 2));
        assert!(!acks.insert(1, 2), "a second claim of the same id fails");
        acks.remove(1);
        assert!(acks.insert(1, 2), "a released id can be claimed again");
        assert!(acks.insert(2, 2));
        assert!(acks.insert(3, 2));
        assert!(
            acks.insert(1, 2),
            "the oldest id was forgotten past the bound"
        );
        assert!(!acks.insert(3, 2));
    }

    /// Sequence ids of the pushes, then what is left after each ack.
    #[test]
    fn sequence_ids_increase_and_acks_trim_up_to_the_last_sent() {
        let mut buffer = ReplayBuffer::default();
        let ids: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|m| buffer.push(m, 10, 5, 100))
            .collect();
        assert_eq!(ids, [Ok(1), Ok(2), Ok(3)]);
        // (ack, sequence ids left, bytes left)
        let table = [
            (0, vec![1, 2, 3], 30),
            (2, vec![3], 10),
            (1, vec![3], 10),
            (99, vec![], 0),
        ];
        for (ack, left, bytes) in table {
            buffer.ack(ack);
            let got: Vec<_> = buffer.unacked().map(|(seq, _, _)| seq).collect();
            assert_eq!((got, buffer.bytes()), (left, bytes), "after ack {ack}");
        }
        // An ack beyond the last sent was clamped: the next message is still buffered.
        assert_eq!(buffer.push("d", 10, 5, 100), Ok(4));
        assert_eq!(buffer.len(), 1);
    }

    #[test]
    fn the_message_and_byte_bounds_overflow_past_their_limit() {
        // (max messages, max bytes, sizes pushed) -> result of the last push
        let table = [
            (2, 100, vec![1, 1], Ok(2)),
            (2, 100, vec![1, 1, 1], Err(Overflow)),
            (10, 16, vec![8, 8], Ok(2)),
            (10, 16, vec![8, 8, 1], Err(Overflow)),
        ];
        for (max_messages, max_bytes, sizes, expected) in table {
            let mut buffer = ReplayBuffer::default();
            let last = sizes
                .iter()
                .map(|&size| buffer.push((), size, max_messages, max_bytes))
                .last();
            assert_eq!(last, Some(expected), "{max_messages} {max_bytes} {sizes:?}");
        }
    }
}
