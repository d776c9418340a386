//! Ack ids and the table of operations waiting for their ack.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::{AckError, AckErrorName, AckId};

/// How long Python waits for an ack before failing the send (`_ACK_TIMEOUT = 30.0`,
/// protocol.md 7.1). JS and .NET wait for the ack or the drop; the actor chooses whether
/// to pass a deadline to [`PendingAcks::register_until`].
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Hands out ack ids for one client: 1, 2, 3, ... for the client's whole life (all three
/// official clients count per client instance, protocol.md 7.6).
///
/// Call [`AckIds::assign`] once per logical operation and keep the id for every retry and
/// every resend after a recovery: the service then answers a repeat with `Duplicate`
/// instead of running it twice (protocol.md 3.6).
#[derive(Debug, Clone, Default)]
pub struct AckIds {
    /// The largest id generated or supplied so far (0: none yet).
    last: AckId,
}

impl AckIds {
    /// An allocator whose first id is 1.
    pub fn new() -> AckIds {
        AckIds::default()
    }

    /// The id for a new logical operation: `supplied` when the caller chose one, else the
    /// next generated id. Generated ids skip past every supplied one: the service remembers
    /// ack ids per connection and would answer a collision with `Duplicate` without running
    /// it. (The counter saturates: only a caller supplying `u64::MAX` can reach the end.)
    pub fn assign(&mut self, supplied: Option<AckId>) -> AckId {
        let id = supplied.unwrap_or(self.last.saturating_add(1));
        self.last = self.last.max(id);
        id
    }

    /// The largest id generated or supplied so far (0 before the first).
    pub fn last(&self) -> AckId {
        self.last
    }
}

/// What an ack said about an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// The operation took effect. `duplicated` is true when the service had already run an
    /// operation with this ack id on this connection (error name `Duplicate`): the resend
    /// did not run again, and the first run succeeded, so the caller sees success.
    Success {
        /// The service answered `Duplicate`.
        duplicated: bool,
    },
    /// The service refused or failed the operation. `None` when the ack said
    /// `success: false` without an error object.
    Failed(Option<AckError>),
}

impl AckOutcome {
    /// Reads an ack's `success` and `error` fields. `Duplicate` counts as success whatever
    /// `success` says, as in the JS client (`isDuplicated` from the error name alone).
    pub fn from_ack(success: bool, error: Option<AckError>) -> AckOutcome {
        let duplicated = matches!(&error, Some(e) if e.name == AckErrorName::Duplicate);
        if success || duplicated {
            AckOutcome::Success { duplicated }
        } else {
            AckOutcome::Failed(error)
        }
    }

    /// Whether the operation took effect.
    pub fn is_success(&self) -> bool {
        matches!(self, AckOutcome::Success { .. })
    }
}

/// Whether a failed ack's error name is a passing service failure, worth a retry with the
/// same ack id: `InternalServerError`, and `Timeout` (an event handler that did not answer in
/// time).
pub fn ack_is_transient(name: &AckErrorName) -> bool {
    matches!(name, AckErrorName::InternalServerError)
        || matches!(name, AckErrorName::Other(n) if n == "Timeout")
}

#[derive(Debug)]
struct Entry<T> {
    /// Registration order, so resends after a recovery go out in the order first sent.
    order: u64,
    waiters: Vec<(T, Option<Instant>)>,
}

impl<T> Entry<T> {
    fn into_waiters(self) -> Vec<T> {
        self.waiters.into_iter().map(|(w, _)| w).collect()
    }
}

/// Operations sent with an ack id and not answered yet (rules 3 to 5 of the
/// [module contract](super)). `T` is whatever the actor needs to answer a waiter.
///
/// A second registration of a pending id adds a waiter, and one ack answers both: the
/// official clients share one waiter (protocol.md 7.6); keeping both means neither hangs.
/// Each waiter may have its own deadline; an id whose waiters all expired is not pending.
#[derive(Debug)]
pub struct PendingAcks<T> {
    entries: HashMap<AckId, Entry<T>>,
    next_order: u64,
    unknown_acks: u64,
}

impl<T> Default for PendingAcks<T> {
    fn default() -> Self {
        PendingAcks::new()
    }
}

impl<T> PendingAcks<T> {
    /// An empty table.
    pub fn new() -> PendingAcks<T> {
        PendingAcks {
            entries: HashMap::new(),
            next_order: 0,
            unknown_acks: 0,
        }
    }

    /// Waits for the ack of `ack_id` with no deadline (JS and .NET behaviour).
    pub fn register(&mut self, ack_id: AckId, waiter: T) {
        self.insert(ack_id, waiter, None);
    }

    /// Waits for the ack of `ack_id` until `deadline` (Python behaviour, see
    /// [`DEFAULT_ACK_TIMEOUT`]).
    pub fn register_until(&mut self, ack_id: AckId, waiter: T, deadline: Instant) {
        self.insert(ack_id, waiter, Some(deadline));
    }

