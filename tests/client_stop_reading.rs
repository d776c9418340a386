//! Reliability matrix row 15's hub-side `stop_reading` (reliability.md section 5): the hub
//! stops reading one client's socket while it keeps writing to it. What the client must do:
//! its requests go unanswered (no ack, no error) while its socket looks alive, because
//! deliveries still arrive; the hub's silence timeout drops the socket as half-open; the client
//! recovers the same connection, resends what was never acknowledged with the same ack ids,
//! and every message arrives once and in order, at the stalled client and at the others.

use std::time::Duration;

mod support;

use support::client::{Inbox, ROLES, next_of};
use support::within;
use webpubsub_fleet::client::{Client, ClientOptions, EventKind, SendOptions};
use webpubsub_fleet::hub::{Hub, HubConfig};

fn client(hub: &Hub, user: &str) -> Client {
    support::client::client(
        &hub.connection_string(),
        "chat",
        user,
        &ROLES,
        ClientOptions::new(),
    )
}

#[actix_rt::test]
async fn a_client_the_hub_stopped_reading_recovers_and_loses_nothing() {
    // The silence timeout decides how long the stall lasts: one second here, 60 s by default.
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .keepalive_interval(Duration::from_millis(200))
        .client_timeout(Duration::from_secs(1));
    let hub = Hub::start(config).await.unwrap();
    let subscriber = client(&hub, "sub");
    let subscriber_inbox = Inbox::attach(&subscriber).await;
    subscriber.start().await.unwrap();
    subscriber.join_group("room").await.unwrap();
    let stalled = client(&hub, "stalled");
    let stalled_inbox = Inbox::attach(&stalled).await;
    let mut events = stalled.events().await.unwrap();
    let first = stalled.start().await.unwrap();
    stalled.join_group("room").await.unwrap();

    assert!(hub.stop_reading(&first.connection_id));
    // Messages from the other client still reach the stalled one: its socket looks alive.
    subscriber
        .send_to_group("room", "0", SendOptions::new())
        .await
        .unwrap();
    assert_eq!(stalled_inbox.wait_len(1).await, ["0"]);
    // The stalled client's sends wait for acks that only come after the recovery.
    const N: usize = 20;
    let sends: Vec<_> = (1..=N)
        .map(|i| {
            let c = stalled.clone();
            actix_rt::spawn(async move {
                c.send_to_group("room", i.to_string(), SendOptions::new())
                    .await
            })
        })
        .collect();
    let recovered = next_of(&mut events, EventKind::Recovered).await;
    eprintln!("{recovered:?}");
    for send in sends {
        let ack = within("the send resolves", send)
            .await
            .unwrap()
            .expect("the send succeeds after the recovery");
        // The hub never read the first attempt, so the resend is the one that ran.
        assert!(!ack.duplicated);
    }
    // Group order holds per publisher, so the sends may interleave with nothing else here;
    // each of 0..=N arrives exactly once at both clients.
    for inbox in [&subscriber_inbox, &stalled_inbox] {
        let mut got = inbox.wait_len(N + 1).await;
        assert_eq!(got.len(), N + 1, "{got:?}");
        got.sort_by_key(|s| s.parse::<usize>().unwrap());
        let expected: Vec<String> = (0..=N).map(|i| i.to_string()).collect();
        assert_eq!(got, expected);
    }
    let status = stalled.status().await.unwrap();
    assert_eq!(status.connection_id, Some(first.connection_id));
    assert_eq!(
        (status.counters.recoveries, status.counters.reconnects),
        (1, 0)
    );
    let stats = hub.stats();
    assert_eq!((stats.drops, stats.recoveries), (1, 1), "{stats:?}");
    hub.stop().await;
}
