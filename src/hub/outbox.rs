//! The pure parts of a connection: its [`Outbox`] (the replay buffer of a reliable connection
//! with its sequence ids, bounds and trimming on `sequenceAck`; the socket attached now; when
//! it was detached), the recovery admission ([`admit_recovery`], [`Outbox::attach_recovered`],
//! [`SocketEnd::keeps_session`]) and the memory of ack ids already claimed. No lock, no actor,
//! no clock read: time comes in as an argument. `state.rs` holds these under its mutexes and
//! does what they decide; the deterministic simulator drives the same code.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::faults::Misdelivery;

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

/// Why a recovery is refused (each closes the socket with 1008).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecoveryRefusal {
    /// No such session in this hub (never existed, expired, or removed).
    Unknown,
    /// The reconnection token does not belong to the session.
    BadToken,
    /// The connection, or the recovering socket, does not use the reliable subprotocol.
    NotReliable,
    /// A fault told the hub to refuse.
    Refused,
}

impl RecoveryRefusal {
    /// The close reason (no secrets).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            RecoveryRefusal::Unknown => {
                "Session not found: it expired or was removed; start a new connection"
            }
            RecoveryRefusal::BadToken => {
                "Invalid reconnection token for this connection; start a new connection"
            }
            RecoveryRefusal::NotReliable => {
                "The connection, or the recovering socket, does not use the session's reliable subprotocol; start a new connection"
            }
            RecoveryRefusal::Refused => {
                "Recovery refused by an injected fault; start a new connection"
            }
        }
    }
}

/// What the hub found for a recovery request (`awps_connection_id`), before the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryRequest {
    /// The named session exists in the named hub; the fields below describe it.
    pub(crate) found: bool,
    /// The session uses the reliable subprotocol.
    pub(crate) reliable: bool,
    /// The request's reconnection token is the session's.
    pub(crate) token_matches: bool,
    /// The recovering socket offers the session's own reliable subprotocol (JSON or protobuf).
    pub(crate) offers_reliable: bool,
}

/// The recovery admission before the upgrade: the first reason to refuse, in this order, or
/// `Ok`. `take_refusal` consumes an armed refusal fault; it is asked only for a request that
/// would otherwise be admitted, so a fault is never spent on a recovery that fails anyway.
/// A refused session must then be removed by the caller: the client starts anew.
pub(crate) fn admit_recovery(
    request: RecoveryRequest,
    take_refusal: impl FnOnce() -> bool,
) -> Result<(), RecoveryRefusal> {
    if !request.found {
        Err(RecoveryRefusal::Unknown)
    } else if !request.reliable {
        Err(RecoveryRefusal::NotReliable)
    } else if !request.token_matches {
        Err(RecoveryRefusal::BadToken)
    } else if !request.offers_reliable {
        Err(RecoveryRefusal::NotReliable)
    } else if take_refusal() {
        Err(RecoveryRefusal::Refused)
    } else {
        Ok(())
    }
}

/// How a socket ended, as its actor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketEnd {
    /// The network or the peer went away without a close frame, or the hub dropped it on
    /// purpose: a reliable session waits for recovery.
    Lost,
    /// The client sent a close frame with this code. 1000, 1001 and no code (1005, what a
    /// browser sends for `close()`) mean "I am leaving": the session ends. Any other code is
    /// treated like a lost socket.
    ClientClosed(u16),
    /// The hub closed it because of the peer's input or a decision that ends the session.
    Ended,
    /// The hub closed it with a close frame but the session may be recovered (faults).
    ClosedRecoverable,
}

impl SocketEnd {
    /// Whether a reliable session outlives a socket that ended this way (waits for recovery).
    pub(crate) fn keeps_session(self) -> bool {
        match self {
            SocketEnd::Lost | SocketEnd::ClosedRecoverable => true,
            SocketEnd::ClientClosed(code) => !matches!(code, 1000 | 1001 | 1005),
            SocketEnd::Ended => false,
        }
    }
}