    fn insert(&mut self, ack_id: AckId, waiter: T, deadline: Option<Instant>) {
        let next_order = &mut self.next_order;
        let entry = self.entries.entry(ack_id).or_insert_with(|| {
            *next_order += 1;
            Entry {
                order: *next_order,
                waiters: Vec::new(),
            }
        });
        entry.waiters.push((waiter, deadline));
    }

    /// Answers an ack: removes `ack_id` and returns its waiters with the outcome. `None`
    /// (and the unknown-ack counter goes up) when the id is not pending: a late ack after a
    /// timeout, an ack for a fire-and-forget send, or a confused peer.
    pub fn resolve(
        &mut self,
        ack_id: AckId,
        success: bool,
        error: Option<AckError>,
    ) -> Option<(Vec<T>, AckOutcome)> {
        let Some(entry) = self.entries.remove(&ack_id) else {
            self.unknown_acks += 1;
            return None;
        };
        Some((entry.into_waiters(), AckOutcome::from_ack(success, error)))
    }

    /// Removes a pending ack id and returns its waiters (empty when it was not pending).
    pub fn take(&mut self, ack_id: AckId) -> Vec<T> {
        self.entries
            .remove(&ack_id)
            .map(Entry::into_waiters)
            .unwrap_or_default()
    }

    /// The waiters of a pending ack id, to update what the caller keeps in them; order and
    /// deadlines stay as registered.
    pub fn waiters_mut(&mut self, ack_id: AckId) -> impl Iterator<Item = &mut T> {
        self.entries
            .get_mut(&ack_id)
            .into_iter()
            .flat_map(|e| e.waiters.iter_mut().map(|(w, _)| w))
    }

    /// The waiters of a pending ack id, in registration order.
    pub fn waiters(&self, ack_id: AckId) -> impl Iterator<Item = &T> {
        self.entries
            .get(&ack_id)
            .into_iter()
            .flat_map(|e| e.waiters.iter().map(|(w, _)| w))
    }

    /// Empties the table for a reconnect or a stop: every waiter with its id, in registration
    /// order, so each failure can say which ack id it used. A new connection cannot ack
    /// what the old one received.
    pub fn fail_all(&mut self) -> Vec<(AckId, T)> {
        let mut entries: Vec<_> = self.entries.drain().collect();
        entries.sort_by_key(|(_, e)| e.order);
        entries
            .into_iter()
            .flat_map(|(id, e)| e.waiters.into_iter().map(move |(w, _)| (id, w)))
            .collect()
    }

