//! The run's time series: one small record per second of the run (connected clients,
//! publishes, deliveries, latency, errors by kind, recoveries, reconnects, CPU and RSS), and
//! marks for chaos rounds. It goes into the JSON report (`series`, schema in
//! `docs/report-schema.md`), the HTML report and the live metrics.
//!
//! Memory stays bounded by the run's length: a record holds counters, three latency figures
//! and at most [`MAX_BUCKETS`] latency buckets (typically a dozen), whatever the rate.
//!
//! Series of the shards of a sharded run merge on the shared run clock: second `t` counts
//! from the workload's start, which the shards' barrier makes the same instant everywhere.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::fleet::FleetStats;

use super::process::ProcessSample;
use super::runner::Phase;

/// The version of the JSON report's schema (`schema_version`); `docs/report-schema.md` says
/// what each version changed. Reports without the field predate versioning.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Marks kept at most; later ones are counted in [`Series::marks_dropped`], not stored.
pub const MAX_MARKS: usize = 10_000;

/// Latency buckets per second at most: a quarter octave each from 1 µs to 10 min is 117.
pub const MAX_BUCKETS: usize = 128;

/// `schema_version` of a report: the current version by default, whatever a read report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchemaVersion(pub u32);

impl Default for SchemaVersion {
    fn default() -> Self {
        SchemaVersion(REPORT_SCHEMA_VERSION)
    }
}

/// The run's series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// One record per second, ordered by `t`.
    pub points: Vec<SeriesPoint>,
    /// Events on the time axis (chaos rounds).
    #[serde(default)]
    pub marks: Vec<Mark>,
    /// Marks beyond [`MAX_MARKS`], counted only.
    #[serde(default)]
    pub marks_dropped: u64,
}

/// One second of the run. Counts are over the second (`span_s` long); gauges are the values at
/// its end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Seconds from the workload's start (negative during the ramp-up) at the record's end.
    pub t: i64,
    /// `ramp-up`, `run` or `drain`.
    pub phase: String,
    /// Seconds the counts cover (about 1).
    pub span_s: f64,
    /// Processes summed in this record (1, or the shards of a merged run).
    pub sources: u32,
    /// Clients connected (gauge).
    pub connected: u64,
    /// Publishes begun.
    pub sent: u64,
    /// Deliveries received.
    pub delivered: u64,
    /// Latency of this second's checked deliveries.
    pub latency: SecondLatency,
    /// Errors by kind (connections and operations).
    pub errors: BTreeMap<String, u64>,
    /// Connections recovered (same connection id).
    pub recoveries: u64,
    /// New connections of clients that had been connected.
    pub reconnects: u64,
    /// Clients restarted after failures.
    pub restarts: u64,
    /// CPU time the process used (user + system), seconds.
    pub cpu_s: f64,
    /// Resident memory (gauge), MiB; 0 where `/proc` is missing.
    pub rss_mib: f64,
}

/// Delivery latency of one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondLatency {
    /// Deliveries measured.
    pub count: u64,
    /// Median, ms (exact to 3 digits in one process; to a bucket's width after a merge).
    pub p50_ms: f64,
    /// 99th percentile, ms (same precision as `p50_ms`).
    pub p99_ms: f64,
    /// Largest, ms (exact, also after a merge).
    pub max_ms: f64,
    /// `[upper bound µs, count]` of the non-empty quarter-octave buckets: what merges add.
    pub buckets: Vec<(u64, u64)>,
}

/// An event on the time axis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Seconds from the workload's start.
    pub t_s: f64,
    /// What happened (`chaos`).
    pub kind: String,
    /// In words.
    pub detail: String,
}

/// The upper bound (µs) of the quarter-octave bucket holding `us`.
pub fn bucket_upper_us(us: u64) -> u64 {
    let index = (4.0 * (us.max(1) as f64).log2()).ceil();
    (2f64.powf(index / 4.0).round() as u64).max(1)
}