/// The limits of one connection's replay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayLimits {
    /// Unacknowledged messages at most.
    pub(crate) messages: usize,
    /// Unacknowledged bytes at most.
    pub(crate) bytes: usize,
}

/// What [`Outbox::stamp`] decided for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamped {
    /// Send it, with this sequence id (reliable connections) to the attached socket, if any.
    Send(Option<u64>),
    /// The connection is gone: nothing is sent.
    Dead,
    /// The replay buffer passed a bound: the connection must be closed as a slow client
    /// (1008, not recoverable); it is marked dead already.
    Overflow,
}

/// What a recovering socket replaced, for the counters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reattached<S> {
    /// A socket still attached (half-open, unnoticed): the hub must drop it.
    pub(crate) stale: Option<S>,
    /// The session was waiting for recovery.
    pub(crate) was_detached: bool,
}

/// What a socket's end means for its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detached {
    /// Not the attached socket (superseded by a recovery, or the connection is gone already):
    /// nothing changes.
    NotCurrent,
    /// Detached; the reliable session waits for a recovery within the window.
    Kept,
    /// Detached, and the connection must be removed.
    Ended,
}

/// What [`Outbox::close`] took from a connection that is going away.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed<S> {
    /// The socket to close or drop, if one was attached.
    pub(crate) socket: Option<S>,
    /// The session was waiting for recovery.
    pub(crate) was_detached: bool,
}

/// Misdeliveries armed on one connection ([`Misdelivery`]), and the message held back by a
/// reorder until the next one from the same source.
#[derive(Debug)]
struct Armed<M> {
    lose: u64,
    duplicate: u64,
    reorder: u64,
    held: Option<M>,
}

impl<M> Default for Armed<M> {
    fn default() -> Self {
        Armed {
            lose: 0,
            duplicate: 0,
            reorder: 0,
            held: None,
        }
    }
}

/// What to do with a message given the misdeliveries armed on its connection
/// ([`Outbox::misdeliver`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan<M> {
    /// Deliver it once (nothing armed).
    Deliver,
    /// Drop it silently: no sequence id, no replay, no socket.
    Lose,
    /// Deliver it twice, each copy numbered as a message of its own.
    Duplicate,
    /// Hold it back until the next message from the same source.
    Hold,
    /// Deliver it, then the message held back before it.
    Release(M),
}

/// One connection's outbox: its replay buffer, the socket attached now (with its generation,
/// unique per socket, so a stale socket's end cannot detach its successor), when the socket
/// was lost, and whether the connection is gone. `M` is the message, `S` the socket handle (a
/// mailbox in the hub, a link in the simulator).
#[derive(Debug)]
pub(crate) struct Outbox<M, S> {
    replay: ReplayBuffer<M>,
    socket: Option<(u64, S)>,
    detached_at: Option<Instant>,
    /// No more frames may be queued: the connection is being removed.
    dead: bool,
    /// Boxed: absent on all but the few connections a test breaks on purpose.
    armed: Option<Box<Armed<M>>>,
}

impl<M, S> Default for Outbox<M, S> {
    fn default() -> Self {
        Outbox {
            replay: ReplayBuffer::default(),
            socket: None,
            detached_at: None,
            dead: false,
            armed: None,
        }
    }
}

impl<M, S> Outbox<M, S> {
    /// A new connection's first socket.
    pub(crate) fn attach(&mut self, generation: u64, socket: S) {
        self.socket = Some((generation, socket));
    }

    /// The socket attached now.
    pub(crate) fn socket(&self) -> Option<&S> {
        self.socket.as_ref().map(|(_, s)| s)
    }

