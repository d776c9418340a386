//! Runs a simulation: ramp-up, workload, optional chaos, drain, check, report.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, LocalBoxFuture};
use tokio::sync::watch;
use tracing::warn;

use hdrhistogram::Histogram;

use crate::client::{ClientOptions, Event, Observer, SocketFault};
use crate::fleet::{
    Fleet, FleetOptions, FleetStats, FleetTarget, Identities, RestartPolicy, Selection,
};
use crate::protocol::Subprotocol;

use super::LoadError;
use super::process::ProcessSample;
use super::recorder::Recorder;
use super::report::*;
use super::series::{MarkLog, SeriesRecorder};
use super::shard::{
    Histograms, PublisherWire, ReceiverWire, RunKey, SHARD_REPORT_FORMAT, ShardReport, ShardSpec,
    encode_histogram,
};
use super::sim::{SimSettings, SimUser, Simulation};
use super::stamp::Clock;
use super::track::ECHO_GROUP;

/// Injects one round of chaos: drop this share of the connections.
pub type ChaosFn = Arc<dyn Fn(f64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Periodic faults during the workload (the CLI drops connections through the local hub).
#[derive(Clone)]
pub struct Chaos {
    /// Share of connections hit each round, 0.0 to 1.0.
    pub share: f64,
    /// Time between rounds.
    pub period: Duration,
    /// What a round does.
    pub inject: ChaosFn,
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("share", &self.share)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

/// Periodic faults the fleet injects into its own clients' sockets
/// ([`Fleet::inject_fault`]): chaos against any hub, the service included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientChaos {
    /// Share of the connected clients hit each round, 0.0 to 1.0.
    pub share: f64,
    /// Time between rounds.
    pub period: Duration,
    /// What a round does to each socket it hits.
    pub fault: SocketFault,
}

/// Waits, once every client of this process is ramped up, until the workload may start:
/// a sharded run's barrier (it resolves at the instant every shard starts). An error ends
/// the run with [`LoadError::Coordination`].
pub type BarrierFn = Arc<dyn Fn() -> LocalBoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Clients of the default run: enough to be a fleet, few enough for a laptop and 30 s.
pub const DEFAULT_CLIENTS: u64 = 1000;
/// Workload length of the default run, after the ramp-up: the whole run takes about 30 s.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(25);
/// Payload size: a short chat message with its stamp.
pub const DEFAULT_SIZE: usize = 128;
/// Longest wait for in-flight publishes and deliveries after the workload stops.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);
/// Deliveries count as drained when none arrived for this long.
const QUIET: Duration = Duration::from_millis(500);
/// The same for a shard: its receivers also wait for other shards' publishers, whose
/// in-flight publishes it cannot see, so it waits longer for the last of them.
const SHARD_QUIET: Duration = Duration::from_secs(2);

/// How to run.
#[derive(Clone)]
pub struct LoadPlan {
    /// Clients.
    pub clients: u64,
    /// New clients per second during the ramp-up (of the whole run: a shard ramps at its share).
    pub ramp_rate: f64,
    /// Workload length after the ramp-up.
    pub duration: Duration,
    /// Subprotocol.
    pub protocol: Subprotocol,
    /// A mixed fleet: clients take these subprotocols in turn (empty: all speak `protocol`).
    pub mixed_protocols: Vec<Subprotocol>,
    /// Publish without acks.
    pub fire_and_forget: bool,
    /// Publishes a paced publisher may have in flight; sends that cannot go within 1 s of
    /// their schedule are skipped ([`super::pacing`]).
    pub max_in_flight: usize,
    /// Payload size in bytes.
    pub size: usize,
    /// Longest drain.
    pub drain_timeout: Duration,
    /// File descriptors per client (2 when the hub runs in this process).
    pub fds_per_client: u64,
    /// Seed of the users' random generators.
    pub seed: u64,
    /// Periodic faults (through the hub).
    pub chaos: Option<Chaos>,
    /// Periodic faults the fleet injects into its own sockets; none by default.
    pub client_chaos: Option<ClientChaos>,
    /// Options of every client (the protocol above overrides theirs).
    pub client: ClientOptions,
    /// Restarts of failed clients.
    pub restart: RestartPolicy,
    /// Arbiter threads (0: one per core).
    pub arbiters: usize,
    /// A name for the target in the report.
    pub target_name: String,
    /// Thresholds that decide `thresholds.passed`.
    pub thresholds: Thresholds,
    /// Live metrics fed once a second (`--metrics-addr`); none by default.
    pub metrics: Option<crate::metrics::LoadMetrics>,
    /// Which share of `clients` this process runs (all of them by default).
    pub shard: ShardSpec,
    /// Awaited between the ramp-up and the workload (a sharded run's barrier).
    pub barrier: Option<BarrierFn>,
}

impl LoadPlan {
    /// The subprotocol names of the run, comma-separated for a mixed fleet.
    pub fn protocol_names(&self) -> String {
        match self.mixed_protocols.as_slice() {
            [] => self.protocol.name().to_owned(),
            mixed => mixed.iter().map(|p| p.name()).collect::<Vec<_>>().join(","),
        }
    }
}

impl Default for LoadPlan {
    fn default() -> Self {
        LoadPlan {
            clients: DEFAULT_CLIENTS,
            ramp_rate: crate::fleet::DEFAULT_CONNECT_RATE,
            duration: DEFAULT_DURATION,
            protocol: Subprotocol::JsonReliable,
            mixed_protocols: Vec::new(),
            fire_and_forget: false,
            max_in_flight: super::pacing::DEFAULT_MAX_IN_FLIGHT,
            size: DEFAULT_SIZE,
            drain_timeout: DEFAULT_DRAIN,
            fds_per_client: 1,
            seed: rand::random(),
            chaos: None,
            client_chaos: None,
            client: ClientOptions::default(),
            restart: RestartPolicy::default(),
            arbiters: 0,
            target_name: String::new(),
            thresholds: Thresholds::default(),
            metrics: None,
            shard: ShardSpec::WHOLE,
            barrier: None,
        }
    }
}

impl fmt::Debug for LoadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadPlan")
            .field("clients", &self.clients)
            .field("ramp_rate", &self.ramp_rate)
            .field("duration", &self.duration)
            .field("protocol", &self.protocol)
            .field("size", &self.size)
            .field("seed", &self.seed)
            .field("shard", &self.shard)
            .field("chaos", &self.chaos)
            .field("client_chaos", &self.client_chaos)
            .finish_non_exhaustive()
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients are being started.
    RampUp,
    /// The workload runs.
    Run,
    /// Waiting for the last deliveries.
    Drain,
}

