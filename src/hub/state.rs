//! The hub's shared state: connections, groups and users per hub, each connection's outbox
//! (sequence ids, replay buffer, current socket), and the operations on them.
//!
//! Concurrency rules, which keep group fan-out free of any global lock:
//! - maps are `DashMap`s (sharded locks); a fan-out copies a group's member list under the
//!   shard's read lock, releases it, then delivers;
//! - each connection has two mutexes, `state` (roles, groups, ack ids) and `outbox`; no code
//!   holds one while taking the other, or while taking a map lock, so there is no lock order
//!   to get wrong;
//! - a delivery locks the receiver's outbox briefly: it assigns the sequence id, buffers the
//!   frame and appends it to the socket's queue (`queue.rs`, a leaf lock) under that lock, so
//!   each receiver sees its sequence ids in order; only a frame that finds the queue idle
//!   wakes the socket actor, which then writes the whole batch;
//! - the socket actor is reached only through `Recipient<ToSocket>`, so this file knows
//!   nothing of actix-web-actors.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use actix::Recipient;
use bytes::Bytes;
use dashmap::DashMap;

use super::config::HubConfig;
use super::faults::{Faults, Misdelivery};
use super::handlers::SystemEvent;
use super::names;
use super::queue::{Full, SocketQueue, Wake};
// Re-exported so the socket, request and REST code keeps naming them through the state.
use super::outbox::{
    AckMemory, Detached, Outbox, Plan, RecoveryRefusal, RecoveryRequest, ReplayLimits, SocketEnd,
    Stamped, admit_recovery,
};
pub(crate) use super::publication::{Mode, Publication, RawFrame};
use super::roles::{Permission, Roles};
use super::stats::{Stats, bump, drop_one};
use super::upstream::{self, Call, Reply, Upstream};
use crate::protocol::{CLOSE_UNRECOVERABLE, Payload, Secret, Subprotocol};

/// Adds one to `counter` if `happened`.
fn count_if(happened: bool, counter: &AtomicU64) {
    if happened {
        bump(counter);
    }
}

/// Locks a mutex, recovering from poisoning: every critical section here leaves the data
/// consistent at each step, so the data is still good after a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A data message for one socket: the shared publication and this receiver's sequence id.
#[derive(Clone, Debug)]
pub(crate) struct OutFrame {
    /// Sequence id (reliable connections only).
    pub(crate) sequence_id: Option<u64>,
    /// The message.
    pub(crate) publication: Arc<Publication>,
}

/// The frames waiting for one socket actor (the slow-client measure), with their sizes.
pub(crate) type OutQueue = SocketQueue<OutFrame>;

/// What the state asks a socket actor to do.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub(crate) enum ToSocket {
    /// Write every frame in the socket's queue (sent by the frame that found it idle).
    Drain,
    /// Send `system/disconnected` (JSON subprotocols) and a close frame, then stop.
    Close {
        /// Close code.
        code: u16,
        /// Reason for both the message and the close frame.
        reason: String,
    },
    /// Stop at once, without a close frame (a network failure, as the client sees it).
    Drop,
    /// Read nothing more from the client (the `stop_reading` fault).
    StopReading,
}

/// The socket currently attached to a connection.
pub(crate) struct SocketRef {
    /// Unique per socket, so a stale socket's end does not detach its successor.
    pub(crate) generation: u64,
    /// The socket actor.
    pub(crate) recipient: Recipient<ToSocket>,
    /// Its backlog.
    pub(crate) queue: Arc<OutQueue>,
}

struct ConnState {
    roles: Roles,
    groups: HashSet<String>,
    acks: AckMemory,
    removed: bool,
}

/// The outbox of a hub connection: publications, sent to a socket actor.
type ConnOutbox = Outbox<Arc<Publication>, SocketRef>;

/// One logical connection: survives socket drops when reliable, until recovered or expired.
pub(crate) struct Connection {
    /// The connection id.
    pub(crate) id: String,
    /// The hub name as the client wrote it.
    pub(crate) hub: String,
    /// The user id from the token's `sub`.
    pub(crate) user_id: Option<String>,
    /// The subprotocol.
    pub(crate) mode: Mode,
    /// The `ce-connectionState` an event handler set (hook of the event handler, issue 12).
    handler_state: Mutex<Option<String>>,
    reconnection_token: Option<Secret>,
    scope: Arc<Scope>,
    state: Mutex<ConnState>,
    outbox: Mutex<ConnOutbox>,
}

