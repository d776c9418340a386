//! `FleetActor`: owns the clients, ramps them up, restarts the ones that fail, stops them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::client::{Client, ClientError, Event, Observer, StopReason};

use super::latency::record_duration;
use super::limits::SourcePlan;
use super::member::FleetClient;
use super::stats::{ClientPhase, ErrorKind, FleetCounters};
use super::supervise::{Decision, decide};
use super::{FleetOptions, FleetTarget, Selection};

/// How often the ramp-up starts the clients that are due.
const RAMP_TICK: Duration = Duration::from_millis(10);

/// How often the manager logs one line about client failures (when there were new ones),
/// instead of one line per client: 10,000 clients failing alike make one line, not 10,000.
pub const FAILURE_SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// How often the manager looks for clients whose actor died: a closed mailbox is one
/// atomic load per client, so 10,000 clients cost nothing noticeable once a second.
pub const LIVENESS_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The observer every client of a fleet reports to, inline on its arbiter thread: counts
/// the event, tells the manager about stops (the only events it acts on), then passes the
/// event to the user's observer.
pub struct FleetObserver {
    counters: Arc<FleetCounters>,
    stops: mpsc::UnboundedSender<(u64, StopReason)>,
    inner: Option<Arc<dyn Observer>>,
}

impl Observer for FleetObserver {
    fn observe(&self, client_index: u64, event: &Event) {
        self.counters.on_event(client_index, event);
        if let Event::Stopped { reason } = event {
            // The manager may be gone (fleet stopped); then nobody restarts anything.
            let _ = self.stops.send((client_index, reason.clone()));
        }
        if let Some(inner) = &self.inner {
            inner.observe(client_index, event);
        }
    }
}

struct Slot {
    /// The client, behind a handle that outlives a dead actor, with the groups it joined.
    member: FleetClient,
    /// The client is a replaced actor's: rejoin the member's groups once it connected.
    rejoin: bool,
    /// Restarts since the client last started successfully.
    failures_in_a_row: u32,
    /// Its first start has finished (either way).
    first_start_done: bool,
    restart_scheduled: bool,
}

/// The manager of a fleet. Use it through [`super::Fleet`]; the actor and its messages are
/// public for actix applications that supervise it themselves.
pub struct FleetActor {
    target: FleetTarget,
    options: FleetOptions,
    counters: Arc<FleetCounters>,
    observer: Arc<FleetObserver>,
    stops: Option<mpsc::UnboundedReceiver<(u64, StopReason)>>,
    arbiters: Vec<Arbiter>,
    sources: Option<SourcePlan>,
    slots: Vec<Slot>,
    in_flight: usize,
    ramp: Option<SpawnHandle>,
    ramp_started: Option<Instant>,
    ramp_finished: Option<Instant>,
    first_start_ok: u64,
    ramp_waiters: Vec<oneshot::Sender<RampStatus>>,
    stopping: bool,
    /// Errors and abandoned clients at the last failure summary.
    summarized: (std::collections::BTreeMap<String, u64>, u64),
}

/// How the ramp-up went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampStatus {
    /// Clients created so far.
    pub created: u64,
    /// Clients whose first start finished.
    pub first_starts_done: u64,
    /// First starts that connected.
    pub first_starts_ok: u64,
    /// From the first start to the last first start finishing (or until now).
    pub elapsed: Duration,
    /// Whether every client's first start has finished.
    pub done: bool,
}

impl RampStatus {
    /// Clients connected by their first start, per second of ramp-up.
    pub fn rate_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.first_starts_ok as f64 / secs
        } else {
            0.0
        }
    }
}

impl FleetActor {
    pub(super) fn new(
        target: FleetTarget,
        options: FleetOptions,
        counters: Arc<FleetCounters>,
        sources: Option<SourcePlan>,
    ) -> FleetActor {
        let (tx, rx) = mpsc::unbounded_channel();
        let observer = Arc::new(FleetObserver {
            counters: counters.clone(),
            stops: tx,
            inner: options.observer.clone(),
        });
        let arbiters = (0..options.arbiter_count())
            .map(|_| Arbiter::new())
            .collect();
        FleetActor {
            target,
            options,
            counters,
            observer,
            stops: Some(rx),
            arbiters,
            sources,
            slots: Vec::new(),
            in_flight: 0,
            ramp: None,
            ramp_started: None,
            ramp_finished: None,
            first_start_ok: 0,
            ramp_waiters: Vec::new(),
            stopping: false,
            summarized: Default::default(),
        }
    }

