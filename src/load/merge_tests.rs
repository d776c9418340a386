//! The merge against the one-process checker: a seeded workload with every kind of fault,
//! recorded through the recorder's own transitions, checked whole and as 4 shard reports
//! that go through JSON.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::load::checker::{CheckReport, check};
use crate::load::report::Limit;
use crate::load::shard::{
    Histograms, PublisherWire, ReceiverWire, SHARD_REPORT_FORMAT, encode_histogram,
};
use crate::load::stamp::Stamp;
use crate::load::track::{Outcome, PublisherLog, ReceiverTrack};

const CLIENTS: u64 = 40;
const GROUP: u64 = 10;
const SHARDS: u64 = 4;

struct Workload {
    receivers: Vec<ReceiverTrack>,
    publishers: Vec<PublisherLog>,
}

/// Groups of 10, the first 2 of each publish 50 rounds; with `faults`, losses, duplicates,
/// late (reordered) deliveries, unknown outcomes, a refused publish delivered anyway, a
/// stray stamp and a reconnect.
fn workload(seed: u64, faults: bool) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let group_of = |c: u64| format!("group-{}", c / GROUP);
    let mut receivers: Vec<ReceiverTrack> = (0..CLIENTS)
        .map(|c| ReceiverTrack::new(vec![group_of(c)]))
        .collect();
    let mut publishers = vec![PublisherLog::default(); CLIENTS as usize];
    for (c, r) in receivers.iter_mut().enumerate() {
        r.on_connected(&format!("c{c}"), 0);
    }
    let mut late: Vec<(usize, String, String)> = Vec::new();
    let mut t = 10;
    for round in 0..50 {
        for p in (0..CLIENTS).filter(|p| p % GROUP < 2) {
            t += 10;
            let group = group_of(p);
            let log = &mut publishers[p as usize];
            let seq = log.begin(Arc::from(group.as_str()), t);
            let outcome = match rng.random_range(0..100) {
                0..4 if faults => Outcome::Unknown,
                4 if faults => Outcome::Refused,
                _ => Outcome::Acked,
            };
            log.end(seq, outcome, t + 5);
            let payload = Stamp {
                publisher: p,
                seq,
                sent_us: t,
            }
            .to_payload(0);
            let members = (p / GROUP * GROUP)..((p / GROUP + 1) * GROUP);
            for r in members.map(|r| r as usize) {
                match rng.random_range(0..100) {
                    0..3 if faults => {}
                    3..5 if faults => late.push((r, group.clone(), payload.clone())),
                    5..7 if faults => {
                        receivers[r].on_delivery(&group, Ok(&payload), t + 3);
                        receivers[r].on_delivery(&group, Ok(&payload), t + 4);
                    }
                    _ => {
                        receivers[r].on_delivery(&group, Ok(&payload), t + 3);
                    }
                }
            }
        }
        if round % 3 == 2 {
            for (r, group, payload) in late.drain(..) {
                receivers[r].on_delivery(&group, Ok(&payload), t + 6);
            }
        }
        if faults && round == 20 {
            receivers[13].on_disconnected(t + 1);
            receivers[13].on_connected("c13-again", t + 2);
        }
    }
    if faults {
        // Publisher 11 never published to group-0.
        let stray = Stamp {
            publisher: 11,
            seq: 1,
            sent_us: 20,
        }
        .to_payload(0);
        receivers[5].on_delivery("group-0", Ok(&stray), t + 7);
    }
    for r in &mut receivers {
        r.finish(t + 100);
    }
    Workload {
        receivers,
        publishers,
    }
}

fn run_key() -> RunKey {
    RunKey {
        shards: SHARDS,
        clients: CLIENTS,
        seed: 7,
        workload: "w".into(),
    }
}

