//! Live metrics in the Prometheus text format (`--metrics-addr HOST:PORT`, `GET /metrics`):
//! a load run's series as it goes ([`LoadMetrics`], fed once a second by the runner) and the
//! hub's counters ([`hub_registry`], read at each scrape). Names, a scrape config and a
//! Grafana dashboard are in `docs/metrics.md`.
//!
//! Exposition uses `prometheus-client`, the Prometheus project's Rust client; the endpoint is
//! a one-worker actix-web server in the caller's actix system.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::hub::HubStats;
use crate::load::Phase;
use crate::load::series::SeriesPoint;

/// The content type of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency histogram's buckets, seconds: powers of 2 µs from 128 µs to
/// about 17 s. They are edges of the series' quarter-octave buckets too, so feeding the
/// histogram from a second's buckets puts every delivery in the right Prometheus bucket.
fn latency_buckets() -> impl Iterator<Item = f64> {
    (7..=24).map(|k| (1u64 << k) as f64 / 1e6)
}

type Labels = Vec<(String, String)>;

/// A load run's live metrics. Create it with its registry, serve the registry, hand the
/// metrics to the run (`LoadPlan::metrics`). Clones share the same meters.
#[derive(Clone)]
pub struct LoadMetrics {
    meters: Arc<Meters>,
}

/// The meters (each an `Arc` inside, so the registry's copies are the same meters).
#[derive(Clone)]
struct Meters {
    requested: Gauge,
    connected: Gauge,
    phase: Family<Labels, Gauge>,
    sent: Counter,
    delivered: Counter,
    errors: Family<Labels, Counter>,
    recoveries: Counter,
    reconnects: Counter,
    restarts: Counter,
    chaos_rounds: Counter,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    p50: Gauge<f64, AtomicU64>,
    p99: Gauge<f64, AtomicU64>,
    max: Gauge<f64, AtomicU64>,
    cpu: Counter<f64, AtomicU64>,
    rss: Gauge,
    marks_seen: Arc<AtomicU64>,
}

impl fmt::Debug for LoadMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadMetrics").finish_non_exhaustive()
    }
}

impl LoadMetrics {
    /// The metrics and the registry that exposes them.
    pub fn new() -> (LoadMetrics, Registry) {
        let meters = Meters {
            requested: Gauge::default(),
            connected: Gauge::default(),
            phase: Family::default(),
            sent: Counter::default(),
            delivered: Counter::default(),
            errors: Family::default(),
            recoveries: Counter::default(),
            reconnects: Counter::default(),
            restarts: Counter::default(),
            chaos_rounds: Counter::default(),
            latency: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            p50: Gauge::default(),
            p99: Gauge::default(),
            max: Gauge::default(),
            cpu: Counter::default(),
            rss: Gauge::default(),
            marks_seen: Arc::default(),
        };
        let mut registry = Registry::default();
        let m = meters.clone();
        let load = registry.sub_registry_with_prefix("webpubsub_fleet_load");
        load.register("clients_requested", "Clients asked for", m.requested);
        load.register("clients_connected", "Clients connected now", m.connected);
        load.register(
            "phase",
            "1 for the phase the run is in (ramp-up, run, drain)",
            m.phase,
        );
        load.register("messages_sent", "Publishes begun", m.sent);
        load.register("messages_delivered", "Deliveries received", m.delivered);
        load.register(
            "errors",
            "Errors by kind (connections and operations)",
            m.errors,
        );
        load.register(
            "recoveries",
            "Connections recovered with their connection id",
            m.recoveries,
        );
        load.register(
            "reconnects",
            "New connections of clients that had been connected",
            m.reconnects,
        );
        load.register("restarts", "Clients restarted after failures", m.restarts);
        load.register("chaos_rounds", "Chaos rounds injected", m.chaos_rounds);
        load.register(
            "delivery_latency_seconds",
            "End-to-end delivery latency, stamp to receipt (counted by quarter-octave bucket: the sum is an upper bound)",
            m.latency,
        );
        load.register(
            "delivery_latency_p50_seconds",
            "Median delivery latency of the last second",
            m.p50,
        );
        load.register(
            "delivery_latency_p99_seconds",
            "99th percentile delivery latency of the last second",
            m.p99,
        );
        load.register(
            "delivery_latency_max_seconds",
            "Largest delivery latency of the last second",
            m.max,
        );
        registry.register(
            "process_cpu_seconds",
            "CPU time of this process (user + system), seconds",
            m.cpu,
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process",
            m.rss,
        );
        let metrics = LoadMetrics {
            meters: Arc::new(meters),
        };
        (metrics, registry)
    }