    /// Logs what failed since the last summary, by kind, with the latest examples.
    fn summarize_failures(&mut self) {
        let stats = self.counters.snapshot();
        let (seen, abandoned_before) = &self.summarized;
        let new: std::collections::BTreeMap<String, u64> = stats
            .errors
            .iter()
            .map(|(k, n)| (k.clone(), n - seen.get(k).copied().unwrap_or(0).min(*n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if !new.is_empty() || stats.abandoned > *abandoned_before {
            warn!(
                abandoned = stats.abandoned,
                connected = stats.connected,
                "client failures in the last {:?}: {}",
                FAILURE_SUMMARY_EVERY,
                super::describe_errors(&new, &stats.error_examples)
            );
        }
        self.summarized = (stats.errors, stats.abandoned);
    }

    fn ramp_status(&self) -> RampStatus {
        let started = self.ramp_started.unwrap_or_else(Instant::now);
        let end = self.ramp_finished.unwrap_or_else(Instant::now);
        RampStatus {
            created: self.slots.len() as u64,
            first_starts_done: self.counters.first_starts_done.load(Relaxed),
            first_starts_ok: self.first_start_ok,
            elapsed: end.saturating_duration_since(started),
            done: self.ramp_finished.is_some(),
        }
    }

    /// Starts the clients that are due: `rate × elapsed` in total, within the concurrency.
    fn ramp_tick(&mut self, ctx: &mut Context<Self>) {
        let started = *self.ramp_started.get_or_insert_with(Instant::now);
        let due = (self.options.connect_rate * started.elapsed().as_secs_f64()) as u64 + 1;
        let due = due.min(self.options.clients);
        while (self.slots.len() as u64) < due && self.in_flight < self.options.connect_concurrency {
            if let Err(error) = self.create_client() {
                // A credential or option error (checked once at `Fleet::start`) would hit every
                // client alike.
                warn!(%error, "cannot create a client; ramp-up stopped");
                self.stop_ramp(ctx);
                return;
            }
            let index = self.slots.len() as u64 - 1;
            self.start_client(index, false, ctx);
        }
        if self.slots.len() as u64 >= self.options.clients {
            self.stop_ramp(ctx);
        }
    }

    fn stop_ramp(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.ramp.take() {
            ctx.cancel_future(handle);
        }
    }

    fn create_client(&mut self) -> Result<(), ClientError> {
        let index = self.slots.len() as u64;
        let client = self.new_client(index)?;
        self.slots.push(Slot {
            member: FleetClient::new(index, client),
            rejoin: false,
            failures_in_a_row: 0,
            first_start_done: false,
            restart_scheduled: false,
        });
        Ok(())
    }

    /// A stopped client for slot `index`: its identity, credential, source address,
    /// arbiter and the fleet's observer (the subscription the fleet owns).
    fn new_client(&self, index: u64) -> Result<Client, ClientError> {
        let identity = self.options.identities.identity(index);
        let credential = self.target.credential(index, &identity)?;
        let mut options = self
            .options
            .client
            .clone()
            .with_index(index)
            .with_observer(self.observer.clone());
        if let Some(ip) = self.sources.and_then(|plan| plan.source(index)) {
            options = options.with_local_address(ip);
        }
        if let Some(protocol) = self.options.protocol_of(index) {
            options = options.with_protocol(protocol);
        }
        let arbiter = &self.arbiters[index as usize % self.arbiters.len()];
        Client::new_on(&arbiter.handle(), credential, options)
    }

    /// Finds clients whose actor died (a panic in a handler, its context stopped: its
    /// mailbox is closed, and no `stopped` event ever came) and replaces each after the
    /// restart backoff with a new actor of the same identity.
    fn replace_dead_clients(&mut self, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.restart_scheduled || slot.member.client().addr().connected() {
                continue;
            }
            self.counters.actor_deaths.fetch_add(1, Relaxed);
            self.counters
                .set_phase(index as u64, ClientPhase::Disconnected);
            let decision = decide(
                &StopReason::ConnectionLost,
                slot.failures_in_a_row,
                &self.options.restart,
                false,
                rand::random::<f64>(),
            );
            let Decision::Restart(delay) = decision else {
                warn!(
                    index,
                    "client actor died; restarts are exhausted: abandoned"
                );
                self.counters
                    .set_phase(index as u64, ClientPhase::Abandoned);
                // Checked again only if something else revives it.
                slot.restart_scheduled = true;
                continue;
            };
            warn!(index, ?delay, "client actor died; replacing it");
            slot.failures_in_a_row += 1;
            slot.restart_scheduled = true;
            ctx.run_later(delay, move |act, ctx| {
                if act.stopping {
                    return;
                }
                match act.new_client(index as u64) {
                    Ok(client) => {
                        // Same handle, new actor: users of the `FleetClient` carry on, and
                        // the groups joined through it come back once it connected.
                        act.slots[index].member.replace(client);
                        act.slots[index].rejoin = true;
                        act.start_client(index as u64, true, ctx);
                    }
                    Err(error) => warn!(index, %error, "cannot recreate a dead client"),
                }
            });
        }
    }

    fn start_client(&mut self, index: u64, restart: bool, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        slot.restart_scheduled = false;
        let client = slot.member.client();
        let rejoining = std::mem::take(&mut slot.rejoin);
        let rejoin = rejoining.then(|| slot.member.groups());
        self.counters.starts.fetch_add(1, Relaxed);
        if restart {
            self.counters.restarts.fetch_add(1, Relaxed);
        }
        self.counters.set_phase(index, ClientPhase::Connecting);
        self.in_flight += 1;
        let begun = Instant::now();
        let start = async move {
            let result = client.start().await;
            // A replaced actor's session knows no group: the fleet rejoins those it owns
            // before the start counts as done, so nothing published after it is missed.
            let mut failed = 0;
            if let (Ok(_), Some(groups)) = (&result, rejoin) {
                for group in groups {
                    if let Err(error) = client.join_group(group).await {
                        debug!(index, %error, "rejoining a group on a replaced client failed");
                        failed += 1;
                    }
                }
            }
            (result, failed)
        };
        ctx.spawn(start.into_actor(self).map(move |(result, failed), act, _| {
            act.in_flight -= 1;
            for _ in 0..failed {
                act.counters.errors.record(ErrorKind::RejoinGroupFailed);
            }
            // A replacement that did not connect rejoins when a restart connects it.
            if rejoining && result.is_err() {
                if let Some(slot) = act.slots.get_mut(index as usize) {
                    slot.rejoin = true;
                }
            }
            act.on_started(index, begun, result);
        }));
    }

    fn on_started(
        &mut self,
        index: u64,
        begun: Instant,
        result: Result<crate::client::ConnectionInfo, ClientError>,
    ) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        let first = !slot.first_start_done;
        slot.first_start_done = true;
        match &result {
            Ok(_) => {
                slot.failures_in_a_row = 0;
                if let Ok(mut h) = self.counters.connect.lock() {
                    record_duration(&mut h, begun.elapsed());
                }
                self.first_start_ok += u64::from(first);
            }
            // No stop event will come from an actor that is gone: nothing can restart it.
            Err(ClientError::ActorGone) => self.counters.set_phase(index, ClientPhase::Abandoned),
            // The client's `stopped` event drives the restart.
            Err(error) => debug!(index, %error, "start failed"),
        }
        if first {
            let done = self.counters.first_starts_done.fetch_add(1, Relaxed) + 1;
            if done >= self.options.clients && self.ramp_finished.is_none() {
                self.ramp_finished = Some(Instant::now());
                let status = self.ramp_status();
                info!(
                    connected = status.first_starts_ok,
                    elapsed = ?status.elapsed,
                    "ramp-up finished"
                );
                for waiter in self.ramp_waiters.drain(..) {
                    let _ = waiter.send(status);
                }
            }
        }
    }

    fn on_client_stopped(&mut self, index: u64, reason: StopReason, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.restart_scheduled {
            return;
        }
        let decision = decide(
            &reason,
            slot.failures_in_a_row,
            &self.options.restart,
            self.stopping,
            rand::random::<f64>(),
        );
        match decision {
            Decision::Leave => {}
            Decision::Restart(delay) => {
                slot.failures_in_a_row += 1;
                slot.restart_scheduled = true;
                debug!(index, ?reason, ?delay, "restarting client");
                ctx.run_later(delay, move |act, ctx| {
                    if !act.stopping {
                        act.start_client(index, true, ctx);
                    }
                });
            }
            Decision::Abandon(why) => {
                // Counted, and part of the next failure summary.
                debug!(index, ?reason, ?why, "client abandoned");
                self.counters.set_phase(index, ClientPhase::Abandoned);
            }
        }
    }

    fn select(&self, selection: &Selection) -> Vec<(u64, Client)> {
        self.select_members(selection)
            .into_iter()
            .map(|member| (member.index(), member.client()))
            .collect()
    }

    fn select_members(&self, selection: &Selection) -> Vec<FleetClient> {
        let pick = |i: u64| self.slots.get(i as usize).map(|s| s.member.clone());
        match selection {
            Selection::All => (0..self.slots.len() as u64).filter_map(pick).collect(),
            Selection::Range(range) => range.clone().filter_map(pick).collect(),
            Selection::Indices(indices) => indices.iter().copied().filter_map(pick).collect(),
            Selection::Share(share) => (0..self.slots.len() as u64)
                .filter(|_| rand::random::<f64>() < *share)
                .filter_map(pick)
                .collect(),
            Selection::Connected => (0..self.slots.len() as u64)
                .filter(|i| self.counters.phase(*i) == ClientPhase::Connected)
                .filter_map(pick)
                .collect(),
        }
    }
}

impl Actor for FleetActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(mut rx) = self.stops.take() {
            let stops = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
            ctx.add_stream(stops.map(|(index, reason)| ClientStopped { index, reason }));
        }
        ctx.run_interval(FAILURE_SUMMARY_EVERY, |act, _| act.summarize_failures());
        ctx.run_interval(LIVENESS_CHECK_EVERY, |act, ctx| {
            act.replace_dead_clients(ctx)
        });
        if self.options.clients == 0 {
            self.ramp_started = Some(Instant::now());
            self.ramp_finished = self.ramp_started;
            return;
        }
        self.ramp = Some(ctx.run_interval(RAMP_TICK, |act, ctx| act.ramp_tick(ctx)));
        self.ramp_tick(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.summarize_failures();
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

/// A client stopped (from the observer, through the manager's stream).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ClientStopped {
    /// The client's index.
    pub index: u64,
    /// Why it stopped.
    pub reason: StopReason,
}

impl StreamHandler<ClientStopped> for FleetActor {
    fn handle(&mut self, msg: ClientStopped, ctx: &mut Context<Self>) {
        self.on_client_stopped(msg.index, msg.reason, ctx);
    }