/// A live progress sample, once a second.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Where the run is.
    pub phase: Phase,
    /// Since the run started.
    pub elapsed: Duration,
    /// Clients asked for.
    pub requested: u64,
    /// Clients connected now.
    pub connected: u64,
    /// Publishes per second over the last sample.
    pub sent_per_s: f64,
    /// Deliveries per second over the last sample.
    pub delivered_per_s: f64,
    /// Delivery p99 over the last sample, ms.
    pub p99_ms: f64,
    /// Errors so far (connections and operations).
    pub errors: u64,
    /// Restarts so far.
    pub restarts: u64,
    /// Recoveries and reconnects so far.
    pub recoveries: u64,
    /// New connections after a lost one so far.
    pub reconnects: u64,
    /// Resident memory of this process (fleet, recorder, and the hub when in process), MiB.
    pub rss_mib: Option<f64>,
    /// Publishes whose outcome is not known yet.
    pub in_flight: u64,
    /// Publishes the recorder still holds (not settled yet, or parked where they went
    /// missing): flat in a healthy run of any length.
    pub held: u64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::RampUp => "ramp-up",
            Phase::Run => "run",
            Phase::Drain => "drain",
        };
        write!(
            f,
            "[{phase:>7} {:>4.0}s] connected {}/{} | sent {:.0}/s | delivered {:.0}/s | p99 {:.1} ms | errors {} | restarts {} | recoveries {} | reconnects {} | in flight {} | held {}",
            self.elapsed.as_secs_f64(),
            self.connected,
            self.requested,
            self.sent_per_s,
            self.delivered_per_s,
            self.p99_ms,
            self.errors,
            self.restarts,
            self.recoveries,
            self.reconnects,
            self.in_flight,
            self.held
        )?;
        match self.rss_mib {
            Some(rss) => write!(f, " | rss {rss:.1} MiB"),
            None => Ok(()),
        }
    }
}

