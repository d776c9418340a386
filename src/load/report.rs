//! The report of a load run: a serializable value (the `--json` file), a readable table,
//! Microsoft's benchmark pass rule, and thresholds that turn it into an exit status.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::checker::Counts;

use crate::fleet::LatencySummary;

/// The whole report. Field names are the JSON keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// The version of this schema (`docs/report-schema.md`).
    pub schema_version: super::series::SchemaVersion,
    /// The scenario's name.
    pub scenario: String,
    /// Where the clients connected (endpoint and hub, or "local hub").
    pub target: String,
    /// Subprotocol.
    pub protocol: String,
    /// Seconds of workload after the ramp-up.
    pub duration_s: f64,
    /// Clients.
    pub clients: ClientsReport,
    /// Connecting.
    pub connect: ConnectReport,
    /// Messages, as the checker counted them.
    pub messages: MessagesReport,
    /// End-to-end delivery latency.
    pub latency_ms: LatencyReport,
    /// Rates over the workload.
    pub throughput: ThroughputReport,
    /// Offered vs achieved rates of paced publishers (`groups`, `broadcast`, `echo`); absent
    /// when no publisher kept a schedule (`chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<PacingReport>,
    /// Connections recovered after a drop (same connection id).
    pub recoveries: u64,
    /// New connections of clients that had been connected (new connection id).
    pub reconnects: u64,
    /// Recovery durations.
    pub recovery_ms: LatencySummary,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// The process.
    pub process: ProcessReport,
    /// Microsoft's benchmark pass rule.
    pub benchmark: BenchmarkRule,
    /// Thresholds given on the command line, and the ones that failed.
    pub thresholds: ThresholdResult,
    /// One record per second of the run, and chaos marks (`docs/report-schema.md`).
    #[serde(default)]
    pub series: super::series::Series,
    /// A sharded run: one row per shard (merged reports), or this shard's place (a shard's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRow>,
    /// Why the report lacks part of the run (shards that never registered, died or never
    /// reported); empty when complete. An incomplete report never passes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
}

/// One shard of a sharded run, as the merged report lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardRow {
    /// The shard's index.
    pub index: u64,
    /// Shards in the run.
    pub of: u64,
    /// Its clients.
    pub requested: u64,
    /// Its clients connected at the end of the workload.
    pub connected: u64,
    /// Its publishes.
    pub sent: u64,
    /// Deliveries to its clients.
    pub delivered: u64,
    /// Its process's CPU time, seconds.
    pub cpu_s: f64,
    /// Its process's resident memory, MiB.
    pub rss_mib: f64,
}

/// Clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientsReport {
    /// Asked for.
    pub requested: u64,
    /// Connected at the end of the workload.
    pub connected: u64,
    /// Connected at least once.
    pub ever_connected: u64,
    /// Restarts after failures.
    pub restarts: u64,
    /// Given up after failures.
    pub abandoned: u64,
}

/// Connecting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectReport {
    /// Clients connected by their first start, per second of ramp-up.
    pub rate_per_s: f64,
    /// Seconds of ramp-up.
    pub ramp_s: f64,
    /// From `start()` to `system/connected`.
    pub latency_ms: LatencySummary,
}

/// Messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesReport {
    /// Published (or echo events sent).
    pub sent: u64,
    /// What the checker found, written beside `sent` (`messages.lost`, ...).
    #[serde(flatten)]
    pub checked: Counts,
    /// Publishes whose outcome never resolved by the end of the run.
    pub unresolved: u64,
    /// Deliveries from publishers whose records this report lacks (other shards): checked
    /// for duplicates and order only, not for loss.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unchecked: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl From<LatencySummary> for LatencyReport {
    fn from(s: LatencySummary) -> Self {
        LatencyReport {
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
            p999: s.p999,
            max: s.max,
        }
    }
}

/// Rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReport {
    /// Publishes per second.
    pub sent_per_s: f64,
    /// Deliveries per second.
    pub delivered_per_s: f64,
}

