//! `--metrics-addr`: the load run's and the hub's live metrics, scraped over real HTTP
//! (a raw HTTP/1.1 GET on a TCP socket, as Prometheus sends it) while they change.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::eventually;
use support::http::request;
use webpubsub_fleet::client::{Client, ClientOptions};
use webpubsub_fleet::credential::{Credential, TokenOptions};
use webpubsub_fleet::fleet::FleetTarget;
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::load::{self, Groups, LoadPlan};
use webpubsub_fleet::metrics::{self, LoadMetrics};

async fn hub() -> Hub {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().expect("address"))
        .workers(1);
    Hub::start(config).await.expect("the hub starts")
}

/// GETs /metrics; returns the body after checking the status and content type.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let response = request(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(response.status, 200, "{}", response.head);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{}",
        response.head
    );
    response.body
}

/// The value of the sample line `name` (with its labels, if any) in a scrape.
fn value(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The metric names the Grafana dashboard queries that start with `prefix`.
fn dashboard_metrics(prefix: &str) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/grafana-dashboard.json"
    ))
    .expect("the dashboard is in docs/");
    let mut names: Vec<String> = text
        .match_indices(prefix)
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(!names.is_empty());
    names
}

/// Scrapes until `done` holds.
async fn scrape_until(addr: std::net::SocketAddr, done: impl Fn(&str) -> bool) -> String {
    eventually("a scrape that shows it", async || {
        let body = scrape(addr).await;
        if done(&body) { Ok(body) } else { Err(body) }
    })
    .await
}

#[actix_rt::test]
async fn a_load_run_is_scraped_live_and_its_counters_match_the_series() {
    let hub = hub().await;
    let (live, registry) = LoadMetrics::new();
    let server = metrics::serve("127.0.0.1:0".parse().unwrap(), registry).expect("serves");
    let addr = server.addr();
    let plan = LoadPlan {
        clients: 30,
        duration: Duration::from_secs(3),
        fds_per_client: 2,
        arbiters: 1,
        seed: 5,
        metrics: Some(live),
        ..LoadPlan::default()
    };
    let target = FleetTarget::new(hub.connection_string(), "loadtest");
    let groups = Groups {
        group_size: 10,
        senders: 1,
        rate: 10.0,
    };
    let run = actix_rt::spawn(load::run(target, plan, Arc::new(groups), |_| {}));

    // During the workload: every client connected, the run phase on, deliveries measured.
    let during = scrape_until(addr, |b| {
        value(b, "webpubsub_fleet_load_phase{phase=\"run\"}") == Some(1.0)
            && value(b, "webpubsub_fleet_load_delivery_latency_seconds_count").unwrap_or(0.0) > 0.0
    })
    .await;
    assert_eq!(
        value(&during, "webpubsub_fleet_load_clients_connected"),
        Some(30.0)
    );
    assert_eq!(
        value(&during, "webpubsub_fleet_load_clients_requested"),
        Some(30.0)
    );
    assert!(
        value(&during, "process_resident_memory_bytes").unwrap() > 1e6,
        "{during}"
    );
    assert!(during.contains("# TYPE webpubsub_fleet_load_messages_sent_total counter"));
    assert!(
        during.contains("webpubsub_fleet_load_delivery_latency_seconds_bucket{le=\"0.001024\"}")
    );

    // Every series the dashboard queries exists (errors by kind only once an error happened).
    for name in dashboard_metrics("webpubsub_fleet_load_")
        .into_iter()
        .chain(dashboard_metrics("process_"))
        .filter(|n| n != "webpubsub_fleet_load_errors_total")
    {
        assert!(
            during.contains(&format!("\n{name}")),
            "{name} is not served"
        );
    }

    let report = run.await.expect("joins").expect("the run completes");
    let after = scrape(addr).await;
    server.stop().await;
    hub.stop().await;
    // The metrics are the series' records added up: the same counts, exactly.
    let points = &report.series.points;
    let sum = |f: fn(&load::SeriesPoint) -> u64| points.iter().map(f).sum::<u64>() as f64;
    assert_eq!(
        value(&after, "webpubsub_fleet_load_messages_sent_total"),
        Some(sum(|p| p.sent))
    );
    assert_eq!(
        value(&after, "webpubsub_fleet_load_messages_delivered_total"),
        Some(sum(|p| p.delivered))
    );
    assert_eq!(
        value(
            &after,
            "webpubsub_fleet_load_delivery_latency_seconds_count"
        ),
        Some(sum(|p| p.latency.count))
    );
    assert!(sum(|p| p.sent) > 0.0);
}

#[actix_rt::test]
async fn the_hubs_counters_are_read_at_each_scrape() {
    let hub = hub().await;
    let stats = hub.clone();
    let registry = metrics::hub_registry(move || stats.stats());
    let server = metrics::serve("127.0.0.1:0".parse().unwrap(), registry).expect("serves");
    let before = scrape(server.addr()).await;
    assert_eq!(
        value(&before, "webpubsub_fleet_hub_connections"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        value(&before, "webpubsub_fleet_hub_connections_opened_total"),
        Some(0.0)
    );

    let credential = Credential::from_connection_string(
        hub.connection_string(),
        "metrics",
        TokenOptions::new().user_id("scraped"),
    )
    .expect("a credential");
    let client = Client::new(credential, ClientOptions::new()).expect("a client");
    client.start().await.expect("connects");
    let after = scrape_until(server.addr(), |b| {
        value(b, "webpubsub_fleet_hub_connections") == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&after, "webpubsub_fleet_hub_connections_opened_total"),
        Some(1.0)
    );
    assert!(
        after.contains("# TYPE webpubsub_fleet_hub_messages_out_total counter"),
        "{after}"
    );
    for name in dashboard_metrics("webpubsub_fleet_hub_") {
        assert!(after.contains(&format!("\n{name}")), "{name} is not served");
    }
    client.stop().await.expect("stops");
    server.stop().await;
    hub.stop().await;
}
