//! The built-in workloads: `groups`, `broadcast` and `echo` (and [`super::chat`]).

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::fleet::{Identities, IdentityTemplate};

use super::pacing::{MAX_LAG, Pace, Schedule};
use super::sim::{SimUser, Simulation};
use super::track::ECHO_GROUP;

/// Clients in groups of `group_size` (joined on connect through the token); in each group
/// the first `senders` clients publish `rate` messages per second each. Every member,
/// senders included, receives every message of its group.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    /// Clients per group.
    pub group_size: u64,
    /// Senders per group.
    pub senders: u64,
    /// Messages per second per sender.
    pub rate: f64,
}

/// The group names of [`Groups`]: `group-0`, `group-1`, ...
pub const GROUP_TEMPLATE: &str = "group-{g}";

impl Simulation for Groups {
    fn name(&self) -> String {
        "groups".into()
    }

    fn identities(&self) -> Identities {
        Identities::Template(
            IdentityTemplate::new()
                .group(GROUP_TEMPLATE)
                .group_size(self.group_size.max(1))
                .role("webpubsub.sendToGroup.group-{g}"),
        )
    }

    fn run_user(&self, user: SimUser) -> BoxFuture<'static, ()> {
        let size = self.group_size.max(1);
        let sends = user.index() % size < self.senders;
        let group: Arc<str> = Arc::from(format!("group-{}", user.index() / size));
        send_at_rate(user, sends, self.rate, Target::Group(group)).boxed()
    }
}

/// Every client in one group `broadcast`; the first `senders` clients publish `rate`
/// messages per second each, so each message reaches every client.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// Senders.
    pub senders: u64,
    /// Messages per second per sender.
    pub rate: f64,
}

/// The group of [`Broadcast`].
pub const BROADCAST_GROUP: &str = "broadcast";

impl Simulation for Broadcast {
    fn name(&self) -> String {
        "broadcast".into()
    }

    fn identities(&self) -> Identities {
        Identities::Template(
            IdentityTemplate::new()
                .group(BROADCAST_GROUP)
                .role(format!("webpubsub.sendToGroup.{BROADCAST_GROUP}")),
        )
    }

    fn run_user(&self, user: SimUser) -> BoxFuture<'static, ()> {
        let sends = user.index() < self.senders;
        let target = Target::Group(Arc::from(BROADCAST_GROUP));
        send_at_rate(user, sends, self.rate, target).boxed()
    }
}

/// Round trips: in every `group_size` clients the first `senders` send events at `rate` per
/// second; the hub (started with `echo_events`) answers each with the same data as a server
/// message to the sender. Latency is the round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    /// Clients per block (senders are counted per block, as in `groups`).
    pub group_size: u64,
    /// Senders per block.
    pub senders: u64,
    /// Events per second per sender.
    pub rate: f64,
}

impl Simulation for Echo {
    fn name(&self) -> String {
        "echo".into()
    }

    fn identities(&self) -> Identities {
        Identities::Template(IdentityTemplate::new())
    }

    fn expects_echo(&self) -> bool {
        true
    }

    fn run_user(&self, user: SimUser) -> BoxFuture<'static, ()> {
        let sends = user.index() % self.group_size.max(1) < self.senders;
        send_at_rate(user, sends, self.rate, Target::Echo).boxed()
    }
}

enum Target {
    Group(Arc<str>),
    Echo,
}

/// Publishes at `rate` per second on a fixed schedule from a random phase, until the run
/// stops: at most `max_in_flight` publishes in flight, sends that cannot go within
/// [`MAX_LAG`] of their due time skipped and counted ([`super::pacing`]).
async fn send_at_rate(mut user: SimUser, sends: bool, rate: f64, target: Target) {
    if !sends || rate.is_nan() || rate <= 0.0 {
        user.until_stopped().await;
        return;
    }
    let period = period_of(rate);
    // A random phase, so a thousand senders do not publish in the same millisecond.
    let phase = period.mul_f64(user.rng().random::<f64>());
    let group: Arc<str> = match &target {
        Target::Group(group) => group.clone(),
        Target::Echo => Arc::from(ECHO_GROUP),
    };
    let slots = Arc::new(Semaphore::new(user.settings().max_in_flight.max(1)));
    // The schedule's time zero, on the tokio clock and on the run's (stamp) clock.
    let (origin, origin_us) = (Instant::now(), user.now_us());
    let mut schedule = Schedule::new(phase, period, MAX_LAG);
    let mut stop = user.stopped();
    loop {
        let now = origin.elapsed();
        let (scheduled, skip_at) = match schedule.poll(now) {
            Pace::Wait { until } => {
                if !user.sleep(until.saturating_sub(now)).await {
                    break;
                }
                continue;
            }
            Pace::Due { scheduled, skip_at } => (scheduled, skip_at),
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            // The window is full: wait for an outcome, but no longer than this send may
            // still go (then the next poll skips it).
            Err(_) => tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(origin + skip_at) => continue,
                _ = stop.wait_for(|s| *s) => break,
            },
        };
        if !user.is_running() {
            break;
        }
        schedule.sent(origin.elapsed());
        let scheduled_us = origin_us.saturating_add(scheduled.as_micros() as u64);
        user.publish_scheduled(&group, scheduled_us, slot);
    }
    user.record_pacing(schedule.finish(origin.elapsed()));
}

/// The period of a rate per second, between 1 µs and a day (never a panic on odd rates).
pub(crate) fn period_of(rate: f64) -> Duration {
    const DAY: Duration = Duration::from_secs(86_400);
    Duration::try_from_secs_f64(1.0 / rate)
        .unwrap_or(DAY)
        .clamp(Duration::from_micros(1), DAY)
}
