//! The recorder: an [`Observer`] fed inline by every client, plus the calls publishers and
//! simulations make around their operations. It keeps one [`ReceiverTrack`] and one
//! [`PublisherLog`] per client, each behind its own mutex, which only that client's thread
//! (and the final check) ever takes: no lock is shared between clients on the hot path.
//! Latencies go to sharded HDR histograms.
//!
//! Memory stays flat in the run's length: every [`SETTLE_EVERY`] publishes, a publisher
//! settles the front of its log (publishes resolved [`SETTLE_AFTER`] ago) against the
//! receivers of their groups and drops them ([`super::settle`]); receivers keep sequence
//! numbers as ranges. What stays is a few seconds of publishes per publisher, plus the
//! publishes that went missing at a receiver whose verdict is not final yet.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::{AckResult, ClientError, Event, Observer};
use crate::fleet::{
    ErrorCounts, ErrorKind, LatencySummary, MAX_LATENCY_US, SHARDS, ShardedCounter,
    latency_histogram,
};
use crate::protocol::AckErrorName;

use super::checker::{CheckReport, check_clients};
use super::pacing::PaceCounts;
use super::settle::settle;
use super::shard::ShardSpec;
use super::stamp::{Clock, Stamp, StampError};
use super::track::{ECHO_GROUP, Outcome, PublishRecord, PublisherLog, ReceiverTrack, Verdict};

/// Deliveries slower than this count against Microsoft's benchmark pass rule.
pub const SLOW_DELIVERY_US: u64 = 2_000_000;

/// How long after its outcome is known a publish is settled: deliveries still on their
/// way by then count against it. Settling only decides from ended intervals or a later
/// delivery, so this only guards a delivery racing a leave; 10 s is five times the slow
/// delivery bound above.
pub const SETTLE_AFTER: Duration = Duration::from_secs(10);

/// A publisher settles its log every this many publishes: often enough that the log holds
/// little beyond [`SETTLE_AFTER`], rarely enough that the pass (one lock per receiver of
/// the group) is cheap beside the publishes themselves.
pub const SETTLE_EVERY: u64 = 64;

/// Most publishes one settle pass takes, so one pass never stalls its publisher for long.
const SETTLE_BATCH: usize = 4096;

/// What every delivery adds to, split by client over [`SHARDS`] locks: one lock per
/// delivery, taken after the receiver's is released. A latency is recorded once, in
/// `window`; the window is added to `taken` when it is taken, so the run's latency is
/// `taken` plus `window`. Aligned so two shards never share a cache line (clients of
/// different threads bump neighbouring shards).
#[repr(align(128))]
struct DeliveryShard {
    /// Deliveries (counted under this lock rather than with one more atomic add).
    delivered: u64,
    /// The windows taken so far.
    taken: Histogram<u64>,
    /// Since the last window was taken.
    window: Histogram<u64>,
}

/// Records a load run. Create it before the fleet, pass it as the fleet's observer.
pub struct Recorder {
    clock: Clock,
    /// Which clients of the run this process holds (all of them unless sharded); tracks are
    /// kept per owned client and addressed by global client index.
    shard: ShardSpec,
    clients: u64,
    receivers: Box<[Mutex<ReceiverTrack>]>,
    publishers: Box<[Mutex<PublisherLog>]>,
    deliveries: Box<[Mutex<DeliveryShard>]>,
    sent: ShardedCounter,
    in_flight: AtomicU64,
    /// Paced publishers' schedules, summed as each publisher stops.
    pacing: Mutex<Option<PaceCounts>>,
    errors: ErrorCounts,
    /// Receivers that may hold a track of each group: static groups and explicit joins.
    members: Mutex<HashMap<String, BTreeSet<u64>>>,
    settle_after_us: u64,
    /// Tests set the time by hand, so two recorders fed the same history see equal times.
    #[cfg(test)]
    manual_us: Option<Arc<AtomicU64>>,
}

