//! A deterministic simulator: many [`ClientSession`]s against a hub built on the pure
//! [`Outbox`] (replay buffer, socket slot, recovery admission) and [`AckMemory`] of
//! `hub/outbox.rs`, through a simulated network, in virtual time.
//!
//! One seed decides everything: the users' operations (join, leave, send with and without
//! ack, events, caller ack ids, retries, stop, start), the network (delays, abrupt drops,
//! closes 1000/1008/1011, blackholes), the hub's faults (lost acks, retriable failures,
//! refused recoveries, restarts) and every jitter. The invariants are checked after every
//! step; a failure names the seed and the command that replays it.
//!
//! `SIM_SEEDS=200 SIM_STEPS=2000000 cargo test --lib simulator -- --nocapture` runs longer;
//! `SIM_SEED=n` replays one seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet};
use std::time::{Duration, Instant};

use crate::hub::outbox::{
    AckMemory, Detached, Outbox, RecoveryRefusal, RecoveryRequest, ReplayLimits, SocketEnd,
    Stamped, admit_recovery,
};
use crate::protocol::{AckError, AckErrorName, AckId, Inbound, Outbound, Payload, Secret};
use crate::session::client::Regressions;
use crate::session::{
    Action, ClientSession, Incoming, OpError, OpId, OpenKind, RecoveryPolicy, RetryPolicy,
    SessionConfig, SessionEvent, SessionState, SocketId,
};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const GROUPS: [&str; 4] = ["g0", "g1", "g2", "g3"];
const REPLAY_MESSAGES: usize = 1000;
const REPLAY_BYTES: usize = 16 * 1024 * 1024;
const REPLAY_LIMITS: ReplayLimits = ReplayLimits {
    messages: REPLAY_MESSAGES,
    bytes: REPLAY_BYTES,
};
const MAX_PENDING: usize = 64;
/// How long the hub keeps a detached reliable session.
const HUB_RECOVERY_WINDOW: Duration = Duration::from_secs(30);

/// Bugs fixed in the first wave, brought back for [`tests::the_simulator_finds_each_reintroduced_bug`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bugs {
    /// Client: submitted during an unconfirmed recovery, never sent.
    pub(crate) no_send_on_confirm: bool,
    /// Client: a recovered socket is confirmed the moment it opens.
    pub(crate) confirm_on_open: bool,
    /// Hub: an ack id is remembered after its request ran instead of claimed before.
    pub(crate) remember_after_run: bool,
}

/// Deterministic xorshift64*.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(1000) < percent * 10
    }
    fn millis(&mut self, max: u64) -> Duration {
        MS * self.below(max + 1) as u32
    }
}

type LinkId = usize;
type ConnId = u64;

struct Link {
    client: usize,
    socket: SocketId,
    conn: Option<ConnId>,
    /// Closed from either side: nothing more is delivered.
    closed: bool,
    /// Half-open: frames vanish both ways, nobody is told.
    blackholed: bool,
    /// Per direction, the last delivery time, so frames stay in order (TCP).
    to_client_at: Duration,
    to_hub_at: Duration,
}

#[derive(Debug)]
enum Ev {
    UserStep,
    Fault,
    ClientTick(usize),
    OpenResult(usize, SocketId, OpenKind),
    ToClient(LinkId, Inbound),
    ClientLost(LinkId, Option<u16>),
    ToHub(LinkId, Outbound),
    HubLost(LinkId, bool),
    /// An event request's upstream call finished: (link, connection, ack id, sender's uid).
    UpstreamDone(LinkId, ConnId, Option<AckId>),
    HubSweep,
}

struct HubConn {
    client: usize,
    token: String,
    groups: BTreeSet<&'static str>,
    acks: AckMemory,
    /// Publication ids, and the link attached now (its id is its generation).
    outbox: Outbox<String, LinkId>,
    /// What ran, per ack id: a second run of one id is a deduplication failure.
    ran: HashSet<AckId>,
}

struct SimClient {
    session: ClientSession<&'static str>,
    link: Option<LinkId>,
    tick_at: Option<Duration>,
    running: bool,
    stopped_reported: bool,
    /// Operations submitted and not yet resolved.
    outstanding: BTreeMap<OpId, Outbound>,
    /// Failed operations with an ack id, to retry with the same id.
    retryable: Vec<Outbound>,
    /// Groups the user's acknowledged joins and leaves leave it in.
    joined: BTreeSet<String>,
    /// Connection id and last sequence id delivered on it.
    delivered: (String, u64),
    /// Publications seen on the current connection.
    seen: HashSet<String>,
    next_caller_ack: AckId,
}

