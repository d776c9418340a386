//! Sequence ids of the reliable subprotocols: which messages to deliver, and when to send
//! a `sequenceAck`.

use std::time::{Duration, Instant};

use crate::protocol::SequenceId;

/// How long after a new id arrives its `sequenceAck` goes out at the latest: the 1000 ms
/// ack task of all three official clients (protocol.md 3.2).
pub const SEQUENCE_ACK_INTERVAL: Duration = Duration::from_secs(1);

/// Ack at once when the max has moved this far since the last ack, so a fast stream does
/// not fill the service's 1000-message buffer between two periodic acks (JS
/// `_quickSequenceAckDiff = 300`, protocol.md 3.2).
pub const SEQUENCE_ACK_IMMEDIATE_AFTER: u64 = 300;

/// What to do with an incoming data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// New (or without sequence id): hand it to the user.
    Deliver,
    /// Already seen (id <= max): drop it. The max is re-acked anyway, since a replay means
    /// the service did not get our last ack.
    Duplicate,
}

/// The receiving side of the reliable subprotocol for one client (rules 6 to 8 of the
/// [module contract](super)).
///
/// Sequence id 0 reads as "no id", as in Python. Acks are cumulative, so one ack of the
/// max answers any number of messages. The deadline runs from the first message after the
/// last ack, not from a repeating 1 s tick: the same bound (one periodic ack per interval)
/// with no timer at all while nothing arrives.
#[derive(Debug, Clone)]
pub struct SequenceTracker {
    max: SequenceId,
    last_acked: SequenceId,
    due_at: Option<Instant>,
    interval: Duration,
    immediate_after: u64,
}

impl Default for SequenceTracker {
    fn default() -> Self {
        SequenceTracker::new()
    }
}

impl SequenceTracker {
    /// A tracker with the official clients' timing.
    pub fn new() -> SequenceTracker {
        SequenceTracker::with_timing(SEQUENCE_ACK_INTERVAL, SEQUENCE_ACK_IMMEDIATE_AFTER)
    }

    /// A tracker with another ack interval and immediate-ack threshold.
    pub fn with_timing(interval: Duration, immediate_after: u64) -> SequenceTracker {
        SequenceTracker {
            max: 0,
            last_acked: 0,
            due_at: None,
            interval,
            immediate_after,
        }
    }

    /// Records a data message received at `now` and says whether to deliver it.
    pub fn on_message(&mut self, sequence_id: Option<SequenceId>, now: Instant) -> SeqVerdict {
        let Some(id) = sequence_id.filter(|&id| id != 0) else {
            return SeqVerdict::Deliver;
        };
        self.arm(now, self.interval);
        if id <= self.max {
            return SeqVerdict::Duplicate;
        }
        self.max = id;
        if self.max - self.last_acked >= self.immediate_after {
            self.arm(now, Duration::ZERO);
        }
        SeqVerdict::Deliver
    }

    /// The `sequenceAck` to send now, if one is due. Returning it counts as sent; call
    /// [`Self::on_ack_send_failed`] if the send fails.
    pub fn poll_ack(&mut self, now: Instant) -> Option<SequenceId> {
        if self.due_at.is_some_and(|due| due <= now) {
            self.due_at = None;
            self.last_acked = self.max;
            Some(self.max)
        } else {
            None
        }
    }

    /// When the next `sequenceAck` is due, for the actor's timer; `None` when none is owed.
    pub fn next_ack_deadline(&self) -> Option<Instant> {
        self.due_at
    }

    /// The ack returned by [`Self::poll_ack`] did not go out: try again one interval later
    /// (not at once, so a failing socket does not spin).
    pub fn on_ack_send_failed(&mut self, now: Instant) {
        self.arm(now, self.interval);
    }

    /// The session was recovered on a new socket: keep the max (the service replays after
    /// the last acked id) and re-ack it at once, since the last ack may have died with the
    /// old socket.
    pub fn on_recovered(&mut self, now: Instant) {
        if self.max > 0 {
            self.arm(now, Duration::ZERO);
        }
    }

    /// A brand-new connection started: its sequence ids start again, nothing is owed.
    pub fn on_new_connection(&mut self) {
        self.max = 0;
        self.last_acked = 0;
        self.due_at = None;
    }

    /// The largest sequence id received on this session (0 before the first).
    pub fn max(&self) -> SequenceId {
        self.max
    }

