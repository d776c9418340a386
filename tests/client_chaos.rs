//! Client-side chaos against a hub in ANOTHER process (`webpubsub-fleet hub`), as it would run
//! against the service: the fleet drops, blackholes or closes its own sockets, the clients
//! recover (or reconnect after a close that ends the session), and the delivery checker finds
//! nothing lost, duplicated or reordered. The hub's own counters (`GET /_fleet/stats`) prove
//! the faults reached it: a fault that did nothing would leave them at zero.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use webpubsub_fleet::client::{ClientOptions, Event, Observer, SocketFault};
use webpubsub_fleet::credential::{ConnectionString, mint_rest_token};
use webpubsub_fleet::fleet::{Fleet, FleetOptions, FleetTarget};
use webpubsub_fleet::load::{
    self, Broadcast, ClientChaos, Groups, LoadPlan, LoadReport, Simulation,
};

use support::process::{Proc, hub_process};
use support::{DEADLINE, eventually};

/// `GET /_fleet/stats` of the hub process, with a REST token minted from its key.
async fn hub_stats(cs: &ConnectionString) -> Value {
    let endpoint = cs.endpoint();
    let host = endpoint.host_str().expect("a host");
    let port = endpoint.port_or_known_default().expect("a port");
    let addr: SocketAddr = format!("{host}:{port}").parse().expect("an IP endpoint");
    let audience = format!("http://{addr}/_fleet/stats");
    let token = mint_rest_token(
        cs.access_key(),
        &audience,
        Duration::from_secs(300),
        SystemTime::now(),
    )
    .expect("a token");
    let auth = format!("Bearer {}", token.expose());
    let response = support::http::request(
        addr,
        "GET",
        "/_fleet/stats",
        &[("Authorization", auth.as_str())],
        b"",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// A short run of 100 clients in groups of 10 under client-side chaos (20 % every second).
async fn run_with(cs: &ConnectionString, hub: &str, fault: SocketFault) -> LoadReport {
    let simulation = Arc::new(Groups {
        group_size: 10,
        senders: 2,
        rate: 10.0,
    });
    run_plan(cs, hub, fault, 0.2, simulation).await
}

async fn run_plan(
    cs: &ConnectionString,
    hub: &str,
    fault: SocketFault,
    share: f64,
    simulation: Arc<dyn Simulation>,
) -> LoadReport {
    let plan = LoadPlan {
        clients: 100,
        // Rounds at 1 s to 5 s: the last one half a second before the end, so its blackholes
        // are noticed after the workload, during the drain.
        duration: Duration::from_millis(5500),
        seed: 8,
        arbiters: 1,
        target_name: "hub process".into(),
        // A blackholed socket is noticed after 1.5 s without a frame (pings every 0.5 s).
        client: ClientOptions::new()
            .with_keepalive(Duration::from_millis(500), Duration::from_millis(1500)),
        client_chaos: Some(ClientChaos {
            share,
            period: Duration::from_secs(1),
            fault,
        }),
        ..LoadPlan::default()
    };
    let report = load::run(
        FleetTarget::new(cs.clone(), hub.to_owned()),
        plan,
        simulation,
        |_| {},
    )
    .await
    .expect("the run completes");
    eprintln!("{fault}:\n{report}");
    report
}

fn assert_clean(report: &LoadReport) {
    support::assert_no_violations(report);
    let c = &report.messages.checked;
    assert!(c.delivered > 1000, "{report}");
    assert_eq!(report.messages.unresolved, 0, "{report}");
    assert_eq!(report.clients.abandoned, 0, "{report}");
}

/// Drop, blackhole and close 1011 keep the session on the hub: every client recovers it,
/// with nothing lost, duplicated or reordered (the replay fills what the dead socket missed),
/// and the hub counts the recoveries it admitted.
#[actix_rt::test]
async fn recoverable_faults_are_recovered_with_nothing_lost() {
    let (_hub, cs) = hub_process(&[]);
    for (hub, fault) in [
        ("drop", SocketFault::Drop),
        ("blackhole", SocketFault::Blackhole),
        ("close1011", SocketFault::Close(1011)),
    ] {
        let before = hub_stats(&cs).await;
        let report = run_with(&cs, hub, fault).await;
        let after = hub_stats(&cs).await;
        assert_clean(&report);
        // Five rounds of 20 clients: a fault that did nothing recovers nothing.
        assert!(report.recoveries >= 40, "{fault}: {report}");
        assert_eq!(
            report.reconnects, 0,
            "{fault}: a recoverable fault: {report}"
        );
        let admitted = counter(&after, "recoveries") - counter(&before, "recoveries");
        assert_eq!(
            admitted, report.recoveries,
            "{fault}: the hub admitted every recovery the fleet counted"
        );
        assert_eq!(
            counter(&after, "recoveries_refused"),
            counter(&before, "recoveries_refused"),
            "{fault}: no recovery refused"
        );
    }
}

/// Only a publish waiting for its ack held the drain open, so a receiver blackholed by the
/// last rounds (its publisher untouched) was judged before it noticed its dead socket, and
/// its replay, on its way, was counted lost (110 lost of 7,700 in a first run). The drain now
/// lasts until the keepalive timeout after the last round has passed and no client is between
/// sockets. One publisher among 100 clients, 5 % faulted per round: the last rounds hit
/// receivers only, nine runs in ten.
#[actix_rt::test]
async fn blackholed_receivers_get_their_replay_before_the_check() {
    let (_hub, cs) = hub_process(&[]);
    let simulation = Arc::new(Broadcast {
        senders: 1,
        rate: 20.0,
    });
    let report = run_plan(&cs, "blackhole1", SocketFault::Blackhole, 0.05, simulation).await;
    support::assert_no_violations(&report);
    assert!(report.recoveries >= 10, "{report}");
}

/// Close 1000 says "I am leaving": the hub ends the session, the recovery is refused with
/// 1008 and each faulted client connects anew; the checker counts the new connections'
/// gaps as allowed gaps, nothing else.
#[actix_rt::test]
async fn a_normal_close_ends_the_session_and_the_client_reconnects() {
    let (_hub, cs) = hub_process(&[]);
    let before = hub_stats(&cs).await;
    let report = run_with(&cs, "close1000", SocketFault::Close(1000)).await;
    let after = hub_stats(&cs).await;
    assert_clean(&report);
    assert!(report.reconnects >= 40, "{report}");
    let refused = counter(&after, "recoveries_refused") - counter(&before, "recoveries_refused");
    assert_eq!(
        refused, report.reconnects,
        "every reconnect followed a refused recovery"
    );
    let opened = counter(&after, "connections_opened") - counter(&before, "connections_opened");
    assert_eq!(
        opened,
        100 + report.reconnects,
        "first connections and reconnects"
    );
}

/// When each client of a fleet noticed its socket was gone.
#[derive(Default)]
struct Noticed(Mutex<HashMap<u64, Instant>>);

impl Observer for Noticed {
    fn observe(&self, client: u64, event: &Event) {
        if matches!(event, Event::Recovering { .. } | Event::Disconnected { .. }) {
            let mut noticed = self.0.lock().unwrap();
            noticed.entry(client).or_insert_with(Instant::now);
        }
    }
}

/// A blackholed socket reads and writes nothing, so the hub never closes it for the client:
/// only the client's keepalive can notice, after `keepalive_timeout` without a frame (the
/// documented liveness bound), and then it recovers. Noticing at once would mean the fault
/// acted like a drop; never noticing would fail the wait.
#[actix_rt::test]
async fn a_blackholed_socket_is_noticed_within_the_keepalive_timeout() {
    const PING: Duration = Duration::from_millis(300);
    const DEAD_AFTER: Duration = Duration::from_millis(2000);
    const CLIENTS: u64 = 20;
    let (_hub, cs) = hub_process(&[]);
    let noticed = Arc::new(Noticed::default());
    let options = FleetOptions::new(CLIENTS)
        .with_arbiters(1)
        .with_client_options(ClientOptions::new().with_keepalive(PING, DEAD_AFTER))
        .with_observer(noticed.clone());
    let fleet = Fleet::start(FleetTarget::new(cs.clone(), "liveness"), options).expect("starts");
    let ramp = fleet.wait_ramped().await.expect("ramp-up");
    assert_eq!(ramp.first_starts_ok, CLIENTS);

    let injected = Instant::now();
    let faulted = fleet
        .inject_fault(1.0, SocketFault::Blackhole)
        .await
        .expect("faults");
    assert_eq!(faulted, CLIENTS);
    // A blackholed socket cannot be faulted again: it is dead already.
    assert_eq!(fleet.inject_fault(1.0, SocketFault::Drop).await.unwrap(), 0);
    assert_eq!(fleet.stats().faults_injected, CLIENTS);

    eventually("every blackholed client recovered", async || {
        let stats = fleet.stats();
        (stats.recoveries == CLIENTS)
            .then_some(())
            .ok_or_else(|| format!("{stats:#?}"))
    })
    .await;
    let noticed = noticed.0.lock().unwrap().clone();
    assert_eq!(noticed.len() as u64, CLIENTS);
    for (client, at) in noticed {
        let after = at.duration_since(injected);
        // The last frame came at most one ping round trip before the fault; the timer may be
        // late on a loaded machine, never early.
        assert!(
            after >= DEAD_AFTER - PING - Duration::from_millis(200),
            "client {client} noticed after {after:?}: too soon for a keepalive timeout"
        );
        assert!(
            after <= DEAD_AFTER + Duration::from_secs(3),
            "client {client} noticed after {after:?}"
        );
    }
    let stats = fleet.stats();
    assert_eq!(
        (stats.reconnects, stats.connected),
        (0, CLIENTS),
        "{stats:#?}"
    );
    fleet.stop().await.expect("stop");
}

/// The command line, end to end: `load --chaos client:...:KIND` against the hub process
/// passes `--max-loss 0` and reports the recoveries.
#[test]
fn the_load_command_faults_its_own_clients() {
    let (_hub, cs) = hub_process(&[]);
    let env = [("WebPubSubConnectionString", cs.expose())];
    let mut run = Proc::spawn(
        "load",
        &[
            "load",
            "--clients",
            "50",
            "--duration",
            "4s",
            "--keepalive-timeout",
            "1500ms",
            "--chaos",
            "client:20%:1s:blackhole",
            "--max-loss",
            "0",
            "--seed",
            "8",
        ],
        &env,
    );
    let status = run.wait(DEADLINE);
    let (stdout, stderr) = (run.stdout(), run.stderr());
    assert!(status.success(), "{stdout}\n{stderr}");
    let line = (stdout.lines())
        .find(|l| l.trim_start().starts_with("connections"))
        .unwrap_or_else(|| panic!("no connections line:\n{stdout}"));
    let recoveries: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in `{line}`"));
    assert!(recoveries >= 20, "{stdout}");
    assert!(
        stdout.contains("0 lost, 0 duplicated, 0 reordered"),
        "{stdout}"
    );

    // A hub-side kind is refused before anything starts.
    let mut refused = Proc::spawn("refused", &["load", "--chaos", "hub:5%:2s:blackhole"], &env);
    assert!(!refused.wait(DEADLINE).success());
    assert!(
        refused.stderr().contains("client:SHARE:PERIOD:KIND"),
        "{}",
        refused.stderr()
    );
}
