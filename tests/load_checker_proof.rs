//! The delivery checker proven end to end (issue 8): the local hub silently loses, duplicates
//! or reorders a known number of deliveries to one client, and a load run must report exactly
//! that many lost, duplicated or reordered messages, nothing else, and fail with
//! `max_loss 0`. A run without the fault is the control: it passes.
//!
//! The fault is armed in the run's barrier (after every client connected, before anything is
//! published): the groups are joined on connect through the token, so every message published
//! afterwards is due to the target, and the checker has no reason to excuse a missing one.
//!
//! On the reliable subprotocol each duplicated copy gets a sequence id of its own: a copy with
//! the same id would be dropped by the client's deduplication (correct behaviour, not what a
//! hub that published twice does), and would prove nothing about the checker.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use webpubsub_fleet::fleet::FleetTarget;
use webpubsub_fleet::hub::{Hub, HubConfig, Misdelivery, Target};
use webpubsub_fleet::load::{self, Groups, Limit, LoadPlan, LoadReport, Thresholds};
use webpubsub_fleet::protocol::Subprotocol;

/// Deliveries to get wrong.
const INJECTED: u64 = 5;
/// The target: client 3, a receiver in `group-0`, whose only publisher is client 0.
const TARGET_USER: &str = "user-3";

/// One run of 10 clients in two groups of 5, one sender per group at 20 messages a second,
/// with `fault` armed on the target; the report and the hub's count of what it injected.
async fn run(protocol: Subprotocol, fault: Option<Misdelivery>) -> (LoadReport, u64) {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().expect("address"))
        .workers(1);
    let hub = Hub::start(config).await.expect("the hub starts");
    let armed_hub = hub.clone();
    let plan = LoadPlan {
        clients: 10,
        duration: Duration::from_secs(3),
        protocol,
        fds_per_client: 2,
        arbiters: 1,
        seed: 7,
        target_name: "local hub".into(),
        thresholds: Thresholds {
            max_loss: Some(Limit::Count(0)),
            ..Thresholds::default()
        },
        barrier: Some(Arc::new(move || {
            let armed = fault.map_or(1, |kind| {
                let target = Target::User(TARGET_USER.to_owned());
                match kind {
                    Misdelivery::Lose => armed_hub.lose_deliveries(target, INJECTED),
                    Misdelivery::Duplicate => armed_hub.duplicate_deliveries(target, INJECTED),
                    Misdelivery::Reorder => armed_hub.reorder_deliveries(target, INJECTED),
                }
            });
            async move {
                if armed == 1 {
                    Ok(())
                } else {
                    Err(format!("the fault armed {armed} connections, not 1"))
                }
            }
            .boxed_local()
        })),
        ..LoadPlan::default()
    };
    let groups = Groups {
        group_size: 5,
        senders: 1,
        rate: 20.0,
    };
    let target = FleetTarget::new(hub.connection_string(), "loadtest");
    let report = load::run(target, plan, Arc::new(groups), |_| {})
        .await
        .expect("the run completes");
    eprintln!("{report}");
    let stats = hub.stats();
    let injected = match fault {
        None => stats.injected_lost + stats.injected_duplicated + stats.injected_reordered,
        Some(Misdelivery::Lose) => stats.injected_lost,
        Some(Misdelivery::Duplicate) => stats.injected_duplicated,
        Some(Misdelivery::Reorder) => stats.injected_reordered,
    };
    hub.stop().await;
    (report, injected)
}

/// The report's (lost, duplicated, reordered, unexpected).
fn violations(report: &LoadReport) -> (u64, u64, u64, u64) {
    let c = &report.messages.checked;
    (c.lost, c.duplicated, c.reordered, c.unexpected)
}

/// Each fault in turn: the hub did exactly what was armed, the report shows exactly that, and
/// the run fails with `max_loss 0`; the control run passes.
async fn prove(protocol: Subprotocol) {
    let (control, injected) = run(protocol, None).await;
    assert_eq!(injected, 0);
    assert_eq!(violations(&control), (0, 0, 0, 0), "{control}");
    assert!(control.messages.checked.delivered > 100, "{control}");
    assert!(control.thresholds.passed, "{control}");

    let n = INJECTED;
    let expected = [
        (Misdelivery::Lose, (n, 0, 0, 0)),
        (Misdelivery::Duplicate, (0, n, 0, 0)),
        (Misdelivery::Reorder, (0, 0, n, 0)),
    ];
    for (kind, counts) in expected {
        let (report, injected) = run(protocol, Some(kind)).await;
        assert_eq!(
            injected, n,
            "{kind:?}: the hub injected {injected}, not {n}"
        );
        assert_eq!(violations(&report), counts, "{kind:?}: {report}");
        // Nothing was excused: no reconnect, no allowed gap, nothing indeterminate.
        let c = &report.messages.checked;
        assert_eq!(
            (c.allowed_gap, c.indeterminate),
            (0, 0),
            "{kind:?}: {report}"
        );
        let why = match kind {
            Misdelivery::Lose => format!("lost {n} messages"),
            Misdelivery::Duplicate => format!("{n} duplicated"),
            Misdelivery::Reorder => format!("{n} reordered"),
        };
        assert!(!report.thresholds.passed, "{kind:?}: {report}");
        assert!(
            report.thresholds.failures.iter().any(|f| f.contains(&why)),
            "{kind:?}: {:?}",
            report.thresholds.failures
        );
    }
}

#[actix_rt::test]
async fn the_reliable_subprotocol_reports_exactly_what_the_hub_got_wrong() {
    prove(Subprotocol::JsonReliable).await;
}

#[actix_rt::test]
async fn the_json_subprotocol_reports_exactly_what_the_hub_got_wrong() {
    prove(Subprotocol::Json).await;
}
