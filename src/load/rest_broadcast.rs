//! `load --scenario rest-broadcast`: server-side sends through the REST API
//! ([`ServiceClient`]) fanning out to the fleet, as Microsoft's benchmark does. The app
//! server sends to every connection, or round-robin to the fleet's groups, at a given rate; the
//! clients only receive.
//!
//! - **Senders** ("lanes"): each sends one broadcast, waits for its `202`, and sends the next
//!   at its rate (a slow service lowers the offered rate rather than piling up calls); their
//!   number bounds the calls in flight. Every broadcast carries a [`Stamp`] whose publisher is
//!   the lane.
//! - **Order** is promised per lane: a lane's broadcast is accepted before its next one is
//!   sent, so a client must see a lane's broadcasts in increasing order. Across lanes no order
//!   is promised, and none is checked.
//! - **The check**: every client connected when a broadcast was sent, and in its target,
//!   receives it exactly once. A broadcast the service accepted and a client missed is *lost*,
//!   unless that client's connection was lost (not recovered) during the run (an *allowed
//!   gap*); one whose call timed out is *indeterminate* when missing; one refused must not
//!   arrive (*unexpected*).
//! - **The report**: REST send latency (call to `202`) and delivery latency (send to receipt,
//!   both on this process's clock).
//!
//! It uses the fleet and [`ServiceClient`] directly, not [`super::run`]: receivers here
//! track server messages per lane instead of group messages per publishing client.
//! Memory: the sent log holds one small record per broadcast (rate x lanes x duration).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::client::{ClientOptions, Event, Observer};
use crate::credential::ConnectionString;
use crate::fleet::{
    Fleet, FleetOptions, FleetTarget, IdentityTemplate, LatencySummary, latency_histogram,
    record_duration,
};
use crate::protocol::Subprotocol;
use crate::service::{Content, SendOptions, ServiceClient, ServiceError, ServiceOptions};

use super::LoadError;
use super::checker::Counts;
use super::rangeset::RangeSet;
use super::report::{Limit, ThresholdResult, Thresholds};
use super::stamp::{Clock, Stamp};
use super::workloads::{GROUP_TEMPLATE, period_of};

/// Where the broadcasts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestTarget {
    /// `POST :send`: every connection of the hub.
    All,
    /// `POST groups/{g}/:send`, round-robin over the fleet's groups of `group_size` clients
    /// (`group-0`, `group-1`, ..., joined on connect through the token).
    Groups {
        /// Clients per group.
        group_size: u64,
    },
}

/// How to run. The defaults are a small run against whatever target is given.
#[derive(Debug, Clone)]
pub struct RestBroadcastPlan {
    /// Clients.
    pub clients: u64,
    /// New clients per second during the ramp-up.
    pub ramp_rate: f64,
    /// Sending time after the ramp-up.
    pub duration: Duration,
    /// Subprotocol of the clients.
    pub protocol: Subprotocol,
    /// Payload size in bytes (the stamp pads up to it).
    pub size: usize,
    /// Sending lanes (concurrent REST calls at most).
    pub lanes: u64,
    /// Broadcasts per second per lane.
    pub rate: f64,
    /// Where the broadcasts go.
    pub target: RestTarget,
    /// Longest wait for deliveries after the last send.
    pub drain_timeout: Duration,
    /// Arbiter threads for the clients (0: one per core).
    pub arbiters: usize,
    /// File descriptors per client (2 when the hub runs in this process).
    pub fds_per_client: u64,
    /// A name for the target in the report.
    pub target_name: String,
    /// Thresholds that decide the exit status.
    pub thresholds: Thresholds,
}

impl Default for RestBroadcastPlan {
    fn default() -> Self {
        RestBroadcastPlan {
            clients: 100,
            ramp_rate: crate::fleet::DEFAULT_CONNECT_RATE,
            duration: Duration::from_secs(5),
            protocol: Subprotocol::JsonReliable,
            size: super::DEFAULT_SIZE,
            lanes: 1,
            rate: 10.0,
            target: RestTarget::All,
            drain_timeout: super::DEFAULT_DRAIN,
            arbiters: 0,
            fds_per_client: 1,
            target_name: String::new(),
            thresholds: Thresholds::default(),
        }
    }
}