    /// Whether the connection is gone (or going).
    #[cfg(test)]
    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Attaches a recovering socket (admitted by [`admit_recovery`]): it supersedes a socket
    /// still attached, which the client knows better than the hub to be dead. `Unknown` if
    /// the connection went away since the admission, or the hub is stopping. The socket then
    /// writes [`Outbox::unacked`] right after `connected`.
    pub(crate) fn attach_recovered(
        &mut self,
        generation: u64,
        socket: S,
        stopping: bool,
    ) -> Result<Reattached<S>, RecoveryRefusal> {
        if self.dead || stopping {
            return Err(RecoveryRefusal::Unknown);
        }
        let stale = self.socket.replace((generation, socket)).map(|(_, s)| s);
        Ok(Reattached {
            stale,
            was_detached: self.detached_at.take().is_some(),
        })
    }

    /// Everything not yet acknowledged, in order: what a recovered socket replays.
    pub(crate) fn unacked(&self) -> impl ExactSizeIterator<Item = (u64, &M, usize)> {
        self.replay.unacked()
    }

    /// The socket of `generation` ended at `now` in the way `end` says: detach it, and keep
    /// the session for recovery (reliable, not stopping, an end that keeps sessions) or end it.
    pub(crate) fn socket_ended(
        &mut self,
        generation: u64,
        end: SocketEnd,
        reliable: bool,
        stopping: bool,
        now: Instant,
    ) -> Detached {
        if self.socket.as_ref().map(|(g, _)| *g) != Some(generation) {
            return Detached::NotCurrent;
        }
        self.socket = None;
        if reliable && !self.dead && !stopping && end.keeps_session() {
            self.detached_at = Some(now);
            Detached::Kept
        } else {
            Detached::Ended
        }
    }

    /// Whether the session has waited for recovery for `window` or longer at `now`.
    pub(crate) fn expired(&self, now: Instant, window: Duration) -> bool {
        self.detached_at
            .is_some_and(|at| now.saturating_duration_since(at) >= window)
    }

    /// The connection goes away: nothing more is queued or replayed; returns its socket.
    pub(crate) fn close(&mut self) -> Closed<S> {
        self.dead = true;
        self.replay.clear();
        self.armed = None;
        Closed {
            socket: self.socket.take().map(|(_, s)| s),
            was_detached: self.detached_at.take().is_some(),
        }
    }

    /// Stamps a message of `size` bytes for this connection: a reliable connection gives it
    /// the next sequence id and keeps it for replay within `limits`.
    pub(crate) fn stamp(
        &mut self,
        message: M,
        size: usize,
        reliable: bool,
        limits: ReplayLimits,
    ) -> Stamped {
        if self.dead {
            return Stamped::Dead;
        }
        if !reliable {
            return Stamped::Send(None);
        }
        match self
            .replay
            .push(message, size, limits.messages, limits.bytes)
        {
            Ok(seq) => Stamped::Send(Some(seq)),
            Err(Overflow) => {
                self.dead = true;
                Stamped::Overflow
            }
        }
    }

    /// Marks the connection dead without clearing it (the outbound queue overflowed; the
    /// removal that follows clears it).
    pub(crate) fn kill(&mut self) {
        self.dead = true;
    }

    /// Arms `count` misdeliveries of `kind` for the next messages to this connection.
    pub(crate) fn arm(&mut self, kind: Misdelivery, count: u64) {
        let armed = self.armed.get_or_insert_with(Box::default);
        let counter = match kind {
            Misdelivery::Lose => &mut armed.lose,
            Misdelivery::Duplicate => &mut armed.duplicate,
            Misdelivery::Reorder => &mut armed.reorder,
        };
        *counter = counter.saturating_add(count);
    }