/// The workload cut into shard reports, each through JSON and back.
fn shard_reports(w: &Workload) -> Vec<ShardReport> {
    (0..SHARDS)
        .map(|index| {
            let spec = ShardSpec::new(index, SHARDS).unwrap();
            let owned = (0..CLIENTS).filter(|c| spec.owns(*c));
            let empty = encode_histogram(&latency_histogram());
            let report = ShardReport {
                format: SHARD_REPORT_FORMAT.into(),
                shard: index,
                run: run_key(),
                report: LoadReport {
                    clients: ClientsReport {
                        requested: spec.len(CLIENTS),
                        connected: spec.len(CLIENTS),
                        ..ClientsReport::default()
                    },
                    ..LoadReport::default()
                },
                histograms: Histograms {
                    delivery: empty.clone(),
                    connect: empty.clone(),
                    recovery: empty,
                },
                receivers: owned
                    .clone()
                    .map(|c| ReceiverWire::from_track(c, &w.receivers[c as usize]))
                    .collect(),
                publishers: owned
                    .map(|c| PublisherWire::from_log(c, &w.publishers[c as usize]))
                    .collect(),
            };
            let text = serde_json::to_string(&report).unwrap();
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

fn merged(reports: &[ShardReport]) -> LoadReport {
    merge(reports, &Absent::default(), &Thresholds::default()).unwrap()
}

fn one_process(w: &Workload) -> CheckReport {
    check(&w.receivers, &w.publishers)
}

#[test]
fn four_shards_merge_to_the_one_process_counts() {
    for seed in [1, 2, 3] {
        let w = workload(seed, true);
        let whole = one_process(&w);
        let t = whole.total;
        assert!(
            t.lost > 0
                && t.duplicated > 0
                && t.reordered > 0
                && t.unexpected > 0
                && t.allowed_gap + t.indeterminate > 0,
            "the workload must exercise every verdict: {t:?}"
        );
        let mut reports = shard_reports(&w);
        reports.reverse();
        let report = merged(&reports);
        assert_eq!(report.messages.checked, whole.total, "seed {seed}");
        assert_eq!(report.messages.unresolved, whole.unresolved);
        assert_eq!(report.messages.unchecked, 0);
        assert!(report.incomplete.is_empty());
        assert_eq!(report.clients.connected, CLIENTS);
        assert_eq!(report.shards.len(), SHARDS as usize);
    }
}

#[test]
fn a_forged_missing_range_is_exactly_one_loss() {
    let w = workload(9, false);
    assert_eq!(one_process(&w).total.violations(), 0);
    let mut reports = shard_reports(&w);
    assert_eq!(merged(&reports).messages.checked.violations(), 0);
    // Receiver 21 (shard 1) "never got" sequence 3 of publisher 20 (shard 0).
    let receiver = reports[1]
        .receivers
        .iter_mut()
        .find(|r| r.client == 21)
        .unwrap();
    let ranges = receiver
        .groups
        .get_mut("group-2")
        .unwrap()
        .received
        .get_mut(&20)
        .unwrap();
    assert_eq!(ranges, &vec![(1, 50)]);
    *ranges = vec![(1, 2), (4, 50)];
    let report = merged(&reports);
    let c = report.messages.checked;
    assert_eq!(
        (c.lost, c.duplicated, c.reordered, c.unexpected),
        (1, 0, 0, 0)
    );
    let failed = Thresholds {
        max_loss: Some(Limit::Count(0)),
        ..Thresholds::default()
    };
    let report = merge(&reports, &Absent::default(), &failed).unwrap();
    assert!(!report.thresholds.passed);
}

#[test]
fn a_shard_alone_counts_nothing_it_cannot_observe_as_lost() {
    let w = workload(4, false);
    let reports = shard_reports(&w);
    let tracks = reports[1].decode_tracks().unwrap();
    let receivers = tracks.receivers.iter().map(|(i, t)| (*i, t)).collect();
    let publishers = tracks.publishers.iter().map(|(i, l)| (*i, l)).collect();
    let spec = ShardSpec::new(1, SHARDS).unwrap();
    let alone = check_clients(&receivers, &publishers, |p| p >= CLIENTS || spec.owns(p));
    assert_eq!(alone.total.violations(), 0, "{alone:?}");
    assert!(
        alone.unchecked > 0,
        "other shards' publishers are unchecked"
    );
    // Treating the other shards' publishers as known would call their deliveries unexpected.
    let naive = check_clients(&receivers, &publishers, |_| true);
    assert_eq!(naive.total.unexpected, alone.unchecked);
}

#[test]
fn a_missing_shard_is_named_and_its_deliveries_are_not_losses() {
    let w = workload(5, false);
    let mut reports = shard_reports(&w);
    reports.remove(2);
    let mut absent = Absent::default();
    absent.shards.insert(2, "no report within 30 s".into());
    let report = merge(&reports, &absent, &Thresholds::default()).unwrap();
    assert_eq!(report.incomplete, ["shard 2: no report within 30 s"]);
    assert!(!report.thresholds.passed);
    assert_eq!(report.messages.checked.violations(), 0);
    assert!(report.messages.unchecked > 0);
    assert_eq!(report.shards.len(), 3);
    assert!(report.to_string().contains("INCOMPLETE"));
}

#[test]
fn inconsistent_reports_are_refused_with_the_reason() {
    let w = workload(6, false);
    let reports = shard_reports(&w);
    let mut twice = reports.clone();
    twice.push(reports[0].clone());
    let err = merged_err(&twice);
    assert!(err.contains("two reports of shard 0"), "{err}");
    let mut seeds = reports.clone();
    seeds[3].run.seed = 8;
    let err = merged_err(&seeds);
    assert!(err.contains("--seed"), "{err}");
    let mut foreign = reports.clone();
    foreign[1].receivers[0].client = 0;
    let err = merged_err(&foreign);
    assert!(err.contains("not one of its clients"), "{err}");
    let mut out_of_range = reports;
    out_of_range[0].shard = 9;
    assert!(merged_err(&out_of_range).contains("out of range"));
}

fn merged_err(reports: &[ShardReport]) -> String {
    merge(reports, &Absent::default(), &Thresholds::default()).unwrap_err()
}

#[test]
fn pacing_counts_add_across_shards_and_the_rates_follow() {
    let w = workload(1, false);
    let mut reports = shard_reports(&w);
    for r in &mut reports {
        r.report.duration_s = 10.0;
        r.report.pacing = Some(PacingReport {
            scheduled: 100,
            sent: 80,
            late: 3,
            skipped: 20,
            max_in_flight: 100,
            ..PacingReport::default()
        });
    }
    // No pacing in one shard (a shard whose clients do not send): the others still add.
    reports[3].report.pacing = None;
    let report = merge(
        &reports,
        &Absent::default(),
        &Thresholds {
            min_achieved: Some(0.9),
            ..Thresholds::default()
        },
    )
    .unwrap();
    let p = report
        .pacing
        .clone()
        .expect("paced shards merge into a pacing");
    assert_eq!((p.scheduled, p.sent, p.late, p.skipped), (300, 240, 9, 60));
    assert!((p.offered_per_s - 30.0).abs() < 1e-9, "{p:?}");
    assert!((p.achieved_per_s - 24.0).abs() < 1e-9, "{p:?}");
    assert!(p.saturated, "80 % achieved is below 90 %");
    assert!(!report.thresholds.passed, "{:?}", report.thresholds);
    // No shard paced: no pacing in the merge either.
    for r in &mut reports {
        r.report.pacing = None;
    }
    assert_eq!(merged(&reports).pacing, None);
}
