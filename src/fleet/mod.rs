//! Many clients in one process: a [`Fleet`] handle in front of a [`FleetActor`] that owns
//! them.
//!
//! The manager starts clients at a bounded rate (`connect_rate` per second, at most
//! `connect_concurrency` starts in flight), spreads them round robin over one actix
//! [`Arbiter`] per core, gives each an identity expanded from a template
//! ([`IdentityTemplate`]: user id, roles, groups joined on connect), watches every event
//! through an inline [`Observer`](crate::client::Observer) that only bumps atomics
//! ([`FleetCounters`]), restarts clients that stopped on a failure, sends commands to all
//! or some clients, and stops them all within a bounded time.
//!
//! Before it starts anything it checks `RLIMIT_NOFILE` (from `/proc/self/limits`) and
//! refuses with the number of clients that fit ([`FleetError::TooManyClients`]). When the
//! target is on loopback and the clients outnumber one source address's ephemeral ports
//! (about 28,000), clients beyond the first block bind 127.0.0.2, 127.0.0.3, ...
//! ([`SourcePlan`]).
//!
//! # What the manager does when a client stops
//!
//! A client reports `Event::Stopped { reason }` once, as its last event. The manager decides
//! with [`decide`]:
//!
//! | stop reason | when it happens | manager |
//! |---|---|---|
//! | `Requested` | `stop()` was called: by [`Fleet::stop`], a [`Command::Stop`], or user code | leaves it stopped; never restarts it |
//! | `ConnectionLost` | the connection dropped and the client's `auto_reconnect` is off | restarts it after the backoff |
//! | `StartFailed(e)`, `e` retriable (TCP, TLS, DNS, timeout, HTTP 5xx, 408, 429, ...) | the first connection of a `start()` failed | restarts it after the backoff |
//! | `ReconnectGaveUp(e)`, `e` retriable | the client's reconnect policy ran out | restarts it after the backoff |
//! | `StartFailed(e)` or `ReconnectGaveUp(e)`, `e` not retriable: `Unauthorized`, `NoSubprotocol`, `Credential`, HTTP 4xx other than 408/429 | the hub refuses the client's configuration | abandons it: every restart would fail the same way |
//! | any failure after `max_restarts` restarts in a row without a successful start | the hub keeps refusing | abandons it |
//! | any failure while the fleet is stopping | | abandons it |
//!
//! The restart delay grows as [`RestartPolicy::backoff`] says (exponential, 1 s to 30 s by
//! default, ±20 % jitter so a fleet does not come back in lockstep); a successful start
//! resets the count. A restart calls `start()` on the same client actor, so its
//! subscriptions and joined groups carry over. Abandoned clients stay in the phase
//! [`ClientPhase::Abandoned`] and are counted in [`FleetStats::abandoned`].
//!
//! ```no_run
//! use webpubsub_fleet::credential::ConnectionString;
//! use webpubsub_fleet::fleet::{Fleet, FleetOptions, FleetTarget, IdentityTemplate};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cs = ConnectionString::parse("Endpoint=http://127.0.0.1;Port=8080;AccessKey=k;Version=1.0;")?;
//! let fleet = Fleet::start(
//!     FleetTarget::new(cs, "chat"),
//!     FleetOptions::new(100).with_identity(IdentityTemplate::new().group("room-{g}").group_size(10)),
//! )?;
//! let ramp = fleet.wait_ramped().await?;
//! println!("{} connected at {:.0}/s", ramp.first_starts_ok, ramp.rate_per_s());
//! println!("{:?}", fleet.stats());
//! fleet.stop().await?;
//! # Ok(()) }
//! ```

mod actor;
mod error;
mod identity;
mod latency;
mod limits;
mod member;
mod options;
mod stats;
mod supervise;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use actix::prelude::*;
use futures::StreamExt;

use crate::client::{Client, ClientError, InjectFault, SendOptions, SocketFault};
use crate::protocol::Payload;

pub use actor::{
    ClientStopped, FleetActor, FleetObserver, GetClients, GetFleetClients, GetRamp, RampStatus,
    StopFleet, StopReport,
};
pub use error::FleetError;
pub use identity::{DEFAULT_USER_ID, Identities, Identity, IdentityTemplate};
pub use latency::{
    LatencySummary, MAX_LATENCY_US, SHARDS, ShardedCounter, latency_histogram, record_duration,
};
pub use limits::{
    Capacity, DEFAULT_EPHEMERAL_PORTS, FD_RESERVE, FdLimit, PORT_SHARE, SourcePlan,
    ephemeral_ports, fd_limit, is_loopback_host, open_fds, parse_limits, parse_port_range,
    raise_fd_limit,
};
pub use member::FleetClient;
pub use options::{
    CredentialFn, DEFAULT_CONNECT_CONCURRENCY, DEFAULT_CONNECT_RATE, DEFAULT_STOP_TIMEOUT,
    FleetOptions, FleetTarget,
};
pub use stats::{
    ClientPhase, ERROR_EXAMPLES, ErrorCounts, ErrorExample, ErrorKind, FleetCounters, FleetStats,
    describe_errors,
};
pub use supervise::{
    AbandonReason, DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_BACKOFF, Decision, RestartPolicy, decide,
    is_retriable,
};