/// Samples counters into [`Progress`] lines.
struct Sampler<'a> {
    fleet: &'a Fleet,
    recorder: &'a Recorder,
    began: Instant,
    last: (Instant, u64, u64),
    /// The run's per-second series (issue 14), fed by every sample.
    series: SeriesRecorder,
    /// Live metrics, fed from the series.
    metrics: Option<crate::metrics::LoadMetrics>,
}

impl Sampler<'_> {
    fn sample(&mut self, phase: Phase) -> Progress {
        let fleet = self.fleet.stats();
        let rec = self.recorder.stats();
        let now = Instant::now();
        let secs = now.duration_since(self.last.0).as_secs_f64().max(1e-3);
        let window = self.recorder.take_window_histogram();
        let progress = Progress {
            phase,
            elapsed: self.began.elapsed(),
            requested: fleet.requested,
            connected: fleet.connected,
            sent_per_s: rec.sent.saturating_sub(self.last.1) as f64 / secs,
            delivered_per_s: rec.delivered.saturating_sub(self.last.2) as f64 / secs,
            p99_ms: crate::fleet::LatencySummary::of(&window).p99,
            errors: fleet.errors.values().sum::<u64>() + self.recorder.errors().total(),
            restarts: fleet.restarts,
            recoveries: fleet.recoveries,
            reconnects: fleet.reconnects,
            rss_mib: ProcessSample::now().map(|p| p.rss_kib as f64 / 1024.0),
            in_flight: rec.in_flight,
            held: {
                let held = self.recorder.retained();
                held.records + held.parked
            },
        };
        self.last = (now, rec.sent, rec.delivered);
        let operation_errors = self.recorder.errors().snapshot();
        let marks = self.series.marks().total();
        let point = (self.series).sample(
            phase,
            &fleet,
            rec.sent,
            rec.delivered,
            operation_errors,
            &window,
        );
        if let Some(metrics) = &self.metrics {
            metrics.observe(point, phase, fleet.requested, marks);
        }
        progress
    }
}

/// Runs `simulation` against `target` as `plan` says; calls `progress` once a second.
/// Must run inside an actix `System`.
pub async fn run(
    target: FleetTarget,
    plan: LoadPlan,
    simulation: Arc<dyn Simulation>,
    progress: impl FnMut(&Progress),
) -> Result<LoadReport, LoadError> {
    Ok(execute(target, plan, simulation, progress).await?.report)
}

/// Runs this process's shard of a sharded run (`plan.shard`, `plan.barrier`) and returns its
/// report: its own slice's [`LoadReport`] and the tracks the merge needs.
pub async fn run_shard(
    target: FleetTarget,
    plan: LoadPlan,
    key: RunKey,
    simulation: Arc<dyn Simulation>,
    progress: impl FnMut(&Progress),
) -> Result<ShardReport, LoadError> {
    let shard = plan.shard;
    let done = execute(target, plan, simulation, progress).await?;
    let (receivers, publishers) = done.recorder.tracks();
    Ok(ShardReport {
        format: SHARD_REPORT_FORMAT.to_owned(),
        shard: shard.index,
        run: key,
        report: done.report,
        histograms: Histograms {
            delivery: encode_histogram(&done.recorder.latency_histogram()),
            connect: encode_histogram(&done.connect),
            recovery: encode_histogram(&done.recovery),
        },
        publishers: (publishers.iter())
            .map(|(i, log)| PublisherWire::from_log(*i, log))
            .collect(),
        receivers: (receivers.iter())
            .map(|(i, track)| ReceiverWire::from_track(*i, track))
            .collect(),
    })
}

/// A finished run: its report, and what a shard report adds to it.
struct Finished {
    report: LoadReport,
    recorder: Arc<Recorder>,
    connect: Histogram<u64>,
    recovery: Histogram<u64>,
}

/// Tells the recorder of the fleet's events under the clients' global indices (the fleet
/// numbers a shard's clients from 0).
struct GlobalIndices {
    recorder: Arc<Recorder>,
    shard: ShardSpec,
}

impl Observer for GlobalIndices {
    fn observe(&self, client: u64, event: &Event) {
        self.recorder.observe(self.shard.global(client), event);
    }
}

