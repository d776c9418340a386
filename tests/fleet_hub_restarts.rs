//! Fleet supervision against the local hub: clients that lose their connection for good are
//! restarted, clients stopped on request are not, a full hub makes the fleet give up
//! after its restart budget, and a client actor that died is replaced.

mod support;

use std::time::Duration;

use support::client::fleet_reaches;
use webpubsub_fleet::client::{ClientOptions, PanicForTest};
use webpubsub_fleet::fleet::{
    ClientPhase, Command, Fleet, FleetOptions, FleetTarget, Identities, IdentityTemplate,
    RestartPolicy, Selection,
};
use webpubsub_fleet::hub::{Hub, HubConfig};

async fn hub(max_connections: usize) -> Hub {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().expect("address"))
        .max_connections(max_connections)
        .workers(1);
    Hub::start(config).await.expect("the hub starts")
}

fn options(clients: u64, restarts: u32) -> FleetOptions {
    FleetOptions::new(clients)
        .with_arbiters(2)
        .with_fds_per_client(2)
        .with_restart(RestartPolicy::fixed(restarts, Duration::from_millis(20)))
        // Without auto reconnect a connection lost for good stops the client: the fleet's job.
        .with_client_options(ClientOptions::new().with_auto_reconnect(false))
}

#[actix_rt::test]
async fn connections_lost_for_good_are_restarted_but_requested_stops_are_not() {
    let hub = hub(1000).await;
    let target = FleetTarget::new(hub.connection_string(), "restarts");
    let fleet = Fleet::start(target, options(6, 5)).expect("fleet starts");
    let ramp = fleet.wait_ramped().await.expect("ramp-up");
    assert_eq!(ramp.first_starts_ok, 6);

    let stopped = fleet
        .command(Selection::Indices(vec![0]), Command::Stop)
        .await
        .expect("command");
    assert_eq!(stopped.ok, 1);
    fleet_reaches(&fleet, |s| s.stops_requested == 1).await;

    // Drop every socket and forget every session: recoveries get 1008, connections are lost.
    hub.restart();
    let stats = fleet_reaches(&fleet, |s| s.restarts == 5 && s.connected == 5).await;
    assert_eq!(stats.stops_connection_lost, 5, "{stats:#?}");
    assert_eq!(stats.starts, 6 + 5);
    assert_eq!(stats.reconnects, 5);
    // The client stopped on request stayed stopped while the others came back.
    assert_eq!(fleet.counters().phase(0), ClientPhase::Stopped);

    let report = fleet.stop().await.expect("stop");
    assert_eq!(report.stopped, 6);
    hub.stop().await;
}

#[actix_rt::test]
async fn a_full_hub_refuses_and_the_fleet_abandons_after_its_restarts() {
    let hub = hub(4).await;
    let target = FleetTarget::new(hub.connection_string(), "refusals");
    let fleet = Fleet::start(target, options(6, 2)).expect("fleet starts");
    let stats = fleet_reaches(&fleet, |s| s.abandoned == 2 && s.connected == 4).await;
    // Two refused clients: a first start and two restarts each, every one answered 429.
    assert_eq!(stats.starts, 4 + 2 * 3, "{stats:#?}");
    assert_eq!(stats.restarts, 4);
    assert_eq!(
        stats.errors.get("handshake_status"),
        Some(&6),
        "{:?}",
        stats.errors
    );
    fleet.stop().await.expect("stop");
    hub.stop().await;
}

/// Reliability row 6 at fleet size: 200 clients publishing in groups while the hub restarts
/// (every socket dropped, every session forgotten) twice. Every client comes back on a new
/// connection, and the checker finds nothing but allowed gaps.
#[actix_rt::test]
async fn two_hundred_clients_ride_out_hub_restarts_with_only_allowed_gaps() {
    use std::sync::Arc;

    use futures::FutureExt;
    use webpubsub_fleet::load::{self, Chaos, Groups, LoadPlan};

    let hub = hub(1000).await;
    let restarted = hub.clone();
    let plan = LoadPlan {
        clients: 200,
        duration: Duration::from_secs(8),
        fds_per_client: 2,
        arbiters: 1,
        seed: 6,
        target_name: "local hub".into(),
        chaos: Some(Chaos {
            share: 1.0,
            period: Duration::from_secs(3),
            inject: Arc::new(move |_| {
                restarted.restart();
                async { Ok(()) }.boxed()
            }),
        }),
        ..LoadPlan::default()
    };
    let groups = Groups {
        group_size: 10,
        senders: 1,
        rate: 5.0,
    };
    let report = load::run(
        FleetTarget::new(hub.connection_string(), "row6"),
        plan,
        Arc::new(groups),
        |_| {},
    )
    .await
    .expect("the run completes");
    eprintln!("{report}");
    support::assert_no_violations(&report);
    let c = &report.messages.checked;
    assert!(c.delivered > 0 && c.allowed_gap > 0, "{report}");
    // Two restarts: every client needed at least two new connections.
    assert!(report.reconnects >= 2 * 200, "{report}");
    assert_eq!(report.clients.connected, 200, "{report}");
    assert_eq!(report.messages.unresolved, 0, "{report}");
    hub.stop().await;
}

