//! The per-second series of a real (small, short) load run: what the JSON report carries.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use webpubsub_fleet::fleet::FleetTarget;
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::load::{self, Chaos, Groups, LoadPlan, REPORT_SCHEMA_VERSION};

#[actix_rt::test]
async fn a_chaos_run_has_a_second_by_second_series_with_its_chaos_marked() {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().expect("address"))
        .workers(1);
    let hub = Hub::start(config).await.expect("the hub starts");
    let dropper = hub.clone();
    let plan = LoadPlan {
        clients: 40,
        duration: Duration::from_secs(4),
        fds_per_client: 2,
        arbiters: 1,
        seed: 11,
        target_name: "local hub".into(),
        chaos: Some(Chaos {
            share: 0.1,
            period: Duration::from_secs(1),
            inject: Arc::new(move |share| {
                dropper.drop_fraction(share);
                async { Ok(()) }.boxed()
            }),
        }),
        ..LoadPlan::default()
    };
    let target = FleetTarget::new(hub.connection_string(), "loadtest");
    let groups = Groups {
        group_size: 10,
        senders: 2,
        rate: 10.0,
    };
    let report = load::run(target, plan, Arc::new(groups), |_| {})
        .await
        .expect("the run completes");
    hub.stop().await;
    let series = &report.series;
    eprintln!("{report}\n{series:#?}");

    let ts: Vec<i64> = series.points.iter().map(|p| p.t).collect();
    assert!(
        ts.windows(2).all(|w| w[0] < w[1]),
        "ordered seconds: {ts:?}"
    );
    // Ticks are a second apart: the 4 s workload gives about 4 records from t = 0 on.
    let run: Vec<_> = series.points.iter().filter(|p| p.phase == "run").collect();
    assert!((3..=5).contains(&run.len()), "run records: {ts:?}");
    assert!(
        run.iter().all(|p| (0.5..2.0).contains(&p.span_s)),
        "{run:?}"
    );
    assert!(run.iter().any(|p| p.connected > 30), "{run:?}");
    assert!(run.iter().all(|p| p.sent > 0 && p.delivered > 0), "{run:?}");
    assert!(
        run.iter()
            .all(|p| p.latency.count > 0 && p.latency.p99_ms >= p.latency.p50_ms)
    );

    // The records are deltas of the report's totals (the last partial second is not sampled).
    let sent: u64 = series.points.iter().map(|p| p.sent).sum();
    assert!(sent <= report.messages.sent && sent * 10 >= report.messages.sent * 7);
    let recoveries: u64 = series
        .points
        .iter()
        .map(|p| p.recoveries + p.reconnects)
        .sum();
    assert!(
        recoveries > 0,
        "chaos dropped connections, nothing recovered: {report}"
    );
    assert!(recoveries <= report.recoveries + report.reconnects);
    let latencies = series.latency();
    assert!(latencies.count > 0 && latencies.count <= report.messages.checked.delivered);

    // Chaos rounds are marked during the workload.
    assert!(series.marks.len() >= 2, "{:?}", series.marks);
    assert!(
        series
            .marks
            .iter()
            .all(|m| m.kind == "chaos" && m.t_s > 0.0 && m.t_s < 5.0)
    );

    let json: serde_json::Value = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["schema_version"], REPORT_SCHEMA_VERSION);
    assert!(json["series"]["points"][0]["latency"]["buckets"].is_array());
}