    /// Adds one second of the run (`marks` is how many chaos rounds the run marked so far).
    pub fn observe(&self, point: &SeriesPoint, phase: Phase, requested: u64, marks: u64) {
        let m = &self.meters;
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.requested.set(gauge(requested));
        m.connected.set(gauge(point.connected));
        for (p, name) in [
            (Phase::RampUp, "ramp-up"),
            (Phase::Run, "run"),
            (Phase::Drain, "drain"),
        ] {
            let labels = vec![("phase".to_owned(), name.to_owned())];
            m.phase.get_or_create(&labels).set(i64::from(p == phase));
        }
        m.sent.inc_by(point.sent);
        m.delivered.inc_by(point.delivered);
        for (kind, n) in &point.errors {
            let labels = vec![("kind".to_owned(), kind.clone())];
            m.errors.get_or_create(&labels).inc_by(*n);
        }
        m.recoveries.inc_by(point.recoveries);
        m.reconnects.inc_by(point.reconnects);
        m.restarts.inc_by(point.restarts);
        let seen = m
            .marks_seen
            .swap(marks, std::sync::atomic::Ordering::Relaxed);
        m.chaos_rounds.inc_by(marks.saturating_sub(seen));
        let latency = m.latency.get_or_create(&Vec::new());
        for &(upper_us, n) in &point.latency.buckets {
            // Each delivery at its bucket's upper bound: it lands in the Prometheus bucket
            // it belongs to (see `latency_buckets`); one call per delivery is a few ns.
            for _ in 0..n {
                latency.observe(upper_us as f64 / 1e6);
            }
        }
        if point.latency.count > 0 {
            m.p50.set(point.latency.p50_ms / 1000.0);
            m.p99.set(point.latency.p99_ms / 1000.0);
            m.max.set(point.latency.max_ms / 1000.0);
        }
        m.cpu.inc_by(point.cpu_s);
        m.rss.set((point.rss_mib * 1024.0 * 1024.0) as i64);
    }
}

/// A registry of the hub's counters, read from `stats` at each scrape: gauges for
/// `connections`, `attached`, `detached_sessions` and `groups`, counters for the rest, and
/// `closes_total` by close code.
pub fn hub_registry(stats: impl Fn() -> HubStats + Send + Sync + 'static) -> Registry {
    let mut registry = Registry::with_prefix("webpubsub_fleet_hub");
    registry.register_collector(Box::new(HubCollector {
        stats: Box::new(stats),
    }));
    registry
}

struct HubCollector {
    stats: Box<dyn Fn() -> HubStats + Send + Sync>,
}

impl fmt::Debug for HubCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HubCollector")
    }
}

impl Collector for HubCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let s = (self.stats)();
        let gauges = [
            (
                "connections",
                "Connections held: attached or waiting for recovery",
                s.connections,
            ),
            ("attached", "Connections with a live socket", s.attached),
            (
                "detached_sessions",
                "Reliable sessions that can still be recovered",
                s.detached_sessions,
            ),
            ("groups", "Groups with at least one member", s.groups),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters = [
            (
                "connections_opened",
                "New connections accepted",
                s.connections_opened,
            ),
            ("messages_in", "Frames received from clients", s.messages_in),
            (
                "messages_out",
                "Data messages sent to sockets",
                s.messages_out,
            ),
            (
                "messages_replayed",
                "Data messages sent again after a recovery",
                s.messages_replayed,
            ),
            (
                "messages_expired",
                "Messages dropped unsent after their messageTtlSeconds",
                s.messages_expired,
            ),
            ("acks", "Acks sent", s.acks),
            (
                "duplicates",
                "Requests answered with a Duplicate ack",
                s.duplicates,
            ),
            (
                "forbidden",
                "Requests answered with a Forbidden ack",
                s.forbidden,
            ),
            (
                "sequence_acks",
                "sequenceAck frames received",
                s.sequence_acks,
            ),
            ("recoveries", "Successful recoveries", s.recoveries),
            (
                "recoveries_refused",
                "Recovery attempts refused",
                s.recoveries_refused,
            ),
            (
                "unauthorized",
                "Handshakes refused with 401",
                s.unauthorized,
            ),
            (
                "slow_clients",
                "Connections closed for overflowing buffers",
                s.slow_clients,
            ),
            ("drops", "Sockets dropped without a close frame", s.drops),
            ("faults_injected", "Faults injected", s.faults_injected),
            (
                "injected_lost",
                "Deliveries dropped by a lose fault",
                s.injected_lost,
            ),
            (
                "injected_duplicated",
                "Extra copies sent by a duplicate fault",
                s.injected_duplicated,
            ),
            (
                "injected_reordered",
                "Deliveries held back by a reorder fault",
                s.injected_reordered,
            ),
            (
                "upstream_events",
                "Events queued for the event handler",
                s.upstream_events,
            ),
            (
                "upstream_dropped",
                "Events dropped: the event handler was behind",
                s.upstream_dropped,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let closes = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "closes",
            "Close frames sent, by close code",
            None,
            closes.metric_type(),
        )?;
        for (code, n) in &s.closes_by_code {
            let labels = [("code", code.to_string())];
            ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// A running metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    handle: ServerHandle,
}

impl MetricsServer {
    /// The address it listens on (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Serves `registry` at `GET /metrics` on `addr`. Must be called inside an actix system.
pub fn serve(addr: SocketAddr, registry: Registry) -> io::Result<MetricsServer> {
    let registry = web::Data::new(registry);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen for metrics on {addr}: {e}"),
        )
    })?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(MetricsServer {
        addr: bound,
        handle,
    })
}

async fn scrape(registry: web::Data<Registry>) -> HttpResponse {
    let mut body = String::with_capacity(8 * 1024);
    match prometheus_client::encoding::prometheus_text::encode(&mut body, &registry) {
        Ok(()) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(body),
        Err(_) => HttpResponse::InternalServerError().body("cannot encode the metrics"),
    }
}
