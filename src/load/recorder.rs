//! The recorder: an [`Observer`] fed inline by every client, plus the calls publishers and
//! simulations make around their operations. It keeps one [`ReceiverTrack`] and one
//! [`PublisherLog`] per client, each behind its own mutex, which only that client's thread
//! (and the final check) ever takes: no lock is shared between clients on the hot path.
//! Latencies go to sharded HDR histograms.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;

use crate::client::{AckResult, ClientError, Event, Observer};
use crate::fleet::{
    ErrorCounts, ErrorKind, LatencySummary, MAX_LATENCY_US, SHARDS, ShardedCounter,
    latency_histogram,
};
use crate::protocol::AckErrorName;

use super::checker::{CheckReport, check_clients};
use super::shard::ShardSpec;
use super::stamp::{Clock, Stamp, StampError};
use super::track::{ECHO_GROUP, Outcome, PublisherLog, ReceiverTrack, Verdict};

/// Deliveries slower than this count against Microsoft's benchmark pass rule.
pub const SLOW_DELIVERY_US: u64 = 2_000_000;

struct LatencyShard {
    total: Histogram<u64>,
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
    latency: Box<[Mutex<LatencyShard>]>,
    sent: ShardedCounter,
    delivered: ShardedCounter,
    in_flight: AtomicU64,
    errors: ErrorCounts,
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
        Recorder {
            clock,
            shard,
            clients,
            receivers: (0..owned)
                .map(|slot| Mutex::new(ReceiverTrack::new(static_groups(shard.global(slot)))))
                .collect(),
            publishers: (0..owned)
                .map(|_| Mutex::new(PublisherLog::default()))
                .collect(),
            latency: (0..SHARDS)
                .map(|_| {
                    Mutex::new(LatencyShard {
                        total: latency_histogram(),
                        window: latency_histogram(),
                    })
                })
                .collect(),
            sent: ShardedCounter::default(),
            delivered: ShardedCounter::default(),
            in_flight: AtomicU64::new(0),
            errors: ErrorCounts::default(),
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
        let sent_us = self.clock.now_us();
        let seq = match self.publisher_log(publisher) {
            Some(log) => lock(log).begin(group.clone(), sent_us),
            None => 0,
        };
        self.sent.add(publisher, 1);
        self.in_flight.fetch_add(1, Relaxed);
        let stamp = Stamp {
            publisher,
            seq,
            sent_us,
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
            lock(log).end(seq, outcome, self.clock.now_us());
        }
        // Never below zero, even for an `end` without its `begin`.
        let _ = self
            .in_flight
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Counts an error of an operation that is not a publish (join, leave, start).
    pub fn record_error(&self, error: &ClientError) {
        self.errors.record(ErrorKind::of(error));
    }

    /// `client` is about to join `group`.
    pub fn joining(&self, client: u64, group: &str) {
        if let Some(mut r) = self.receiver(client) {
            r.on_joining(group);
        }
    }

    /// `client`'s join of `group` was acked (`Ok`) or failed.
    pub fn joined(&self, client: u64, group: &str, ok: bool) {
        let now = self.clock.now_us();
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
        let now = self.clock.now_us();
        if let Some(mut r) = self.receiver(client) {
            r.on_leaving(group, now);
        }
    }

    /// `client` is about to stop on purpose.
    pub fn going_away(&self, client: u64) {
        let now = self.clock.now_us();
        if let Some(mut r) = self.receiver(client) {
            r.on_going_away(now);
        }
    }

    /// Ends the run's membership intervals; call once publishers stopped and deliveries drained.
    pub fn finish(&self) {
        let now = self.clock.now_us();
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
        self.merged(|s| &s.total)
    }

    /// The counters and the run's latency so far.
    pub fn stats(&self) -> RecorderStats {
        let total = self.merged(|s| &s.total);
        RecorderStats {
            sent: self.sent.get(),
            delivered: self.delivered.get(),
            in_flight: self.in_flight.load(Relaxed),
            latency_ms: LatencySummary::of(&total),
            slow_deliveries: total.count_between(SLOW_DELIVERY_US + 1, MAX_LATENCY_US),
        }
    }

    /// The latency since the last call (for a live progress line), and resets it.
    pub fn take_window(&self) -> LatencySummary {
        let mut merged = latency_histogram();
        for shard in self.latency.iter() {
            let mut shard = lock(shard);
            let _ = merged.add(&shard.window);
            shard.window.reset();
        }
        LatencySummary::of(&merged)
    }

    fn merged(&self, pick: impl Fn(&LatencyShard) -> &Histogram<u64>) -> Histogram<u64> {
        let mut merged = latency_histogram();
        for shard in self.latency.iter() {
            // Same bounds everywhere, so adding cannot fail.
            let _ = merged.add(pick(&lock(shard)));
        }
        merged
    }

    fn on_delivery(&self, client: u64, group: &str, text: Result<&str, StampError>) {
        let now = self.clock.now_us();
        self.delivered.add(client, 1);
        let Some(mut receiver) = self.receiver(client) else {
            return;
        };
        let (verdict, stamp) = receiver.on_delivery(group, text, now);
        drop(receiver);
        if let (Verdict::Ok | Verdict::Reordered, Some(stamp)) = (verdict, stamp) {
            let latency = now.saturating_sub(stamp.sent_us).max(1);
            let mut shard = lock(&self.latency[client as usize % self.latency.len()]);
            shard.total.saturating_record(latency);
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
                let now = self.clock.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_connected(connection_id, now);
                }
            }
            Event::Recovering { .. } => {
                let now = self.clock.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_recovering(now);
                }
            }
            Event::Disconnected { .. } => {
                let now = self.clock.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_disconnected(now);
                }
            }
            // From the rejoin's ack on, every publish to the group must arrive again: the gap
            // a reconnect allows ends there.
            Event::Rejoined { group } => {
                let now = self.clock.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_joined(group, now);
                }
            }
            Event::RejoinGroupFailed { group, .. } => {
                let now = self.clock.now_us();
                if let Some(mut r) = self.receiver(client) {
                    r.on_join_failed(group, now);
                }
            }
            _ => {}
        }
    }
}

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