/// Deliveries count as drained when none arrived for this long.
const QUIET: Duration = Duration::from_millis(500);
/// Delivery latency histograms, to keep receivers on different threads apart.
const LATENCY_SHARDS: usize = 16;

/// What a broadcast's call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `202`: the service took it.
    Accepted,
    /// An error answer: the service did not take it.
    Refused,
    /// A timeout or transport error: it may or may not have been taken.
    Unknown,
}

/// One broadcast of a lane.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u64,
    /// The target group's number, `None` for all.
    group: Option<u64>,
    sent_us: u64,
    outcome: Outcome,
}

/// What one client received.
#[derive(Debug, Default)]
struct Receiver {
    /// When its first connection was up, on the run's clock.
    connected_us: Option<u64>,
    /// Whether a connection was lost for good (not recovered) during the run.
    broke: bool,
    /// Sequence numbers received, per lane.
    lanes: BTreeMap<u64, RangeSet>,
    delivered: u64,
    duplicated: u64,
    reordered: u64,
    /// Server messages that are not broadcasts of this run.
    foreign: u64,
}

/// The fleet's observer: receivers' tracks and delivery latency.
struct Tracker {
    clock: Clock,
    receivers: Box<[Mutex<Receiver>]>,
    latency: Box<[Mutex<Histogram<u64>>]>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    fn new(clients: u64, clock: Clock) -> Tracker {
        Tracker {
            clock,
            receivers: (0..clients).map(|_| Mutex::default()).collect(),
            latency: (0..LATENCY_SHARDS)
                .map(|_| Mutex::new(latency_histogram()))
                .collect(),
        }
    }

    fn delivered(&self) -> u64 {
        self.receivers.iter().map(|r| lock(r).delivered).sum()
    }

    /// A server message `text` reached `client` at `at_us`.
    fn on_message(&self, client: u64, text: Option<&str>, at_us: u64) {
        let Some(receiver) = self.receivers.get(client as usize) else {
            return;
        };
        let mut r = lock(receiver);
        let Some(stamp) = text.and_then(|t| Stamp::parse(t).ok()) else {
            r.foreign += 1;
            return;
        };
        let seen = r.lanes.entry(stamp.publisher).or_default();
        let above_all = seen.max().is_none_or(|m| stamp.seq > m);
        if !seen.insert(stamp.seq) {
            r.duplicated += 1;
            return;
        }
        r.delivered += 1;
        if !above_all {
            r.reordered += 1;
        }
        drop(r);
        let latency = at_us.saturating_sub(stamp.sent_us).max(1);
        lock(&self.latency[client as usize % LATENCY_SHARDS]).saturating_record(latency);
    }
}