    // The sender lives in the observer, which lives as long as the clients do.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Ask for the handles of some clients.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<(u64, Client)>")]
pub struct GetClients(pub Selection);

impl Handler<GetClients> for FleetActor {
    type Result = MessageResult<GetClients>;

    fn handle(&mut self, msg: GetClients, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.select(&msg.0))
    }
}

/// Ask for the [`FleetClient`] handles of some clients: they outlive a replaced actor and
/// record the groups joined through them.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<FleetClient>")]
pub struct GetFleetClients(pub Selection);

impl Handler<GetFleetClients> for FleetActor {
    type Result = MessageResult<GetFleetClients>;

    fn handle(&mut self, msg: GetFleetClients, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.select_members(&msg.0))
    }
}

/// Ask how the ramp-up goes; with `wait`, answer once every first start has finished.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<RampStatus, ()>")]
pub struct GetRamp {
    /// Wait for the end of the ramp-up.
    pub wait: bool,
}

impl Handler<GetRamp> for FleetActor {
    type Result = ResponseFuture<Result<RampStatus, ()>>;

    fn handle(&mut self, msg: GetRamp, _: &mut Context<Self>) -> Self::Result {
        let status = self.ramp_status();
        if !msg.wait || status.done {
            return Box::pin(async move { Ok(status) });
        }
        let (tx, rx) = oneshot::channel();
        self.ramp_waiters.push(tx);
        Box::pin(async move { rx.await.map_err(|_| ()) })
    }
}

