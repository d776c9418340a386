//! A load run in which two client actors die (a panic in a handler) after their users joined
//! groups: the fleet replaces them, rejoins the groups they joined after start, and the
//! simulated users carry on with the replacements through their `FleetClient` handles. The
//! checker counts the dead window as an allowed gap and finds nothing lost, duplicated or
//! reordered.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use webpubsub_fleet::client::{Event, EventKind, PanicForTest};
use webpubsub_fleet::fleet::{FleetTarget, Identities, IdentityTemplate, RestartPolicy};
use webpubsub_fleet::load::{self, LoadPlan, SimUser, Simulation};

/// A receiver and a publisher whose actors die one second into the workload.
const RECEIVER_VICTIM: u64 = 7;
const PUBLISHER_VICTIM: u64 = 10;
const GROUP_SIZE: u64 = 5;

/// Users join `late-{index / 5}` once the workload starts (not on connect: the fleet must
/// own these groups), the first of each group publishes every 50 ms.
#[derive(Default)]
struct LateJoiners {
    /// Group messages the receiver victim got on its replacement.
    received_after: Arc<AtomicU64>,
    /// Publishes the publisher victim got acked on its replacement.
    published_after: Arc<AtomicU64>,
}

impl Simulation for LateJoiners {
    fn name(&self) -> String {
        "late-joiners".into()
    }

    fn identities(&self) -> Identities {
        Identities::Template(
            IdentityTemplate::new()
                .user_id("user-{i}")
                .role("webpubsub.joinLeaveGroup")
                .role("webpubsub.sendToGroup"),
        )
    }

    fn run_user(&self, mut user: SimUser) -> BoxFuture<'static, ()> {
        let received_after = self.received_after.clone();
        let published_after = self.published_after.clone();
        Box::pin(async move {
            let index = user.index();
            let group: Arc<str> = format!("late-{}", index / GROUP_SIZE).into();
            if user.join(&group).await.is_err() {
                return;
            }
            let publisher = index % GROUP_SIZE == 0;
            let victim = index == RECEIVER_VICTIM || index == PUBLISHER_VICTIM;
            let begun = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut replaced = false;
            while user.tick(&mut tick).await {
                if victim && !replaced && begun.elapsed() >= Duration::from_secs(1) {
                    let dead = user.client();
                    dead.addr().do_send(PanicForTest);
                    // Wait for the replacement to be up with the group back.
                    loop {
                        if !user.sleep(Duration::from_millis(20)).await {
                            return;
                        }
                        let status = user.client().status().await;
                        if status.is_ok_and(|s| s.groups.iter().any(|g| **g == *group)) {
                            break;
                        }
                    }
                    replaced = true;
                    if index == RECEIVER_VICTIM {
                        let Ok(mut events) =
                            user.client().events_of(Some(EventKind::GroupMessage)).await
                        else {
                            return;
                        };
                        loop {
                            tokio::select! {
                                event = events.next() => match event {
                                    Some(Event::GroupMessage(m)) if *m.group == *group => {
                                        received_after.fetch_add(1, Relaxed);
                                    }
                                    Some(_) => {}
                                    None => return,
                                },
                                _ = user.until_stopped() => return,
                            }
                        }
                    }
                }
                if publisher {
                    let ok = user.publish(&group).await.is_ok();
                    if replaced && ok {
                        published_after.fetch_add(1, Relaxed);
                    }
                }
            }
        })
    }
}

#[actix_rt::test]
async fn dead_actors_come_back_with_their_groups_and_only_their_gap_is_allowed() {
    let hub = support::hub::start_hub().await;
    let simulation = Arc::new(LateJoiners::default());
    let plan = LoadPlan {
        clients: 20,
        duration: Duration::from_secs(4),
        seed: 8,
        arbiters: 2,
        fds_per_client: 2,
        restart: RestartPolicy::fixed(3, Duration::from_millis(50)),
        target_name: "in-process hub".into(),
        ..LoadPlan::default()
    };
    let report = load::run(
        FleetTarget::new(hub.connection_string(), "deadload"),
        plan,
        simulation.clone(),
        |_| {},
    )
    .await
    .expect("the run completes");
    eprintln!("{report}");
    support::assert_no_violations(&report);
    let c = &report.messages.checked;
    // The receiver victim missed what was published while it was dead: allowed, nothing else.
    assert!(c.allowed_gap > 0, "{report}");
    assert!(c.delivered > 1000, "{report}");
    assert_eq!(report.clients.restarts, 2, "{report}");
    assert_eq!(report.clients.connected, 20, "{report}");
    // Both users went on with their replacements, in their groups.
    let received = simulation.received_after.load(Relaxed);
    let published = simulation.published_after.load(Relaxed);
    assert!(
        received > 10,
        "the receiver got {received} messages after its replacement"
    );
    assert!(
        published > 10,
        "the publisher got {published} publishes acked after its replacement"
    );
    hub.stop().await;
}
