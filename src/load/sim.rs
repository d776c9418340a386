//! Custom simulations: a [`Simulation`] says who each client is and what it does; a
//! [`SimUser`] is one client's view of the run, with operations that record themselves for
//! the checker (stamped publishes, joins, leaves, going away and coming back) and waits
//! that end early when the run stops. `examples/simulate_chat.rs` shows a whole one.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Interval;

use crate::client::{AckResult, Client, ClientError, ConnectionInfo, SendOptions};
use crate::fleet::{FleetClient, Identities};

use super::pacing::PaceCounts;
use super::recorder::Recorder;
use super::track::ECHO_GROUP;

/// The event name of echo round trips (the local hub echoes event data back when started
/// with `echo_events`).
pub const ECHO_EVENT: &str = "echo";

/// A load simulation: who the clients are and what each does.
pub trait Simulation: Send + Sync + 'static {
    /// A short name for reports.
    fn name(&self) -> String;

    /// Who client `index` is: user id, roles, groups joined on connect.
    fn identities(&self) -> Identities;

    /// Whether clients expect their own events echoed back as server messages.
    fn expects_echo(&self) -> bool {
        false
    }

    /// What one client does, started once the ramp-up is over (whether or not that client
    /// connected). It should return soon after the run stops: every wait of [`SimUser`]
    /// ends early then.
    fn run_user(&self, user: SimUser) -> BoxFuture<'static, ()>;
}

/// Settings every user of a run shares.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Clients in the run.
    pub clients: u64,
    /// Payload size of publishes, bytes.
    pub size: usize,
    /// Publish without acks.
    pub fire_and_forget: bool,
    /// Seed of the users' random generators.
    pub seed: u64,
    /// Publishes a paced publisher may have in flight ([`super::pacing`]).
    pub max_in_flight: usize,
}

/// One client's view of a run. It reaches its client through the fleet's [`FleetClient`]
/// handle, so a user whose actor died and was replaced goes on with the replacement, and the
/// groups it joined come back on it.
pub struct SimUser {
    index: u64,
    client: FleetClient,
    recorder: Arc<Recorder>,
    settings: Arc<SimSettings>,
    stop: watch::Receiver<bool>,
    rng: StdRng,
}