async fn execute(
    target: FleetTarget,
    plan: LoadPlan,
    simulation: Arc<dyn Simulation>,
    mut progress: impl FnMut(&Progress),
) -> Result<Finished, LoadError> {
    plan.validate()?;
    let baseline = ProcessSample::now();
    let shard = plan.shard;
    let identities = simulation.identities();
    if let Identities::Template(t) = &identities {
        t.validate()?;
    }
    let echo = simulation.expects_echo();
    // Shards compare times across processes: they count from the Unix epoch.
    let clock = if shard.is_sharded() {
        Clock::wall()
    } else {
        Clock::new()
    };
    let recorder = Arc::new(Recorder::for_shard(shard, plan.clients, clock, |i| {
        let mut groups = identities.identity(i).groups;
        if echo {
            groups.push(ECHO_GROUP.to_owned());
        }
        groups
    }));
    let observer: Arc<dyn Observer> = if shard.is_sharded() {
        Arc::new(GlobalIndices {
            recorder: recorder.clone(),
            shard,
        })
    } else {
        recorder.clone()
    };
    let identities = if shard.is_sharded() {
        Identities::Custom(Arc::new(move |local| {
            identities.identity(shard.global(local))
        }))
    } else {
        identities
    };
    // The ramp rate is the whole run's: each shard takes its share.
    let options = FleetOptions::new(shard.len(plan.clients))
        .with_connect_rate(plan.ramp_rate / shard.count as f64)
        .with_arbiters(plan.arbiters)
        .with_client_options(plan.client.clone().with_protocol(plan.protocol))
        .with_protocols(plan.mixed_protocols.iter().copied())
        .with_restart(plan.restart)
        .with_fds_per_client(plan.fds_per_client)
        .with_observer(observer);
    let options = FleetOptions {
        identities,
        ..options
    };
    let fleet = Fleet::start(target, options)?;
    let mut sampler = Sampler {
        fleet: &fleet,
        recorder: &recorder,
        began: Instant::now(),
        last: (Instant::now(), 0, 0),
        series: SeriesRecorder::new(),
        metrics: plan.metrics.clone(),
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;

    // Ramp-up.
    let ramp = {
        let wait = fleet.wait_ramped();
        tokio::pin!(wait);
        loop {
            tokio::select! {
                status = &mut wait => break status?,
                _ = ticker.tick() => progress(&sampler.sample(Phase::RampUp)),
            }
        }
    };
    // Nobody to load with: say why now instead of running the workload against nothing.
    if ramp.first_starts_ok == 0 {
        let stats = fleet.stats();
        let _ = fleet.stop().await;
        return Err(LoadError::NoClientConnected {
            clients: plan.clients,
            target: plan.target_name.clone(),
            errors: crate::fleet::describe_errors(&stats.errors, &stats.error_examples),
        });
    }

    // The barrier of a sharded run: the workload starts at one instant on every shard.
    if let Some(barrier) = &plan.barrier {
        if let Err(why) = barrier().await {
            let _ = fleet.stop().await;
            return Err(LoadError::Coordination(why));
        }
    }

    // Workload.
    let (stop_tx, stop_rx) = watch::channel(false);
    let settings = Arc::new(SimSettings {
        clients: plan.clients,
        size: plan.size,
        fire_and_forget: plan.fire_and_forget,
        seed: plan.seed,
        max_in_flight: plan.max_in_flight,
    });
    let users: Vec<_> = fleet
        .fleet_clients(Selection::All)
        .await?
        .into_iter()
        .map(|client| {
            let user = SimUser::new(
                shard.global(client.index()),
                client,
                recorder.clone(),
                settings.clone(),
                stop_rx.clone(),
            );
            actix_rt::spawn(simulation.run_user(user))
        })
        .collect();
    let chaos = plan
        .chaos
        .clone()
        .map(|chaos| actix_rt::spawn(chaos_rounds(chaos, stop_rx.clone(), sampler.series.marks())));
    let client_chaos = plan.client_chaos.map(|chaos| {
        let rounds = client_chaos_rounds(
            chaos,
            fleet.clone(),
            stop_rx.clone(),
            sampler.series.marks(),
        );
        actix_rt::spawn(rounds)
    });
    let run_began = Instant::now();
    sampler.series.workload_started();
    let (sent_before, delivered_before) = {
        let s = recorder.stats();
        (s.sent, s.delivered)
    };
    let end = tokio::time::sleep(plan.duration);
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = &mut end => break,
            _ = ticker.tick() => progress(&sampler.sample(Phase::Run)),
        }
    }
    let at_end: FleetStats = fleet.stats();
    let process_at_end = ProcessSample::now();
    let _ = stop_tx.send(true);
    let run_elapsed = run_began.elapsed();
    let joined = futures::future::join_all(users);
    if tokio::time::timeout(plan.drain_timeout, joined)
        .await
        .is_err()
    {
        warn!("some simulated users did not finish within the drain timeout");
    }
    if let Some(chaos) = chaos {
        chaos.abort();
    }
    if let Some(chaos) = client_chaos {
        chaos.abort();
    }

    // Drain: wait for outcomes of publishes in flight and for the last deliveries.
    let quiet = if shard.is_sharded() {
        SHARD_QUIET
    } else {
        QUIET
    };
    // A socket blackholed by the last chaos round is noticed only after the clients'
    // keepalive timeout: its receiver's replay comes after that, so the drain lasts until
    // then (and its deadline moves with it) instead of calling those deliveries lost.
    let blackholes_noticed = (plan.client_chaos)
        .filter(|c| c.fault == SocketFault::Blackhole)
        .map(|_| Instant::now() + plan.client.keepalive_timeout);
    let drain_until = blackholes_noticed.unwrap_or_else(Instant::now) + plan.drain_timeout;
    let mut last_delivered = (recorder.stats().delivered, Instant::now());
    while Instant::now() < drain_until {
        let stats = recorder.stats();
        let fleet_now = fleet.stats();
        // A client between sockets has deliveries coming: its recovery's replay.
        let settling = fleet_now.recovering + fleet_now.connecting + fleet_now.disconnected > 0
            || blackholes_noticed.is_some_and(|t| Instant::now() < t);
        if stats.delivered != last_delivered.0 {
            last_delivered = (stats.delivered, Instant::now());
        } else if stats.in_flight == 0 && last_delivered.1.elapsed() >= quiet && !settling {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = ticker.tick() => progress(&sampler.sample(Phase::Drain)),
        }
    }
    recorder.finish();
    let check = recorder.check();
    let stats = recorder.stats();
    let stop = fleet.stop().await?;
    if stop.timed_out > 0 {
        warn!(
            timed_out = stop.timed_out,
            "some clients did not stop in time"
        );
    }
    let fleet_end = fleet.stats();

    let mut report = LoadReport {
        scenario: simulation.name(),
        target: plan.target_name.clone(),
        protocol: plan.protocol_names(),
        duration_s: run_elapsed.as_secs_f64(),
        clients: ClientsReport {
            requested: shard.len(plan.clients),
            connected: at_end.connected,
            ever_connected: fleet_end.ever_connected,
            restarts: fleet_end.restarts,
            abandoned: fleet_end.abandoned,
        },
        connect: ConnectReport {
            rate_per_s: ramp.rate_per_s(),
            ramp_s: ramp.elapsed.as_secs_f64(),
            latency_ms: fleet_end.connect_latency_ms,
        },
        messages: MessagesReport {
            sent: stats.sent,
            checked: check.total,
            unresolved: check.unresolved,
            unchecked: check.unchecked,
        },
        latency_ms: stats.latency_ms.into(),
        throughput: ThroughputReport {
            sent_per_s: (stats.sent - sent_before) as f64 / run_elapsed.as_secs_f64().max(1e-3),
            delivered_per_s: stats.delivered.saturating_sub(delivered_before) as f64
                / run_elapsed.as_secs_f64().max(1e-3),
        },
        recoveries: fleet_end.recoveries,
        reconnects: fleet_end.reconnects,
        recovery_ms: fleet_end.recovery_ms,
        errors: merge_errors(&fleet_end, &recorder),
        process: ProcessReport {
            // The CLI gives 2 descriptors per client exactly when the hub shares the process.
            includes_hub: plan.fds_per_client > 1,
            ..process_report(baseline, process_at_end, at_end.connected)
        },
        series: sampler.series.finish(),
        ..LoadReport::default()
    };
    if shard.is_sharded() {
        report.shards.push(ShardRow {
            index: shard.index,
            of: shard.count,
            requested: report.clients.requested,
            connected: report.clients.connected,
            sent: report.messages.sent,
            delivered: report.messages.checked.delivered,
            cpu_s: report.process.cpu_s,
            rss_mib: report.process.rss_mib,
        });
    }
    report.pacing = recorder.pacing().map(|counts| {
        let floor = (plan.thresholds.min_achieved).unwrap_or(DEFAULT_MIN_ACHIEVED);
        PacingReport::evaluate(counts, plan.max_in_flight as u64, &report, floor)
    });
    report.benchmark = BenchmarkRule::evaluate(&report, stats.slow_deliveries);
    report.thresholds = plan.thresholds.evaluate(&report);
    let counters = fleet.counters();
    Ok(Finished {
        report,
        connect: counters.connect_histogram(),
        recovery: counters.recovery_histogram(),
        recorder,
    })
}