/// Which clients a command or a lookup applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every client created so far.
    All,
    /// Clients with an index in the range.
    Range(Range<u64>),
    /// These clients.
    Indices(Vec<u64>),
    /// A random share of the clients, between 0.0 and 1.0.
    Share(f64),
    /// The clients connected right now.
    Connected,
}

/// A command for many clients.
#[derive(Debug, Clone)]
pub enum Command {
    /// Start (a client that is already connected answers at once).
    Start,
    /// Stop (the fleet will not restart it).
    Stop,
    /// Join a group.
    JoinGroup(String),
    /// Leave a group.
    LeaveGroup(String),
    /// Publish to a group.
    SendToGroup {
        /// The group.
        group: String,
        /// The payload.
        data: Payload,
        /// Send options.
        options: SendOptions,
    },
    /// Send an event to the app server.
    SendEvent {
        /// The event name.
        event: String,
        /// The payload.
        data: Payload,
        /// Send options.
        options: SendOptions,
    },
}

/// How a command went over the selected clients.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandReport {
    /// Clients the command succeeded on.
    pub ok: u64,
    /// Clients it failed on.
    pub failed: u64,
    /// Failures by kind.
    pub errors: std::collections::BTreeMap<String, u64>,
}

/// Commands in flight at once per [`Fleet::command`] call.
const COMMAND_CONCURRENCY: usize = 256;

/// A handle to a fleet. Cheap to clone. Every method maps a gone manager to
/// [`FleetError::ManagerGone`]; [`Fleet::stats`] keeps working after the fleet stopped.
#[derive(Clone)]
pub struct Fleet {
    addr: Addr<FleetActor>,
    counters: Arc<FleetCounters>,
    capacity: Option<Capacity>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Checks the limits, starts the manager and its arbiters and begins the ramp-up; returns
    /// at once. Must run inside an actix `System` (for example under `#[actix_rt::main]`).
    pub fn start(target: FleetTarget, options: FleetOptions) -> Result<Fleet, FleetError> {
        options.validate()?;
        if actix::System::try_current().is_none() {
            return Err(FleetError::InvalidOptions(
                "no actix System is running: start the fleet inside actix_rt::System".into(),
            ));
        }
        // A bad hub name or key fails here, once, not at each client.
        target.credential(0, &options.identities.identity(0))?;
        let capacity = match (fd_limit(), open_fds()) {
            (Some(limit), Some(open_now)) => {
                let capacity = Capacity::compute(limit, open_now, options.fds_per_client);
                capacity.check(options.clients)?;
                Some(capacity)
            }
            _ => None,
        };
        let sources = if options.spread_sources && target.is_loopback() {
            let plan = SourcePlan::new(ephemeral_ports());
            plan.check(options.clients)?;
            Some(plan)
        } else {
            None
        };
        let counters = Arc::new(FleetCounters::new(options.clients));
        let actor = FleetActor::new(target, options, counters.clone(), sources);
        Ok(Fleet {
            addr: actor.start(),
            counters,
            capacity,
        })
    }

    /// How many clients fit under the descriptor limit (`None` where `/proc` is missing).
    pub fn capacity(&self) -> Option<Capacity> {
        self.capacity
    }

    /// A snapshot of the counters. Cheap (no message to the manager), works after `stop()`.
    pub fn stats(&self) -> FleetStats {
        self.counters.snapshot()
    }

    /// The live counters, for callers that sample often.
    pub fn counters(&self) -> &Arc<FleetCounters> {
        &self.counters
    }

    /// The manager, for actix applications.
    pub fn addr(&self) -> &Addr<FleetActor> {
        &self.addr
    }

    /// How the ramp-up goes now.
    pub async fn ramp(&self) -> Result<RampStatus, FleetError> {
        self.addr
            .send(GetRamp { wait: false })
            .await?
            .map_err(|()| FleetError::ManagerGone)
    }

    /// Resolves once every client's first start has finished, connected or not.
    pub async fn wait_ramped(&self) -> Result<RampStatus, FleetError> {
        self.addr
            .send(GetRamp { wait: true })
            .await?
            .map_err(|()| FleetError::ManagerGone)
    }