    /// The ack ids in flight, in the order they were first registered: after a recovery
    /// the actor sends these operations again with the same ids. Nothing is removed; the
    /// service answers each resend (with `Duplicate` if the first send had arrived).
    pub fn resend_order(&self) -> Vec<AckId> {
        let mut ids: Vec<_> = self.entries.iter().map(|(id, e)| (e.order, *id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Removes and returns the waiters whose deadline is at or before `now`.
    /// They come in registration order, so what follows from them does not depend on the
    /// table's hashing (a simulator replays a seed exactly).
    pub fn expired(&mut self, now: Instant) -> Vec<(AckId, T)> {
        let mut out = Vec::new();
        self.entries.retain(|id, entry| {
            let waiters = std::mem::take(&mut entry.waiters);
            for (waiter, deadline) in waiters {
                if deadline.is_some_and(|d| d <= now) {
                    out.push((entry.order, *id, waiter));
                } else {
                    entry.waiters.push((waiter, deadline));
                }
            }
            !entry.waiters.is_empty()
        });
        out.sort_by_key(|(order, _, _)| *order);
        out.into_iter()
            .map(|(_, id, waiter)| (id, waiter))
            .collect()
    }

    /// The earliest waiter deadline, for the actor's timer. Scans the table: it holds the
    /// few operations one client has in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .flat_map(|e| e.waiters.iter().filter_map(|(_, d)| *d))
            .min()
    }

    /// Whether `ack_id` is pending.
    pub fn contains(&self, ack_id: AckId) -> bool {
        self.entries.contains_key(&ack_id)
    }

    /// Number of ack ids pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Acks received for ids that were not pending.
    pub fn unknown_acks(&self) -> u64 {
        self.unknown_acks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AckErrorName::{Duplicate, Forbidden, InternalServerError};

    const OK: AckOutcome = AckOutcome::Success { duplicated: false };
    const DUP: AckOutcome = AckOutcome::Success { duplicated: true };

    fn err(name: AckErrorName, message: &str) -> Option<AckError> {
        let message = message.to_owned();
        Some(AckError { name, message })
    }

    fn waiters<T>(resolved: Option<(Vec<T>, AckOutcome)>) -> Option<Vec<T>> {
        resolved.map(|(w, _)| w)
    }

    #[test]
    fn ack_ids_start_at_one_and_increase() {
        let mut ids = AckIds::new();
        assert_eq!([None; 4].map(|s| ids.assign(s)), [1, 2, 3, 4]);
        // A supplied id is used as is, and generated ids then skip past it.
        let supplied = [Some(10), None, Some(3), None, Some(u64::MAX)];
        assert_eq!(supplied.map(|s| ids.assign(s)), [10, 11, 3, 12, u64::MAX]);
    }

    #[test]
    fn retry_keeps_same_ack_id() {
        let (mut ids, mut pending) = (AckIds::new(), PendingAcks::new());
        let ack_id = ids.assign(None);
        pending.register(ack_id, "attempt 1");
        let first = pending.resolve(ack_id, false, err(InternalServerError, ""));
        assert!(first.is_some_and(|(_, outcome)| !outcome.is_success()));
        // The retry registers the same id again; the allocator is not asked.
        pending.register(ack_id, "attempt 2");
        assert_eq!(ids.last(), 1);
        let second = pending.resolve(ack_id, false, err(Duplicate, ""));
        assert_eq!(second, Some((vec!["attempt 2"], DUP)));
    }

    #[test]
    fn duplicate_ack_is_success_flagged_duplicated() {
        let forbidden = err(Forbidden, "no role");
        let table = [
            (true, None, OK),
            (false, err(Duplicate, "dup"), DUP),
            (true, err(Duplicate, ""), DUP),
            (false, forbidden.clone(), AckOutcome::Failed(forbidden)),
            (false, None, AckOutcome::Failed(None)),
        ];
        for (success, error, expected) in table {
            let mut pending = PendingAcks::new();
            pending.register(7, ());
            let resolved = pending.resolve(7, success, error.clone());
            assert_eq!(resolved, Some((vec![()], expected)), "{success} {error:?}");
            assert!(pending.is_empty());
        }
    }

    #[test]
    fn unknown_ack_is_ignored_and_counted() {
        let mut pending = PendingAcks::new();
        pending.register(1, "a");
        assert!(pending.resolve(99, true, None).is_none());
        assert!(pending.resolve(98, false, None).is_none());
        assert_eq!(pending.unknown_acks(), 2);
        assert!(pending.contains(1));
        // The same id answered twice: the second ack is unknown.
        assert!(pending.resolve(1, true, None).is_some());
        assert!(pending.resolve(1, true, None).is_none());
        assert_eq!(pending.unknown_acks(), 3);
    }

    #[test]
    fn second_registration_shares_the_ack() {
        let mut pending = PendingAcks::new();
        pending.register(5, "first");
        pending.register(5, "second");
        assert_eq!(pending.len(), 1);
        let resolved = waiters(pending.resolve(5, true, None));
        assert_eq!(resolved, Some(vec!["first", "second"]));
    }

    #[test]
    fn all_pending_fail_together_on_reconnect() {
        let mut pending = PendingAcks::new();
        for (id, waiter) in [(3, "c"), (1, "a"), (3, "c2"), (2, "b")] {
            pending.register(id, waiter);
        }
        let failed = pending.fail_all();
        assert_eq!(failed, [(3, "c"), (3, "c2"), (1, "a"), (2, "b")]);
        assert!(pending.is_empty());
        assert!(pending.resolve(1, true, None).is_none());
    }

    #[test]
    fn in_flight_ops_are_resent_in_order_after_recovery() {
        let mut pending = PendingAcks::new();
        for id in [9, 4, 6] {
            pending.register(id, id);
        }
        pending.resolve(4, true, None);
        assert_eq!(pending.resend_order(), [9, 6]);
        // Nothing failed: the waiters are still there for the resend's ack.
        assert_eq!(waiters(pending.resolve(9, true, None)), Some(vec![9]));
    }

    #[test]
    fn waiters_expire_at_their_own_deadline() {
        let t0 = Instant::now();
        let mut pending = PendingAcks::new();
        pending.register_until(1, "a", t0 + DEFAULT_ACK_TIMEOUT);
        pending.register_until(2, "b", t0 + Duration::from_secs(40));
        pending.register(2, "b-no-deadline");
        pending.register(3, "c");
        assert_eq!(pending.next_deadline(), Some(t0 + DEFAULT_ACK_TIMEOUT));
        assert!(pending.expired(t0 + Duration::from_secs(29)).is_empty());
        assert_eq!(pending.expired(t0 + DEFAULT_ACK_TIMEOUT), [(1, "a")]);
        assert_eq!(pending.expired(t0 + Duration::from_secs(60)), [(2, "b")]);
        // Id 2 still has a waiter without deadline, so its ack is not unknown.
        let resolved = waiters(pending.resolve(2, true, None));
        assert_eq!(resolved, Some(vec!["b-no-deadline"]));
        assert!(pending.resolve(1, true, None).is_none());
        assert_eq!((pending.next_deadline(), pending.len()), (None, 1));
    }
}
