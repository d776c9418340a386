//! Fleet supervision without a hub: every start fails (nothing listens on the port), so the
//! manager's restart policy alone decides what happens. Counts starts and restarts the way
//! actix's own `tests/test_supervisor.rs` does: run, wait for the end state, compare counts.

mod support;

use std::time::Duration;

use support::QUIET;
use support::client::fleet_reaches;
use tokio::time::Instant;

use webpubsub_fleet::client::ClientOptions;
use webpubsub_fleet::credential::ConnectionString;
use webpubsub_fleet::fleet::{
    Command, Fleet, FleetError, FleetOptions, FleetTarget, IdentityTemplate, RestartPolicy,
    Selection,
};

/// A loopback port with nothing listening: bind one, note it, close it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn target(port: u16) -> FleetTarget {
    let cs = format!(
        "Endpoint=http://127.0.0.1;Port={port};AccessKey=0123456789abcdef0123456789abcdef;Version=1.0;"
    );
    FleetTarget::new(ConnectionString::parse(&cs).expect("valid"), "chat")
}

fn options(clients: u64, restarts: u32) -> FleetOptions {
    FleetOptions::new(clients)
        .with_arbiters(2)
        .with_restart(RestartPolicy::fixed(restarts, Duration::from_millis(20)))
        .with_client_options(ClientOptions::new().with_start_timeout(Duration::from_secs(5)))
}

#[actix_rt::test]
async fn failed_starts_are_restarted_then_abandoned() {
    let fleet = Fleet::start(target(closed_port()), options(4, 3)).expect("fleet starts");
    let ramp = fleet.wait_ramped().await.expect("ramp-up ends");
    assert_eq!((ramp.created, ramp.first_starts_done), (4, 4));
    assert_eq!(ramp.first_starts_ok, 0);

    let stats = fleet_reaches(&fleet, |s| s.abandoned == 4).await;
    // One first start and three restarts each, then abandoned.
    assert_eq!(stats.starts, 4 * 4, "{stats:#?}");
    assert_eq!(stats.restarts, 4 * 3, "{stats:#?}");
    assert_eq!(stats.stops_start_failed, 16);
    assert_eq!(stats.errors.get("tcp"), Some(&16), "{:?}", stats.errors);
    assert_eq!((stats.connected, stats.ever_connected), (0, 0));

    let report = fleet.stop().await.expect("stop");
    assert_eq!(report.stopped + report.timed_out, 4);
    // Nothing restarts after the end, and the manager is gone.
    assert!(matches!(fleet.ramp().await, Err(FleetError::ManagerGone)));
    assert_eq!(fleet.stats().starts, 16);
}

#[actix_rt::test]
async fn stopping_the_fleet_cancels_pending_restarts() {
    // Restarts are 20 ms apart and unlimited enough to still be running at stop time.
    let fleet = Fleet::start(target(closed_port()), options(3, 1000)).expect("fleet starts");
    fleet_reaches(&fleet, |s| s.restarts >= 6).await;
    let report = fleet.stop().await.expect("stop");
    assert_eq!(report.stopped + report.timed_out, 3);
    let after_stop = fleet.stats().starts;
    // Give a scheduled restart (20 ms) several chances to fire; it must not.
    let until = Instant::now() + QUIET;
    while Instant::now() < until {
        assert_eq!(fleet.stats().starts, after_stop);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn commands_reach_the_selected_clients() {
    let fleet = Fleet::start(target(closed_port()), options(5, 0)).expect("fleet starts");
    fleet.wait_ramped().await.expect("ramp-up ends");
    fleet_reaches(&fleet, |s| s.abandoned == 5).await;
    let picked = fleet
        .clients(Selection::Range(1..3))
        .await
        .expect("clients");
    assert_eq!(picked.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
    assert!(fleet.client(7).await.expect("lookup").is_none());
    // A join on a client that is not started fails with `not_started`, counted by kind.
    let report = fleet
        .command(
            Selection::Indices(vec![0, 4]),
            Command::JoinGroup("g".into()),
        )
        .await
        .expect("command");
    assert_eq!((report.ok, report.failed), (0, 2), "{report:?}");
    assert_eq!(report.errors.get("not_started"), Some(&2), "{report:?}");
    // Stop succeeds on stopped clients.
    let report = fleet
        .command(Selection::All, Command::Stop)
        .await
        .expect("command");
    assert_eq!(report.ok, 5);
    fleet.stop().await.expect("stop");
}

/// Linux only: elsewhere there is no `/proc/self/limits` and the check is skipped by design;
/// on Linux a missing limit is a failure, not a pass.
#[cfg(target_os = "linux")]
#[actix_rt::test]
async fn too_many_clients_are_refused_with_the_number_that_fits() {
    assert!(
        webpubsub_fleet::fleet::fd_limit().is_some(),
        "RLIMIT_NOFILE is readable from /proc on Linux"
    );
    let err = Fleet::start(target(1), FleetOptions::new(u64::MAX / 4)).unwrap_err();
    match err {
        FleetError::TooManyClients {
            fit, soft_limit, ..
        } => {
            assert!(fit < soft_limit, "{fit} < {soft_limit}")
        }
        other => panic!("expected TooManyClients, got {other:?}"),
    }
}

#[actix_rt::test]
async fn bad_templates_and_hub_names_fail_before_any_client() {
    let bad_template = options(1, 0).with_identity(IdentityTemplate::new().group("{room}"));
    assert!(matches!(
        Fleet::start(target(1), bad_template),
        Err(FleetError::UnknownPlaceholder { .. })
    ));
    let cs = ConnectionString::parse("Endpoint=http://127.0.0.1;Port=1;AccessKey=k;Version=1.0;")
        .expect("valid");
    assert!(matches!(
        Fleet::start(FleetTarget::new(cs, "no spaces allowed"), options(1, 0)),
        Err(FleetError::Credential(_))
    ));
}
