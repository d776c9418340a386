use super::*;

fn sample() -> LoadReport {
    let mut report = LoadReport {
        scenario: "groups".into(),
        target: "local hub".into(),
        protocol: "json.reliable.webpubsub.azure.v1".into(),
        duration_s: 20.0,
        clients: ClientsReport {
            requested: 100,
            connected: 98,
            ever_connected: 100,
            restarts: 1,
            abandoned: 0,
        },
        messages: MessagesReport {
            sent: 1000,
            checked: Counts {
                delivered: 9_900,
                lost: 50,
                allowed_gap: 50,
                ..Counts::default()
            },
            unresolved: 0,
            unchecked: 0,
        },
        latency_ms: LatencyReport {
            p50: 1.0,
            p90: 2.0,
            p99: 8.0,
            p999: 20.0,
            max: 30.0,
        },
        reconnects: 3,
        ..LoadReport::default()
    };
    report.errors.insert("tcp".into(), 2);
    report
}

/// Every field the issue lists, by its JSON path.
const REQUIRED: &[&str] = &[
    "clients.requested",
    "clients.connected",
    "clients.restarts",
    "connect.rate_per_s",
    "connect.latency_ms.p50",
    "connect.latency_ms.p99",
    "messages.sent",
    "messages.delivered",
    "messages.lost",
    "messages.duplicated",
    "messages.reordered",
    "messages.allowed_gap",
    "latency_ms.p50",
    "latency_ms.p90",
    "latency_ms.p99",
    "latency_ms.p999",
    "latency_ms.max",
    "throughput.delivered_per_s",
    "recoveries",
    "reconnects",
    "errors",
    "process.rss_mib",
    "process.rss_per_client_kib",
    "process.anon_per_client_kib",
    "process.cpu_s",
    "benchmark.reconnecting_pct",
    "benchmark.delivered_pct",
    "benchmark.connected_pct",
    "benchmark.over_2s_pct",
    "benchmark.pass",
];

#[test]
fn json_report_has_every_listed_field() {
    let json = serde_json::to_value(sample()).expect("serializes");
    for path in REQUIRED {
        let mut node = &json;
        for key in path.split('.') {
            node = node
                .get(key)
                .unwrap_or_else(|| panic!("`{path}` is missing from {json:#}"));
        }
    }
    assert_eq!(json["errors"]["tcp"], 2);
    assert_eq!(json["messages"]["lost"], 50);
}

#[test]
fn benchmark_rule_applies_the_four_limits() {
    let mut report = sample();
    let rule = BenchmarkRule::evaluate(&report, 10);
    assert!((rule.reconnecting_pct - 4.0).abs() < 1e-9, "{rule:?}");
    assert!(
        (rule.delivered_pct.expect("expected") - 99.0).abs() < 1e-9,
        "{rule:?}"
    );
    assert!((rule.connected_pct.expect("requested") - 98.0).abs() < 1e-9);
    assert!((rule.over_2s_pct - 10.0 / 99.0).abs() < 1e-9);
    assert!(rule.pass);
    // Each limit alone fails the rule.
    report.reconnects = 10;
    assert!(!BenchmarkRule::evaluate(&report, 10).pass);
    let mut report = sample();
    report.messages.checked.lost = 1000;
    assert!(!BenchmarkRule::evaluate(&report, 10).pass);
    let mut report = sample();
    report.clients.connected = 70;
    assert!(!BenchmarkRule::evaluate(&report, 10).pass);
    assert!(!BenchmarkRule::evaluate(&sample(), 1000).pass);
    // A run with nothing expected has no delivery rate to judge: n/a, not 100 %.
    let mut idle = LoadReport {
        clients: ClientsReport {
            requested: 0,
            ..ClientsReport::default()
        },
        ..LoadReport::default()
    };
    idle.benchmark = BenchmarkRule::evaluate(&idle, 0);
    assert_eq!(
        (idle.benchmark.delivered_pct, idle.benchmark.connected_pct),
        (None, None)
    );
    assert!(!idle.benchmark.pass);
    assert!(
        idle.to_string()
            .contains("FAIL: reconnecting 0.0% (<=5), delivered n/a (>=95), connected n/a"),
        "{idle}"
    );
}

#[test]
fn runs_that_measured_nothing_fail_without_thresholds() {
    let none = Thresholds::default();
    assert!(none.evaluate(&sample()).passed);
    let mut nobody = sample();
    nobody.clients.connected = 0;
    nobody.clients.ever_connected = 0;
    let result = none.evaluate(&nobody);
    assert_eq!(result.failures, ["no client ever connected"]);
    let mut nothing = sample();
    nothing.messages.checked.delivered = 0;
    let result = none.evaluate(&nothing);
    assert_eq!(
        result.failures,
        ["none of the 100 expected deliveries arrived"]
    );
    assert!(!result.passed);
}