/// A run counts as saturated when it achieved less than this share of the offered rate and
/// no `--min-achieved` says otherwise.
pub const DEFAULT_MIN_ACHIEVED: f64 = 0.95;

/// Offered vs achieved rates of the paced publishers ([`super::pacing`]): what the schedule
/// asked for, what went, and what arrived. Latency of a paced publish counts from its
/// scheduled send time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PacingReport {
    /// Publishes whose scheduled time came during the workload.
    pub scheduled: u64,
    /// Of those, sent.
    pub sent: u64,
    /// Of the sent, more than 10 ms behind their schedule.
    pub late: u64,
    /// Scheduled but never sent: more than 1 s behind (the publisher's window of publishes
    /// in flight stayed full, or the fleet was too busy), or still waiting at the end.
    pub skipped: u64,
    /// The window: publishes in flight per publisher at most.
    pub max_in_flight: u64,
    /// Scheduled publishes per second.
    pub offered_per_s: f64,
    /// Sent publishes per second.
    pub achieved_per_s: f64,
    /// Deliveries per second the offered publishes would make (offered publishes times the
    /// deliveries the checker expected per publish).
    pub offered_deliveries_per_s: f64,
    /// Deliveries per second received during the workload (`throughput.delivered_per_s`).
    pub achieved_deliveries_per_s: f64,
    /// The lower of achieved/offered for publishes and for deliveries (1 when nothing was
    /// offered).
    pub achieved_share: f64,
    /// `achieved_share` is below the floor (`--min-achieved`, else 95 %): the run measured
    /// an overloaded hub or fleet, not the rate it was asked for.
    pub saturated: bool,
}

impl PacingReport {
    /// The pacing of `report`'s run from the publishers' summed `counts`; `report` must have
    /// its duration, messages and throughput filled in. `floor` is the least achieved share
    /// of an unsaturated run.
    pub fn evaluate(
        counts: super::pacing::PaceCounts,
        max_in_flight: u64,
        report: &LoadReport,
        floor: f64,
    ) -> PacingReport {
        let secs = report.duration_s.max(1e-3);
        let m = &report.messages;
        let per_publish = if m.sent > 0 {
            m.checked.expected() as f64 / m.sent as f64
        } else {
            0.0
        };
        let offered_per_s = counts.scheduled as f64 / secs;
        let achieved_per_s = counts.sent as f64 / secs;
        let offered_deliveries_per_s = offered_per_s * per_publish;
        let achieved_deliveries_per_s = report.throughput.delivered_per_s;
        let share = |achieved: f64, offered: f64| {
            if offered > 0.0 {
                (achieved / offered).min(1.0)
            } else {
                1.0
            }
        };
        let achieved_share = share(achieved_per_s, offered_per_s)
            .min(share(achieved_deliveries_per_s, offered_deliveries_per_s));
        PacingReport {
            scheduled: counts.scheduled,
            sent: counts.sent,
            late: counts.late,
            skipped: counts.skipped,
            max_in_flight,
            offered_per_s,
            achieved_per_s,
            offered_deliveries_per_s,
            achieved_deliveries_per_s,
            achieved_share,
            saturated: achieved_share < floor,
        }
    }

    /// `saturated: offered X/s, achieved Y/s` for publishes and deliveries, in words.
    pub fn verdict(&self) -> String {
        format!(
            "{}: offered {:.0}/s, achieved {:.0}/s publishes; offered {:.0}/s, achieved {:.0}/s deliveries ({:.1}% achieved)",
            if self.saturated {
                "saturated"
            } else {
                "kept up"
            },
            self.offered_per_s,
            self.achieved_per_s,
            self.offered_deliveries_per_s,
            self.achieved_deliveries_per_s,
            self.achieved_share * 100.0
        )
    }
}

