//! Memory of idle connected clients: N clients (reliable JSON, one arbiter per core, as a
//! fleet spreads them) connect to a hub in another process and stay idle; the RSS this
//! process added, divided by N, is the cost of one idle client.
//!
//! Run: `cargo run --release -- hub --port 18080 &` (its first stdout line is the connection
//! string), then
//! `WebPubSubConnectionString='<that line>' cargo bench --bench client_idle -- 5000`

use std::time::{Duration, Instant, SystemTime};

use webpubsub_fleet::client::{Client, ClientOptions};
use webpubsub_fleet::credential::{ConnectionString, Credential, TokenOptions};
use webpubsub_fleet::hub::{Hub, HubConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` passes nothing, and then a
    // smoke run of 50 clients against an in-process hub proves the benchmark still works.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benchmarking { 5000 } else { 50 });
    let target = std::env::var("WebPubSubConnectionString").ok();
    if benchmarking && target.is_none() {
        eprintln!(
            "set WebPubSubConnectionString to the hub's connection string (see the file's docs)"
        );
        std::process::exit(2);
    }
    let system = actix_rt::System::new();
    system.block_on(async move {
        let (cs, _smoke_hub) = match target {
            Some(s) => (ConnectionString::parse(&s).expect("a valid connection string"), None),
            None => {
                let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse().unwrap()))
                    .await
                    .expect("an in-process hub for the smoke run");
                (hub.connection_string(), Some(hub))
            }
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arbiters: Vec<_> = (0..cores).map(|_| actix_rt::Arbiter::new()).collect();
        // Let the arbiter threads and the allocator settle before the baseline.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let baseline = rss_kib();
        let started = Instant::now();
        let mut clients = Vec::with_capacity(n);
        let mut pending = Vec::new();
        for i in 0..n {
            let credential = Credential::from_connection_string(
                cs.clone(),
                "idle",
                TokenOptions::new().user_id(format!("idle-{i}")),
            )
            .expect("a valid hub name");
            let client = Client::new_on(
                &arbiters[i % cores].handle(),
                credential,
                ClientOptions::new().with_index(i as u64),
            )
            .expect("JSON options are valid");
            let c = client.clone();
            pending.push(actix_rt::spawn(async move { c.start().await }));
            clients.push(client);
            if pending.len() == 500 {
                for p in pending.drain(..) {
                    p.await.expect("task").expect("client started");
                }
            }
        }
        for p in pending.drain(..) {
            p.await.expect("task").expect("client started");
        }
        let connect_s = started.elapsed().as_secs_f64();
        // Idle for a few keepalive ticks so timers and buffers reach their steady state.
        tokio::time::sleep(Duration::from_secs(if benchmarking { 5 } else { 1 })).await;
        let added = rss_kib().saturating_sub(baseline);
        println!(
            "{n} idle clients: {:.1} KiB RSS per client ({} MiB added; baseline {} MiB), connected in {connect_s:.1} s ({:.0}/s), {}",
            added as f64 / n as f64,
            added / 1024,
            baseline / 1024,
            n as f64 / connect_s,
            humantime(SystemTime::now())
        );
        for c in &clients {
            let _ = c.stop().await;
        }
    });
}

fn humantime(t: SystemTime) -> String {
    format!(
        "at unix time {}",
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    )
}