impl SecondLatency {
    /// The latency of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> SecondLatency {
        if h.is_empty() {
            return SecondLatency::default();
        }
        let mut buckets = BTreeMap::new();
        for v in h.iter_recorded() {
            *buckets
                .entry(bucket_upper_us(v.value_iterated_to()))
                .or_insert(0) += v.count_at_value();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        SecondLatency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            buckets: buckets.into_iter().collect(),
        }
    }

    /// Adds another process's second: counts and buckets add, the max is the larger, the
    /// percentiles are read from the summed buckets (so they are bucket upper bounds).
    pub fn merge(&mut self, other: &SecondLatency) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let mut buckets: BTreeMap<u64, u64> = self.buckets.iter().copied().collect();
        for &(upper, n) in &other.buckets {
            *buckets.entry(upper).or_insert(0) += n;
        }
        self.buckets = buckets.into_iter().take(MAX_BUCKETS).collect();
        self.count += other.count;
        self.max_ms = self.max_ms.max(other.max_ms);
        self.p50_ms = self.quantile_ms(0.50);
        self.p99_ms = self.quantile_ms(0.99);
    }

    /// The `q` quantile from the buckets, ms: the upper bound of the bucket holding it,
    /// never above the max.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.buckets.iter().map(|b| b.1).sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for &(upper, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return (upper as f64 / 1000.0).min(self.max_ms);
            }
        }
        self.max_ms
    }
}

impl SeriesPoint {
    /// Adds another process's record of the same second: counts and gauges add (clients
    /// connected in all shards, their memory together), latency merges.
    pub fn merge(&mut self, other: &SeriesPoint) {
        self.span_s = self.span_s.max(other.span_s);
        self.sources += other.sources;
        self.connected += other.connected;
        self.add_counts(other);
        self.rss_mib += other.rss_mib;
    }

    fn add_counts(&mut self, other: &SeriesPoint) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.latency.merge(&other.latency);
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += n;
        }
        self.recoveries += other.recoveries;
        self.reconnects += other.reconnects;
        self.restarts += other.restarts;
        self.cpu_s += other.cpu_s;
    }

    /// Errors of all kinds.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl Series {
    /// Merges the series of the shards of one run: records of the same second add up (see
    /// [`SeriesPoint::merge`]), marks are kept from every shard, in time order.
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Series>) -> Series {
        let mut points: BTreeMap<i64, SeriesPoint> = BTreeMap::new();
        let mut merged = Series::default();
        for part in parts {
            for p in &part.points {
                match points.get_mut(&p.t) {
                    Some(existing) => existing.merge(p),
                    None => {
                        points.insert(p.t, p.clone());
                    }
                }
            }
            merged.marks.extend(part.marks.iter().cloned());
            merged.marks_dropped += part.marks_dropped;
        }
        merged.marks.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        if merged.marks.len() > MAX_MARKS {
            merged.marks_dropped += (merged.marks.len() - MAX_MARKS) as u64;
            merged.marks.truncate(MAX_MARKS);
        }
        merged.points = points.into_values().collect();
        merged
    }

    /// The delivery latency of the whole series (every second's buckets added).
    pub fn latency(&self) -> SecondLatency {
        let mut total = SecondLatency::default();
        for p in &self.points {
            total.merge(&p.latency);
        }
        total
    }
}

/// Where a run's marks go: cloned into the tasks that cause events (chaos rounds).
#[derive(Debug, Clone, Default)]
pub struct MarkLog {
    inner: Arc<Mutex<(Vec<TimedMark>, u64)>>,
}

/// A mark with its instant, before the workload's start is known.
type TimedMark = (Instant, String, String);

impl MarkLog {
    /// Marks so far, kept or dropped.
    pub fn total(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.len() as u64 + inner.1
    }

    /// Notes an event now.
    pub fn mark(&self, kind: &str, detail: String) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.0.len() < MAX_MARKS {
            inner.0.push((Instant::now(), kind.to_owned(), detail));
        } else {
            inner.1 += 1;
        }
    }
}

/// The counters a sample reads, cumulative since the run began.
#[derive(Debug, Clone, Default)]
struct Totals {
    sent: u64,
    delivered: u64,
    errors: BTreeMap<String, u64>,
    recoveries: u64,
    reconnects: u64,
    restarts: u64,
    cpu_s: f64,
}

/// Builds a run's [`Series`] from the runner's samples, once a second.
#[derive(Debug)]
pub struct SeriesRecorder {
    began: Instant,
    workload_began: Option<Instant>,
    last_at: Instant,
    last: Totals,
    points: Vec<(Instant, SeriesPoint)>,
    marks: MarkLog,
}

impl Default for SeriesRecorder {
    fn default() -> Self {
        SeriesRecorder::new()
    }
}

impl SeriesRecorder {
    /// A recorder whose counts start now.
    pub fn new() -> SeriesRecorder {
        let now = Instant::now();
        SeriesRecorder {
            began: now,
            workload_began: None,
            last_at: now,
            last: Totals {
                cpu_s: ProcessSample::now().map_or(0.0, |p| p.cpu_s),
                ..Totals::default()
            },
            points: Vec::new(),
            marks: MarkLog::default(),
        }
    }