/// The process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Resident memory with every client up, MiB.
    pub rss_mib: f64,
    /// Resident memory the fleet added, per connected client, KiB (includes the in-process
    /// hub's share when it runs in the same process: see `includes_hub`). It counts the
    /// pages of the binary the run touched, a fixed cost that weighs on small fleets: see
    /// `anon_per_client_kib`.
    pub rss_per_client_kib: f64,
    /// Anonymous resident memory (heap, stacks: `RssAnon`) the fleet added, per connected
    /// client, KiB: `rss_per_client_kib` without the binary's code and data pages (about
    /// 8 MiB in all, whatever the number of clients). Still holds the run's fixed
    /// allocations (runtime, recorder); the cost of one more client is the slope between
    /// two fleet sizes (docs/performance.md).
    #[serde(default)]
    pub anon_per_client_kib: f64,
    /// The hub ran in this process: both ends of every socket, and the hub's per-connection
    /// state, are in `rss_mib` and `rss_per_client_kib`.
    #[serde(default)]
    pub includes_hub: bool,
    /// CPU time of the whole run (user + system), seconds.
    pub cpu_s: f64,
    /// Threads.
    pub threads: u64,
}

/// The pass rule of Microsoft's Azure SignalR / Web PubSub benchmark: a run passes when at
/// most 5 % of the connections reconnect, at least 95 % of the expected messages are
/// delivered, at least 75 % of the connections are up, and at most 5 % of the deliveries take
/// over 2 s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkRule {
    /// Reconnects and restarts per requested client, percent.
    pub reconnecting_pct: f64,
    /// Delivered per expected delivery, percent; `None` (n/a) when nothing was expected.
    pub delivered_pct: Option<f64>,
    /// Connected at the end per requested client, percent; `None` when none was requested.
    pub connected_pct: Option<f64>,
    /// Deliveries slower than 2 s, percent.
    pub over_2s_pct: f64,
    /// All four hold.
    pub pass: bool,
}

impl BenchmarkRule {
    /// Applies the rule to the counts.
    pub fn evaluate(report: &LoadReport, slow_deliveries: u64) -> BenchmarkRule {
        let pct = |part: u64, whole: u64| {
            if whole == 0 {
                100.0 * f64::from(u8::from(part > 0))
            } else {
                100.0 * part as f64 / whole as f64
            }
        };
        let m = &report.messages;
        let expected = m.checked.expected();
        let requested = report.clients.requested;
        let reconnecting = report.reconnects + report.clients.restarts;
        let mut rule = BenchmarkRule {
            reconnecting_pct: pct(reconnecting, requested).min(100.0),
            delivered_pct: (expected > 0).then(|| pct(m.checked.delivered, expected)),
            connected_pct: (requested > 0).then(|| pct(report.clients.connected, requested)),
            over_2s_pct: pct(slow_deliveries, m.checked.delivered),
            pass: false,
        };
        rule.pass = rule.reconnecting_pct <= 5.0
            && rule.delivered_pct.is_some_and(|p| p >= 95.0)
            && rule.connected_pct.is_some_and(|p| p >= 75.0)
            && rule.over_2s_pct <= 5.0;
        rule
    }
}

/// A limit given as a count (`10`) or a percentage (`0.5%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// An absolute number.
    Count(u64),
    /// A percentage of a whole.
    Percent(f64),
}

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Limit, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let value: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage such as 0.5%"))?;
            if !(0.0..=100.0).contains(&value) {
                return Err(format!("`{s}` is not between 0% and 100%"));
            }
            return Ok(Limit::Percent(value));
        }
        s.parse()
            .map(Limit::Count)
            .map_err(|_| format!("`{s}` is neither a count (10) nor a percentage (0.5%)"))
    }
}

impl Limit {
    /// The limit as a count out of `whole` (percentages round down for maxima).
    fn of(self, whole: u64) -> f64 {
        match self {
            Limit::Count(n) => n as f64,
            Limit::Percent(p) => p / 100.0 * whole as f64,
        }
    }
}

