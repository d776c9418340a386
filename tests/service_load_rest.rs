//! `load --scenario rest-broadcast`: server-side broadcasts through `ServiceClient` fanning
//! out to a small fleet, checked per client (every broadcast once, in lane order), against
//! the hub in this process (library API) and against `webpubsub-fleet hub` in another
//! process (the CLI, as a user runs it).

mod support;

use std::process::Command;
use std::time::Duration;

use support::process::hub_process;
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::load::{Limit, RestBroadcastPlan, RestTarget, Thresholds, rest_broadcast};

fn plan(target: RestTarget) -> RestBroadcastPlan {
    RestBroadcastPlan {
        clients: 150,
        duration: Duration::from_secs(2),
        lanes: 2,
        rate: 15.0,
        target,
        fds_per_client: 2,
        target_name: "in-process hub".into(),
        thresholds: Thresholds {
            max_loss: Some(Limit::Count(0)),
            ..Thresholds::default()
        },
        ..RestBroadcastPlan::default()
    }
}

#[actix_rt::test]
async fn broadcasts_to_all_and_to_groups_reach_every_client_once_in_order() {
    let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    for (target, receivers_per_broadcast) in [
        (RestTarget::All, 150),
        (RestTarget::Groups { group_size: 30 }, 30),
    ] {
        let report = rest_broadcast::run(hub.connection_string(), "rest", plan(target), |_| {})
            .await
            .unwrap();
        let c = &report.checked;
        assert!(report.thresholds.passed, "{report}");
        assert_eq!(report.ever_connected, 150, "{report}");
        assert!(report.broadcasts.accepted >= 10, "{report}");
        assert_eq!(
            report.broadcasts.accepted, report.broadcasts.sent,
            "{report}"
        );
        // Every accepted broadcast reached each client of its target, once.
        assert_eq!(
            c.delivered,
            report.broadcasts.accepted * receivers_per_broadcast,
            "{report}"
        );
        assert_eq!(c.expected(), c.delivered, "{report}");
        assert_eq!(
            (c.lost, c.duplicated, c.reordered, c.unexpected),
            (0, 0, 0, 0),
            "{report}"
        );
        assert_eq!(report.rest_latency_ms.count, report.broadcasts.accepted);
        assert_eq!(report.delivery_latency_ms.count, c.delivered);
    }
    hub.stop().await;
}

#[test]
fn the_cli_runs_rest_broadcast_against_a_hub_in_another_process() {
    let (_hub, connection_string) = hub_process(&[]);

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_webpubsub-fleet"))
        .args([
            "load",
            "--scenario",
            "rest-broadcast",
            "--rest-target",
            "groups",
            "--group-size",
            "25",
            "--clients",
            "100",
            "--senders",
            "2",
            "--rate",
            "10",
            "--duration",
            "2s",
            "--max-loss",
            "0",
            "--json",
        ])
        .arg(&json)
        .env("WebPubSubConnectionString", connection_string.expose())
        .output()
        .expect("the load command runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\n{printed}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("REST send"), "{printed}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let checked = &report["checked"];
    let accepted = report["broadcasts"]["accepted"].as_u64().unwrap();
    assert!(accepted >= 10, "{report}");
    assert_eq!(
        checked["delivered"].as_u64(),
        Some(accepted * 25),
        "{report}"
    );
    for bad in ["lost", "duplicated", "reordered", "unexpected"] {
        assert_eq!(checked[bad], 0, "{bad}: {report}");
    }
    assert_eq!(
        report["rest_target"],
        serde_json::json!({"groups": {"group_size": 25}})
    );
    assert!(report["rest_latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(report["delivery_latency_ms"]["p99"].as_f64().unwrap() > 0.0);
}