/// One simulation run.
pub(crate) struct Sim {
    seed: u64,
    rng: Rng,
    base: Instant,
    now: Duration,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    events: Vec<Option<Ev>>,
    free: Vec<usize>,
    seq: u64,
    clients: Vec<SimClient>,
    links: Vec<Link>,
    conns: BTreeMap<ConnId, HubConn>,
    next_conn: ConnId,
    bugs: Bugs,
    /// Faults armed at the hub.
    drop_acks: u32,
    refuse_recoveries: u32,
    /// Events processed.
    pub(crate) steps: u64,
    /// `SIM_TRACE=n` prints client n's actions.
    trace: Option<usize>,
}

/// Why a run failed.
#[derive(Debug)]
pub(crate) struct Violation {
    pub(crate) seed: u64,
    pub(crate) step: u64,
    pub(crate) what: String,
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

impl Sim {
    pub(crate) fn new(seed: u64, clients: usize, bugs: Bugs) -> Sim {
        let base = Instant::now();
        let mut rng = Rng::new(seed);
        let clients = (0..clients)
            .map(|i| {
                let config = SessionConfig {
                    reliable: true,
                    auto_reconnect: true,
                    auto_rejoin_groups: true,
                    message_retry: RetryPolicy::MESSAGE_DEFAULT,
                    reconnect_retry: RetryPolicy::RECONNECT_DEFAULT,
                    start_timeout: 5 * SEC,
                    // Half wait for their ack forever, as JS and .NET do.
                    ack_timeout: (i % 2 == 0).then_some(10 * SEC),
                    keepalive_interval: 3 * SEC,
                    keepalive_timeout: 10 * SEC,
                    max_pending: MAX_PENDING,
                    recovery: RecoveryPolicy::default(),
                    seed: rng.next(),
                };
                let mut session = ClientSession::new(config, base);
                session.regressions = Regressions {
                    no_send_on_confirm: bugs.no_send_on_confirm,
                    confirm_on_open: bugs.confirm_on_open,
                };
                SimClient {
                    session,
                    link: None,
                    tick_at: None,
                    running: false,
                    stopped_reported: false,
                    outstanding: BTreeMap::new(),
                    retryable: Vec::new(),
                    joined: BTreeSet::new(),
                    delivered: (String::new(), 0),
                    seen: HashSet::new(),
                    next_caller_ack: 1_000_000,
                }
            })
            .collect();
        let mut sim = Sim {
            seed,
            rng,
            base,
            now: Duration::ZERO,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            free: Vec::new(),
            seq: 0,
            clients,
            links: Vec::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            bugs,
            drop_acks: 0,
            refuse_recoveries: 0,
            steps: 0,
            trace: std::env::var("SIM_TRACE").ok().and_then(|v| v.parse().ok()),
        };
        sim.schedule(Duration::ZERO, Ev::UserStep);
        sim.schedule(SEC, Ev::Fault);
        sim.schedule(SEC, Ev::HubSweep);
        sim
    }

    fn at(&self) -> Instant {
        self.base + self.now
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.schedule_at(self.now + after, ev);
    }

    fn schedule_at(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.events[slot] = Some(ev);
                slot
            }
            None => {
                self.events.push(Some(ev));
                self.events.len() - 1
            }
        };
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    /// Runs `steps` events (or until the queue is empty), checking after each.
    pub(crate) fn run(&mut self, steps: u64) -> Result<(), Violation> {
        let until = self.steps + steps;
        while self.steps < until {
            let Some(Reverse((at, _, slot))) = self.queue.pop() else {
                break;
            };
            let ev = self.events[slot].take().expect("scheduled once");
            self.free.push(slot);
            self.now = at;
            self.steps += 1;
            self.step(ev).map_err(|what| Violation {
                seed: self.seed,
                step: self.steps,
                what,
            })?;
        }
        Ok(())
    }

    /// What the clients went through, summed: proof the faults bit.
    pub(crate) fn totals(&self) -> crate::session::ClientCounters {
        let mut t = crate::session::ClientCounters::default();
        for c in &self.clients {
            let n = c.session.counters();
            t.delivered += n.delivered;
            t.duplicates_dropped += n.duplicates_dropped;
            t.recoveries += n.recoveries;
            t.reconnects += n.reconnects;
            t.resends += n.resends;
            t.frames_sent += n.frames_sent;
        }
        t
    }