/// What `stop()` achieved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopReport {
    /// Clients that confirmed their stop.
    pub stopped: u64,
    /// Clients that had not confirmed when the stop timeout expired (their arbiters were
    /// stopped anyway).
    pub timed_out: u64,
    /// How long stopping took.
    pub elapsed: Duration,
}

/// Stop every client, then the arbiters and the manager.
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "StopReport")]
pub struct StopFleet;

impl Handler<StopFleet> for FleetActor {
    type Result = ResponseActFuture<Self, StopReport>;

    fn handle(&mut self, _: StopFleet, ctx: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        self.stop_ramp(ctx);
        let clients: Vec<Client> = self.slots.iter().map(|s| s.member.client()).collect();
        let total = clients.len() as u64;
        let timeout = self.options.stop_timeout;
        let concurrency = self.options.connect_concurrency.max(64) * 4;
        let begun = Instant::now();
        let done = Arc::new(AtomicU64::new(0));
        let counted = done.clone();
        let stop_all = async move {
            let stops = futures::stream::iter(clients)
                .map(|client| async move { client.stop().await.is_ok() })
                .buffer_unordered(concurrency)
                .for_each(|ok| {
                    counted.fetch_add(u64::from(ok), Relaxed);
                    async {}
                });
            let _ = tokio::time::timeout(timeout, stops).await;
        };
        Box::pin(stop_all.into_actor(self).map(move |(), _act, ctx| {
            let stopped = done.load(Relaxed);
            ctx.stop();
            StopReport {
                stopped,
                timed_out: total - stopped.min(total),
                elapsed: begun.elapsed(),
            }
        }))
    }
}
