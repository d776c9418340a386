//! Counters of everything the hub does, kept in atomics so that counting never takes a lock
//! on the message path, and a serializable snapshot of them ([`HubStats`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// A snapshot of the hub's counters, as `Hub::stats` returns and `GET /_fleet/stats` serves.
/// Gauges (`connections`, `attached`, `detached_sessions`, `groups`) are current values;
/// everything else counts since the hub started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HubStats {
    /// Connections the hub holds: attached to a socket or waiting for recovery.
    pub connections: u64,
    /// Connections with a live socket.
    pub attached: u64,
    /// Reliable sessions whose socket dropped and which can still be recovered.
    pub detached_sessions: u64,
    /// Groups with at least one member, over all hubs.
    pub groups: u64,
    /// New connections accepted (recoveries not included).
    pub connections_opened: u64,
    /// Frames received from clients (requests of any type, and simple clients' messages).
    pub messages_in: u64,
    /// Data messages sent to sockets (group and server messages, replays included).
    pub messages_out: u64,
    /// Data messages sent again after a recovery.
    pub messages_replayed: u64,
    /// Messages of a REST send with `messageTtlSeconds` dropped unsent because they expired
    /// in a socket's queue (already counted in `messages_out`) or in a detached session's
    /// replay buffer (not replayed).
    pub messages_expired: u64,
    /// Acks sent.
    pub acks: u64,
    /// Requests answered with a `Duplicate` ack (and not executed again).
    pub duplicates: u64,
    /// Requests answered with a `Forbidden` ack (or ignored for lack of an ack id).
    pub forbidden: u64,
    /// `sequenceAck` frames received.
    pub sequence_acks: u64,
    /// Successful recoveries.
    pub recoveries: u64,
    /// Recovery attempts closed with 1008 (unknown, expired, bad token or refused by a fault).
    pub recoveries_refused: u64,
    /// Handshakes refused with HTTP 401.
    pub unauthorized: u64,
    /// Connections closed because their buffers overflowed (slow clients).
    pub slow_clients: u64,
    /// Sockets the hub dropped without a close frame (faults, half-open timeouts).
    pub drops: u64,
    /// Close frames the hub sent, by close code.
    pub closes_by_code: BTreeMap<u16, u64>,
    /// Faults injected through `Hub` methods or `POST /_fleet/faults`.
    pub faults_injected: u64,
    /// Deliveries silently dropped by an injected `lose` fault.
    pub injected_lost: u64,
    /// Extra copies delivered by an injected `duplicate` fault.
    pub injected_duplicated: u64,
    /// Deliveries held back and sent after a later one by an injected `reorder` fault.
    pub injected_reordered: u64,
    /// Events queued for the event handler.
    pub upstream_events: u64,
    /// Events not sent because `max_upstream_calls` calls were in flight already: user
    /// events got an `InvocationFailed` ack at once, system events were dropped.
    pub upstream_dropped: u64,
    /// Events not sent because their handler's host did not pass the abuse-protection check
    /// (`OPTIONS` with `WebHook-Request-Origin`): refused, unreachable or garbled answer.
    pub upstream_refused: u64,
    /// Per handler host (`scheme://host:port`) that failed the abuse-protection check, why;
    /// the entry goes once the host passes the check.
    pub event_handlers_refused: BTreeMap<String, String>,
}

/// The live counters behind [`HubStats`].
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) connections: AtomicU64,
    pub(crate) attached: AtomicU64,
    pub(crate) detached: AtomicU64,
    pub(crate) connections_opened: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) messages_replayed: AtomicU64,
    pub(crate) messages_expired: AtomicU64,
    pub(crate) acks: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) forbidden: AtomicU64,
    pub(crate) sequence_acks: AtomicU64,
    pub(crate) recoveries: AtomicU64,
    pub(crate) recoveries_refused: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) slow_clients: AtomicU64,
    pub(crate) drops: AtomicU64,
    pub(crate) faults_injected: AtomicU64,
    pub(crate) injected_lost: AtomicU64,
    pub(crate) injected_duplicated: AtomicU64,
    pub(crate) injected_reordered: AtomicU64,
    pub(crate) upstream_events: AtomicU64,
    pub(crate) upstream_dropped: AtomicU64,
    /// Shared with the event handler's task on the hub's thread, which counts and explains
    /// abuse-protection refusals.
    pub(crate) handler_checks: std::sync::Arc<HandlerChecks>,
    // Closes are rare (not on the message path), so a mutex over a small map is fine.
    closes: Mutex<BTreeMap<u16, u64>>,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// Subtracts one from a gauge, never below zero (a gauge that drifted is better than one that
/// wrapped to 2^64).
pub(crate) fn drop_one(gauge: &AtomicU64) {
    let _ = gauge.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
}

impl Stats {
    /// Counts a close frame sent with `code`.
    pub(crate) fn close_sent(&self, code: u16) {
        if let Ok(mut closes) = self.closes.lock() {
            *closes.entry(code).or_insert(0) += 1;
        }
    }

    /// The snapshot; `groups` comes from the state, which knows the group maps.
    pub(crate) fn snapshot(&self, groups: u64) -> HubStats {
        HubStats {
            connections: self.connections.load(Relaxed),
            attached: self.attached.load(Relaxed),
            detached_sessions: self.detached.load(Relaxed),
            groups,
            connections_opened: self.connections_opened.load(Relaxed),
            messages_in: self.messages_in.load(Relaxed),
            messages_out: self.messages_out.load(Relaxed),
            messages_replayed: self.messages_replayed.load(Relaxed),
            messages_expired: self.messages_expired.load(Relaxed),
            acks: self.acks.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            forbidden: self.forbidden.load(Relaxed),
            sequence_acks: self.sequence_acks.load(Relaxed),
            recoveries: self.recoveries.load(Relaxed),
            recoveries_refused: self.recoveries_refused.load(Relaxed),
            unauthorized: self.unauthorized.load(Relaxed),
            slow_clients: self.slow_clients.load(Relaxed),
            drops: self.drops.load(Relaxed),
            closes_by_code: self.closes.lock().map(|c| c.clone()).unwrap_or_default(),
            faults_injected: self.faults_injected.load(Relaxed),
            injected_lost: self.injected_lost.load(Relaxed),
            injected_duplicated: self.injected_duplicated.load(Relaxed),
            injected_reordered: self.injected_reordered.load(Relaxed),
            upstream_events: self.upstream_events.load(Relaxed),
            upstream_dropped: self.upstream_dropped.load(Relaxed),
            upstream_refused: self.handler_checks.refused_events.load(Relaxed),
            event_handlers_refused: self
                .handler_checks
                .refused_hosts
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
        }
    }
}

/// The outcome of the abuse-protection checks of the event handler hosts.
#[derive(Default)]
pub(crate) struct HandlerChecks {
    /// Events not sent because their host was refused.
    pub(crate) refused_events: AtomicU64,
    /// Refused hosts and why (at most one entry per configured handler host).
    pub(crate) refused_hosts: Mutex<BTreeMap<String, String>>,
}