/// A client actor that dies (a panic inside a handler) is noticed by the fleet through its
/// closed mailbox and replaced with a new actor of the same identity after the restart
/// backoff; its arbiter and the other clients carry on untouched.
#[actix_rt::test]
async fn a_panicked_client_actor_is_replaced_and_the_others_carry_on() {
    let hub = hub(1000).await;
    let mut options = FleetOptions::new(6)
        .with_arbiters(2)
        .with_fds_per_client(2)
        .with_restart(RestartPolicy::fixed(3, Duration::from_millis(50)))
        .with_client_options(ClientOptions::new());
    // Roles to join groups and publish to them after start.
    let template = IdentityTemplate::new()
        .user_id("user-{i}")
        .role("webpubsub.joinLeaveGroup")
        .role("webpubsub.sendToGroup");
    options.identities = Identities::Template(template);
    let fleet = Fleet::start(FleetTarget::new(hub.connection_string(), "dead"), options)
        .expect("fleet starts");
    fleet.wait_ramped().await.expect("ramp-up ends");
    fleet_reaches(&fleet, |s| s.connected == 6).await;

    // Groups joined after start, through the fleet and through the victim's FleetClient
    // handle; one joined and left again, which must not come back.
    let joined = fleet
        .command(
            Selection::Indices(vec![2]),
            Command::JoinGroup("late-a".into()),
        )
        .await
        .expect("command");
    assert_eq!(joined.ok, 1);
    let handle = fleet
        .fleet_clients(Selection::Indices(vec![2]))
        .await
        .expect("handles")
        .remove(0);
    for group in ["late-b", "late-c"] {
        handle.join_group(group).await.expect("joined");
    }
    handle.leave_group("late-c").await.expect("left");
    assert_eq!(handle.groups(), ["late-a", "late-b"]);

    let victim = fleet
        .clients(Selection::Indices(vec![2]))
        .await
        .expect("handles")
        .remove(0)
        .1;
    victim.addr().do_send(PanicForTest);
    let stats = fleet_reaches(&fleet, |s| s.actor_deaths == 1).await;
    assert_eq!(
        stats.disconnects, 0,
        "a dead actor says nothing: {stats:#?}"
    );

    // Replaced: a new actor for slot 2 connects as the same user; nobody else reconnected.
    let stats = fleet_reaches(&fleet, |s| s.connected == 6 && s.restarts == 1).await;
    assert_eq!(stats.connections, 7, "{stats:#?}");
    assert_eq!((stats.actor_deaths, stats.abandoned), (1, 0));
    let clients = fleet.clients(Selection::All).await.expect("handles");
    for (index, client) in &clients {
        let status = client.status().await.expect("every actor is alive");
        assert!(status.connection_id.is_some(), "client {index}: {status:?}");
        assert_eq!(
            status.user_id.as_deref(),
            Some(format!("user-{index}").as_str()),
            "client {index} keeps its identity"
        );
    }
    assert!(
        victim.status().await.is_err(),
        "the old handle's actor is gone"
    );
    // The FleetClient handle taken before the death reaches the replacement, which the fleet
    // made rejoin the groups joined after start (not the one left).
    let replacement = handle
        .client()
        .status()
        .await
        .expect("the replacement answers");
    let mut groups = replacement.groups.clone();
    groups.sort();
    assert_eq!(groups, ["late-a", "late-b"], "{replacement:?}");
    // And the hub agrees: a message to late-b reaches the replacement.
    let mut events = handle
        .client()
        .events_of(Some(webpubsub_fleet::client::EventKind::GroupMessage))
        .await
        .expect("events");
    let (_, sender) = clients.iter().find(|(i, _)| *i == 0).expect("client 0");
    sender
        .send_to_group("late-b", "after the replacement", Default::default())
        .await
        .expect("sent");
    let event = support::within(
        "the replacement receives the group message",
        futures::StreamExt::next(&mut events),
    )
    .await;
    assert!(
        matches!(&event, Some(webpubsub_fleet::client::Event::GroupMessage(m)) if m.group == "late-b"),
        "{event:?}"
    );
    fleet.stop().await.expect("stop");
    hub.stop().await;
}