impl Connection {
    /// The `ce-connectionState` an event handler set, sent on its later events.
    pub(crate) fn handler_state(&self) -> Option<String> {
        lock(&self.handler_state).clone()
    }

    /// Replaces the state (an event handler answered `ce-connectionState`; empty: none).
    pub(crate) fn set_handler_state(&self, state: String) {
        *lock(&self.handler_state) = Some(state).filter(|s| !s.is_empty());
    }

    /// The reconnection token (reliable connections only).
    pub(crate) fn reconnection_token(&self) -> Option<&Secret> {
        self.reconnection_token.as_ref()
    }

    /// Whether `token` is this connection's reconnection token (constant time).
    pub(crate) fn reconnection_token_matches(&self, token: &str) -> bool {
        self.reconnection_token
            .as_ref()
            .is_some_and(|t| names::constant_time_eq(t.expose().as_bytes(), token.as_bytes()))
    }

    /// Whether its roles allow `permission` on `group`.
    pub(crate) fn allows(&self, permission: Permission, group: &str) -> bool {
        lock(&self.state).roles.allows(permission, group)
    }

    /// Claims an ack id before its request runs, in one step, so two sockets of the same
    /// connection (a stale one and its recovery) cannot both run it. False: already claimed.
    pub(crate) fn claim_ack(&self, ack_id: u64, capacity: usize) -> bool {
        lock(&self.state).acks.insert(ack_id, capacity)
    }

    /// Gives a claimed ack id back: its request did not take effect and may be judged again.
    pub(crate) fn release_ack(&self, ack_id: u64) {
        lock(&self.state).acks.remove(ack_id);
    }

    /// Whether the connection is a member of `group`.
    pub(crate) fn is_in_group(&self, group: &str) -> bool {
        lock(&self.state).groups.contains(group)
    }

    /// Whether a socket is attached now.
    pub(crate) fn is_attached(&self) -> bool {
        lock(&self.outbox).socket().is_some()
    }

    /// Arms `count` misdeliveries of `kind` for the next messages to this connection.
    pub(crate) fn arm(&self, kind: Misdelivery, count: u64) {
        lock(&self.outbox).arm(kind, count);
    }

    /// Sends a control message to the attached socket, if any. True if sent.
    pub(crate) fn signal(&self, message: ToSocket) -> bool {
        match lock(&self.outbox).socket() {
            Some(socket) => {
                socket.recipient.do_send(message);
                true
            }
            None => false,
        }
    }
}

/// Why [`HubState::join`] did not add a connection to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinRefused {
    /// The connection is gone.
    Gone,
    /// The connection is in this many groups already (`max_groups_per_connection`).
    TooManyGroups(usize),
}

/// One hub's connections, groups and users.
#[derive(Default)]
pub(crate) struct Scope {
    connections: DashMap<String, Arc<Connection>>,
    groups: DashMap<String, HashMap<String, Arc<Connection>>>,
    users: DashMap<String, HashMap<String, Arc<Connection>>>,
}

impl Scope {
    /// The connection with this id.
    pub(crate) fn connection(&self, id: &str) -> Option<Arc<Connection>> {
        self.connections.get(id).map(|c| c.clone())
    }