    /// What to do with `message`, given what is armed (losses first, then duplicates, then
    /// reorders), consuming one of it. A reorder holds a message back and releases it right
    /// after the next one that `same_source` says comes from the same publisher, so a checker
    /// that judges order per publisher sees exactly one reorder; messages of other sources
    /// pass meanwhile. A held message of a connection that goes away is lost with it.
    pub(crate) fn misdeliver(
        &mut self,
        message: &M,
        same_source: impl Fn(&M, &M) -> bool,
    ) -> Plan<M> {
        // A connection going away gets nothing wrong: `stamp` drops the message anyway, and
        // counting it as injected would make the counts differ from what a checker sees.
        let Some(armed) = self.armed.as_deref_mut().filter(|_| !self.dead) else {
            return Plan::Deliver;
        };
        if armed
            .held
            .as_ref()
            .is_some_and(|held| same_source(held, message))
        {
            armed.reorder = armed.reorder.saturating_sub(1);
            let held = armed.held.take().map_or(Plan::Deliver, Plan::Release);
            self.disarm_if_spent();
            return held;
        }
        let plan = if armed.lose > 0 {
            armed.lose -= 1;
            Plan::Lose
        } else if armed.duplicate > 0 {
            armed.duplicate -= 1;
            Plan::Duplicate
        } else if armed.reorder > 0 && armed.held.is_none() {
            Plan::Hold
        } else {
            Plan::Deliver
        };
        self.disarm_if_spent();
        plan
    }

    /// Keeps `message`, held back by [`Plan::Hold`].
    pub(crate) fn hold(&mut self, message: M) {
        if let Some(armed) = self.armed.as_deref_mut() {
            armed.held = Some(message);
        }
    }

    fn disarm_if_spent(&mut self) {
        if self
            .armed
            .as_ref()
            .is_some_and(|a| a.lose == 0 && a.duplicate == 0 && a.reorder == 0 && a.held.is_none())
        {
            self.armed = None;
        }
    }

    /// A `sequenceAck`: see [`ReplayBuffer::ack`].
    pub(crate) fn sequence_ack(&mut self, sequence_id: u64) {
        self.replay.ack(sequence_id);
    }

