//! What a fleet counts, lock-free on the hot path: the [`FleetObserver`] runs inline on each
//! client's arbiter thread for every event, so it only touches the client's own state byte,
//! sharded counters and (for rare events) sharded histograms.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::latency::{LatencySummary, ShardedCounter, latency_histogram, record_duration};

use crate::client::{ClientError, Event, StopReason};
use crate::protocol::AckErrorName;

macro_rules! error_kinds {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// Kinds of errors a fleet and a load run count.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorKind { $(#[doc = $doc] $variant,)* }

        impl ErrorKind {
            /// Every kind.
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$variant,)*];
            /// The name used in reports (snake case).
            pub fn name(self) -> &'static str {
                match self { $(ErrorKind::$variant => $name,)* }
            }
        }
    };
}

error_kinds! {
    Unauthorized => "unauthorized", "HTTP 401 before the upgrade.";
    HandshakeStatus => "handshake_status", "Another HTTP status before the upgrade.";
    NoSubprotocol => "no_subprotocol", "The endpoint chose no Web PubSub subprotocol.";
    Dns => "dns", "Name resolution failed.";
    Tcp => "tcp", "The TCP connection failed.";
    Tls => "tls", "The TLS handshake failed.";
    Handshake => "handshake", "The WebSocket handshake failed or closed early.";
    StartTimeout => "start_timeout", "No `system/connected` in time.";
    Credential => "credential", "No client access URL.";
    AckForbidden => "ack_forbidden", "An ack with `Forbidden`.";
    AckDuplicate => "ack_duplicate", "An ack with `Duplicate`.";
    AckOther => "ack_error", "An ack with another error.";
    ConnectionLost => "connection_lost", "The connection ended before an ack.";
    AckTimeout => "ack_timeout", "No ack in time.";
    Stopped => "stopped", "The client stopped during an operation.";
    NotStarted => "not_started", "An operation on a client that was not started.";
    NotConnected => "not_connected", "A fire-and-forget send without a socket.";
    TooManyPending => "too_many_pending", "Too many operations waiting for acks.";
    ActorGone => "actor_gone", "The client's actor is gone.";
    RejoinGroupFailed => "rejoin_group_failed", "A group could not be rejoined after a reconnect.";
    SlowConsumer => "slow_consumer", "A subscriber's queue overflowed.";
    CallbackPanicked => "callback_panicked", "A callback panicked.";
}

impl ErrorKind {
    /// The kind of a client error.
    pub fn of(error: &ClientError) -> ErrorKind {
        match error {
            ClientError::Unauthorized => ErrorKind::Unauthorized,
            ClientError::HandshakeStatus { .. } => ErrorKind::HandshakeStatus,
            ClientError::NoSubprotocol => ErrorKind::NoSubprotocol,
            ClientError::Dns(_) => ErrorKind::Dns,
            ClientError::Tcp(_) => ErrorKind::Tcp,
            ClientError::Tls(_) => ErrorKind::Tls,
            ClientError::Handshake(_) => ErrorKind::Handshake,
            ClientError::StartTimeout(_) => ErrorKind::StartTimeout,
            ClientError::Credential(_) => ErrorKind::Credential,
            ClientError::Ack { error, .. } => match error.name {
                AckErrorName::Forbidden => ErrorKind::AckForbidden,
                AckErrorName::Duplicate => ErrorKind::AckDuplicate,
                _ => ErrorKind::AckOther,
            },
            ClientError::ConnectionLost { .. } => ErrorKind::ConnectionLost,
            ClientError::AckTimeout { .. } => ErrorKind::AckTimeout,
            ClientError::Stopped { .. } => ErrorKind::Stopped,
            ClientError::NotStarted => ErrorKind::NotStarted,
            ClientError::NotConnected => ErrorKind::NotConnected,
            ClientError::TooManyPending { .. } => ErrorKind::TooManyPending,
            ClientError::ActorGone | ClientError::NoActixSystem => ErrorKind::ActorGone,
            // The fleet does not invoke; a caller that does gets the nearest ack kinds.
            ClientError::InvokeFailed { .. } | ClientError::InvokeUnsupported(_) => {
                ErrorKind::AckOther
            }
            ClientError::InvokeTimeout { .. } => ErrorKind::AckTimeout,
            ClientError::InvocationLost { .. } => ErrorKind::ConnectionLost,
        }
    }
}

/// Errors counted by kind, with atomics.
pub struct ErrorCounts {
    counts: Vec<AtomicU64>,
}