impl LoadPlan {
    fn validate(&self) -> Result<(), LoadError> {
        if self.clients == 0 {
            return Err(LoadError::Invalid("a run needs at least 1 client".into()));
        }
        if self.duration.is_zero() {
            return Err(LoadError::Invalid(
                "the workload duration must be above zero".into(),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(LoadError::Invalid(
                "a publisher needs room for at least 1 publish in flight".into(),
            ));
        }
        if self.ramp_rate.is_nan() || self.ramp_rate <= 0.0 {
            return Err(LoadError::Invalid(
                "the ramp rate must be above 0 clients per second".into(),
            ));
        }
        let rounds = (self.chaos.iter().map(|c| (c.share, c.period)))
            .chain(self.client_chaos.iter().map(|c| (c.share, c.period)));
        for (share, period) in rounds {
            if !(0.0..=1.0).contains(&share) || period.is_zero() {
                return Err(LoadError::Invalid(
                    "chaos needs a share between 0 and 1 and a period above zero".into(),
                ));
            }
        }
        if let Some(chaos) = &self.client_chaos {
            chaos.fault.validate().map_err(LoadError::Invalid)?;
        }
        Ok(())
    }
}

async fn chaos_rounds(chaos: Chaos, stop: watch::Receiver<bool>, marks: MarkLog) {
    let detail = format!("drop {:.0}% of connections", chaos.share * 100.0);
    every_round(chaos.period, stop, marks, detail, || async {
        if let Err(error) = (chaos.inject)(chaos.share).await {
            warn!(%error, "chaos round failed");
        }
    })
    .await;
}

/// Client-side chaos: every period, the fleet faults a share of its connected clients.
async fn client_chaos_rounds(
    chaos: ClientChaos,
    fleet: Fleet,
    stop: watch::Receiver<bool>,
    marks: MarkLog,
) {
    let detail = format!(
        "client {} of {:.0}% of connections",
        chaos.fault,
        chaos.share * 100.0
    );
    every_round(chaos.period, stop, marks, detail, || async {
        match fleet.inject_fault(chaos.share, chaos.fault).await {
            Ok(faulted) => tracing::debug!(faulted, fault = %chaos.fault, "chaos: faulted sockets"),
            Err(error) => warn!(%error, "chaos round failed"),
        }
    })
    .await;
}

/// Runs `round` every `period` (the first after one period), each marked on the series,
/// until the run stops.
async fn every_round<F: std::future::Future<Output = ()>>(
    period: Duration,
    mut stop: watch::Receiver<bool>,
    marks: MarkLog,
    detail: String,
    mut round: impl FnMut() -> F,
) {
    let mut interval = tokio::time::interval(period);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        marks.mark("chaos", detail.clone());
        round().await;
    }
}

fn merge_errors(
    fleet: &FleetStats,
    recorder: &Recorder,
) -> std::collections::BTreeMap<String, u64> {
    let mut errors = fleet.errors.clone();
    for (kind, n) in recorder.errors().snapshot() {
        *errors.entry(kind).or_default() += n;
    }
    errors
}

fn process_report(
    baseline: Option<ProcessSample>,
    at_end: Option<ProcessSample>,
    connected: u64,
) -> ProcessReport {
    let Some(end) = at_end else {
        return ProcessReport::default();
    };
    let added_kib = baseline.map_or(end.rss_kib, |b| end.rss_kib.saturating_sub(b.rss_kib));
    let added_anon_kib = baseline.map_or(end.anon_kib, |b| end.anon_kib.saturating_sub(b.anon_kib));
    let per_client = |kib: u64| {
        if connected > 0 {
            kib as f64 / connected as f64
        } else {
            0.0
        }
    };
    ProcessReport {
        rss_mib: end.rss_kib as f64 / 1024.0,
        rss_per_client_kib: per_client(added_kib),
        anon_per_client_kib: per_client(added_anon_kib),
        cpu_s: end.cpu_s,
        threads: end.threads,
        includes_hub: false,
    }
}