    /// Members of a group.
    pub(crate) fn group_members(&self, group: &str) -> Vec<Arc<Connection>> {
        self.groups
            .get(group)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Connections of a user.
    pub(crate) fn user_connections(&self, user: &str) -> Vec<Arc<Connection>> {
        self.users
            .get(user)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every connection of the hub.
    pub(crate) fn all_connections(&self) -> Vec<Arc<Connection>> {
        self.connections.iter().map(|c| c.value().clone()).collect()
    }

    /// Whether the group has members.
    pub(crate) fn group_exists(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// Whether the user has connections.
    pub(crate) fn user_exists(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    fn remove_member(map: &DashMap<String, HashMap<String, Arc<Connection>>>, key: &str, id: &str) {
        if let Some(mut members) = map.get_mut(key) {
            members.remove(id);
        }
        map.remove_if(key, |_, members| members.is_empty());
    }
}

/// Everything shared by the HTTP workers and the `Hub` handle.
pub(crate) struct HubState {
    pub(crate) config: HubConfig,
    pub(crate) key: Secret,
    pub(crate) stats: Stats,
    pub(crate) faults: Faults,
    scopes: DashMap<String, Arc<Scope>>,
    next_generation: AtomicU64,
    /// `host:port` forms of the hub's own address, set once bound; tokens for any of them are
    /// accepted in addition to the request's `Host`.
    authorities: OnceLock<Vec<String>>,
    stopping: AtomicBool,
    /// Socket actors alive (including those refusing a recovery): stop waits for zero.
    live_sockets: AtomicUsize,
    /// The event handler's queue, when one is configured (set on the hub's thread).
    upstream: OnceLock<Upstream>,
}

impl HubState {
    pub(crate) fn new(config: HubConfig, key: Secret) -> HubState {
        HubState {
            config,
            key,
            stats: Stats::default(),
            faults: Faults::default(),
            scopes: DashMap::new(),
            next_generation: AtomicU64::new(1),
            authorities: OnceLock::new(),
            stopping: AtomicBool::new(false),
            live_sockets: AtomicUsize::new(0),
            upstream: OnceLock::new(),
        }
    }

    pub(crate) fn set_upstream(&self, upstream: Upstream) {
        let _ = self.upstream.set(upstream);
    }

    /// The event handler caller, when handlers are configured (the `connect` event).
    pub(crate) fn upstream(&self) -> Option<&Upstream> {
        self.upstream.get()
    }

    fn call(
        &self,
        conn: &Connection,
        event: &str,
        system: bool,
        body: (Bytes, &'static str),
    ) -> Call {
        Call {
            event: event.to_owned(),
            system,
            hub: conn.hub.clone(),
            connection_id: conn.id.clone(),
            user_id: conn.user_id.clone(),
            subprotocol: conn.mode.subprotocol().map(|p| p.name()),
            body,
            connection_state: conn.handler_state(),
            reply: None,
        }
    }

    /// Posts a system event (`connected`, `disconnected`), fire-and-forget.
    pub(crate) fn emit_system(&self, conn: &Connection, event: &str, body: serde_json::Value) {
        if let Some(up) = self.upstream.get() {
            let body = (Bytes::from(body.to_string()), "application/json");
            self.count_upstream(up.send(self.call(conn, event, true, body)));
        }
    }

    /// Posts a group presence event (`joined`, `left`: issue 12, wg), fire-and-forget, when a
    /// handler takes it: checked first, as joins are on the hot path of a load run.
    fn emit_group(&self, conn: &Connection, event: SystemEvent, group: &str) {
        if let Some(up) = self.upstream.get().filter(|up| up.wants(&conn.hub, event)) {
            let body = Bytes::from(serde_json::json!({ "group": group }).to_string());
            let call = self.call(conn, event.name(), true, (body, "application/json"));
            self.count_upstream(up.send(call));
        }
    }

    /// Posts a user event and returns where its reply will arrive; `None` without a handler.
    /// A full queue answers at once with a failure.
    pub(crate) fn invoke(
        &self,
        conn: &Connection,
        event: &str,
        data: &Payload,
    ) -> Option<tokio::sync::oneshot::Receiver<Reply>> {
        let up = self.upstream.get()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut call = self.call(conn, event, false, upstream::event_body(data));
        call.reply = Some(tx);
        if !self.count_upstream(up.send(call)) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _ = tx.send(Reply::Failed("the event handler is overloaded".to_owned()));
            return Some(rx);
        }
        Some(rx)
    }

    fn count_upstream(&self, queued: bool) -> bool {
        bump(if queued {
            &self.stats.upstream_events
        } else {
            &self.stats.upstream_dropped
        });
        queued
    }

    pub(crate) fn set_authorities(&self, authorities: Vec<String>) {
        let _ = self.authorities.set(authorities);
    }

    /// The authorities a token's audience may name: the request's `Host`, then the hub's own.
    pub(crate) fn audience_authorities(&self, host: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = host.map(str::to_owned).into_iter().collect();
        if let Some(own) = self.authorities.get() {
            out.extend(own.iter().filter(|a| Some(a.as_str()) != host).cloned());
        }
        out
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    /// A socket actor started.
    pub(crate) fn socket_started(&self) {
        self.live_sockets.fetch_add(1, Relaxed);
    }

    /// A socket actor stopped.
    pub(crate) fn socket_stopped(&self) {
        let _ = self
            .live_sockets
            .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
    }

    /// Socket actors alive.
    pub(crate) fn live_sockets(&self) -> usize {
        self.live_sockets.load(Relaxed)
    }

    pub(crate) fn next_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Relaxed)
    }

    /// The scope of a hub, created on first use. Hub names are case-insensitive.
    pub(crate) fn scope(&self, hub: &str) -> Arc<Scope> {
        let key = names::hub_key(hub);
        if let Some(s) = self.scopes.get(&key) {
            return s.clone();
        }
        self.scopes.entry(key).or_default().clone()
    }

    /// The scope of a hub if it has ever been used.
    pub(crate) fn find_scope(&self, hub: &str) -> Option<Arc<Scope>> {
        self.scopes.get(&names::hub_key(hub)).map(|s| s.clone())
    }

    /// Every connection of every hub.
    pub(crate) fn all_connections(&self) -> Vec<Arc<Connection>> {
        let scopes: Vec<Arc<Scope>> = self.scopes.iter().map(|s| s.value().clone()).collect();
        scopes.iter().flat_map(|s| s.all_connections()).collect()
    }

    /// The connections of a user in any hub.
    pub(crate) fn user_connections(&self, user: &str) -> Vec<Arc<Connection>> {
        let scopes: Vec<Arc<Scope>> = self.scopes.iter().map(|s| s.value().clone()).collect();
        scopes
            .iter()
            .flat_map(|s| s.user_connections(user))
            .collect()
    }

    /// Finds a connection by id in any hub.
    pub(crate) fn find_connection(&self, id: &str) -> Option<Arc<Connection>> {
        let scopes: Vec<Arc<Scope>> = self.scopes.iter().map(|s| s.value().clone()).collect();
        scopes.iter().find_map(|s| s.connection(id))
    }

    /// Groups with members, over every hub.
    pub(crate) fn group_count(&self) -> u64 {
        self.scopes.iter().map(|s| s.groups.len() as u64).sum()
    }

    /// Whether one more connection fits.
    pub(crate) fn has_room(&self) -> bool {
        (self.stats.connections.load(Relaxed) as usize) < self.config.max_connections
    }

    /// A new connection with `id` (the one its `connect` event named), not yet registered
    /// (that happens when its socket attaches).
    pub(crate) fn new_connection(
        &self,
        id: String,
        hub: &str,
        user_id: Option<String>,
        mode: Mode,
        roles: Roles,
    ) -> Arc<Connection> {
        let reconnection_token = mode
            .is_reliable()
            .then(|| Secret::new(names::new_reconnection_token()));
        Arc::new(Connection {
            id,
            hub: hub.to_owned(),
            user_id,
            mode,
            handler_state: Mutex::new(None),
            reconnection_token,
            scope: self.scope(hub),
            state: Mutex::new(ConnState {
                roles,
                groups: HashSet::new(),
                acks: AckMemory::default(),
                removed: false,
            }),
            outbox: Mutex::new(Outbox::default()),
        })
    }

    /// Registers a new connection with its first socket. Returns false if the hub is stopping.
    pub(crate) fn attach_new(&self, conn: &Arc<Connection>, socket: SocketRef) -> bool {
        if self.is_stopping() {
            return false;
        }
        conn.scope.connections.insert(conn.id.clone(), conn.clone());
        if let Some(user) = &conn.user_id {
            conn.scope
                .users
                .entry(user.clone())
                .or_default()
                .insert(conn.id.clone(), conn.clone());
        }
        lock(&conn.outbox).attach(socket.generation, socket);
        bump(&self.stats.connections);
        bump(&self.stats.connections_opened);
        bump(&self.stats.attached);
        true
    }

    /// Admits a recovery request before the upgrade ([`admit_recovery`]; the final check is
    /// in `attach_recovered`). A session refused by a fault is removed, as if it had expired.
    pub(crate) fn check_recovery(
        &self,
        hub: &str,
        connection_id: &str,
        token: Option<&str>,
        offered: Option<Subprotocol>,
    ) -> Result<Arc<Connection>, RecoveryRefusal> {
        let conn = self
            .find_scope(hub)
            .and_then(|s| s.connection(connection_id));
        let request = RecoveryRequest {
            found: conn.is_some(),
            reliable: conn.as_ref().is_some_and(|c| c.mode.is_reliable()),
            token_matches: conn
                .as_ref()
                .is_some_and(|c| token.is_some_and(|t| c.reconnection_token_matches(t))),
            // The session's own subprotocol: a protobuf session cannot go on in JSON.
            offers_reliable: conn
                .as_ref()
                .is_some_and(|c| offered.is_some() && offered == c.mode.subprotocol()),
        };
        match (
            admit_recovery(request, || self.faults.take_recovery_refusal()),
            conn,
        ) {
            (Ok(()), Some(conn)) => Ok(conn),
            (Err(RecoveryRefusal::Refused), Some(conn)) => {
                // It is gone with its groups, so it no longer collects messages nor shows in
                // group listings (the client starts anew).
                self.remove(&conn, None);
                Err(RecoveryRefusal::Refused)
            }
            (Err(refusal), _) => Err(refusal),
            (Ok(()), None) => Err(RecoveryRefusal::Unknown),
        }
    }

    /// Attaches a recovering socket: supersedes a stale socket, and returns every unacked
    /// message, in order, for the new socket to write right after `connected`.
    pub(crate) fn attach_recovered(
        &self,
        conn: &Arc<Connection>,
        socket: SocketRef,
    ) -> Result<Vec<OutFrame>, RecoveryRefusal> {
        let mut ob = lock(&conn.outbox);
        let re = ob.attach_recovered(socket.generation, socket, self.is_stopping())?;
        match re.stale {
            // A half-open socket the hub had not noticed: the client knows better.
            Some(stale) => stale.recipient.do_send(ToSocket::Drop),
            None => bump(&self.stats.attached),
        }
        if re.was_detached {
            drop_one(&self.stats.detached);
        }
        bump(&self.stats.recoveries);
        let now = Instant::now();
        let (expired, unacked): (Vec<_>, Vec<_>) =
            ob.unacked().partition(|(_, p, _)| p.expired(|| now));
        self.stats
            .messages_expired
            .fetch_add(expired.len() as u64, Relaxed);
        let replay: Vec<OutFrame> = unacked
            .into_iter()
            .map(|(seq, publication, _)| OutFrame {
                sequence_id: Some(seq),
                publication: publication.clone(),
            })
            .collect();
        self.stats
            .messages_replayed
            .fetch_add(replay.len() as u64, Relaxed);
        self.stats
            .messages_out
            .fetch_add(replay.len() as u64, Relaxed);
        Ok(replay)
    }

    /// A socket ended: detach it, and keep or remove the session.
    pub(crate) fn socket_ended(&self, conn: &Arc<Connection>, generation: u64, end: SocketEnd) {
        let detached = lock(&conn.outbox).socket_ended(
            generation,
            end,
            conn.mode.is_reliable(),
            self.is_stopping(),
            Instant::now(),
        );
        match detached {
            // Superseded or already removed: the successor owns the session.
            Detached::NotCurrent => {}
            Detached::Kept => {
                drop_one(&self.stats.attached);
                bump(&self.stats.detached);
            }
            Detached::Ended => {
                drop_one(&self.stats.attached);
                self.remove(conn, None);
            }
        }
    }

    /// Removes a connection from the hub: leaves its groups, forgets it, and closes its socket
    /// (with `close`, or abruptly without). Idempotent.
    pub(crate) fn remove(&self, conn: &Arc<Connection>, close: Option<(u16, String)>) {
        let groups = {
            let mut st = lock(&conn.state);
            if st.removed {
                return;
            }
            st.removed = true;
            std::mem::take(&mut st.groups)
        };
        let reason = close
            .as_ref()
            .map_or("The connection ended", |(_, r)| r.as_str());
        self.emit_system(
            conn,
            "disconnected",
            serde_json::json!({ "reason": reason }),
        );
        let scope = &conn.scope;
        for group in &groups {
            Scope::remove_member(&scope.groups, group, &conn.id);
        }
        if let Some(user) = &conn.user_id {
            Scope::remove_member(&scope.users, user, &conn.id);
        }
        scope
            .connections
            .remove_if(&conn.id, |_, c| Arc::ptr_eq(c, conn));
        drop_one(&self.stats.connections);
        let closed = lock(&conn.outbox).close();
        if closed.was_detached {
            drop_one(&self.stats.detached);
        }
        if let Some(socket) = closed.socket {
            drop_one(&self.stats.attached);
            socket.recipient.do_send(match close {
                Some((code, reason)) => ToSocket::Close { code, reason },
                None => ToSocket::Drop,
            });
        }
    }

    /// Adds a connection to a group. `Err` if the connection is gone or already in
    /// `max_groups_per_connection` other groups.
    pub(crate) fn join(&self, conn: &Arc<Connection>, group: &str) -> Result<(), JoinRefused> {
        conn.scope
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(conn.id.clone(), conn.clone());
        let mut st = lock(&conn.state);
        let cap = self.config.max_groups_per_connection;
        let refused = if st.removed {
            // Lost a race with `remove`, which could not see this group yet.
            Some(JoinRefused::Gone)
        } else if st.groups.len() >= cap && !st.groups.contains(group) {
            // Checked under the lock that guards the set, so concurrent joins cannot pass it.
            Some(JoinRefused::TooManyGroups(cap))
        } else {
            None
        };
        if let Some(refused) = refused {
            drop(st);
            Scope::remove_member(&conn.scope.groups, group, &conn.id);
            return Err(refused);
        }
        let joined = st.groups.insert(group.to_owned());
        drop(st);
        // Group presence (issue 12, wg): `joined` for a group newly joined, after the lock.
        if joined {
            self.emit_group(conn, SystemEvent::GroupJoined, group);
        }
        Ok(())
    }

    /// Removes a connection from a group (a no-op when it is not a member).
    pub(crate) fn leave(&self, conn: &Arc<Connection>, group: &str) {
        let was_member = lock(&conn.state).groups.remove(group);
        if was_member {
            Scope::remove_member(&conn.scope.groups, group, &conn.id);
            // Group presence (issue 12, wg): `left`.
            self.emit_group(conn, SystemEvent::GroupLeft, group);
        }
    }

    /// Removes a connection from every group.
    pub(crate) fn leave_all(&self, conn: &Arc<Connection>) {
        let groups = std::mem::take(&mut lock(&conn.state).groups);
        for group in &groups {
            Scope::remove_member(&conn.scope.groups, group, &conn.id);
            // Group presence (issue 12, wg): `left`.
            self.emit_group(conn, SystemEvent::GroupLeft, group);
        }
    }

    /// Runs `f` on the connection's roles (REST grant and revoke).
    pub(crate) fn with_roles<R>(&self, conn: &Connection, f: impl FnOnce(&mut Roles) -> R) -> R {
        f(&mut lock(&conn.state).roles)
    }

    /// Delivers a message to every member of a group except those `skip` names. One
    /// serialization, one sequence id stamp per reliable receiver.
    pub(crate) fn publish_to_group(
        &self,
        scope: &Scope,
        group: &str,
        publication: &Arc<Publication>,
        skip: impl Fn(&Connection) -> bool,
    ) -> usize {
        let members = scope.group_members(group);
        let mut delivered = 0;
        for member in members.iter().filter(|m| !skip(m)) {
            self.deliver(member, publication);
            delivered += 1;
        }
        delivered
    }

    /// Delivers a message to one connection: assigns its sequence id, buffers it for replay
    /// (reliable), and queues it for the socket if one is attached. A connection whose
    /// buffers overflow is removed as a slow client (close 1008: it cannot be recovered).
    pub(crate) fn deliver(&self, conn: &Arc<Connection>, publication: &Arc<Publication>) {
        let queued = {
            let mut ob = lock(&conn.outbox);
            // Injected misdeliveries (faults.rs); `Deliver` at once when none is armed. Each is
            // counted only once it happened, so the counts are exactly what a checker must see.
            match ob.misdeliver(publication, Publication::same_source) {
                Plan::Deliver => self.queue(&mut ob, conn, publication),
                Plan::Lose => {
                    bump(&self.stats.injected_lost);
                    Ok(false)
                }
                Plan::Hold => {
                    ob.hold(publication.clone());
                    Ok(false)
                }
                Plan::Duplicate => match self.queue(&mut ob, conn, publication) {
                    Ok(true) => self
                        .queue(&mut ob, conn, publication)
                        .inspect(|&second| count_if(second, &self.stats.injected_duplicated)),
                    other => other,
                },
                Plan::Release(held) => match self.queue(&mut ob, conn, publication) {
                    Ok(true) => self
                        .queue(&mut ob, conn, &held)
                        .inspect(|&late| count_if(late, &self.stats.injected_reordered)),
                    other => other,
                },
            }
        };
        if let Err(reason) = queued {
            bump(&self.stats.slow_clients);
            tracing::warn!(connection_id = %conn.id, reason, "closing a slow client");
            self.remove(conn, Some((CLOSE_UNRECOVERABLE, reason.to_owned())));
        }
    }

    /// Stamps one message for `conn` under its outbox lock and hands it to the attached
    /// socket (or keeps it for replay only, when detached). `Ok(false)`: the connection is
    /// gone; `Err`: the slow-client reason when a bound is passed (the connection is then dead).
    fn queue(
        &self,
        ob: &mut ConnOutbox,
        conn: &Connection,
        publication: &Arc<Publication>,
    ) -> Result<bool, &'static str> {
        let cfg = &self.config;
        let limits = ReplayLimits {
            messages: cfg.replay_buffer_messages,
            bytes: cfg.replay_buffer_bytes,
        };
        let size = publication.wire_len(&conn.mode);
        let sequence_id = match ob.stamp(publication.clone(), size, conn.mode.is_reliable(), limits)
        {
            Stamped::Dead => return Ok(false),
            Stamped::Overflow => {
                return Err("SlowClient: more unacknowledged messages than the hub buffers");
            }
            Stamped::Send(sequence_id) => sequence_id,
        };
        let full = ob.socket().is_some_and(|socket| {
            let frame = OutFrame {
                sequence_id,
                publication: publication.clone(),
            };
            match socket.queue.push(
                frame,
                size,
                cfg.outbound_queue_messages,
                cfg.outbound_queue_bytes,
            ) {
                Err(Full) => true,
                Ok(wake) => {
                    if wake == Wake::Now {
                        socket.recipient.do_send(ToSocket::Drain);
                    }
                    bump(&self.stats.messages_out);
                    false
                }
            }
        });
        if full {
            // Stop queueing at once; `remove` finishes the job outside this lock.
            ob.kill();
            Err("SlowClient: the outbound queue of the connection is full")
        } else {
            Ok(true)
        }
    }

    /// A `sequenceAck`: drops every buffered message up to `sequence_id`. An id beyond the last
    /// one sent is clamped, so nothing unsent is ever discarded; a lower one changes nothing.
    pub(crate) fn sequence_ack(&self, conn: &Connection, sequence_id: u64) {
        lock(&conn.outbox).sequence_ack(sequence_id);
    }

    /// Removes reliable sessions detached for longer than the recovery window.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let window = self.config.recovery_window;
        let expired: Vec<Arc<Connection>> = self
            .all_connections()
            .into_iter()
            .filter(|c| lock(&c.outbox).expired(now, window))
            .collect();
        for conn in &expired {
            self.remove(conn, None);
        }
        expired.len()
    }

    /// Closes every connection with `code` and refuses new ones: the hub is stopping.
    pub(crate) fn shutdown(&self, code: u16, reason: &str) {
        self.stopping.store(true, Relaxed);
        for conn in self.all_connections() {
            self.remove(&conn, Some((code, reason.to_owned())));
        }
    }
}