    /// Where events of this run are marked.
    pub fn marks(&self) -> MarkLog {
        self.marks.clone()
    }

    /// The workload starts now: `t = 0` of the series.
    pub fn workload_started(&mut self) {
        self.workload_began = Some(Instant::now());
    }

    /// Records the second that ends now. `sent`, `delivered` and `operation_errors` are the
    /// recorder's totals so far, `window` the latency of the deliveries since the last sample.
    pub fn sample(
        &mut self,
        phase: Phase,
        fleet: &FleetStats,
        sent: u64,
        delivered: u64,
        operation_errors: BTreeMap<String, u64>,
        window: &Histogram<u64>,
    ) -> &SeriesPoint {
        let now = Instant::now();
        let process = ProcessSample::now();
        let mut errors = fleet.errors.clone();
        for (kind, n) in operation_errors {
            *errors.entry(kind).or_insert(0) += n;
        }
        let totals = Totals {
            sent,
            delivered,
            errors,
            recoveries: fleet.recoveries,
            reconnects: fleet.reconnects,
            restarts: fleet.restarts,
            cpu_s: process.map_or(self.last.cpu_s, |p| p.cpu_s),
        };
        let point = SeriesPoint {
            t: 0,
            phase: match phase {
                Phase::RampUp => "ramp-up",
                Phase::Run => "run",
                Phase::Drain => "drain",
            }
            .to_owned(),
            span_s: now.duration_since(self.last_at).as_secs_f64(),
            sources: 1,
            connected: fleet.connected,
            sent: totals.sent.saturating_sub(self.last.sent),
            delivered: totals.delivered.saturating_sub(self.last.delivered),
            latency: SecondLatency::of(window),
            errors: (totals.errors.iter())
                .filter_map(|(kind, &n)| {
                    let before = self.last.errors.get(kind).copied().unwrap_or(0);
                    (n > before).then(|| (kind.clone(), n - before))
                })
                .collect(),
            recoveries: totals.recoveries.saturating_sub(self.last.recoveries),
            reconnects: totals.reconnects.saturating_sub(self.last.reconnects),
            restarts: totals.restarts.saturating_sub(self.last.restarts),
            cpu_s: (totals.cpu_s - self.last.cpu_s).max(0.0),
            rss_mib: process.map_or(0.0, |p| p.rss_kib as f64 / 1024.0),
        };
        self.last = totals;
        self.last_at = now;
        self.points.push((now, point));
        &self.points.last().expect("just pushed").1
    }

    /// The series so far, on the workload's clock (the start of the recorder's when the
    /// workload never started). Two samples that round to the same second (a late tick)
    /// become one record: counts add, gauges keep the later value.
    pub fn finish(&mut self) -> Series {
        let zero = self.workload_began.unwrap_or(self.began);
        let t_of = |at: Instant| {
            if at >= zero {
                at.duration_since(zero).as_secs_f64()
            } else {
                -zero.duration_since(at).as_secs_f64()
            }
        };
        let mut points: Vec<SeriesPoint> = Vec::with_capacity(self.points.len());
        for (at, mut point) in std::mem::take(&mut self.points) {
            point.t = t_of(at).round() as i64;
            match points.last_mut() {
                Some(last) if last.t == point.t => {
                    point.add_counts(last);
                    point.span_s += last.span_s;
                    *last = point;
                }
                _ => points.push(point),
            }
        }
        let (marks, dropped) = {
            let mut inner = self.marks.inner.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *inner)
        };
        Series {
            points,
            marks: (marks.into_iter())
                .map(|(at, kind, detail)| Mark {
                    t_s: t_of(at),
                    kind,
                    detail,
                })
                .collect(),
            marks_dropped: dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::latency_histogram;

    fn point(t: i64, connected: u64, latencies_us: &[u64]) -> SeriesPoint {
        let mut h = latency_histogram();
        for &us in latencies_us {
            h.record(us).unwrap();
        }
        SeriesPoint {
            t,
            phase: "run".into(),
            span_s: 1.0,
            sources: 1,
            connected,
            sent: latencies_us.len() as u64,
            delivered: latencies_us.len() as u64,
            latency: SecondLatency::of(&h),
            errors: BTreeMap::from([("tcp".to_owned(), 1)]),
            recoveries: 2,
            reconnects: 1,
            restarts: 0,
            cpu_s: 0.5,
            rss_mib: 10.0,
        }
    }

    #[test]
    fn buckets_are_quarter_octaves() {
        assert_eq!(bucket_upper_us(1), 1);
        assert_eq!(bucket_upper_us(1000), 1024);
        assert_eq!(bucket_upper_us(1024), 1024);
        assert_eq!(bucket_upper_us(1025), 1218);
        assert!(bucket_upper_us(600_000_000) >= 600_000_000);
    }

    #[test]
    fn one_process_latency_is_exact_and_bucketed() {
        let latencies: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let l = point(0, 1, &latencies).latency;
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.1, "{l:?}");
        assert_eq!(l.buckets.iter().map(|b| b.1).sum::<u64>(), 100);
        assert!(l.buckets.len() < 30, "{}", l.buckets.len());
    }