    /// Stops every client, lets the network drain, and checks that every operation resolved.
    pub(crate) fn finish(&mut self) -> Result<(), Violation> {
        let fail = |sim: &Sim, what: String| Violation {
            seed: sim.seed,
            step: sim.steps,
            what,
        };
        for c in 0..self.clients.len() {
            let now = self.at();
            self.clients[c].session.stop(now);
            self.clients[c].running = false;
            self.perform(c).map_err(|w| fail(self, w))?;
        }
        // Nothing a user does from here: drain what is in flight.
        while let Some(Reverse((at, _, slot))) = self.queue.pop() {
            let ev = self.events[slot].take().expect("scheduled once");
            self.free.push(slot);
            if matches!(ev, Ev::UserStep | Ev::Fault | Ev::HubSweep) {
                continue;
            }
            self.now = at;
            self.steps += 1;
            self.step(ev).map_err(|w| fail(self, w))?;
        }
        for (i, client) in self.clients.iter().enumerate() {
            if let Some((id, frame)) = client.outstanding.iter().next() {
                let what = format!("client {i}: operation {id:?} ({frame:?}) never resolved");
                return Err(fail(self, what));
            }
        }
        Ok(())
    }

    fn step(&mut self, ev: Ev) -> Check {
        match ev {
            Ev::UserStep => {
                self.user_step()?;
                let pause = self.rng.millis(20);
                self.schedule(pause, Ev::UserStep);
            }
            Ev::Fault => {
                self.fault()?;
                let pause = SEC / 4 + self.rng.millis(1000);
                self.schedule(pause, Ev::Fault);
            }
            Ev::HubSweep => {
                let now = self.at();
                let expired: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.outbox.expired(now, HUB_RECOVERY_WINDOW))
                    .map(|(id, _)| *id)
                    .collect();
                for id in expired {
                    self.remove_conn(id, None);
                }
                self.schedule(SEC, Ev::HubSweep);
            }
            Ev::ClientTick(c) => {
                let client = &mut self.clients[c];
                if client.tick_at.is_some_and(|t| t <= self.now) {
                    client.tick_at = None;
                }
                client.session.on_tick(self.base + self.now);
                self.perform(c)?;
            }
            Ev::OpenResult(c, socket, kind) => self.hub_open(c, socket, kind)?,
            Ev::ToClient(link, frame) => {
                let l = &self.links[link];
                if l.closed || l.blackholed || self.clients[l.client].link != Some(link) {
                    return Ok(());
                }
                let (c, socket) = (l.client, l.socket);
                let now = self.at();
                self.clients[c]
                    .session
                    .on_frame(socket, Incoming::Frame(frame), now);
                self.perform(c)?;
            }
            Ev::ClientLost(link, code) => {
                let l = &self.links[link];
                let (c, socket) = (l.client, l.socket);
                if self.clients[c].link != Some(link) {
                    return Ok(());
                }
                self.clients[c].link = None;
                let now = self.at();
                self.clients[c].session.on_socket_lost(socket, code, now);
                self.perform(c)?;
            }
            Ev::ToHub(link, frame) => {
                let l = &self.links[link];
                if !l.blackholed {
                    if let Some(conn) = l.conn.filter(|_| !l.closed) {
                        self.hub_request(link, conn, frame)?;
                    }
                }
            }
            Ev::HubLost(link, client_closed) => {
                let Some(conn) = self.links[link].conn.take() else {
                    return Ok(());
                };
                self.links[link].closed = true;
                let end = if client_closed {
                    SocketEnd::ClientClosed(1000)
                } else {
                    SocketEnd::Lost
                };
                self.detach(conn, link, end);
            }
            Ev::UpstreamDone(link, conn, ack_id) => {
                let Some(hc) = self.conns.get_mut(&conn) else {
                    return Ok(());
                };
                if let Some(id) = ack_id {
                    if self.bugs.remember_after_run {
                        hc.acks.insert(id, usize::MAX);
                    }
                    ensure!(
                        hc.ran.insert(id),
                        "hub: event with ack id {id} ran twice on connection {conn}"
                    );
                    self.hub_ack(link, id, None)?;
                }
            }
        }
        self.check_bounds()
    }

    // ---- the users ----------------------------------------------------------------------

    fn user_step(&mut self) -> Check {
        let c = self.rng.below(self.clients.len() as u64) as usize;
        let now = self.at();
        let roll = self.rng.below(100);
        if !self.clients[c].running {
            if roll < 30 {
                let client = &mut self.clients[c];
                client.running = true;
                client.stopped_reported = false;
                client.session.start(now);
            }
            return self.perform(c);
        }
        let group = GROUPS[self.rng.below(GROUPS.len() as u64) as usize].to_owned();
        let caller_ack = self.rng.chance(20).then(|| {
            let client = &mut self.clients[c];
            client.next_caller_ack += 1;
            client.next_caller_ack
        });
        let frame = match roll {
            0..=1 => {
                self.clients[c].running = false;
                self.clients[c].session.stop(now);
                return self.perform(c);
            }
            2..=19 => Outbound::JoinGroup {
                group,
                ack_id: caller_ack,
            },
            20..=29 => Outbound::LeaveGroup {
                group,
                ack_id: caller_ack,
            },
            30..=79 => Outbound::SendToGroup {
                group,
                ack_id: caller_ack,
                no_echo: self.rng.chance(20),
                data: Payload::Text(String::new()),
            },
            80..=89 => Outbound::Event {
                event: "e".into(),
                ack_id: caller_ack,
                data: Payload::Text(String::new()),
            },
            _ => match self.clients[c].retryable.pop() {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        if self.rng.chance(10) && frame.ack_id().is_none() {
            let client = &mut self.clients[c];
            let result = client.session.send_without_ack(frame.clone());
            if let (Ok(_), Outbound::JoinGroup { group, .. }) = (&result, &frame) {
                client.joined.insert(group.clone());
            }
            if let (Ok(_), Outbound::LeaveGroup { group, .. }) = (&result, &frame) {
                client.joined.remove(group);
            }
        } else {
            let id = self.clients[c].session.submit(frame.clone(), now);
            self.clients[c].outstanding.insert(id, frame);
        }
        self.perform(c)
    }

    /// Performs a client's actions as its actor would, checking what it reports.
    fn perform(&mut self, c: usize) -> Check {
        while let Some(action) = self.clients[c].session.poll_action() {
            if self.trace == Some(c) {
                eprintln!("{:?} client {c}: {action:?}", self.now);
            }
            match action {
                Action::Send(frame) => {
                    if let Some(link) = self.clients[c].link {
                        self.client_send(link, frame);
                    }
                }
                Action::Open(socket, kind) => {
                    self.client_drop(c, false);
                    let delay = self.rng.millis(30);
                    self.schedule(delay, Ev::OpenResult(c, socket, kind));
                }
                Action::Drop => self.client_drop(c, false),
                Action::Close => self.client_drop(c, true),
                Action::Emit(event) => self.on_event(c, event)?,
                Action::Resolve(id, result) => {
                    let client = &mut self.clients[c];
                    let Some(frame) = client.outstanding.remove(&id) else {
                        return Err(format!("client {c}: operation {id:?} resolved twice"));
                    };
                    match (&frame, &result) {
                        (Outbound::JoinGroup { group, .. }, Ok(_)) => {
                            client.joined.insert(group.clone());
                        }
                        (Outbound::LeaveGroup { group, .. }, Ok(_)) => {
                            client.joined.remove(group);
                        }
                        (
                            _,
                            Err(
                                OpError::ConnectionLost { ack_id }
                                | OpError::AckTimeout { ack_id, .. },
                            ),
                        ) if client.retryable.len() < 8 => {
                            let mut frame = frame.clone();
                            set_ack(&mut frame, *ack_id);
                            client.retryable.push(frame);
                        }
                        _ => {}
                    }
                }
                // The simulated clients do not invoke.
                Action::StartDone(_) | Action::Invoked(..) => {}
            }
        }
        let client = &mut self.clients[c];
        if let Some(wake) = client.session.next_wake() {
            let at = wake.saturating_duration_since(self.base).max(self.now);
            if client.tick_at.is_none_or(|t| at < t) {
                client.tick_at = Some(at);
                self.schedule_at(at, Ev::ClientTick(c));
            }
        }
        self.check_client(c)
    }

    fn on_event(&mut self, c: usize, event: SessionEvent<&'static str>) -> Check {
        let client = &mut self.clients[c];
        ensure!(
            !client.stopped_reported,
            "client {c}: {event:?} after Stopped"
        );
        match event {
            SessionEvent::Stopped(_) => client.stopped_reported = true,
            SessionEvent::Connected { connection_id, .. } => {
                client.delivered = (connection_id, 0);
                client.seen.clear();
            }
            SessionEvent::Recovered { connection_id, .. } => {
                let link = client.link;
                let id: ConnId = connection_id.parse().map_err(|_| "bad id".to_owned())?;
                let attached = self
                    .conns
                    .get(&id)
                    .is_some_and(|hc| hc.outbox.socket().copied() == link && link.is_some());
                ensure!(
                    attached,
                    "client {c}: reported Recovered for connection {id}, which the hub does not hold on this socket"
                );
            }
            SessionEvent::Rejoined { group } => {
                ensure!(
                    client.joined.contains(&group),
                    "client {c}: rejoined {group}, which it had not joined"
                );
            }
            SessionEvent::GroupMessage {
                sequence_id, data, ..
            } => {
                let seq = sequence_id.ok_or("reliable message without sequence id")?;
                let (conn, last) = &mut client.delivered;
                ensure!(
                    seq == *last + 1,
                    "client {c}: connection {conn} delivered sequence id {seq} after {last}: lost, duplicated or reordered"
                );
                *last = seq;
                let Payload::Text(uid) = data else {
                    return Err("payload".into());
                };
                if !uid.is_empty() {
                    ensure!(
                        client.seen.insert(uid.clone()),
                        "client {c}: publication {uid} delivered twice"
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_client(&self, c: usize) -> Check {
        let client = &self.clients[c];
        let s = &client.session;
        ensure!(
            s.pending_len() <= MAX_PENDING + GROUPS.len(),
            "client {c}: {} operations pending",
            s.pending_len()
        );
        ensure!(
            !s.has_unsent_while_confirmed(),
            "client {c}: an operation waits for a socket while a confirmed one is up"
        );
        if s.state() == SessionState::Stopped {
            ensure!(
                s.pending_len() == 0,
                "client {c}: stopped with operations pending"
            );
        }
        Ok(())
    }

    fn check_bounds(&self) -> Check {
        for (id, hc) in &self.conns {
            ensure!(
                hc.outbox.replay().len() <= REPLAY_MESSAGES
                    && hc.outbox.replay().bytes() <= REPLAY_BYTES,
                "hub: connection {id} buffers {} messages",
                hc.outbox.replay().len()
            );
        }
        Ok(())
    }

    // ---- the network --------------------------------------------------------------------

    fn client_send(&mut self, link: LinkId, frame: Outbound) {
        let delay = self.rng.millis(20);
        let l = &mut self.links[link];
        let at = (self.now + delay).max(l.to_hub_at);
        l.to_hub_at = at;
        self.schedule_at(at, Ev::ToHub(link, frame));
    }

    /// The client lets its socket go; the hub notices a little later.
    fn client_drop(&mut self, c: usize, closed_normally: bool) {
        let Some(link) = self.clients[c].link.take() else {
            return;
        };
        // A blackholed link is noticed by the hub's own keepalive, later.
        let delay = if self.links[link].blackholed {
            5 * SEC
        } else {
            self.rng
                .millis(20)
                .max(self.links[link].to_hub_at.saturating_sub(self.now))
        };
        self.schedule(delay, Ev::HubLost(link, closed_normally));
    }

    /// The hub ends a socket: with a close code after `disconnected`, or abruptly.
    fn hub_drop(&mut self, link: LinkId, code: Option<u16>) {
        if self.links[link].closed {
            return;
        }
        if let Some(code) = code {
            let _ = self.hub_send(link, Inbound::Disconnected { message: None });
            self.links[link].conn = None;
            let at = self.links[link].to_client_at.max(self.now) + MS;
            self.links[link].closed = true;
            self.schedule_at(at, Ev::ClientLost(link, Some(code)));
        } else {
            self.links[link].conn = None;
            self.links[link].closed = true;
            let delay = self.rng.millis(20);
            self.schedule(delay, Ev::ClientLost(link, None));
        }
    }

    fn hub_send(&mut self, link: LinkId, frame: Inbound) -> Check {
        let delay = self.rng.millis(20);
        let l = &mut self.links[link];
        if l.closed {
            return Ok(());
        }
        let at = (self.now + delay).max(l.to_client_at);
        l.to_client_at = at;
        self.schedule_at(at, Ev::ToClient(link, frame));
        Ok(())
    }

    fn fault(&mut self) -> Check {
        let live: Vec<LinkId> = self
            .clients
            .iter()
            .filter_map(|c| c.link)
            .filter(|&l| !self.links[l].closed)
            .collect();
        let pick = |rng: &mut Rng| live.get(rng.below(live.len() as u64) as usize).copied();
        match self.rng.below(100) {
            0..=29 => {
                if let Some(link) = pick(&mut self.rng) {
                    // Abrupt: both ends see a loss.
                    let conn = self.links[link].conn;
                    self.hub_drop(link, None);
                    if let Some(conn) = conn {
                        self.detach(conn, link, SocketEnd::Lost);
                    }
                }
            }
            30..=44 => {
                if let Some(link) = pick(&mut self.rng) {
                    let code = [1000, 1008, 1011][self.rng.below(3) as usize];
                    let conn = self.links[link].conn;
                    self.hub_drop(link, Some(code));
                    if let Some(conn) = conn {
                        // As the hub's socket actor reports a close it sent.
                        let end = if code == 1008 {
                            SocketEnd::Ended
                        } else {
                            SocketEnd::ClosedRecoverable
                        };
                        self.detach(conn, link, end);
                    }
                }
            }
            45..=54 => {
                if let Some(link) = pick(&mut self.rng) {
                    self.links[link].blackholed = true;
                }
            }
            55..=69 => self.drop_acks += 1 + self.rng.below(3) as u32,
            70..=84 => self.refuse_recoveries += 1,
            85..=87 => {
                // A hub restart: every session gone, every socket dropped.
                let ids: Vec<ConnId> = self.conns.keys().copied().collect();
                for id in ids {
                    self.remove_conn(id, None);
                }
                self.drop_acks = 0;
                self.refuse_recoveries = 0;
            }
            _ => {}
        }
        Ok(())
    }

    // ---- the hub ------------------------------------------------------------------------

    fn hub_open(&mut self, c: usize, socket: SocketId, kind: OpenKind) -> Check {
        let now = self.at();
        // One in twenty dials fails before the upgrade.
        if self.rng.chance(5) {
            self.clients[c]
                .session
                .on_open_failed(socket, "refused", false, now);
            return self.perform(c);
        }
        let link = self.links.len();
        self.links.push(Link {
            client: c,
            socket,
            conn: None,
            closed: false,
            blackholed: false,
            to_client_at: self.now,
            to_hub_at: self.now,
        });
        if !self.clients[c].session.on_socket_opened(socket, now) {
            // Stale: the client drops it at once.
            self.links[link].closed = true;
            return Ok(());
        }
        self.clients[c].link = Some(link);
        let generation = link as u64;
        match kind {
            OpenKind::Connect => {
                self.next_conn += 1;
                let id = self.next_conn;
                let token = format!("token-{id}");
                self.conns.insert(
                    id,
                    HubConn {
                        client: c,
                        token: token.clone(),
                        groups: BTreeSet::new(),
                        acks: AckMemory::default(),
                        outbox: Outbox::default(),
                        ran: HashSet::new(),
                    },
                );
                if let Some(hc) = self.conns.get_mut(&id) {
                    hc.outbox.attach(generation, link);
                }
                self.links[link].conn = Some(id);
                self.hub_send(link, connected(id, &token))?;
            }
            OpenKind::Recover {
                connection_id,
                reconnection_token,
            } => {
                let id: ConnId = connection_id.parse().unwrap_or(0);
                let session = self.conns.get(&id);
                let request = RecoveryRequest {
                    found: session.is_some(),
                    reliable: true,
                    token_matches: session.is_some_and(|hc| {
                        hc.token == reconnection_token.expose() && hc.client == c
                    }),
                    offers_reliable: true,
                };
                let refuse_recoveries = &mut self.refuse_recoveries;
                let admitted = admit_recovery(request, || {
                    let armed = *refuse_recoveries > 0;
                    *refuse_recoveries = refuse_recoveries.saturating_sub(1);
                    armed
                });
                let attached = admitted.and_then(|()| {
                    let hc = self.conns.get_mut(&id).expect("admitted, so known");
                    hc.outbox.attach_recovered(generation, link, false)
                });
                match attached {
                    Err(refusal) => {
                        // A refusal fault ends the session, as if it had expired; the other
                        // refusals name no session of this client.
                        if refusal == RecoveryRefusal::Refused {
                            self.remove_conn(id, None);
                        }
                        self.hub_drop(link, Some(1008));
                    }
                    Ok(re) => {
                        let hc = &self.conns[&id];
                        let token = hc.token.clone();
                        let replay: Vec<(u64, String)> = hc
                            .outbox
                            .unacked()
                            .map(|(s, m, _)| (s, m.clone()))
                            .collect();
                        let group = hc.groups.iter().next().copied().unwrap_or("g0");
                        if let Some(stale) = re.stale {
                            self.hub_drop(stale, None);
                        }
                        self.links[link].conn = Some(id);
                        self.hub_send(link, connected(id, &token))?;
                        for (seq, uid) in replay {
                            self.hub_send(link, message(seq, group, uid))?;
                        }
                    }
                }
            }
        }
        self.perform(c)
    }

    /// The hub learns that `link` of `conn` ended as `end`: keep the session or remove it.
    fn detach(&mut self, conn: ConnId, link: LinkId, end: SocketEnd) {
        let now = self.at();
        let Some(hc) = self.conns.get_mut(&conn) else {
            return;
        };
        if hc.outbox.socket_ended(link as u64, end, true, false, now) == Detached::Ended {
            self.remove_conn(conn, None);
        }
    }

    fn remove_conn(&mut self, id: ConnId, code: Option<u16>) {
        if let Some(mut hc) = self.conns.remove(&id) {
            if let Some(link) = hc.outbox.close().socket {
                self.hub_drop(link, code);
            }
        }
    }

    fn hub_request(&mut self, link: LinkId, conn: ConnId, frame: Outbound) -> Check {
        let Some(hc) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        match frame {
            Outbound::Ping => return self.hub_send(link, Inbound::Pong),
            Outbound::SequenceAck { sequence_id } => {
                hc.outbox.sequence_ack(sequence_id);
                return Ok(());
            }
            _ => {}
        }
        let ack_id = frame.ack_id();
        if let Some(id) = ack_id {
            let claimed = if self.bugs.remember_after_run && matches!(frame, Outbound::Event { .. })
            {
                // The bug: only look now, remember once the request ran.
                !hc.acks_contains(id)
            } else {
                hc.acks.insert(id, usize::MAX)
            };
            if !claimed {
                return self.hub_ack(link, id, Some(duplicate()));
            }
            // One in fifteen requests fails retriably and gives its id back.
            if self.rng.chance(7) {
                hc.acks.remove(id);
                let error = AckError {
                    name: AckErrorName::InternalServerError,
                    message: String::new(),
                };
                return self.hub_ack(link, id, Some(error));
            }
        }
        match frame {
            Outbound::JoinGroup { group, .. } => {
                let group = static_group(&group);
                hc.groups.insert(group);
            }
            Outbound::LeaveGroup { group, .. } => {
                hc.groups.remove(static_group(&group));
            }
            Outbound::SendToGroup { group, no_echo, .. } => {
                if let Some(id) = ack_id {
                    ensure!(
                        hc.ran.insert(id),
                        "hub: ack id {id} ran twice on connection {conn}"
                    );
                }
                let uid = ack_id.map(|id| format!("{conn}:{id}")).unwrap_or_default();
                let group = static_group(&group);
                let members: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(id, m)| m.groups.contains(group) && !(no_echo && **id == conn))
                    .map(|(id, _)| *id)
                    .collect();
                for member in members {
                    self.hub_deliver(member, group, uid.clone())?;
                }
            }
            Outbound::Event { .. } => {
                // The event handler answers later; the ack waits for it.
                let delay = self.rng.millis(1500);
                self.schedule(delay, Ev::UpstreamDone(link, conn, ack_id));
                return Ok(());
            }
            // No simulated client sends these.
            Outbound::SequenceAck { .. }
            | Outbound::Ping
            | Outbound::Invoke { .. }
            | Outbound::CancelInvocation { .. } => {}
        }
        match ack_id {
            Some(id) => self.hub_ack(link, id, None),
            None => Ok(()),
        }
    }

    fn hub_ack(&mut self, link: LinkId, ack_id: AckId, error: Option<AckError>) -> Check {
        if self.drop_acks > 0 {
            self.drop_acks -= 1;
            return Ok(());
        }
        self.hub_send(link, ack(ack_id, error))
    }

    fn hub_deliver(&mut self, member: ConnId, group: &'static str, uid: String) -> Check {
        let Some(hc) = self.conns.get_mut(&member) else {
            return Ok(());
        };
        let size = 64 + uid.len();
        match hc.outbox.stamp(uid.clone(), size, true, REPLAY_LIMITS) {
            Stamped::Send(seq) => match hc.outbox.socket().copied() {
                Some(link) => self.hub_send(link, message(seq.unwrap_or(0), group, uid)),
                None => Ok(()),
            },
            Stamped::Dead => Ok(()),
            Stamped::Overflow => {
                self.remove_conn(member, Some(1008));
                Ok(())
            }
        }
    }
}

impl HubConn {
    fn acks_contains(&mut self, id: AckId) -> bool {
        // `insert` then `remove` is a pure look with the bounded memory's own API.
        let fresh = self.acks.insert(id, usize::MAX);
        if fresh {
            self.acks.remove(id);
        }
        !fresh
    }
}

fn static_group(group: &str) -> &'static str {
    GROUPS
        .iter()
        .find(|g| **g == group)
        .copied()
        .unwrap_or("g0")
}

fn set_ack(frame: &mut Outbound, id: AckId) {
    match frame {
        Outbound::JoinGroup { ack_id, .. }
        | Outbound::LeaveGroup { ack_id, .. }
        | Outbound::SendToGroup { ack_id, .. }
        | Outbound::Event { ack_id, .. } => *ack_id = Some(id),
        Outbound::SequenceAck { .. }
        | Outbound::Ping
        | Outbound::Invoke { .. }
        | Outbound::CancelInvocation { .. } => {}
    }
}

fn connected(id: ConnId, token: &str) -> Inbound {
    Inbound::Connected {
        connection_id: id.to_string(),
        user_id: None,
        reconnection_token: Some(Secret::new(token)),
    }
}

fn message(seq: u64, group: &str, uid: String) -> Inbound {
    Inbound::GroupMessage {
        sequence_id: Some(seq),
        group: group.to_owned(),
        from_user_id: None,
        data: Payload::Text(uid),
    }
}

fn ack(ack_id: AckId, error: Option<AckError>) -> Inbound {
    Inbound::Ack {
        ack_id,
        success: error.is_none(),
        error,
    }
}

fn duplicate() -> AckError {
    AckError {
        name: AckErrorName::Duplicate,
        message: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENTS: usize = 16;
    /// Events per seed; CI runs `DEFAULT_SEEDS` of them (over a million events in all).
    const DEFAULT_STEPS: u64 = 100_000;
    const DEFAULT_SEEDS: u64 = 11;

    fn env(name: &str) -> Option<u64> {
        std::env::var(name).ok()?.parse().ok()
    }

    /// Runs one seed; the violation found, if any.
    fn run_seed(seed: u64, steps: u64, bugs: Bugs) -> Result<Sim, Violation> {
        let mut sim = Sim::new(seed, CLIENTS, bugs);
        sim.run(steps)?;
        sim.finish()?;
        Ok(sim)
    }

    #[test]
    fn simulated_clients_keep_every_invariant() {
        let steps = env("SIM_STEPS").unwrap_or(DEFAULT_STEPS);
        let seeds: Vec<u64> = match env("SIM_SEED") {
            Some(seed) => vec![seed],
            None => (1..=env("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
        };
        let started = std::time::Instant::now();
        let mut events = 0;
        for seed in seeds {
            match run_seed(seed, steps, Bugs::default()) {
                Ok(sim) => {
                    events += sim.steps;
                    let t = sim.totals();
                    // The faults must bite, or the invariants prove nothing.
                    assert!(
                        t.recoveries > 0 && t.reconnects > 0 && t.resends > 0,
                        "seed {seed}: {t:?}"
                    );
                    assert!(
                        t.duplicates_dropped > 0 && t.delivered > 1000,
                        "seed {seed}: {t:?}"
                    );
                    if seed == 1 {
                        println!("simulator: seed 1 totals {t:?}");
                    }
                }
                Err(v) => panic!(
                    "simulator: seed {} failed at event {}: {}\nreplay: SIM_SEED={} SIM_STEPS={steps} cargo test --lib simulator::tests::simulated_clients_keep_every_invariant",
                    v.seed, v.step, v.what, v.seed
                ),
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "simulator: {events} events in {secs:.1} s ({:.0} events/s)",
            events as f64 / secs
        );
    }

    #[test]
    fn the_simulator_finds_each_reintroduced_bug() {
        let bugs = [
            Bugs {
                no_send_on_confirm: true,
                ..Bugs::default()
            },
            Bugs {
                confirm_on_open: true,
                ..Bugs::default()
            },
            Bugs {
                remember_after_run: true,
                ..Bugs::default()
            },
        ];
        for bug in bugs {
            let found =
                (1..=DEFAULT_SEEDS).find_map(|seed| run_seed(seed, DEFAULT_STEPS, bug).err());
            let violation = found.unwrap_or_else(|| panic!("{bug:?} went unnoticed"));
            println!(
                "{bug:?}: seed {} event {}: {}",
                violation.seed, violation.step, violation.what
            );
        }
    }
}