    /// The replay buffer, for bounds checks in tests.
    #[cfg(test)]
    pub(crate) fn replay(&self) -> &ReplayBuffer<M> {
        &self.replay
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

    /// Every combination of what the hub found, and whether a refusal fault is armed.
    #[test]
    fn recovery_admission_refuses_in_order_and_spends_a_fault_only_on_an_admissible_request() {
        let ok = RecoveryRequest {
            found: true,
            reliable: true,
            token_matches: true,
            offers_reliable: true,
        };
        use RecoveryRefusal::*;
        // (request, fault armed) -> (result, fault spent)
        let table = [
            (ok, false, Ok(()), false),
            (ok, true, Err(Refused), true),
            (
                RecoveryRequest { found: false, ..ok },
                true,
                Err(Unknown),
                false,
            ),
            (
                RecoveryRequest {
                    reliable: false,
                    ..ok
                },
                true,
                Err(NotReliable),
                false,
            ),
            (
                RecoveryRequest {
                    token_matches: false,
                    ..ok
                },
                true,
                Err(BadToken),
                false,
            ),
            (
                RecoveryRequest {
                    offers_reliable: false,
                    ..ok
                },
                true,
                Err(NotReliable),
                false,
            ),
            // A missing session is reported as such whatever else is wrong.
            (
                RecoveryRequest {
                    found: false,
                    reliable: false,
                    token_matches: false,
                    offers_reliable: false,
                },
                false,
                Err(Unknown),
                false,
            ),
            // A wrong token is reported before the offered subprotocol.
            (
                RecoveryRequest {
                    token_matches: false,
                    offers_reliable: false,
                    ..ok
                },
                false,
                Err(BadToken),
                false,
            ),
        ];
        for (request, armed, expected, spent) in table {
            let mut asked = false;
            let got = admit_recovery(request, || {
                asked = true;
                armed
            });
            assert_eq!(
                (got, asked && armed),
                (expected, spent),
                "{request:?} armed {armed}"
            );
        }
    }

    #[test]
    fn a_socket_end_keeps_a_reliable_session_unless_it_says_goodbye() {
        use SocketEnd::*;
        // (end, reliable, stopping) -> what happens
        let table = [
            (Lost, true, false, Detached::Kept),
            (ClosedRecoverable, true, false, Detached::Kept),
            (ClientClosed(1011), true, false, Detached::Kept),
            (ClientClosed(4000), true, false, Detached::Kept),
            (ClientClosed(1000), true, false, Detached::Ended),
            (ClientClosed(1001), true, false, Detached::Ended),
            (ClientClosed(1005), true, false, Detached::Ended),
            (Ended, true, false, Detached::Ended),
            (Lost, false, false, Detached::Ended),
            (Lost, true, true, Detached::Ended),
        ];
        let now = Instant::now();
        for (end, reliable, stopping, expected) in table {
            let mut outbox: Outbox<(), &str> = Outbox::default();
            outbox.attach(1, "first");
            assert_eq!(
                outbox.socket_ended(2, end, reliable, stopping, now),
                Detached::NotCurrent,
                "another generation's end changes nothing"
            );
            assert_eq!(outbox.socket(), Some(&"first"));
            let got = outbox.socket_ended(1, end, reliable, stopping, now);
            assert_eq!(
                got, expected,
                "{end:?} reliable {reliable} stopping {stopping}"
            );
            assert_eq!(outbox.socket(), None);
            assert_eq!(
                outbox.expired(now + Duration::from_secs(30), Duration::from_secs(30)),
                expected == Detached::Kept,
                "only a kept session waits, and expires at the window"
            );
            assert!(!outbox.expired(now + Duration::from_secs(29), Duration::from_secs(30)));
        }
    }

    #[test]
    fn a_recovery_supersedes_a_stale_socket_and_replays_what_was_not_acked() {
        let limits = ReplayLimits {
            messages: 10,
            bytes: 100,
        };
        let now = Instant::now();
        let mut outbox: Outbox<&str, &str> = Outbox::default();
        outbox.attach(1, "first");
        for m in ["a", "b", "c"] {
            assert!(matches!(
                outbox.stamp(m, 1, true, limits),
                Stamped::Send(Some(_))
            ));
        }
        outbox.sequence_ack(1);
        // The client recovers while the hub still holds its old, half-open socket.
        let re = outbox.attach_recovered(2, "second", false).unwrap();
        assert_eq!(
            re,
            Reattached {
                stale: Some("first"),
                was_detached: false
            }
        );
        let replay: Vec<_> = outbox.unacked().map(|(seq, m, _)| (seq, *m)).collect();
        assert_eq!(replay, [(2, "b"), (3, "c")]);
        // The superseded socket's end does not detach its successor.
        assert_eq!(
            outbox.socket_ended(1, SocketEnd::Lost, true, false, now),
            Detached::NotCurrent
        );
        // Lost, then recovered: nothing stale, the wait is over.
        assert_eq!(
            outbox.socket_ended(2, SocketEnd::Lost, true, false, now),
            Detached::Kept
        );
        let re = outbox.attach_recovered(3, "third", false).unwrap();
        assert_eq!(
            re,
            Reattached {
                stale: None,
                was_detached: true
            }
        );
        assert!(!outbox.expired(now + Duration::from_secs(99), Duration::from_secs(1)));
        // A stopping hub, or a connection gone since the admission, refuses.
        assert_eq!(
            outbox.attach_recovered(4, "fourth", true),
            Err(RecoveryRefusal::Unknown)
        );
        let closed = outbox.close();
        assert_eq!(
            closed,
            Closed {
                socket: Some("third"),
                was_detached: false
            }
        );
        assert_eq!(outbox.unacked().len(), 0);
        assert_eq!(
            outbox.attach_recovered(5, "fifth", false),
            Err(RecoveryRefusal::Unknown)
        );
        assert_eq!(outbox.stamp("d", 1, true, limits), Stamped::Dead);
    }

    #[test]
    fn stamping_numbers_reliable_messages_only_and_overflow_kills_the_connection() {
        let limits = ReplayLimits {
            messages: 2,
            bytes: 100,
        };
        let mut plain: Outbox<(), ()> = Outbox::default();
        let got: Vec<_> = (0..3).map(|_| plain.stamp((), 1, false, limits)).collect();
        assert_eq!(got, [Stamped::Send(None); 3], "no bound without replay");
        let mut reliable: Outbox<(), ()> = Outbox::default();
        let got: Vec<_> = (0..4)
            .map(|_| reliable.stamp((), 1, true, limits))
            .collect();
        assert_eq!(
            got,
            [
                Stamped::Send(Some(1)),
                Stamped::Send(Some(2)),
                Stamped::Overflow,
                Stamped::Dead
            ]
        );
        assert!(reliable.is_dead());
    }

    /// Runs messages `(source, number)` through an outbox with what `arm` arms; returns what
    /// reaches the socket, in order.
    fn misdelivered(arm: &[(Misdelivery, u64)], messages: &[(char, u32)]) -> Vec<(char, u32)> {
        let mut outbox: Outbox<(char, u32), ()> = Outbox::default();
        for (kind, count) in arm {
            outbox.arm(*kind, *count);
        }
        let mut out = Vec::new();
        for m in messages {
            match outbox.misdeliver(m, |a, b| a.0 == b.0) {
                Plan::Deliver => out.push(*m),
                Plan::Lose => {}
                Plan::Duplicate => out.extend([*m, *m]),
                Plan::Hold => outbox.hold(*m),
                Plan::Release(held) => out.extend([*m, held]),
            }
        }
        out
    }

    #[test]
    fn misdeliveries_lose_duplicate_and_reorder_exactly_what_was_armed() {
        use Misdelivery::*;
        let a = |n| ('a', n);
        let b = |n| ('b', n);
        type Row = (
            &'static [(Misdelivery, u64)],
            Vec<(char, u32)>,
            Vec<(char, u32)>,
        );
        let table: [Row; 7] = [
            (&[], vec![a(1), a(2)], vec![a(1), a(2)]),
            (&[(Lose, 2)], vec![a(1), a(2), a(3)], vec![a(3)]),
            (&[(Duplicate, 1)], vec![a(1), a(2)], vec![a(1), a(1), a(2)]),
            // A reorder swaps a message with the next one of the same source; others pass.
            (
                &[(Reorder, 1)],
                vec![a(1), b(1), a(2), a(3)],
                vec![b(1), a(2), a(1), a(3)],
            ),
            (
                &[(Reorder, 2)],
                vec![a(1), a(2), a(3), a(4), a(5)],
                vec![a(2), a(1), a(4), a(3), a(5)],
            ),
            // Losses first, then duplicates, then reorders.
            (
                &[(Reorder, 1), (Duplicate, 1), (Lose, 1)],
                vec![a(1), a(2), a(3), a(4)],
                vec![a(2), a(2), a(4), a(3)],
            ),
            // A held message with no successor of its source is never released.
            (&[(Reorder, 1)], vec![a(1), b(1)], vec![b(1)]),
        ];
        for (arm, messages, expected) in table {
            assert_eq!(misdelivered(arm, &messages), expected, "{arm:?}");
        }
    }

    #[test]
    fn an_outbox_with_nothing_armed_left_goes_back_to_the_fast_path() {
        let mut outbox: Outbox<u32, ()> = Outbox::default();
        outbox.arm(Misdelivery::Reorder, 1);
        assert_eq!(outbox.misdeliver(&1, |_, _| true), Plan::Hold);
        outbox.hold(1);
        assert!(outbox.armed.is_some(), "a held message keeps it armed");
        assert_eq!(outbox.misdeliver(&2, |_, _| true), Plan::Release(1));
        assert!(outbox.armed.is_none());
        outbox.arm(Misdelivery::Lose, 1);
        outbox.kill();
        assert_eq!(
            outbox.misdeliver(&3, |_, _| true),
            Plan::Deliver,
            "dead: nothing injected"
        );
        let _ = outbox.close();
        assert!(
            outbox.armed.is_none(),
            "a closed connection forgets its faults"
        );
    }
}
