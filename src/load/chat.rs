//! The `chat` workload: users wander between rooms. Each visit joins a room, posts a few
//! messages with think times between them, and leaves; now and then a user goes away (its
//! client stops) and comes back a little later on a new connection.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rand::Rng;

use crate::fleet::{Identities, IdentityTemplate};

use super::sim::{SimUser, Simulation};
use super::workloads::period_of;

/// Users wandering between `rooms` rooms, posting about `rate` messages per second while in
/// one.
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    /// Rooms (`room-0`, `room-1`, ...).
    pub rooms: u64,
    /// Mean posts per second of a user in a room (think time is exponential around 1/rate).
    pub rate: f64,
    /// Posts per visit, at least and at most.
    pub posts_per_visit: (u32, u32),
    /// Share of visits after which the user goes away for a while.
    pub away_share: f64,
    /// How long a user stays away, at least and at most.
    pub away_for: (Duration, Duration),
}

impl Default for Chat {
    fn default() -> Self {
        Chat {
            rooms: 100,
            rate: 0.5,
            posts_per_visit: (2, 6),
            away_share: 0.2,
            away_for: (Duration::from_secs(1), Duration::from_secs(3)),
        }
    }
}

impl Simulation for Chat {
    fn name(&self) -> String {
        "chat".into()
    }

    fn identities(&self) -> Identities {
        Identities::Template(
            IdentityTemplate::new()
                .role("webpubsub.joinLeaveGroup")
                .role("webpubsub.sendToGroup"),
        )
    }

    fn run_user(&self, user: SimUser) -> BoxFuture<'static, ()> {
        wander(user, self.clone()).boxed()
    }
}

async fn wander(mut user: SimUser, chat: Chat) {
    let think = period_of(chat.rate);
    // Start at different moments, as people do.
    let first = think.mul_f64(user.rng().random::<f64>());
    if !user.sleep(first).await {
        return;
    }
    while user.is_running() {
        let room: Arc<str> = Arc::from(format!(
            "room-{}",
            user.rng().random_range(0..chat.rooms.max(1))
        ));
        if user.join(&room).await.is_err() {
            if !user.sleep(think).await {
                return;
            }
            continue;
        }
        let (low, high) = chat.posts_per_visit;
        let posts = user.rng().random_range(low..=high.max(low));
        for _ in 0..posts {
            let pause = exponential(&mut user, think);
            if !user.sleep(pause).await {
                return;
            }
            let _ = user.publish(&room).await;
        }
        let _ = user.leave(&room).await;
        if user.rng().random::<f64>() < chat.away_share {
            if user.go_away().await.is_err() {
                return;
            }
            let (low, high) = chat.away_for;
            let away = low + (high.saturating_sub(low)).mul_f64(user.rng().random::<f64>());
            let running = user.sleep(away).await;
            // Come back even at the end, so the fleet stops a started client and the
            // report counts it as connected, as it was for most of the run.
            let _ = user.come_back().await;
            if !running {
                return;
            }
        } else {
            let pause = exponential(&mut user, think);
            if !user.sleep(pause).await {
                return;
            }
        }
    }
}

/// An exponential pause around `mean`, capped at ten means.
fn exponential(user: &mut SimUser, mean: Duration) -> Duration {
    let u: f64 = user.rng().random_range(f64::EPSILON..1.0);
    mean.mul_f64((-u.ln()).min(10.0))
}