impl SimUser {
    /// A user for client `index` (its global index: a shard's fleet numbers its own clients
    /// from 0); `stop` turns true when the run ends.
    pub fn new(
        index: u64,
        client: FleetClient,
        recorder: Arc<Recorder>,
        settings: Arc<SimSettings>,
        stop: watch::Receiver<bool>,
    ) -> SimUser {
        let seed = settings.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        SimUser {
            index,
            client,
            recorder,
            settings,
            stop,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The client's index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The client now (a new one after its actor was replaced), for anything the helpers do
    /// not cover (such operations are not recorded; groups joined on it directly are not
    /// rejoined on a replacement).
    pub fn client(&self) -> Client {
        self.client.client()
    }

    /// The run's shared settings.
    pub fn settings(&self) -> &SimSettings {
        &self.settings
    }

    /// This user's random generator (seeded from the run's seed and the index).
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Whether the run goes on.
    pub fn is_running(&self) -> bool {
        !*self.stop.borrow()
    }

    /// Waits `duration`; `false` when the run stopped first.
    pub async fn sleep(&mut self, duration: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => self.is_running(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Waits for the next tick of `interval`; `false` when the run stopped first.
    pub async fn tick(&mut self, interval: &mut Interval) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = interval.tick() => self.is_running(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// A receiver of the run's stop signal (true once the run stops), for waits the helpers
    /// here do not cover.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }

    /// Waits until the run stops.
    pub async fn until_stopped(&mut self) {
        let _ = self.stop.wait_for(|s| *s).await;
    }

    fn publisher(&self) -> StampedSender {
        StampedSender {
            index: self.index,
            client: self.client.clone(),
            recorder: self.recorder.clone(),
            settings: self.settings.clone(),
        }
    }

    /// Publishes a stamped payload to `group` and waits for the outcome.
    pub async fn publish(&self, group: &Arc<str>) -> Result<AckResult, ClientError> {
        self.publisher().send(group.clone()).await
    }

    /// Publishes without waiting (open loop, so a slow hub does not lower the offered
    /// rate); the outcome is recorded when it comes. Needs an actix or tokio local runtime.
    pub fn publish_detached(&self, group: &Arc<str>) {
        let sender = self.publisher();
        let group = group.clone();
        actix_rt::spawn(async move {
            let _ = sender.send(group).await;
        });
    }

    /// Publishes to `group` (or [`ECHO_GROUP`]: an echo event) without waiting, stamped with
    /// its scheduled send time `scheduled_us` on the run's clock ([`SimUser::now_us`]), so
    /// its latency counts from the schedule ([`super::pacing`]). `slot` is held until the
    /// outcome is known: it is how a paced publisher bounds its publishes in flight.
    pub fn publish_scheduled(
        &self,
        group: &Arc<str>,
        scheduled_us: u64,
        slot: OwnedSemaphorePermit,
    ) {
        let sender = self.publisher();
        let group = group.clone();
        actix_rt::spawn(async move {
            let _ = sender.send_scheduled(group, Some(scheduled_us)).await;
            drop(slot);
        });
    }

    /// Now on the run's clock, µs (the time base of stamps).
    pub fn now_us(&self) -> u64 {
        self.recorder.clock().now_us()
    }

    /// Reports this user's publish schedule when it stops publishing.
    pub fn record_pacing(&self, counts: PaceCounts) {
        self.recorder.record_pacing(counts);
    }

    /// Sends a stamped event that the hub echoes back to this client, and waits.
    pub async fn echo(&self) -> Result<AckResult, ClientError> {
        self.publisher().send(Arc::from(ECHO_GROUP)).await
    }

    /// Sends a stamped echo event without waiting.
    pub fn echo_detached(&self) {
        let sender = self.publisher();
        actix_rt::spawn(async move {
            let _ = sender.send(Arc::from(ECHO_GROUP)).await;
        });
    }

    /// Joins `group`, recording the membership for the checker.
    pub async fn join(&self, group: &str) -> Result<AckResult, ClientError> {
        self.recorder.joining(self.index, group);
        let result = self.client.join_group(group).await;
        self.recorder.joined(self.index, group, result.is_ok());
        if let Err(e) = &result {
            self.recorder.record_error(e);
        }
        result
    }

    /// Leaves `group`, recording it.
    pub async fn leave(&self, group: &str) -> Result<AckResult, ClientError> {
        self.recorder.leaving(self.index, group);
        let result = self.client.leave_group(group).await;
        if let Err(e) = &result {
            self.recorder.record_error(e);
        }
        result
    }

    /// Stops the client on purpose (the fleet will not restart it). Groups it joined are
    /// rejoined by the client when it comes back, as the client always does.
    pub async fn go_away(&self) -> Result<(), ClientError> {
        self.recorder.going_away(self.index);
        self.client.client().stop().await
    }

    /// Starts the client again after [`SimUser::go_away`].
    pub async fn come_back(&self) -> Result<ConnectionInfo, ClientError> {
        let result = self.client.client().start().await;
        if let Err(e) = &result {
            self.recorder.record_error(e);
        }
        result
    }
}

/// What a detached publish needs.
struct StampedSender {
    index: u64,
    client: FleetClient,
    recorder: Arc<Recorder>,
    settings: Arc<SimSettings>,
}

impl StampedSender {
    async fn send(self, group: Arc<str>) -> Result<AckResult, ClientError> {
        self.send_scheduled(group, None).await
    }

    async fn send_scheduled(
        self,
        group: Arc<str>,
        scheduled_us: Option<u64>,
    ) -> Result<AckResult, ClientError> {
        let client = self.client.client();
        let fire_and_forget = self.settings.fire_and_forget;
        let (seq, payload) = self.recorder.begin_publish_scheduled(
            self.index,
            &group,
            self.settings.size,
            scheduled_us,
        );
        let options = SendOptions::new().fire_and_forget(fire_and_forget);
        let result = if &*group == ECHO_GROUP {
            client.send_event(ECHO_EVENT, payload, options).await
        } else {
            client.send_to_group(&*group, payload, options).await
        };
        self.recorder
            .end_publish(self.index, seq, &result, fire_and_forget);
        result
    }
}