/// What the recorder holds about publishes, for tests and soaks that prove it bounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    /// Publishes in the publishers' logs, not settled yet.
    pub records: u64,
    /// Publishes parked at receivers where they went missing, awaiting a final verdict.
    pub parked: u64,
}

/// The recorder's counters so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecorderStats {
    /// Publishes begun.
    pub sent: u64,
    /// Group and server messages received.
    pub delivered: u64,
    /// Publishes whose outcome is not known yet.
    pub in_flight: u64,
    /// End-to-end latency of deliveries, from stamp to receipt.
    pub latency_ms: LatencySummary,
    /// Deliveries slower than [`SLOW_DELIVERY_US`].
    pub slow_deliveries: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep recording.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Recorder {
    /// A recorder for `clients` clients; `static_groups(i)` are the groups client `i` joins
    /// on every connect (its token's groups, plus [`ECHO_GROUP`] if it expects echoes).
    pub fn new(clients: u64, clock: Clock, static_groups: impl Fn(u64) -> Vec<String>) -> Recorder {
        Recorder::for_shard(ShardSpec::WHOLE, clients, clock, static_groups)
    }

    /// A recorder for the clients `shard` owns out of a run of `clients`; every call takes
    /// global client indices, and calls about clients of other shards are ignored.
    pub fn for_shard(
        shard: ShardSpec,
        clients: u64,
        clock: Clock,
        static_groups: impl Fn(u64) -> Vec<String>,
    ) -> Recorder {
        let owned = shard.len(clients);
        let mut members: HashMap<String, BTreeSet<u64>> = HashMap::new();
        let receivers = (0..owned)
            .map(|slot| {
                let groups = static_groups(shard.global(slot));
                for group in &groups {
                    members
                        .entry(group.clone())
                        .or_default()
                        .insert(shard.global(slot));
                }
                Mutex::new(ReceiverTrack::new(groups))
            })
            .collect();
        Recorder {
            clock,
            shard,
            clients,
            receivers,
            publishers: (0..owned)
                .map(|_| Mutex::new(PublisherLog::default()))
                .collect(),
            deliveries: (0..SHARDS)
                .map(|_| {
                    Mutex::new(DeliveryShard {
                        delivered: 0,
                        taken: latency_histogram(),
                        window: latency_histogram(),
                    })
                })
                .collect(),
            sent: ShardedCounter::default(),
            in_flight: AtomicU64::new(0),
            pacing: Mutex::new(None),
            errors: ErrorCounts::default(),
            members: Mutex::new(members),
            // A shard holds only some receivers of a group: its publishes must reach the
            // merged check whole, so a sharded recorder settles nothing.
            settle_after_us: if shard == ShardSpec::WHOLE {
                SETTLE_AFTER.as_micros() as u64
            } else {
                u64::MAX
            },
            #[cfg(test)]
            manual_us: None,
        }
    }

    fn now_us(&self) -> u64 {
        #[cfg(test)]
        if let Some(t) = &self.manual_us {
            return t.load(Relaxed);
        }
        self.clock.now_us()
    }

    /// Settles publishes `delay` after their outcome is known instead of [`SETTLE_AFTER`]
    /// (`Duration::MAX`: never, everything is judged at the end).
    pub fn with_settle_after(mut self, delay: Duration) -> Recorder {
        self.settle_after_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self
    }

    /// What is held about publishes now.
    pub fn retained(&self) -> Retained {
        Retained {
            records: self
                .publishers
                .iter()
                .map(|p| lock(p).records.len() as u64)
                .sum(),
            parked: self
                .receivers
                .iter()
                .map(|r| {
                    lock(r)
                        .groups
                        .values()
                        .map(|g| g.parked.len() as u64)
                        .sum::<u64>()
                })
                .sum(),
        }
    }

    /// Settles what `publisher` published and resolved [`SETTLE_AFTER`] ago (see
    /// [`super::settle`]). Publishers call it every [`SETTLE_EVERY`] publishes; call it
    /// yourself to settle a publisher that went quiet.
    pub fn settle(&self, publisher: u64) {
        let Some(log) = self.publisher_log(publisher) else {
            return;
        };
        let as_of_us = self.now_us();
        let ready =
            lock(log).take_resolved(as_of_us.saturating_sub(self.settle_after_us), SETTLE_BATCH);
        if ready.is_empty() {
            return;
        }
        // A copy, so no two receivers' locks are ever held together.
        let breaks = self
            .receiver(publisher)
            .map(|r| r.breaks.clone())
            .unwrap_or_default();
        let mut by_group: HashMap<&str, Vec<&PublishRecord>> = HashMap::new();
        for record in &ready {
            by_group.entry(&record.group).or_default().push(record);
        }
        for (group, records) in by_group {
            let members: Vec<u64> = if group == ECHO_GROUP {
                vec![publisher]
            } else {
                lock(&self.members)
                    .get(group)
                    .map(|m| m.iter().copied().collect())
                    .unwrap_or_default()
            };
            for r in members {
                let Some(mut receiver) = self.receiver(r) else {
                    continue;
                };
                let Some(track) = receiver.groups.get_mut(group) else {
                    continue;
                };
                // Earlier publishes of this publisher that went missing here may be final now.
                let parked = std::mem::take(&mut track.parked);
                for (p, record) in parked {
                    if p != publisher || !settle(&record, p, track, &breaks, as_of_us) {
                        track.parked.push((p, record));
                    }
                }
                for record in &records {
                    if !settle(record, publisher, track, &breaks, as_of_us) {
                        track.parked.push((publisher, (*record).clone()));
                    }
                }
            }
        }
    }

    /// The run's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Errors of operations, by kind.
    pub fn errors(&self) -> &ErrorCounts {
        &self.errors
    }

    fn receiver(&self, client: u64) -> Option<MutexGuard<'_, ReceiverTrack>> {
        self.shard
            .slot(client)
            .and_then(|slot| self.receivers.get(slot))
            .map(lock)
    }

    fn publisher_log(&self, client: u64) -> Option<&Mutex<PublisherLog>> {
        self.shard
            .slot(client)
            .and_then(|slot| self.publishers.get(slot))
    }

    /// Starts a publish by `publisher` to `group`: returns its sequence number and the
    /// stamped payload of `size` bytes. Call [`Recorder::end_publish`] with the outcome.
    pub fn begin_publish(&self, publisher: u64, group: &Arc<str>, size: usize) -> (u64, String) {
        self.begin_publish_scheduled(publisher, group, size, None)
    }

    /// [`Recorder::begin_publish`] for a paced publish scheduled at `scheduled_us` (on the
    /// run's clock): its stamp carries the scheduled time, so its latency counts from
    /// there (see [`super::pacing`]); the checker still sees when it really went.
    pub fn begin_publish_scheduled(
        &self,
        publisher: u64,
        group: &Arc<str>,
        size: usize,
        scheduled_us: Option<u64>,
    ) -> (u64, String) {
        let sent_us = self.now_us();
        let seq = match self.publisher_log(publisher) {
            Some(log) => lock(log).begin(group.clone(), sent_us),
            None => 0,
        };
        if seq % SETTLE_EVERY == 0 {
            self.settle(publisher);
        }
        self.sent.add(publisher, 1);
        self.in_flight.fetch_add(1, Relaxed);
        let stamp = Stamp {
            publisher,
            seq,
            sent_us: scheduled_us.map_or(sent_us, |s| s.min(sent_us)),
        };
        (seq, stamp.to_payload(size))
    }

    /// Records how a publish ended.
    pub fn end_publish(
        &self,
        publisher: u64,
        seq: u64,
        result: &Result<AckResult, ClientError>,
        fire_and_forget: bool,
    ) {
        let outcome = match result {
            Ok(_) if fire_and_forget => Outcome::Written,
            Ok(_) => Outcome::Acked,
            Err(e) => {
                self.errors.record(ErrorKind::of(e));
                outcome_of_error(e)
            }
        };
        if let Some(log) = self.publisher_log(publisher) {
            lock(log).end(seq, outcome, self.now_us());
        }
        // Never below zero, even for an `end` without its `begin`.
        let _ = self
            .in_flight
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Adds a paced publisher's schedule counts, when it stops.
    pub fn record_pacing(&self, counts: PaceCounts) {
        let mut total = lock(&self.pacing);
        let sum = total.get_or_insert_with(PaceCounts::default);
        sum.scheduled += counts.scheduled;
        sum.sent += counts.sent;
        sum.late += counts.late;
        sum.skipped += counts.skipped;
    }

    /// The paced publishers' counts so far; `None` when no publisher was paced (the `chat`
    /// workload's users post after think times, with no schedule to keep).
    pub fn pacing(&self) -> Option<PaceCounts> {
        *lock(&self.pacing)
    }

    /// Counts an error of an operation that is not a publish (join, leave, start).
    pub fn record_error(&self, error: &ClientError) {
        self.errors.record(ErrorKind::of(error));
    }

    /// `client` is about to join `group`.
    pub fn joining(&self, client: u64, group: &str) {
        if self.shard.slot(client).is_some() {
            lock(&self.members)
                .entry(group.to_owned())
                .or_default()
                .insert(client);
        }
        if let Some(mut r) = self.receiver(client) {
            r.on_joining(group);
        }
    }

    /// `client`'s join of `group` was acked (`Ok`) or failed.
    pub fn joined(&self, client: u64, group: &str, ok: bool) {
        let now = self.now_us();
        if let Some(mut r) = self.receiver(client) {
            if ok {
                r.on_joined(group, now);
            } else {
                r.on_join_failed(group, now);
            }
        }
    }

    /// `client` is about to leave `group`.
    pub fn leaving(&self, client: u64, group: &str) {
        let now = self.now_us();
        if let Some(mut r) = self.receiver(client) {
            r.on_leaving(group, now);
        }
    }

    /// `client` is about to stop on purpose.
    pub fn going_away(&self, client: u64) {
        let now = self.now_us();
        if let Some(mut r) = self.receiver(client) {
            r.on_going_away(now);
        }
    }

    /// Ends the run's membership intervals; call once publishers stopped and deliveries drained.
    pub fn finish(&self) {
        let now = self.now_us();
        for r in self.receivers.iter() {
            lock(r).finish(now);
        }
    }

    /// Runs the checker over everything recorded (after [`Recorder::finish`]). A shard's
    /// recorder checks its receivers against its own publishers only: deliveries from other
    /// shards' publishers are `unchecked` until the merge.
    pub fn check(&self) -> CheckReport {
        let (receivers, publishers) = self.tracks();
        let receivers = receivers.iter().map(|(i, t)| (*i, t)).collect();
        let publishers = publishers.iter().map(|(i, l)| (*i, l)).collect();
        let (shard, clients) = (self.shard, self.clients);
        check_clients(&receivers, &publishers, |p| p >= clients || shard.owns(p))
    }

    /// Copies of every track, by global client index: receivers, then publishers.
    #[allow(clippy::type_complexity)]
    pub fn tracks(&self) -> (Vec<(u64, ReceiverTrack)>, Vec<(u64, PublisherLog)>) {
        let global = |slot: usize| self.shard.global(slot as u64);
        let receivers = (self.receivers.iter().enumerate())
            .map(|(slot, r)| (global(slot), lock(r).clone()))
            .collect();
        let publishers = (self.publishers.iter().enumerate())
            .map(|(slot, p)| (global(slot), lock(p).clone()))
            .collect();
        (receivers, publishers)
    }

    /// The delivery latency of the whole run, µs (what [`RecorderStats::latency_ms`] sums up).
    pub fn latency_histogram(&self) -> Histogram<u64> {
        self.merged_total()
    }

    /// The counters and the run's latency so far.
    pub fn stats(&self) -> RecorderStats {
        let total = self.merged_total();
        RecorderStats {
            sent: self.sent.get(),
            delivered: self.deliveries.iter().map(|s| lock(s).delivered).sum(),
            in_flight: self.in_flight.load(Relaxed),
            latency_ms: LatencySummary::of(&total),
            slow_deliveries: total.count_between(SLOW_DELIVERY_US + 1, MAX_LATENCY_US),
        }
    }

    /// The latency since the last call (for a live progress line), and resets it.
    pub fn take_window(&self) -> LatencySummary {
        LatencySummary::of(&self.take_window_histogram())
    }

    /// The latency histogram (µs) since the last call, and resets it (the run's series).
    pub fn take_window_histogram(&self) -> Histogram<u64> {
        let mut merged = latency_histogram();
        for shard in self.deliveries.iter() {
            let mut shard = lock(shard);
            let DeliveryShard { taken, window, .. } = &mut *shard;
            // Same bounds everywhere, so adding cannot fail.
            let _ = merged.add(&*window);
            let _ = taken.add(&*window);
            window.reset();
        }
        merged
    }

    /// Every delivery's latency so far: the windows taken and the current one.
    fn merged_total(&self) -> Histogram<u64> {
        let mut merged = latency_histogram();
        for shard in self.deliveries.iter() {
            let shard = lock(shard);
            // Same bounds everywhere, so adding cannot fail.
            let _ = merged.add(&shard.taken);
            let _ = merged.add(&shard.window);
        }
        merged
    }

    fn on_delivery(&self, client: u64, group: &str, text: Result<&str, StampError>) {
        let now = self.now_us();
        let judged = self
            .receiver(client)
            .map(|mut receiver| receiver.on_delivery(group, text, now));
        let mut shard = lock(&self.deliveries[client as usize % self.deliveries.len()]);
        shard.delivered += 1;
        if let Some((Verdict::Ok | Verdict::Reordered, Some(stamp))) = judged {
            let latency = now.saturating_sub(stamp.sent_us).max(1);
            shard.window.saturating_record(latency);
        }
    }
}