#[test]
fn limits_parse_counts_and_percentages() {
    assert_eq!("10".parse::<Limit>(), Ok(Limit::Count(10)));
    assert_eq!(" 0.5% ".parse::<Limit>(), Ok(Limit::Percent(0.5)));
    assert!("x".parse::<Limit>().is_err());
    assert!("101%".parse::<Limit>().is_err());
    assert!("-1".parse::<Limit>().is_err());
}

#[test]
fn thresholds_fail_with_reasons() {
    let report = sample();
    assert!(Thresholds::default().evaluate(&report).passed);
    let strict = Thresholds {
        max_loss: Some(Limit::Count(0)),
        max_p99_ms: Some(5.0),
        min_connected: Some(Limit::Percent(99.0)),
        min_achieved: None,
    };
    let result = strict.evaluate(&report);
    assert!(!result.passed);
    assert_eq!(result.failures.len(), 3, "{result:?}");
    let lenient = Thresholds {
        max_loss: Some(Limit::Percent(1.0)),
        max_p99_ms: Some(10.0),
        min_connected: Some(Limit::Count(98)),
        min_achieved: None,
    };
    assert!(
        lenient.evaluate(&report).passed,
        "{:?}",
        lenient.evaluate(&report)
    );
}

#[test]
fn a_loss_budget_never_covers_duplicates_reorders_or_unexpected() {
    let budget = Thresholds {
        max_loss: Some(Limit::Percent(50.0)),
        ..Thresholds::default()
    };
    for field in 0..3 {
        let mut report = sample();
        report.messages.checked.lost = 0;
        match field {
            0 => report.messages.checked.duplicated = 1,
            1 => report.messages.checked.reordered = 1,
            _ => report.messages.checked.unexpected = 1,
        }
        let result = budget.evaluate(&report);
        assert!(!result.passed, "{result:?}");
        assert!(result.failures[0].contains("duplicated"), "{result:?}");
    }
    // A publish left hanging fails a run with a loss budget too.
    let mut report = sample();
    report.messages.checked.lost = 0;
    report.messages.unresolved = 2;
    let result = budget.evaluate(&report);
    assert!(
        !result.passed && result.failures[0].contains("never resolved"),
        "{result:?}"
    );
    // Without a loss limit nothing is judged.
    let mut report = sample();
    report.messages.checked.duplicated = 1;
    assert!(Thresholds::default().evaluate(&report).passed);
}

#[test]
fn table_names_every_section() {
    let mut report = sample();
    report.thresholds.failures.push("lost too many".into());
    let text = report.to_string();
    for word in [
        "clients",
        "connect",
        "messages",
        "checker",
        "latency",
        "errors",
        "process",
        "benchmark",
        "FAILED",
    ] {
        assert!(text.contains(word), "{word} missing from\n{text}");
    }
}

#[test]
fn a_run_short_of_its_offered_rate_says_saturated_and_fails_when_asked() {
    use crate::load::pacing::PaceCounts;
    // 20 s, 1,000 publishes sent, 10 deliveries expected per publish (sample()).
    let mut report = sample();
    report.throughput.delivered_per_s = 495.0;
    // 1,200 scheduled, 1,000 sent: 60/s offered, 50/s achieved (83 %).
    let counts = PaceCounts {
        scheduled: 1_200,
        sent: 1_000,
        late: 30,
        skipped: 200,
    };
    let pacing = PacingReport::evaluate(counts, 100, &report, DEFAULT_MIN_ACHIEVED);
    assert!((pacing.offered_per_s - 60.0).abs() < 1e-9, "{pacing:?}");
    assert!((pacing.achieved_per_s - 50.0).abs() < 1e-9, "{pacing:?}");
    assert!((pacing.offered_deliveries_per_s - 600.0).abs() < 1e-9);
    assert!((pacing.achieved_share - 495.0 / 600.0).abs() < 1e-9);
    assert!(pacing.saturated);
    report.pacing = Some(pacing);
    let text = report.to_string();
    assert!(
        text.contains("SATURATED") && text.contains("saturated: offered 60/s, achieved 50/s"),
        "{text}"
    );
    // Saturated alone is reported, not a failure; --min-achieved makes it one.
    assert!(Thresholds::default().evaluate(&report).passed);
    let strict = Thresholds {
        min_achieved: Some(0.95),
        ..Thresholds::default()
    };
    let result = strict.evaluate(&report);
    assert!(!result.passed);
    assert!(
        result.failures[0].contains("below --min-achieved 95%"),
        "{result:?}"
    );
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["pacing"]["saturated"], true);
    assert_eq!(json["pacing"]["skipped"], 200);

    // All sent and delivered: kept up, no SATURATED line, passes the same threshold.
    report.throughput.delivered_per_s = 500.0;
    let full = PaceCounts {
        scheduled: 1_000,
        ..counts
    };
    report.pacing = Some(PacingReport::evaluate(full, 100, &report, 0.95));
    assert!(!report.pacing.as_ref().is_some_and(|p| p.saturated));
    assert!(!report.to_string().contains("SATURATED"));
    assert!(strict.evaluate(&report).passed);
}
