//! Merging shard reports into one report of the whole run: counts add, latency percentiles
//! come from the merged HDR histograms, and the delivery checker runs once over every
//! shard's tracks, so lost, duplicated, reordered, unexpected and allowed gaps are classified
//! exactly as one process holding every client would.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;

use crate::fleet::{LatencySummary, MAX_LATENCY_US, latency_histogram};

use super::checker::check_clients;
use super::pacing::PaceCounts;
use super::recorder::SLOW_DELIVERY_US;
use super::report::{
    BenchmarkRule, ClientsReport, ConnectReport, DEFAULT_MIN_ACHIEVED, LoadReport, MessagesReport,
    PacingReport, ProcessReport, ShardRow, Thresholds, ThroughputReport,
};
use super::shard::{RunKey, ShardReport, ShardSpec, decode_histogram};

/// What the merge was told to expect when reports are missing (the coordinator knows the run
/// even when no shard reported).
#[derive(Debug, Clone, Default)]
pub struct Absent {
    /// Missing shards by index, with why.
    pub shards: BTreeMap<u64, String>,
}

/// Merges `reports` (any order) of one run into its report. `absent` names shards known to
/// be missing and why; shards that are neither reported nor named are missing too. The
/// result is marked incomplete when any shard is missing, which fails its thresholds.
pub fn merge(
    reports: &[ShardReport],
    absent: &Absent,
    thresholds: &Thresholds,
) -> Result<LoadReport, String> {
    let Some(first) = reports.first() else {
        return Err("no shard report to merge".into());
    };
    let key: &RunKey = &first.run;
    let mut by_index: BTreeMap<u64, &ShardReport> = BTreeMap::new();
    for r in reports {
        ShardSpec::new(r.shard, r.run.shards)?;
        if let Some(why) = key.mismatch(r.shard, &r.run) {
            return Err(why);
        }
        if by_index.insert(r.shard, r).is_some() {
            return Err(format!(
                "two reports of shard {}: give each shard report once",
                r.shard
            ));
        }
    }
    let present: BTreeSet<u64> = by_index.keys().copied().collect();

    // The checker over every shard's tracks.
    let mut receivers = BTreeMap::new();
    let mut publishers = BTreeMap::new();
    for r in by_index.values() {
        let tracks = r
            .decode_tracks()
            .map_err(|e| format!("shard {}: {e}", r.shard))?;
        receivers.extend(tracks.receivers);
        publishers.extend(tracks.publishers);
    }
    let check = {
        let receivers = receivers.iter().map(|(i, t)| (*i, t)).collect();
        let publishers = publishers.iter().map(|(i, l)| (*i, l)).collect();
        check_clients(&receivers, &publishers, |p| {
            p >= key.clients || present.contains(&ShardSpec::owner(key.shards, p))
        })
    };
    drop((receivers, publishers));

    let mut delivery = latency_histogram();
    let mut connect = latency_histogram();
    let mut recovery = latency_histogram();
    let add = |into: &mut Histogram<u64>, text: &str, shard: u64| {
        let h = decode_histogram(text).map_err(|e| format!("shard {shard}: {e}"))?;
        into.add(&h)
            .map_err(|e| format!("shard {shard}: a histogram does not fit: {e:?}"))
    };
    let mut sum = LoadReport::default();
    let (mut rss_added_kib, mut anon_added_kib) = (0.0, 0.0);
    // Paced publishers' counts add; the rates are worked out again on the merged report.
    let mut pacing: Option<(PaceCounts, u64)> = None;
    for r in by_index.values() {
        if let Some(p) = &r.report.pacing {
            let (sum, window) = pacing.get_or_insert((PaceCounts::default(), 0));
            sum.scheduled += p.scheduled;
            sum.sent += p.sent;
            sum.late += p.late;
            sum.skipped += p.skipped;
            *window = (*window).max(p.max_in_flight);
        }
        add(&mut delivery, &r.histograms.delivery, r.shard)?;
        add(&mut connect, &r.histograms.connect, r.shard)?;
        add(&mut recovery, &r.histograms.recovery, r.shard)?;
        let s = &r.report;
        sum.duration_s = sum.duration_s.max(s.duration_s);
        let c = &mut sum.clients;
        c.connected = c.connected.saturating_add(s.clients.connected);
        c.ever_connected = c.ever_connected.saturating_add(s.clients.ever_connected);
        c.restarts = c.restarts.saturating_add(s.clients.restarts);
        c.abandoned = c.abandoned.saturating_add(s.clients.abandoned);
        sum.connect.rate_per_s += s.connect.rate_per_s;
        sum.connect.ramp_s = sum.connect.ramp_s.max(s.connect.ramp_s);
        sum.messages.sent = sum.messages.sent.saturating_add(s.messages.sent);
        sum.throughput.sent_per_s += s.throughput.sent_per_s;
        sum.throughput.delivered_per_s += s.throughput.delivered_per_s;
        sum.recoveries = sum.recoveries.saturating_add(s.recoveries);
        sum.reconnects = sum.reconnects.saturating_add(s.reconnects);
        for (kind, n) in &s.errors {
            let count = sum.errors.entry(kind.clone()).or_default();
            *count = count.saturating_add(*n);
        }
        sum.process.rss_mib += s.process.rss_mib;
        sum.process.cpu_s += s.process.cpu_s;
        sum.process.threads = sum.process.threads.saturating_add(s.process.threads);
        rss_added_kib += s.process.rss_per_client_kib * s.clients.connected as f64;
        anon_added_kib += s.process.anon_per_client_kib * s.clients.connected as f64;
        sum.shards.push(ShardRow {
            index: r.shard,
            of: key.shards,
            requested: s.clients.requested,
            connected: s.clients.connected,
            sent: s.messages.sent,
            delivered: s.messages.checked.delivered,
            cpu_s: s.process.cpu_s,
            rss_mib: s.process.rss_mib,
        });
    }
    let mut incomplete = Vec::new();
    for index in 0..key.shards {
        if present.contains(&index) {
            continue;
        }
        let why = absent
            .shards
            .get(&index)
            .cloned()
            .unwrap_or_else(|| "no report".into());
        incomplete.push(format!("shard {index}: {why}"));
    }
    // Memory added per client over every shard's clients (no client: nothing was added).
    let connected = sum.clients.connected.max(1) as f64;
    let mut report = LoadReport {
        scenario: first.report.scenario.clone(),
        target: first.report.target.clone(),
        protocol: first.report.protocol.clone(),
        clients: ClientsReport {
            requested: key.clients,
            ..sum.clients
        },
        connect: ConnectReport {
            latency_ms: LatencySummary::of(&connect),
            ..sum.connect
        },
        messages: MessagesReport {
            sent: sum.messages.sent,
            checked: check.total,
            unresolved: check.unresolved,
            unchecked: check.unchecked,
        },
        latency_ms: LatencySummary::of(&delivery).into(),
        throughput: ThroughputReport { ..sum.throughput },
        recovery_ms: LatencySummary::of(&recovery),
        process: ProcessReport {
            rss_per_client_kib: rss_added_kib / connected,
            anon_per_client_kib: anon_added_kib / connected,

            ..sum.process
        },
        incomplete,
        // The shards' per-second records on the shared workload clock (issue 14).
        series: super::series::Series::merge(reports.iter().map(|r| &r.report.series)),
        ..sum
    };
    report.pacing = pacing.map(|(counts, window)| {
        let floor = thresholds.min_achieved.unwrap_or(DEFAULT_MIN_ACHIEVED);
        PacingReport::evaluate(counts, window, &report, floor)
    });
    let slow = delivery.count_between(SLOW_DELIVERY_US + 1, MAX_LATENCY_US);
    report.benchmark = BenchmarkRule::evaluate(&report, slow);
    report.thresholds = thresholds.evaluate(&report);
    Ok(report)
}

/// The report of a run none of whose shards reported (the coordinator gave up at the
/// barrier): no figures, only what is missing and why. It never passes.
pub fn nothing_reported(
    key: &RunKey,
    absent: &Absent,
    scenario: &str,
    thresholds: &Thresholds,
) -> LoadReport {
    let mut report = LoadReport {
        scenario: scenario.to_owned(),
        clients: ClientsReport {
            requested: key.clients,
            ..ClientsReport::default()
        },
        incomplete: (0..key.shards)
            .map(|i| {
                let why = absent.shards.get(&i).map_or("no report", String::as_str);
                format!("shard {i}: {why}")
            })
            .collect(),
        ..LoadReport::default()
    };
    report.thresholds = thresholds.evaluate(&report);
    report
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