/// What an operation error says about whether the publish reached the hub.
fn outcome_of_error(error: &ClientError) -> Outcome {
    match error {
        ClientError::Ack { error, .. } if error.name == AckErrorName::Duplicate => Outcome::Acked,
        ClientError::Ack { .. } => Outcome::Refused,
        ClientError::NotStarted
        | ClientError::NotConnected
        | ClientError::TooManyPending { .. }
        | ClientError::ActorGone => Outcome::NotSent,
        _ => Outcome::Unknown,
    }
}

impl Observer for Recorder {
    fn observe(&self, client: u64, event: &Event) {
        match event {
            Event::GroupMessage(m) => self.on_delivery(
                client,
                &m.group,
                m.data.as_text().ok_or(StampError::NotText),
            ),
            Event::ServerMessage(m) => self.on_delivery(
                client,
                ECHO_GROUP,
                m.data.as_text().ok_or(StampError::NotText),
            ),
            Event::Connected { connection_id, .. } => {
                let now = self.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_connected(connection_id, now);
                }
            }
            Event::Recovering { .. } => {
                let now = self.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_recovering(now);
                }
            }
            Event::Disconnected { .. } => {
                let now = self.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_disconnected(now);
                }
            }
            // From the rejoin's ack on, every publish to the group must arrive again: the gap
            // a reconnect allows ends there.
            Event::Rejoined { group } => {
                let now = self.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_joined(group, now);
                }
            }
            Event::RejoinGroupFailed { group, .. } => {
                let now = self.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_join_failed(group, now);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "settle_tests.rs"]