/// Limits that make a run fail (`--max-loss`, `--max-p99-ms`, `--min-connected`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// Lost messages at most (a count, or a percentage of expected deliveries). When set, any
    /// duplicated, reordered or unexpected delivery fails the run too.
    pub max_loss: Option<Limit>,
    /// Delivery p99 at most, milliseconds.
    pub max_p99_ms: Option<f64>,
    /// Connected clients at least (a count, or a percentage of requested clients).
    pub min_connected: Option<Limit>,
    /// Achieved share of the offered rate at least, 0 to 1 (`--min-achieved`): a saturated
    /// run fails. Also the floor of `pacing.saturated` (95 % when not given).
    pub min_achieved: Option<f64>,
}

/// Which thresholds failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// No threshold failed (true when none was given).
    pub passed: bool,
    /// What failed, in words.
    pub failures: Vec<String>,
}

impl Thresholds {
    /// Checks a report.
    pub fn evaluate(&self, report: &LoadReport) -> ThresholdResult {
        let mut failures = Vec::new();
        let m = &report.messages;
        // Whatever the thresholds: a run that connected nobody or delivered nothing it
        // expected measured nothing, and must not pass.
        if report.clients.requested > 0 && report.clients.ever_connected == 0 {
            failures.push("no client ever connected".to_owned());
        } else if m.checked.expected() > 0 && m.checked.delivered == 0 {
            failures.push(format!(
                "none of the {} expected deliveries arrived",
                m.checked.expected()
            ));
        }
        if let Some(limit) = self.max_loss {
            let expected = m.checked.expected();
            if m.checked.lost as f64 > limit.of(expected) {
                failures.push(format!(
                    "lost {} messages, more than {limit:?}",
                    m.checked.lost
                ));
            }
            // No loss budget covers these: a delivery checked at all must not be doubled,
            // out of order or never sent.
            if m.unresolved > 0 {
                failures.push(format!(
                    "{} publishes never resolved (no ack, no error)",
                    m.unresolved
                ));
            }
            if m.checked.duplicated + m.checked.reordered + m.checked.unexpected > 0 {
                failures.push(format!(
                    "{} duplicated, {} reordered, {} unexpected deliveries",
                    m.checked.duplicated, m.checked.reordered, m.checked.unexpected
                ));
            }
        }
        if let Some(max) = self.max_p99_ms {
            if report.latency_ms.p99 > max {
                failures.push(format!(
                    "delivery p99 {:.1} ms is above {max} ms",
                    report.latency_ms.p99
                ));
            }
        }
        if let Some(limit) = self.min_connected {
            let needed = limit.of(report.clients.requested);
            if (report.clients.connected as f64) < needed {
                failures.push(format!(
                    "{} clients connected, fewer than {limit:?}",
                    report.clients.connected
                ));
            }
        }
        if let (Some(min), Some(pacing)) = (self.min_achieved, &report.pacing) {
            if pacing.achieved_share < min {
                failures.push(format!(
                    "{}, below --min-achieved {:.0}%",
                    pacing.verdict(),
                    min * 100.0
                ));
            }
        }
        if !report.incomplete.is_empty() {
            failures.push(format!("incomplete: {}", report.incomplete.join("; ")));
        }
        ThresholdResult {
            passed: failures.is_empty(),
            failures,
        }
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.clients;
        let m = &self.messages;
        let l = &self.latency_ms;
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<22} {v}");
        writeln!(
            f,
            "scenario {} against {} ({}), {:.1} s",
            self.scenario, self.target, self.protocol, self.duration_s
        )?;
        row(
            f,
            "clients",
            format!(
                "{} connected of {} requested ({} ever, {} restarts, {} abandoned)",
                c.connected, c.requested, c.ever_connected, c.restarts, c.abandoned
            ),
        )?;
        row(
            f,
            "connect",
            format!(
                "{:.0}/s over {:.1} s, latency p50 {:.1} ms, p99 {:.1} ms",
                self.connect.rate_per_s,
                self.connect.ramp_s,
                self.connect.latency_ms.p50,
                self.connect.latency_ms.p99
            ),
        )?;
        row(
            f,
            "messages",
            format!(
                "{} sent, {} delivered ({:.0}/s)",
                m.sent, m.checked.delivered, self.throughput.delivered_per_s
            ),
        )?;
        if let Some(p) = &self.pacing {
            row(
                f,
                "pacing",
                format!(
                    "offered {:.0}/s, achieved {:.0}/s publishes ({} late, {} skipped, window {}); offered {:.0}/s, achieved {:.0}/s deliveries",
                    p.offered_per_s,
                    p.achieved_per_s,
                    p.late,
                    p.skipped,
                    p.max_in_flight,
                    p.offered_deliveries_per_s,
                    p.achieved_deliveries_per_s
                ),
            )?;
            if p.saturated {
                row(
                    f,
                    "SATURATED",
                    format!(
                        "{}: the hub or this fleet could not keep the offered rate (latency counts from the schedule)",
                        p.verdict()
                    ),
                )?;
            }
        }
        row(
            f,
            "checker",
            format!(
                "{} lost, {} duplicated, {} reordered, {} unexpected; {} allowed gap, {} indeterminate, {} unresolved",
                m.checked.lost,
                m.checked.duplicated,
                m.checked.reordered,
                m.checked.unexpected,
                m.checked.allowed_gap,
                m.checked.indeterminate,
                m.unresolved
            ),
        )?;
        row(
            f,
            "latency",
            format!(
                "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
                l.p50, l.p90, l.p99, l.p999, l.max
            ),
        )?;
        row(
            f,
            "connections",
            format!(
                "{} recoveries (p99 {:.0} ms), {} reconnects",
                self.recoveries, self.recovery_ms.p99, self.reconnects
            ),
        )?;
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            let parts: Vec<_> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            parts.join(", ")
        };
        row(f, "errors", errors)?;
        if m.unchecked > 0 {
            row(
                f,
                "unchecked",
                format!(
                    "{} deliveries from other shards' publishers: checked for duplicates and order, for loss only in the merge",
                    m.unchecked
                ),
            )?;
        }
        let p = &self.process;
        // One process holds both the fleet and an in-process hub: their memory cannot be
        // told apart, so say so rather than print the sum as a client's cost.
        let whose = if p.includes_hub {
            ", fleet and in-process hub together: run `webpubsub-fleet hub` apart to measure the fleet alone"
        } else {
            ""
        };
        // The client side's cost per delivery (issue 10 compares it with raw clients): the
        // whole process's CPU, ramp-up, publishing, recorder and check included.
        let per_delivery = if m.checked.delivered > 0 {
            format!(
                " ({:.2} µs per delivery)",
                p.cpu_s * 1e6 / m.checked.delivered as f64
            )
        } else {
            String::new()
        };
        row(
            f,
            "process",
            format!(
                "RSS {:.0} MiB ({:.1} KiB per client, {:.1} KiB of it anonymous{whose}), CPU {:.1} s{per_delivery}, {} threads",
                p.rss_mib, p.rss_per_client_kib, p.anon_per_client_kib, p.cpu_s, p.threads
            ),
        )?;
        let b = &self.benchmark;
        row(
            f,
            "benchmark rule",
            format!(
                "{}: reconnecting {:.1}% (<=5), delivered {} (>=95), connected {} (>=75), over 2 s {:.2}% (<=5)",
                if b.pass { "PASS" } else { "FAIL" },
                b.reconnecting_pct,
                percent(b.delivered_pct),
                percent(b.connected_pct),
                b.over_2s_pct
            ),
        )?;
        for s in &self.shards {
            row(
                f,
                &format!("shard {} of {}", s.index, s.of),
                format!(
                    "{} connected of {}, {} sent, {} delivered, CPU {:.1} s, RSS {:.0} MiB",
                    s.connected, s.requested, s.sent, s.delivered, s.cpu_s, s.rss_mib
                ),
            )?;
        }
        for reason in &self.incomplete {
            row(f, "INCOMPLETE", reason.clone())?;
        }
        if !self.thresholds.failures.is_empty() {
            row(
                f,
                "thresholds",
                format!("FAILED: {}", self.thresholds.failures.join("; ")),
            )?;
        }
        Ok(())
    }
}

/// A percentage, or `n/a` when there was nothing to divide by.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |p| format!("{p:.1}%"))
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
