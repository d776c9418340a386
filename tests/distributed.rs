//! What a Kubernetes Indexed Job of sharded `load` runs does, on this machine: a hub process
//! and shard processes of the built binary with `JOB_COMPLETION_INDEX` 0..N, shard 0
//! coordinating. Every wait has a deadline; children are killed when a test ends.

mod support;

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::process::{Proc, hub_process};

/// A hub process; returns it and its connection string.
fn hub() -> (Proc, String) {
    let (hub, cs) = hub_process(&[]);
    (hub, cs.expose())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Shard `index` of a run; `extra` flags go after the common ones.
fn shard(index: u64, port: u16, cs: &str, common: &[&str], extra: &[&str]) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec!["load"];
    args.extend_from_slice(common);
    if index == 0 {
        args.extend(["--listen", &listen]);
    } else {
        args.extend(["--coordinator", &url]);
    }
    args.extend_from_slice(extra);
    Proc::spawn(
        &format!("shard {index}"),
        &args,
        &[
            ("JOB_COMPLETION_INDEX", index.to_string()),
            ("WebPubSubConnectionString", cs.to_owned()),
        ],
    )
}

/// Clients of the 4-shard run, 250 per shard. The issue asks for 4,000; with the debug
/// binary `cargo test` builds, on two cores other jobs share, 4,000 clients at 800 publishes/s
/// put delivery latency past the drain (seconds), so CI runs a quarter of that; the 10,000
/// client figure comes from a release build (docs/distributed.md).
const CLIENTS: u64 = 1000;

/// The tests here start a hub and several loaded processes each: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn four_shard_processes_merge_into_one_checked_report() {
    let _serial = one_at_a_time();
    let (_hub, cs) = hub();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("merged.json");
    let json_arg = json.to_str().unwrap();
    let clients = CLIENTS.to_string();
    let common = [
        "--clients",
        &clients,
        "--shards",
        "4",
        "--group-size",
        "10",
        "--senders",
        "2",
        "--rate",
        "1",
        "--duration",
        "4s",
        "--ramp-rate",
        "1000",
        "--arbiters",
        "1",
    ];
    let mut shards: Vec<Proc> = (1..4).map(|i| shard(i, port, &cs, &common, &[])).collect();
    let mut coordinator = shard(
        0,
        port,
        &cs,
        &common,
        &[
            "--max-loss",
            "0",
            "--min-connected",
            "100%",
            "--json",
            json_arg,
        ],
    );
    let status = coordinator.wait(Duration::from_secs(120));
    let out = coordinator.stdout();
    assert!(
        status.success(),
        "the coordinator failed ({status})\nstdout:\n{out}\nstderr:\n{}",
        coordinator.stderr()
    );
    for s in &mut shards {
        let status = s.wait(Duration::from_secs(30));
        assert!(status.success(), "{} failed: {}", s.name(), s.stderr());
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["clients"]["requested"], CLIENTS, "{out}");
    assert_eq!(report["clients"]["connected"], CLIENTS, "{out}");
    let m = &report["messages"];
    for violation in ["lost", "duplicated", "reordered", "unexpected"] {
        assert_eq!(m[violation], 0, "{violation}: {out}");
    }
    assert!(
        m.get("unchecked").is_none(),
        "every delivery was checked: {out}"
    );
    let delivered = m["delivered"].as_u64().unwrap();
    assert!(delivered > 0, "{out}");
    let rows = report["shards"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{out}");
    let mut row_delivered = 0;
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["index"], i as u64);
        assert_eq!(row["connected"], CLIENTS / 4, "{out}");
        assert!(row["rss_mib"].as_f64().unwrap() > 0.0);
        row_delivered += row["delivered"].as_u64().unwrap();
    }
    assert_eq!(row_delivered, delivered);
    assert!(report.get("incomplete").is_none(), "{out}");
    assert!(out.contains("shard 3 of 4"), "{out}");
}

#[test]
fn a_shard_killed_mid_run_is_named_by_the_coordinator_in_bounded_time() {
    let _serial = one_at_a_time();
    let (_hub, cs) = hub();
    let port = free_port();
    let common = [
        "--clients",
        "80",
        "--shards",
        "4",
        "--duration",
        "10s",
        "--arbiters",
        "1",
        "--report-timeout",
        "5s",
    ];
    let mut shards: Vec<Proc> = (1..4).map(|i| shard(i, port, &cs, &common, &[])).collect();
    let mut coordinator = shard(0, port, &cs, &common, &[]);
    // Shard 2 passed the barrier: the workload runs.
    shards[1].wait_for_line("[shard 2] [    run", Duration::from_secs(60));
    shards[1].kill();
    let began = Instant::now();
    let status = coordinator.wait(Duration::from_secs(90));
    let out = coordinator.stdout();
    assert_eq!(status.code(), Some(1), "{out}\n{}", coordinator.stderr());
    assert!(
        out.contains("INCOMPLETE")
            && out.contains("shard 2 passed the barrier but sent no report within 5 s"),
        "{out}"
    );
    assert!(
        !out.contains("shard 1 passed"),
        "only shard 2 is missing: {out}"
    );
    assert!(
        out.contains("shard 3 of 4"),
        "the others' rows are there: {out}"
    );
    // The run had about 8 s left, then drain and 5 s of report timeout.
    assert!(began.elapsed() < Duration::from_secs(60));
    for i in [0, 2] {
        assert!(shards[i].wait(Duration::from_secs(30)).success());
    }
}

