//! A client actor that dies (a panic inside a handler) is noticed by the fleet through its
//! closed mailbox and replaced with a new actor of the same identity after the restart
//! backoff; its arbiter and the other clients carry on untouched.

use std::time::{Duration, Instant};

use webpubsub_fleet::client::{ClientOptions, PanicForTest};
use webpubsub_fleet::fleet::{
    Fleet, FleetOptions, FleetStats, FleetTarget, IdentityTemplate, RestartPolicy, Selection,
};
use webpubsub_fleet::hub::{Hub, HubConfig};

async fn wait_for(fleet: &Fleet, done: impl Fn(&FleetStats) -> bool) -> FleetStats {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = fleet.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < until, "condition not reached: {stats:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn a_panicked_client_actor_is_replaced_and_the_others_carry_on() {
    let hub = Hub::start(
        HubConfig::new()
            .bind("127.0.0.1:0".parse().expect("address"))
            .workers(1),
    )
    .await
    .expect("the hub starts");
    let mut options = FleetOptions::new(6)
        .with_arbiters(2)
        .with_fds_per_client(2)
        .with_restart(RestartPolicy::fixed(3, Duration::from_millis(50)))
        .with_client_options(ClientOptions::new());
    options.identities =
        webpubsub_fleet::fleet::Identities::Template(IdentityTemplate::new().user_id("user-{i}"));
    let fleet = Fleet::start(FleetTarget::new(hub.connection_string(), "dead"), options)
        .expect("fleet starts");
    fleet.wait_ramped().await.expect("ramp-up ends");
    wait_for(&fleet, |s| s.connected == 6).await;

    let victim = fleet
        .clients(Selection::Indices(vec![2]))
        .await
        .expect("handles")
        .remove(0)
        .1;
    victim.addr().do_send(PanicForTest);
    let stats = wait_for(&fleet, |s| s.actor_deaths == 1).await;
    assert_eq!(
        stats.disconnects, 0,
        "a dead actor says nothing: {stats:#?}"
    );

    // Replaced: a new actor for slot 2 connects as the same user; nobody else reconnected.
    let stats = wait_for(&fleet, |s| s.connected == 6 && s.restarts == 1).await;
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
    fleet.stop().await.expect("stop");
    hub.stop().await;
}