    #[test]
    fn shards_merge_on_the_shared_clock() {
        // Shard A: fast deliveries at t=0 and t=1; shard B: slow ones at t=1 and t=2.
        let a = Series {
            points: vec![point(0, 10, &[1000; 50]), point(1, 10, &[1000; 50])],
            marks: vec![Mark {
                t_s: 1.5,
                kind: "chaos".into(),
                detail: "a".into(),
            }],
            marks_dropped: 0,
        };
        let b = Series {
            points: vec![point(1, 5, &[100_000; 50]), point(2, 5, &[100_000; 50])],
            marks: vec![Mark {
                t_s: 0.5,
                kind: "chaos".into(),
                detail: "b".into(),
            }],
            marks_dropped: 2,
        };
        let m = Series::merge([&a, &b]);
        let ts: Vec<i64> = m.points.iter().map(|p| p.t).collect();
        assert_eq!(ts, [0, 1, 2]);
        let both = &m.points[1];
        assert_eq!(both.sources, 2);
        assert_eq!(both.connected, 15);
        assert_eq!((both.sent, both.delivered), (100, 100));
        assert_eq!(both.errors.get("tcp"), Some(&2));
        assert_eq!((both.recoveries, both.reconnects), (4, 2));
        assert!((both.cpu_s - 1.0).abs() < 1e-9 && (both.rss_mib - 20.0).abs() < 1e-9);
        assert_eq!(both.latency.count, 100);
        // Half fast, half slow: the median is the fast bucket, the p99 the slow one.
        assert!(both.latency.p50_ms <= 1.1, "{:?}", both.latency);
        assert!(
            (100.0..=120.0).contains(&both.latency.p99_ms),
            "{:?}",
            both.latency
        );
        assert!((both.latency.max_ms - 100.0).abs() < 0.2);
        // Seconds only one shard saw are that shard's, exact.
        assert_eq!(m.points[0], a.points[0]);
        assert_eq!(m.points[2], b.points[1]);
        let details: Vec<&str> = m.marks.iter().map(|k| k.detail.as_str()).collect();
        assert_eq!(details, ["b", "a"]);
        assert_eq!(m.marks_dropped, 2);
        assert_eq!(m.latency().count, 200);
    }

    #[test]
    fn samples_become_per_second_deltas() {
        let mut rec = SeriesRecorder::new();
        let mut fleet = FleetStats {
            connected: 3,
            recoveries: 1,
            ..FleetStats::default()
        };
        fleet.errors.insert("tcp".into(), 2);
        let mut window = latency_histogram();
        window.record(2000).unwrap();
        rec.sample(Phase::RampUp, &fleet, 10, 20, BTreeMap::new(), &window);
        rec.workload_started();
        fleet.recoveries = 4;
        fleet.errors.insert("tcp".into(), 3);
        let ops = BTreeMap::from([("ack_timeout".to_owned(), 1)]);
        let p = rec
            .sample(Phase::Run, &fleet, 15, 40, ops, &latency_histogram())
            .clone();
        assert_eq!((p.sent, p.delivered, p.recoveries), (5, 20, 3));
        assert_eq!(
            p.errors,
            BTreeMap::from([("ack_timeout".to_owned(), 1), ("tcp".to_owned(), 1)])
        );
        assert_eq!(p.latency.count, 0);
        rec.marks().mark("chaos", "dropped 5%".into());
        let series = rec.finish();
        // Both samples fall within the same second around the workload's start: one record
        // whose counts add and whose gauges are the later ones.
        assert_eq!(series.points.len(), 1, "{series:?}");
        let only = &series.points[0];
        assert_eq!((only.t, only.sent, only.delivered), (0, 15, 40));
        assert_eq!(only.latency.count, 1);
        assert_eq!(only.phase, "run");
        assert_eq!(series.marks.len(), 1);
        assert!(series.marks[0].t_s >= 0.0);
    }
}