    /// Makes an ack due by `now + after`, keeping an earlier deadline.
    fn arm(&mut self, now: Instant, after: Duration) {
        let at = now.checked_add(after).unwrap_or(now);
        self.due_at = Some(self.due_at.map_or(at, |due| due.min(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeqVerdict::{Deliver, Duplicate};

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = SEQUENCE_ACK_INTERVAL;

    #[test]
    fn message_without_sequence_id_is_delivered_and_duplicates_dropped() {
        let t0 = Instant::now();
        let mut seq = SequenceTracker::new();
        let verdicts = [None, Some(0)].map(|id| seq.on_message(id, t0));
        assert_eq!(verdicts, [Deliver; 2]);
        assert_eq!(seq.next_ack_deadline(), None, "nothing to ack without ids");
        // A gap (2 to 5) is not a duplicate; anything at or below the max is.
        let v = [1, 2, 2, 1, 5, 3].map(|id| seq.on_message(Some(id), t0));
        assert_eq!(
            v,
            [Deliver, Deliver, Duplicate, Duplicate, Deliver, Duplicate]
        );
        assert_eq!(seq.max(), 5);
    }

    #[test]
    fn sequence_ack_due_after_one_second_when_new_ids_arrived() {
        let t0 = Instant::now();
        let mut seq = SequenceTracker::new();
        seq.on_message(Some(1), t0);
        seq.on_message(Some(2), t0 + 300 * MS);
        assert_eq!(seq.next_ack_deadline(), Some(t0 + SEC));
        assert_eq!(seq.poll_ack(t0 + 999 * MS), None);
        assert_eq!(seq.poll_ack(t0 + SEC), Some(2));
        assert_eq!(seq.poll_ack(t0 + SEC), None);
    }

    #[test]
    fn no_sequence_ack_when_nothing_new() {
        let t0 = Instant::now();
        let mut seq = SequenceTracker::new();
        assert_eq!(seq.poll_ack(t0 + 10 * SEC), None);
        seq.on_message(Some(1), t0);
        assert_eq!(seq.poll_ack(t0 + SEC), Some(1));
        assert_eq!(seq.next_ack_deadline(), None);
        assert_eq!(seq.poll_ack(t0 + 60 * SEC), None);
    }

    #[test]
    fn sequence_ack_immediate_after_300_new_ids() {
        let t0 = Instant::now();
        let mut seq = SequenceTracker::new();
        for id in 1..SEQUENCE_ACK_IMMEDIATE_AFTER {
            seq.on_message(Some(id), t0);
            assert_eq!(seq.poll_ack(t0), None, "id {id}");
        }
        seq.on_message(Some(300), t0 + MS);
        assert_eq!(seq.next_ack_deadline(), Some(t0 + MS));
        assert_eq!(seq.poll_ack(t0 + MS), Some(300));
        // The count restarts from the ack just sent.
        seq.on_message(Some(301), t0 + 2 * MS);
        assert_eq!(seq.poll_ack(t0 + 2 * MS), None);
        // A single jump of 300 counts too.
        seq.on_message(Some(601), t0 + 3 * MS);
        assert_eq!(seq.poll_ack(t0 + 3 * MS), Some(601));
    }

    #[test]
    fn duplicate_sequence_id_is_dropped_but_reacked() {
        let t0 = Instant::now();
        let mut seq = SequenceTracker::new();
        seq.on_message(Some(4), t0);
        assert_eq!(seq.poll_ack(t0 + SEC), Some(4));
        let t1 = t0 + 5 * SEC;
        assert_eq!(seq.on_message(Some(3), t1), Duplicate);
        assert_eq!(seq.next_ack_deadline(), Some(t1 + SEC));
        assert_eq!(seq.poll_ack(t1 + SEC), Some(4));
    }

    #[test]
    fn failed_ack_send_rearms() {
        let t0 = Instant::now();
        let mut seq = SequenceTracker::new();
        seq.on_message(Some(7), t0);
        assert_eq!(seq.poll_ack(t0 + SEC), Some(7));
        seq.on_ack_send_failed(t0 + SEC);
        assert_eq!(seq.poll_ack(t0 + SEC), None);
        assert_eq!(seq.poll_ack(t0 + 2 * SEC), Some(7));
    }

    #[test]
    fn max_kept_across_recovery_reset_on_new_connection() {
        let t0 = Instant::now();
        let mut seq = SequenceTracker::new();
        seq.on_recovered(t0);
        assert_eq!(
            seq.poll_ack(t0 + SEC),
            None,
            "nothing received: nothing to re-ack"
        );
        seq.on_message(Some(10), t0);
        assert_eq!(seq.poll_ack(t0 + SEC), Some(10));
        seq.on_recovered(t0 + 3 * SEC);
        assert_eq!(seq.poll_ack(t0 + 3 * SEC), Some(10), "re-acked at once");
        assert_eq!(seq.on_message(Some(10), t0), Duplicate, "replayed id");
        assert_eq!(seq.on_message(Some(11), t0), Deliver);
        seq.on_new_connection();
        assert_eq!((seq.max(), seq.next_ack_deadline()), (0, None));
        assert_eq!(seq.on_message(Some(1), t0), Deliver, "ids restart");
    }
}