    /// Handles of the selected clients, with their indices.
    pub async fn clients(&self, selection: Selection) -> Result<Vec<(u64, Client)>, FleetError> {
        Ok(self.addr.send(GetClients(selection)).await?)
    }

    /// The handle of one client, if it has been created.
    pub async fn client(&self, index: u64) -> Result<Option<Client>, FleetError> {
        let mut found = self.clients(Selection::Indices(vec![index])).await?;
        Ok(found.pop().map(|(_, c)| c))
    }

    /// The [`FleetClient`] handles of the selected clients: they outlive a replaced actor,
    /// and the groups joined through them come back on the replacement.
    pub async fn fleet_clients(
        &self,
        selection: Selection,
    ) -> Result<Vec<FleetClient>, FleetError> {
        Ok(self.addr.send(GetFleetClients(selection)).await?)
    }

    /// Injects `fault` into the sockets of a random `share` (0.0 to 1.0) of the clients
    /// connected now: `share × connected`, rounded to the nearest client. Chaos from the
    /// client side, so it works against any hub, the service included; the clients recover or
    /// reconnect as their session decides, and the fleet counts it as for any lost
    /// connection. Answers how many sockets were faulted (a client that lost its socket
    /// meanwhile, or whose socket is blackholed already, is skipped), also counted in
    /// [`FleetStats::faults_injected`].
    pub async fn inject_fault(&self, share: f64, fault: SocketFault) -> Result<u64, FleetError> {
        if !(0.0..=1.0).contains(&share) {
            return Err(FleetError::InvalidOptions(format!(
                "the share of clients to fault, {share}, is not between 0 and 1"
            )));
        }
        fault.validate().map_err(FleetError::InvalidOptions)?;
        let connected = self.clients(Selection::Connected).await?;
        let count = ((connected.len() as f64 * share).round() as usize).min(connected.len());
        let mut rng = rand::rng();
        let chosen = rand::seq::index::sample(&mut rng, connected.len(), count);
        let faulted = AtomicU64::new(0);
        futures::stream::iter(chosen.into_iter().map(|i| connected[i].1.clone()))
            .map(|client| async move { client.addr().send(InjectFault(fault)).await })
            .buffer_unordered(COMMAND_CONCURRENCY)
            .for_each(|answer| {
                if answer.unwrap_or(false) {
                    faulted.fetch_add(1, Relaxed);
                }
                async {}
            })
            .await;
        let faulted = faulted.load(Relaxed);
        self.counters.faults_injected.fetch_add(faulted, Relaxed);
        Ok(faulted)
    }

    /// Runs a command on the selected clients, at most 256 at once, and counts the outcomes.
    /// Joins and leaves go through the clients' [`FleetClient`] handles, so the groups joined
    /// come back on a replaced actor.
    pub async fn command(
        &self,
        selection: Selection,
        command: Command,
    ) -> Result<CommandReport, FleetError> {
        let clients = self.fleet_clients(selection).await?;
        let errors = ErrorCounts::default();
        let ok = AtomicU64::new(0);
        futures::stream::iter(clients)
            .map(|member| {
                let command = command.clone();
                async move { run_command(&member, command).await }
            })
            .buffer_unordered(COMMAND_CONCURRENCY)
            .for_each(|result| {
                match result {
                    Ok(()) => {
                        ok.fetch_add(1, Relaxed);
                    }
                    Err(e) => errors.record(ErrorKind::of(&e)),
                }
                async {}
            })
            .await;
        Ok(CommandReport {
            ok: ok.load(Relaxed),
            failed: errors.total(),
            errors: errors.snapshot(),
        })
    }

    /// Stops the ramp-up, every client (waiting at most the stop timeout), the arbiters and
    /// the manager. Clients stopped this way are not restarted.
    pub async fn stop(&self) -> Result<StopReport, FleetError> {
        Ok(self.addr.send(StopFleet).await?)
    }
}

async fn run_command(member: &FleetClient, command: Command) -> Result<(), ClientError> {
    let client = member.client();
    match command {
        Command::Start => client.start().await.map(drop),
        Command::Stop => client.stop().await,
        Command::JoinGroup(group) => member.join_group(group).await.map(drop),
        Command::LeaveGroup(group) => member.leave_group(group).await.map(drop),
        Command::SendToGroup {
            group,
            data,
            options,
        } => client.send_to_group(group, data, options).await.map(drop),
        Command::SendEvent {
            event,
            data,
            options,
        } => client.send_event(event, data, options).await.map(drop),
    }
}