#[test]
fn a_shard_of_another_run_is_refused_and_the_barrier_names_it() {
    let _serial = one_at_a_time();
    let (_hub, cs) = hub();
    let port = free_port();
    let common = [
        "--clients",
        "20",
        "--shards",
        "2",
        "--duration",
        "2s",
        "--barrier-timeout",
        "8s",
    ];
    let mut other = shard(1, port, &cs, &common, &["--seed", "2"]);
    let mut coordinator = shard(0, port, &cs, &common, &["--seed", "1"]);
    let status = other.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(2));
    let err = other.stderr();
    assert!(
        err.contains("--seed 2") && err.contains("same command line"),
        "{err}"
    );
    let status = coordinator.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1));
    let out = coordinator.stdout();
    assert!(out.contains("shard 1 was refused"), "{out}");
}

#[test]
fn an_unreachable_coordinator_ends_a_shard_with_a_clear_error() {
    let port = free_port();
    let mut lonely = Proc::spawn(
        "shard 1",
        &[
            "load",
            "--clients",
            "20",
            "--shards",
            "2",
            "--barrier-timeout",
            "2s",
            "--coordinator",
            &format!("http://127.0.0.1:{port}"),
        ],
        &[
            ("JOB_COMPLETION_INDEX", "1".into()),
            (
                "WebPubSubConnectionString",
                "Endpoint=http://127.0.0.1;Port=1;AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH;Version=1.0;".into(),
            ),
        ],
    );
    assert_eq!(lonely.wait(Duration::from_secs(30)).code(), Some(2));
    let err = lonely.stderr();
    assert!(
        err.contains("unreachable after") && err.contains("attempts"),
        "{err}"
    );
    let mut out_of_range = Proc::spawn(
        "shard 4",
        &["load", "--clients", "20", "--shards", "4", "--shard-index", "4"],
        &[(
            "WebPubSubConnectionString",
            "Endpoint=http://127.0.0.1;Port=1;AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH;Version=1.0;".into(),
        )],
    );
    assert_eq!(out_of_range.wait(Duration::from_secs(30)).code(), Some(2));
    assert!(out_of_range.stderr().contains("0 to 3"));
}

#[test]
fn offline_shard_reports_merge_with_report_merge() {
    let _serial = one_at_a_time();
    let (_hub, cs) = hub();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = (0..2)
        .map(|i| {
            dir.path()
                .join(format!("shard-{i}.json"))
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut shards: Vec<Proc> = (0..2)
        .map(|i| {
            Proc::spawn(
                &format!("shard {i}"),
                &[
                    "load",
                    "--clients",
                    "40",
                    "--shards",
                    "2",
                    "--senders",
                    "2",
                    "--seed",
                    "5",
                    "--duration",
                    "2s",
                    "--shard-report",
                    &files[i],
                ],
                &[
                    ("JOB_COMPLETION_INDEX", i.to_string()),
                    ("WebPubSubConnectionString", cs.clone()),
                ],
            )
        })
        .collect();
    for s in &mut shards {
        let status = s.wait(Duration::from_secs(60));
        assert!(status.success(), "{}", s.stderr());
        assert!(
            s.stdout().contains("unchecked"),
            "a shard alone says what it did not check"
        );
    }
    let mut merge = Proc::spawn(
        "merge",
        &["report", "merge", &files[0], &files[1], "--max-loss", "0"],
        &[],
    );
    assert!(
        merge.wait(Duration::from_secs(30)).success(),
        "{}",
        merge.stderr()
    );
    let out = merge.stdout();
    assert!(
        out.contains("40 connected of 40") && out.contains("0 lost"),
        "{out}"
    );
    // One file is not the run: the merge names the missing shard and fails.
    let mut half = Proc::spawn("half", &["report", "merge", &files[1]], &[]);
    assert_eq!(half.wait(Duration::from_secs(30)).code(), Some(1));
    assert!(
        half.stdout().contains("shard 0: no report"),
        "{}",
        half.stdout()
    );
}