impl Default for ErrorCounts {
    fn default() -> Self {
        ErrorCounts {
            counts: ErrorKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl ErrorCounts {
    /// Counts one error.
    pub fn record(&self, kind: ErrorKind) {
        self.add(kind, 1);
    }
    /// Counts `n` errors.
    pub fn add(&self, kind: ErrorKind, n: u64) {
        self.counts[kind as usize].fetch_add(n, Relaxed);
    }
    /// The count of one kind.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.counts[kind as usize].load(Relaxed)
    }
    /// The kinds with a non-zero count, by name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        ErrorKind::ALL
            .iter()
            .map(|k| (k.name().to_owned(), self.get(*k)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
    /// All errors.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// Where one client is, as the fleet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientPhase {
    /// Not created or not started yet.
    Pending = 0,
    /// Opening a connection (first start, restart or reconnect).
    Connecting = 1,
    /// Connected.
    Connected = 2,
    /// Recovering its connection after a drop.
    Recovering = 3,
    /// Lost its connection; waiting to reconnect.
    Disconnected = 4,
    /// Stopped (on request, or on a failure before a restart).
    Stopped = 5,
    /// Stopped for good: the fleet gave up restarting it.
    Abandoned = 6,
}

const PHASE_MASK: u8 = 0x3f;
const EVER_CONNECTED: u8 = 0x80;
/// The client was stopped on request: its next connection is a comeback, not a reconnect.
const STOPPED_ON_REQUEST: u8 = 0x40;

impl ClientPhase {
    fn from_bits(bits: u8) -> ClientPhase {
        match bits & PHASE_MASK {
            1 => ClientPhase::Connecting,
            2 => ClientPhase::Connected,
            3 => ClientPhase::Recovering,
            4 => ClientPhase::Disconnected,
            5 => ClientPhase::Stopped,
            6 => ClientPhase::Abandoned,
            _ => ClientPhase::Pending,
        }
    }
}

/// Error examples a fleet keeps (the latest): enough to say what went wrong without one log
/// line per client.
pub const ERROR_EXAMPLES: usize = 3;

/// The live counters of a fleet, shared by its observer (on every arbiter) and its manager.
pub struct FleetCounters {
    phases: Box<[AtomicU8]>,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// The latest few errors that stopped a client.
    examples: Mutex<std::collections::VecDeque<ErrorExample>>,
    connections: ShardedCounter,
    reconnects: ShardedCounter,
    disconnects: ShardedCounter,
    recovering: ShardedCounter,
    recoveries: ShardedCounter,
    reconnect_attempts: ShardedCounter,
    deliveries: ShardedCounter,
    events_dropped: ShardedCounter,
    stops: [AtomicU64; 4],
    pub(super) starts: AtomicU64,
    pub(super) restarts: AtomicU64,
    pub(super) first_starts_done: AtomicU64,
    pub(super) actor_deaths: AtomicU64,
    pub(super) faults_injected: AtomicU64,
    recovery: [Mutex<Histogram<u64>>; 4],
    pub(super) connect: Mutex<Histogram<u64>>,
}

impl FleetCounters {
    /// Counters for `clients` clients, all pending.
    pub fn new(clients: u64) -> FleetCounters {
        FleetCounters {
            phases: (0..clients).map(|_| AtomicU8::new(0)).collect(),
            errors: ErrorCounts::default(),
            examples: Mutex::default(),
            connections: Default::default(),
            reconnects: Default::default(),
            disconnects: Default::default(),
            recovering: Default::default(),
            recoveries: Default::default(),
            reconnect_attempts: Default::default(),
            deliveries: Default::default(),
            events_dropped: Default::default(),
            stops: Default::default(),
            starts: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            first_starts_done: AtomicU64::new(0),
            actor_deaths: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            recovery: std::array::from_fn(|_| Mutex::new(latency_histogram())),
            connect: Mutex::new(latency_histogram()),
        }
    }

    /// The phase of client `index`.
    pub fn phase(&self, index: u64) -> ClientPhase {
        self.phases
            .get(index as usize)
            .map_or(ClientPhase::Pending, |p| {
                ClientPhase::from_bits(p.load(Relaxed))
            })
    }

    pub(super) fn set_phase(&self, index: u64, phase: ClientPhase) {
        if let Some(slot) = self.phases.get(index as usize) {
            // Only the client's own thread and the manager write a slot, and never at once
            // for the same transition; keep the flag bits.
            let flags = slot.load(Relaxed) & !PHASE_MASK;
            slot.store(flags | phase as u8, Relaxed);
        }
    }

    /// Counts one event of client `index`; called inline by the observer.
    pub fn on_event(&self, index: u64, event: &Event) {
        match event {
            Event::GroupMessage(_) | Event::ServerMessage(_) => self.deliveries.add(index, 1),
            Event::Connected { .. } => {
                self.connections.add(index, 1);
                if let Some(slot) = self.phases.get(index as usize) {
                    let old = slot.swap(EVER_CONNECTED | ClientPhase::Connected as u8, Relaxed);
                    if old & EVER_CONNECTED != 0 && old & STOPPED_ON_REQUEST == 0 {
                        self.reconnects.add(index, 1);
                    }
                }
            }
            Event::Disconnected { .. } => {
                self.disconnects.add(index, 1);
                self.set_phase(index, ClientPhase::Disconnected);
            }
            Event::Recovering { .. } => {
                self.recovering.add(index, 1);
                self.set_phase(index, ClientPhase::Recovering);
            }
            Event::Recovered { after, .. } => {
                self.recoveries.add(index, 1);
                self.set_phase(index, ClientPhase::Connected);
                let shard = &self.recovery[index as usize % self.recovery.len()];
                if let Ok(mut h) = shard.lock() {
                    record_duration(&mut h, *after);
                }
            }
            Event::Reconnecting { .. } => {
                self.reconnect_attempts.add(index, 1);
                self.set_phase(index, ClientPhase::Connecting);
            }
            Event::Stopped { reason } => {
                let (slot, error) = match reason {
                    StopReason::Requested => (0, None),
                    StopReason::ConnectionLost => (1, None),
                    StopReason::ReconnectGaveUp(e) => (2, Some(e)),
                    StopReason::StartFailed(e) => (3, Some(e)),
                };
                self.stops[slot].fetch_add(1, Relaxed);
                if let Some(e) = error {
                    self.errors.record(ErrorKind::of(e));
                    if let Ok(mut examples) = self.examples.lock() {
                        if examples.len() == ERROR_EXAMPLES {
                            examples.pop_front();
                        }
                        examples.push_back(ErrorExample {
                            client: index,
                            error: e.to_string(),
                        });
                    }
                }
                self.set_phase(index, ClientPhase::Stopped);
                if matches!(reason, StopReason::Requested) {
                    if let Some(slot) = self.phases.get(index as usize) {
                        slot.fetch_or(STOPPED_ON_REQUEST, Relaxed);
                    }
                }
            }
            Event::RejoinGroupFailed { .. } => self.errors.record(ErrorKind::RejoinGroupFailed),
            Event::Rejoined { .. } => {}
            Event::SlowConsumer { dropped } => {
                self.errors.record(ErrorKind::SlowConsumer);
                self.events_dropped.add(index, *dropped);
            }
            Event::CallbackPanicked { .. } => self.errors.record(ErrorKind::CallbackPanicked),
        }
    }

    /// Recovery durations so far, µs (sharded runs merge these exactly).
    pub fn recovery_histogram(&self) -> Histogram<u64> {
        let mut recovery = latency_histogram();
        for shard in &self.recovery {
            if let Ok(h) = shard.lock() {
                // Same bounds, so adding cannot fail.
                let _ = recovery.add(&*h);
            }
        }
        recovery
    }

    /// Connect latencies so far, µs (sharded runs merge these exactly).
    pub fn connect_histogram(&self) -> Histogram<u64> {
        self.connect
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| latency_histogram())
    }

    /// A snapshot.
    pub fn snapshot(&self) -> FleetStats {
        let mut by_phase = [0u64; 7];
        let mut ever_connected = 0;
        for slot in self.phases.iter() {
            let bits = slot.load(Relaxed);
            by_phase[ClientPhase::from_bits(bits) as usize] += 1;
            ever_connected += u64::from(bits & EVER_CONNECTED != 0);
        }
        let recovery = self.recovery_histogram();
        let connect = LatencySummary::of(&self.connect_histogram());
        let stops = |i: usize| self.stops[i].load(Relaxed);
        FleetStats {
            requested: self.phases.len() as u64,
            pending: by_phase[0],
            connecting: by_phase[1],
            connected: by_phase[2],
            recovering: by_phase[3],
            disconnected: by_phase[4],
            stopped: by_phase[5],
            abandoned: by_phase[6],
            ever_connected,
            starts: self.starts.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
            first_starts_done: self.first_starts_done.load(Relaxed),
            actor_deaths: self.actor_deaths.load(Relaxed),
            faults_injected: self.faults_injected.load(Relaxed),
            connections: self.connections.get(),
            reconnects: self.reconnects.get(),
            reconnect_attempts: self.reconnect_attempts.get(),
            disconnects: self.disconnects.get(),
            recovering_episodes: self.recovering.get(),
            recoveries: self.recoveries.get(),
            deliveries: self.deliveries.get(),
            events_dropped: self.events_dropped.get(),
            stops_requested: stops(0),
            stops_connection_lost: stops(1),
            stops_reconnect_gave_up: stops(2),
            stops_start_failed: stops(3),
            errors: self.errors.snapshot(),
            error_examples: self
                .examples
                .lock()
                .map(|e| e.iter().cloned().collect())
                .unwrap_or_default(),
            connect_latency_ms: connect,
            recovery_ms: LatencySummary::of(&recovery),
        }
    }
}

/// One error that stopped a client, as an example of its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorExample {
    /// The client's index.
    pub client: u64,
    /// The error, as displayed (never a secret: errors redact them).
    pub error: String,
}

/// Errors by kind in one line, `tcp ×10 (e.g. clients 3, 8: could not connect ...)`: what a
/// thousand failing clients say, without a thousand lines.
pub fn describe_errors(errors: &BTreeMap<String, u64>, examples: &[ErrorExample]) -> String {
    if errors.is_empty() {
        return "no client reported an error".into();
    }
    let kinds: Vec<String> = errors.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    let mut text = kinds.join(", ");
    // The same error from several clients is one example.
    let mut distinct: Vec<(Vec<u64>, &str)> = Vec::new();
    for example in examples {
        match distinct.iter_mut().find(|(_, e)| *e == example.error) {
            Some((clients, _)) => clients.push(example.client),
            None => distinct.push((vec![example.client], &example.error)),
        }
    }
    let shown: Vec<String> = distinct
        .iter()
        .map(|(clients, error)| {
            let clients: Vec<String> = clients.iter().map(u64::to_string).collect();
            let noun = if clients.len() == 1 {
                "client"
            } else {
                "clients"
            };
            format!("{noun} {}: {error}", clients.join(", "))
        })
        .collect();
    if !shown.is_empty() {
        text += &format!(" (e.g. {})", shown.join("; "));
    }
    text
}

/// A snapshot of a fleet's counters. Gauges (`pending` .. `abandoned`) are current values
/// and add up to `requested`; the rest count since the fleet started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetStats {
    /// Clients asked for.
    pub requested: u64,
    /// Not started yet.
    pub pending: u64,
    /// Opening a connection.
    pub connecting: u64,
    /// Connected.
    pub connected: u64,
    /// Recovering a connection.
    pub recovering: u64,
    /// Waiting to reconnect.
    pub disconnected: u64,
    /// Stopped.
    pub stopped: u64,
    /// Stopped for good after failures.
    pub abandoned: u64,
    /// Clients that connected at least once.
    pub ever_connected: u64,
    /// `start()` calls, restarts included.
    pub starts: u64,
    /// Restarts after a failure.
    pub restarts: u64,
    /// Clients whose first `start()` has finished (either way).
    pub first_starts_done: u64,
    /// Client actors that died (a panic, their context stopped) and were replaced.
    pub actor_deaths: u64,
    /// Faults the fleet injected into its own clients' sockets ([`super::Fleet::inject_fault`]).
    pub faults_injected: u64,
    /// `connected` events (new connections, first ones included).
    pub connections: u64,
    /// New connections of clients that had been connected before and lost the connection
    /// (not those that connect again after a requested stop).
    pub reconnects: u64,
    /// Reconnect attempts the clients announced.
    pub reconnect_attempts: u64,
    /// `disconnected` events.
    pub disconnects: u64,
    /// Recovery episodes started.
    pub recovering_episodes: u64,
    /// Recoveries that succeeded.
    pub recoveries: u64,
    /// Group and server messages delivered to the clients.
    pub deliveries: u64,
    /// Events dropped for slow subscribers.
    pub events_dropped: u64,
    /// Stops asked for.
    pub stops_requested: u64,
    /// Stops because a connection was lost and auto reconnect was off.
    pub stops_connection_lost: u64,
    /// Stops because reconnecting gave up.
    pub stops_reconnect_gave_up: u64,
    /// Stops because a start failed.
    pub stops_start_failed: u64,
    /// Errors by kind (only kinds that happened).
    pub errors: BTreeMap<String, u64>,
    /// The latest few errors that stopped a client.
    pub error_examples: Vec<ErrorExample>,
    /// From `start()` to `system/connected`, for starts that succeeded.
    pub connect_latency_ms: LatencySummary,
    /// From a drop to the recovered socket.
    pub recovery_ms: LatencySummary,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn connected(id: &str) -> Event {
        Event::Connected {
            connection_id: id.into(),
            user_id: None,
        }
    }

    #[test]
    fn errors_are_described_by_kind_with_distinct_examples() {
        let errors = BTreeMap::from([("tcp".to_owned(), 10), ("unauthorized".to_owned(), 1)]);
        let example = |client, error: &str| ErrorExample {
            client,
            error: error.into(),
        };
        let examples = [
            example(3, "refused"),
            example(8, "refused"),
            example(9, "401"),
        ];
        assert_eq!(
            describe_errors(&errors, &examples),
            "tcp ×10, unauthorized ×1 (e.g. clients 3, 8: refused; client 9: 401)"
        );
        assert_eq!(
            describe_errors(&BTreeMap::new(), &[]),
            "no client reported an error"
        );
        // The counters keep only the latest few examples.
        let c = FleetCounters::new(10);
        for i in 0..10 {
            c.on_event(
                i,
                &Event::Stopped {
                    reason: StopReason::StartFailed(ClientError::NotStarted),
                },
            );
        }
        let stats = c.snapshot();
        let clients: Vec<u64> = stats.error_examples.iter().map(|e| e.client).collect();
        assert_eq!(clients, [7, 8, 9]);
    }

    #[test]
    fn events_move_gauges_and_counters() {
        let c = FleetCounters::new(3);
        c.set_phase(0, ClientPhase::Connecting);
        c.on_event(0, &connected("a"));
        c.on_event(1, &connected("b"));
        c.on_event(
            1,
            &Event::Recovering {
                connection_id: "b".into(),
            },
        );
        let s = c.snapshot();
        assert_eq!((s.connected, s.recovering, s.pending), (1, 1, 1));
        c.on_event(
            1,
            &Event::Recovered {
                connection_id: "b".into(),
                after: Duration::from_millis(250),
            },
        );
        c.on_event(
            0,
            &Event::Disconnected {
                connection_id: Some("a".into()),
                message: None,
            },
        );
        c.on_event(
            0,
            &Event::Reconnecting {
                attempt: 1,
                delay: Duration::ZERO,
            },
        );
        c.on_event(0, &connected("a2"));
        let s = c.snapshot();
        assert_eq!(s.connected, 2);
        assert_eq!((s.connections, s.reconnects, s.disconnects), (3, 1, 1));
        assert_eq!((s.recovering_episodes, s.recoveries), (1, 1));
        assert_eq!(s.recovery_ms.count, 1);
        assert!((s.recovery_ms.max - 250.0).abs() < 1.0);
        assert_eq!(s.ever_connected, 2);
    }

    #[test]
    fn stops_count_by_reason_and_error_kind() {
        let c = FleetCounters::new(2);
        let failed = StopReason::StartFailed(ClientError::Tcp("refused".into()));
        c.on_event(0, &Event::Stopped { reason: failed });
        c.on_event(
            1,
            &Event::Stopped {
                reason: StopReason::Requested,
            },
        );
        c.on_event(1, &Event::SlowConsumer { dropped: 7 });
        let s = c.snapshot();
        assert_eq!(
            (s.stops_start_failed, s.stops_requested, s.stopped),
            (1, 1, 2)
        );
        assert_eq!(s.errors.get("tcp"), Some(&1));
        assert_eq!(s.errors.get("slow_consumer"), Some(&1));
        assert_eq!(s.events_dropped, 7);
        c.set_phase(0, ClientPhase::Abandoned);
        assert_eq!(c.phase(0), ClientPhase::Abandoned);
        assert_eq!(c.snapshot().abandoned, 1);
    }

    #[test]
    fn coming_back_after_a_requested_stop_is_not_a_reconnect() {
        let c = FleetCounters::new(1);
        c.on_event(0, &connected("a"));
        c.on_event(
            0,
            &Event::Stopped {
                reason: StopReason::Requested,
            },
        );
        c.on_event(0, &connected("b"));
        assert_eq!(
            (c.snapshot().reconnects, c.phase(0)),
            (0, ClientPhase::Connected)
        );
        // A lost connection after that is a reconnect again.
        c.on_event(
            0,
            &Event::Disconnected {
                connection_id: Some("b".into()),
                message: None,
            },
        );
        c.on_event(0, &connected("c"));
        assert_eq!(c.snapshot().reconnects, 1);
    }

    #[test]
    fn error_kind_names_are_unique() {
        let names: std::collections::BTreeSet<_> =
            ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "ALL must follow declaration order");
        }
    }
}