impl Observer for Tracker {
    fn observe(&self, client: u64, event: &Event) {
        match event {
            Event::ServerMessage(m) => {
                self.on_message(client, m.data.as_text(), self.clock.now_us());
            }
            Event::Connected { .. } => {
                let now = self.clock.now_us();
                if let Some(r) = self.receivers.get(client as usize) {
                    lock(r).connected_us.get_or_insert(now);
                }
            }
            Event::Disconnected { .. } => {
                if let Some(r) = self.receivers.get(client as usize) {
                    let mut r = lock(r);
                    if r.connected_us.is_some() {
                        r.broke = true;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The verdict over every receiver: `sent[lane]` are the lanes' logs.
fn check(receivers: &[Mutex<Receiver>], sent: &[Vec<Sent>], target: RestTarget) -> Counts {
    let mut counts = Counts::default();
    for (index, receiver) in receivers.iter().enumerate() {
        let r = lock(receiver);
        counts.duplicated += r.duplicated;
        counts.reordered += r.reordered;
        counts.unexpected += r.foreign;
        let Some(connected_us) = r.connected_us else {
            // Never connected: nothing was due, and nothing can have arrived.
            continue;
        };
        let group = match target {
            RestTarget::All => None,
            RestTarget::Groups { group_size } => Some(index as u64 / group_size.max(1)),
        };
        let empty = RangeSet::new();
        let mut matched = 0;
        for (lane, log) in sent.iter().enumerate() {
            let seen = r.lanes.get(&(lane as u64)).unwrap_or(&empty);
            for s in log {
                let aimed = group.is_none() || s.group == group;
                let arrived = seen.contains(s.seq);
                if arrived && aimed && s.outcome != Outcome::Refused {
                    matched += 1;
                }
                if !aimed || arrived || s.sent_us < connected_us {
                    continue;
                }
                match s.outcome {
                    Outcome::Accepted if r.broke => counts.allowed_gap += 1,
                    Outcome::Accepted => counts.lost += 1,
                    Outcome::Unknown => counts.indeterminate += 1,
                    Outcome::Refused => {}
                }
            }
        }
        counts.delivered += matched;
        // Received, but not a broadcast to this client that the service took.
        counts.unexpected += r.delivered - matched;
    }
    counts
}

/// What a rest-broadcast run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestBroadcastReport {
    /// `rest-broadcast`.
    pub scenario: String,
    /// The target's name.
    pub target: String,
    /// Where the broadcasts went.
    pub rest_target: RestTarget,
    /// The clients' subprotocol.
    pub protocol: String,
    /// Clients asked for.
    pub clients: u64,
    /// Clients that connected at least once.
    pub ever_connected: u64,
    /// Clients connected when sending stopped.
    pub connected_at_end: u64,
    /// Sending time, seconds.
    pub duration_s: f64,
    /// Broadcasts sent, and how their calls ended.
    pub broadcasts: BroadcastCounts,
    /// Broadcasts per second actually sent.
    pub send_rate: f64,
    /// From the call to its `202`, milliseconds.
    pub rest_latency_ms: LatencySummary,
    /// From the send to the receipt at a client, milliseconds.
    pub delivery_latency_ms: LatencySummary,
    /// The delivery check over every client.
    pub checked: Counts,
    /// Errors of the REST calls, by kind (no key or token in them).
    pub errors: BTreeMap<String, u64>,
    /// Which thresholds failed.
    pub thresholds: ThresholdResult,
}

/// How the REST calls ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastCounts {
    /// Calls made.
    pub sent: u64,
    /// Answered `202`.
    pub accepted: u64,
    /// Answered with an error.
    pub refused: u64,
    /// Timed out or failed in transport.
    pub unknown: u64,
}

impl fmt::Display for RestBroadcastReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.broadcasts;
        let c = &self.checked;
        let lat = |l: &LatencySummary| {
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
                l.p50, l.p99, l.max, l.count
            )
        };
        writeln!(
            f,
            "scenario rest-broadcast ({:?}) against {} ({}), {:.1} s",
            self.rest_target, self.target, self.protocol, self.duration_s
        )?;
        writeln!(
            f,
            "clients      {} requested, {} connected, {} at the end",
            self.clients, self.ever_connected, self.connected_at_end
        )?;
        writeln!(
            f,
            "broadcasts   {} sent ({:.1}/s): {} accepted, {} refused, {} unknown",
            b.sent, self.send_rate, b.accepted, b.refused, b.unknown
        )?;
        writeln!(f, "REST send    {}", lat(&self.rest_latency_ms))?;
        writeln!(f, "delivery     {}", lat(&self.delivery_latency_ms))?;
        writeln!(
            f,
            "check        {} expected, {} delivered, {} lost, {} duplicated, {} reordered, {} unexpected, {} allowed gaps, {} indeterminate",
            c.expected(),
            c.delivered,
            c.lost,
            c.duplicated,
            c.reordered,
            c.unexpected,
            c.allowed_gap,
            c.indeterminate
        )?;
        for (kind, n) in &self.errors {
            writeln!(f, "error        {n} x {kind}")?;
        }
        if self.thresholds.passed {
            write!(f, "thresholds   passed")
        } else {
            write!(
                f,
                "thresholds   FAILED: {}",
                self.thresholds.failures.join("; ")
            )
        }
    }
}

fn limit_of(limit: Limit, whole: u64) -> f64 {
    match limit {
        Limit::Count(n) => n as f64,
        Limit::Percent(p) => p / 100.0 * whole as f64,
    }
}

/// The thresholds' verdict on a report; a run that connected nobody or delivered nothing it
/// expected fails whatever the thresholds say.
fn evaluate(thresholds: &Thresholds, report: &RestBroadcastReport) -> ThresholdResult {
    let mut failures = Vec::new();
    let c = &report.checked;
    if report.clients > 0 && report.ever_connected == 0 {
        failures.push("no client ever connected".to_owned());
    } else if report.broadcasts.accepted == 0 {
        failures.push("the service accepted no broadcast".to_owned());
    } else if c.expected() > 0 && c.delivered == 0 {
        failures.push(format!(
            "none of the {} expected deliveries arrived",
            c.expected()
        ));
    }
    if let Some(max) = thresholds.max_loss {
        if c.lost as f64 > limit_of(max, c.expected()) {
            failures.push(format!("{} lost, more than {max:?}", c.lost));
        }
        let bad = c.duplicated + c.reordered + c.unexpected;
        if bad > 0 {
            failures.push(format!(
                "{} duplicated, {} reordered, {} unexpected",
                c.duplicated, c.reordered, c.unexpected
            ));
        }
    }
    if let Some(max) = thresholds.max_p99_ms
        && report.delivery_latency_ms.p99 > max
    {
        failures.push(format!(
            "delivery p99 {:.2} ms above {max} ms",
            report.delivery_latency_ms.p99
        ));
    }
    if let Some(min) = thresholds.min_connected
        && (report.connected_at_end as f64) < limit_of(min, report.clients)
    {
        failures.push(format!(
            "{} connected at the end, fewer than {min:?}",
            report.connected_at_end
        ));
    }
    ThresholdResult {
        passed: failures.is_empty(),
        failures,
    }
}

/// Runs a rest-broadcast load against `connection_string`'s hub `hub`: ramps the fleet up,
/// broadcasts through the REST API for `plan.duration`, drains, checks and reports. Runs on
/// an actix system (the REST client is single-threaded; the clients spread over arbiters).
pub async fn run(
    connection_string: ConnectionString,
    hub: &str,
    plan: RestBroadcastPlan,
    mut progress: impl FnMut(&str),
) -> Result<RestBroadcastReport, LoadError> {
    if plan.clients == 0 || plan.lanes == 0 {
        return Err(LoadError::Invalid(
            "a rest-broadcast run needs at least one client and one sender".into(),
        ));
    }
    if !plan.rate.is_finite() || plan.rate <= 0.0 {
        return Err(LoadError::Invalid(format!(
            "the rate {} must be above 0 broadcasts per second",
            plan.rate
        )));
    }
    // One attempt per broadcast: a retried send could arrive twice, which is the service's
    // documented at-least-once, not a fault of the hub under test.
    let service = ServiceClient::new(
        connection_string.clone(),
        hub,
        ServiceOptions::new().retry(crate::service::RetryPolicy::none()),
    )
    .map_err(|e| LoadError::Invalid(e.to_string()))?;
    let clock = Clock::new();
    let tracker = Arc::new(Tracker::new(plan.clients, clock));
    let identity = match plan.target {
        RestTarget::All => IdentityTemplate::new(),
        RestTarget::Groups { group_size } => IdentityTemplate::new()
            .group(GROUP_TEMPLATE)
            .group_size(group_size.max(1)),
    };
    let options = FleetOptions::new(plan.clients)
        .with_connect_rate(plan.ramp_rate)
        .with_arbiters(plan.arbiters)
        .with_client_options(ClientOptions::new().with_protocol(plan.protocol))
        .with_fds_per_client(plan.fds_per_client)
        .with_identity(identity)
        .with_observer(tracker.clone());
    let fleet = Fleet::start(FleetTarget::new(connection_string, hub), options)?;
    let ramp = fleet.wait_ramped().await?;
    progress(&format!(
        "ramp-up: {} of {} clients connected in {:.1} s",
        ramp.first_starts_ok,
        plan.clients,
        ramp.elapsed.as_secs_f64()
    ));

    // Sending.
    let groups = match plan.target {
        RestTarget::All => None,
        RestTarget::Groups { group_size } => Some(plan.clients.div_ceil(group_size.max(1))),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let rest_latency = Arc::new(Mutex::new(latency_histogram()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let lanes: Vec<_> = (0..plan.lanes)
        .map(|lane| {
            let lane_run = Lane {
                lane,
                service: service.clone(),
                clock,
                rate: plan.rate,
                size: plan.size,
                groups,
                stop: stop_rx.clone(),
                rest_latency: rest_latency.clone(),
                errors: errors.clone(),
            };
            actix_rt::spawn(lane_run.run())
        })
        .collect();
    let began = Instant::now();
    tokio::time::sleep(plan.duration).await;
    let _ = stop_tx.send(true);
    let mut sent = Vec::new();
    for lane in lanes {
        sent.push(lane.await.unwrap_or_default());
    }
    let duration = began.elapsed();
    let connected_at_end = fleet.stats().connected;

    // Drain: until no delivery arrived for a while, or the drain timeout.
    let deadline = Instant::now() + plan.drain_timeout;
    let mut last = (tracker.delivered(), Instant::now());
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = tracker.delivered();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= QUIET {
            break;
        }
    }
    let ever_connected = fleet.stats().ever_connected;
    let _ = fleet.stop().await;

    let checked = check(&tracker.receivers, &sent, plan.target);
    let mut broadcasts = BroadcastCounts::default();
    for s in sent.iter().flatten() {
        broadcasts.sent += 1;
        match s.outcome {
            Outcome::Accepted => broadcasts.accepted += 1,
            Outcome::Refused => broadcasts.refused += 1,
            Outcome::Unknown => broadcasts.unknown += 1,
        }
    }
    let mut delivery = latency_histogram();
    for shard in tracker.latency.iter() {
        let _ = delivery.add(&*lock(shard));
    }
    let mut report = RestBroadcastReport {
        scenario: "rest-broadcast".into(),
        target: plan.target_name.clone(),
        rest_target: plan.target,
        protocol: plan.protocol.name().to_owned(),
        clients: plan.clients,
        ever_connected,
        connected_at_end,
        duration_s: duration.as_secs_f64(),
        send_rate: broadcasts.sent as f64 / duration.as_secs_f64().max(1e-9),
        broadcasts,
        rest_latency_ms: LatencySummary::of(&lock(&rest_latency)),
        delivery_latency_ms: LatencySummary::of(&delivery),
        checked,
        errors: lock(&errors).clone(),
        thresholds: ThresholdResult::default(),
    };
    report.thresholds = evaluate(&plan.thresholds, &report);
    Ok(report)
}

/// One sending lane.
struct Lane {
    lane: u64,
    service: ServiceClient,
    clock: Clock,
    rate: f64,
    size: usize,
    /// Groups to go round, `None` to send to all.
    groups: Option<u64>,
    stop: watch::Receiver<bool>,
    rest_latency: Arc<Mutex<Histogram<u64>>>,
    errors: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Lane {
    /// Sends until stopped; returns its log.
    async fn run(mut self) -> Vec<Sent> {
        let mut log = Vec::new();
        let mut interval = tokio::time::interval(period_of(self.rate));
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seq = 0u64;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = self.stop.wait_for(|s| *s) => break,
            }
            if *self.stop.borrow() {
                break;
            }
            seq += 1;
            // Lanes start at different groups, so groups are covered evenly from the start.
            let group = self.groups.map(|n| (self.lane + seq) % n.max(1));
            let sent_us = self.clock.now_us();
            let payload = Stamp {
                publisher: self.lane,
                seq,
                sent_us,
            }
            .to_payload(self.size);
            let started = Instant::now();
            let result = match group {
                None => {
                    self.service
                        .send_to_all(Content::text(payload), &SendOptions::new())
                        .await
                }
                Some(g) => {
                    self.service
                        .send_to_group(
                            &GROUP_TEMPLATE.replace("{g}", &g.to_string()),
                            Content::text(payload),
                            &SendOptions::new(),
                        )
                        .await
                }
            };
            let outcome = match &result {
                Ok(()) => {
                    record_duration(&mut lock(&self.rest_latency), started.elapsed());
                    Outcome::Accepted
                }
                Err(e) => {
                    *lock(&self.errors).entry(error_kind(e)).or_default() += 1;
                    if e.status().is_some() {
                        Outcome::Refused
                    } else {
                        Outcome::Unknown
                    }
                }
            };
            log.push(Sent {
                seq,
                group,
                sent_us,
                outcome,
            });
        }
        log
    }
}

/// A short kind for an error, without the details that could vary per call.
fn error_kind(error: &ServiceError) -> String {
    match error.status() {
        Some(status) => format!("HTTP {status}"),
        None if error.is_transient() => "timeout or transport".to_owned(),
        None => "invalid".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(seq: u64, group: Option<u64>, outcome: Outcome) -> Sent {
        Sent {
            seq,
            group,
            sent_us: 1_000 + seq,
            outcome,
        }
    }

    fn deliver(tracker: &Tracker, client: u64, lane: u64, seq: u64) {
        let text = Stamp {
            publisher: lane,
            seq,
            sent_us: 1_000 + seq,
        }
        .to_payload(64);
        tracker.on_message(client, Some(&text), 5_000);
    }

    fn connected(tracker: &Tracker, client: u64, at_us: u64) {
        lock(&tracker.receivers[client as usize]).connected_us = Some(at_us);
    }

    #[test]
    fn every_client_must_get_every_broadcast_once_and_in_lane_order() {
        let tracker = Tracker::new(3, Clock::new());
        for c in 0..3 {
            connected(&tracker, c, 0);
        }
        let log = vec![vec![
            sent(1, None, Outcome::Accepted),
            sent(2, None, Outcome::Accepted),
            sent(3, None, Outcome::Accepted),
        ]];
        for seq in 1..=3 {
            deliver(&tracker, 0, 0, seq);
        }
        // Client 1: seq 2 lost, seq 3 twice.
        deliver(&tracker, 1, 0, 1);
        deliver(&tracker, 1, 0, 3);
        deliver(&tracker, 1, 0, 3);
        // Client 2: out of order.
        deliver(&tracker, 2, 0, 2);
        deliver(&tracker, 2, 0, 1);
        deliver(&tracker, 2, 0, 3);
        let counts = check(&tracker.receivers, &log, RestTarget::All);
        assert_eq!(
            (
                counts.delivered,
                counts.lost,
                counts.duplicated,
                counts.reordered
            ),
            (8, 1, 1, 1)
        );
        assert_eq!(counts.unexpected, 0);
    }

    #[test]
    fn groups_expect_only_their_broadcasts_and_refused_ones_must_not_arrive() {
        let tracker = Tracker::new(4, Clock::new());
        for c in 0..4 {
            connected(&tracker, c, 0);
        }
        // Groups of 2: clients 0, 1 in group 0; 2, 3 in group 1.
        let log = vec![vec![
            sent(1, Some(0), Outcome::Accepted),
            sent(2, Some(1), Outcome::Accepted),
            sent(3, Some(0), Outcome::Refused),
            sent(4, Some(1), Outcome::Unknown),
        ]];
        deliver(&tracker, 0, 0, 1);
        deliver(&tracker, 1, 0, 1);
        deliver(&tracker, 1, 0, 3); // refused, yet arrived
        deliver(&tracker, 2, 0, 2);
        deliver(&tracker, 2, 0, 4);
        deliver(&tracker, 3, 0, 1); // another group's
        // Client 3 missed seq 2 (lost) and seq 4 (indeterminate).
        let counts = check(
            &tracker.receivers,
            &log,
            RestTarget::Groups { group_size: 2 },
        );
        assert_eq!(
            (
                counts.delivered,
                counts.lost,
                counts.unexpected,
                counts.indeterminate
            ),
            (4, 1, 2, 1)
        );
    }

    #[test]
    fn misses_before_connecting_are_not_due_and_after_a_lost_connection_are_allowed() {
        let tracker = Tracker::new(2, Clock::new());
        connected(&tracker, 0, 1_002); // after seq 1 was sent
        connected(&tracker, 1, 0);
        lock(&tracker.receivers[1]).broke = true;
        let log = vec![vec![
            sent(1, None, Outcome::Accepted),
            sent(2, None, Outcome::Accepted),
        ]];
        deliver(&tracker, 0, 0, 2);
        let counts = check(&tracker.receivers, &log, RestTarget::All);
        assert_eq!(
            (counts.delivered, counts.lost, counts.allowed_gap),
            (1, 0, 2)
        );
    }

    #[test]
    fn a_message_that_is_not_a_broadcast_is_unexpected() {
        let tracker = Tracker::new(1, Clock::new());
        connected(&tracker, 0, 0);
        tracker.on_message(0, Some("hello"), 10);
        tracker.on_message(0, None, 10);
        let counts = check(&tracker.receivers, &[], RestTarget::All);
        assert_eq!(counts.unexpected, 2);
    }
}