mod settle_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::GroupMessage;
    use crate::protocol::{AckError, Payload};

    fn group_message(group: &str, text: &str) -> Event {
        Event::GroupMessage(Arc::new(GroupMessage {
            group: group.into(),
            from_user_id: None,
            data: Payload::Text(text.into()),
            sequence_id: None,
        }))
    }

    fn connected(id: &str) -> Event {
        Event::Connected {
            connection_id: id.into(),
            user_id: None,
        }
    }

    #[test]
    fn records_publishes_and_deliveries_through_the_observer() {
        let recorder = Recorder::new(3, Clock::new(), |i| {
            if i == 0 { Vec::new() } else { vec!["g".into()] }
        });
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            recorder.observe(i as u64, &connected(id));
        }
        let group: Arc<str> = Arc::from("g");
        let mut payloads = Vec::new();
        for _ in 0..3 {
            let (seq, payload) = recorder.begin_publish(0, &group, 64);
            assert_eq!(payload.len(), 64);
            recorder.end_publish(
                0,
                seq,
                &Ok(AckResult {
                    ack_id: Some(seq),
                    duplicated: false,
                }),
                false,
            );
            payloads.push(payload);
        }
        // Client 1 gets all three; client 2 misses the second and gets the first twice.
        for p in &payloads {
            recorder.observe(1, &group_message("g", p));
        }
        recorder.observe(2, &group_message("g", &payloads[0]));
        recorder.observe(2, &group_message("g", &payloads[0]));
        recorder.observe(2, &group_message("g", &payloads[2]));
        // Binary data is not a stamp.
        recorder.observe(
            1,
            &Event::GroupMessage(Arc::new(GroupMessage {
                group: "g".into(),
                from_user_id: None,
                data: Payload::Binary(vec![1, 2].into()),
                sequence_id: None,
            })),
        );
        let stats = recorder.stats();
        assert_eq!((stats.sent, stats.delivered, stats.in_flight), (3, 7, 0));
        assert_eq!(
            stats.latency_ms.count, 5,
            "duplicates and unstamped add no latency"
        );
        recorder.finish();
        let report = recorder.check();
        assert_eq!(report.total.lost, 1);
        assert_eq!(report.total.duplicated, 1);
        assert_eq!(report.total.unexpected, 1);
        assert_eq!(
            report.by_receiver.keys().copied().collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(recorder.take_window().count, 5);
        assert_eq!(recorder.take_window().count, 0, "the window resets");
        assert_eq!(
            recorder.stats().latency_ms.count,
            5,
            "taking windows keeps the run's total"
        );
        recorder.observe(1, &group_message("g", &payloads[1]));
        assert_eq!(
            recorder.latency_histogram().len(),
            5,
            "a duplicate adds none"
        );
        let late = Stamp::parse(&payloads[2]).unwrap().to_payload(64);
        recorder.observe(1, &group_message("late", &late));
        assert_eq!(
            recorder.take_window().count,
            0,
            "nor does a group never joined"
        );
    }

    #[test]
    fn publish_errors_map_to_outcomes_and_kinds() {
        let recorder = Recorder::new(1, Clock::new(), |_| Vec::new());
        let group: Arc<str> = Arc::from("g");
        let forbidden = ClientError::Ack {
            ack_id: 1,
            error: AckError {
                name: AckErrorName::Forbidden,
                message: String::new(),
            },
        };
        let cases = [
            (Err(forbidden), Outcome::Refused),
            (Err(ClientError::NotConnected), Outcome::NotSent),
            (
                Err(ClientError::ConnectionLost { ack_id: 3 }),
                Outcome::Unknown,
            ),
            (
                Ok(AckResult {
                    ack_id: None,
                    duplicated: false,
                }),
                Outcome::Written,
            ),
        ];
        for (result, _) in &cases {
            let (seq, _) = recorder.begin_publish(0, &group, 0);
            recorder.end_publish(0, seq, result, true);
        }
        let log = lock(&recorder.publishers[0]).clone();
        let outcomes: Vec<_> = log.records.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, cases.map(|c| c.1));
        let errors = recorder.errors().snapshot();
        assert_eq!(errors.get("ack_forbidden"), Some(&1));
        assert_eq!(errors.get("not_connected"), Some(&1));
        assert_eq!(errors.get("connection_lost"), Some(&1));
        // Unknown clients are ignored, not a panic.
        recorder.observe(99, &connected("x"));
        recorder.end_publish(99, 1, &Err(ClientError::NotStarted), false);
        assert_eq!(recorder.stats().in_flight, 0);
    }
}
