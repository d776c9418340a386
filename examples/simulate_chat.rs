//! A custom load simulation written against the library's `Simulation` trait: a chat where
//! most users lurk in one room and a few talkers hop between rooms, posting with think
//! times. Every post is stamped and recorded, so the run ends with the checker's verdict
//! (lost, duplicated, reordered, unexpected) and latency percentiles.
//!
//! It targets the resource in `WebPubSubConnectionString` if set, else a local hub started
//! in this process. Run it with:
//!
//! ```text
//! cargo run --release --example simulate_chat
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rand::Rng;
use webpubsub_fleet::credential::ConnectionString;
use webpubsub_fleet::fleet::{FleetTarget, Identities, IdentityTemplate};
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::load::{self, LoadPlan, SimUser, Simulation};

/// 1 in `talker_every` users talks; the others lurk in one room.
struct LurkersAndTalkers {
    rooms: u64,
    talker_every: u64,
    think: Duration,
}

impl Simulation for LurkersAndTalkers {
    fn name(&self) -> String {
        "lurkers-and-talkers".into()
    }

    fn identities(&self) -> Identities {
        // Everyone may join and post in any room; the token joins nobody anywhere.
        Identities::Template(
            IdentityTemplate::new()
                .user_id("chatter-{u}")
                .role("webpubsub.joinLeaveGroup")
                .role("webpubsub.sendToGroup"),
        )
    }

    fn run_user(&self, user: SimUser) -> BoxFuture<'static, ()> {
        let room = |n: u64| format!("room-{}", n % self.rooms);
        if user.index() % self.talker_every == 0 {
            talk(user, self.rooms, self.think).boxed()
        } else {
            let home = room(user.index());
            lurk(user, home).boxed()
        }
    }
}

/// Join one room and stay (recorded, so the checker expects every post there).
async fn lurk(mut user: SimUser, room: String) {
    if user.join(&room).await.is_ok() {
        user.until_stopped().await;
    }
}

/// Hop between rooms: join, post three times, leave.
async fn talk(mut user: SimUser, rooms: u64, think: Duration) {
    while user.is_running() {
        let room: Arc<str> = Arc::from(format!("room-{}", user.rng().random_range(0..rooms)));
        if user.join(&room).await.is_err() {
            if !user.sleep(think).await {
                return;
            }
            continue;
        }
        for _ in 0..3 {
            let pause = think.mul_f64(user.rng().random_range(0.5..1.5));
            if !user.sleep(pause).await {
                return;
            }
            let _ = user.publish(&room).await;
        }
        let _ = user.leave(&room).await;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let simulation = Arc::new(LurkersAndTalkers {
        rooms: 10,
        talker_every: 5,
        think: Duration::from_millis(300),
    });
    let plan = LoadPlan {
        clients: 200,
        duration: Duration::from_secs(10),
        ..LoadPlan::default()
    };
    let report = actix_rt::System::new().block_on(async move {
        // A resource if one is configured, else the local hub in this process.
        let (target, hub) = match std::env::var("WebPubSubConnectionString") {
            Ok(text) => (
                FleetTarget::new(ConnectionString::parse(&text)?, "chat"),
                None,
            ),
            Err(_) => {
                let hub = Hub::start(HubConfig::new().bind(([127, 0, 0, 1], 0).into())).await?;
                (FleetTarget::new(hub.connection_string(), "chat"), Some(hub))
            }
        };
        let plan = LoadPlan {
            fds_per_client: if hub.is_some() { 2 } else { 1 },
            target_name: if hub.is_some() {
                "the local hub"
            } else {
                "the resource"
            }
            .into(),
            ..plan
        };
        let report = load::run(target, plan, simulation, |p| eprintln!("{p}")).await;
        if let Some(hub) = hub {
            hub.stop().await;
        }
        Ok::<_, Box<dyn std::error::Error>>(report?)
    })?;
    println!("{report}");
    Ok(())
}
