//! `ClientActor`: one Web PubSub connection, its protocol state and its subscribers.
//!
//! The actor survives recoveries and reconnects by swapping its socket, never itself. Every
//! socket it opens gets a new *generation*; frames, open results and timers of an older
//! generation are ignored, which is how `stop()` wins every race: it bumps the generation, so
//! nothing scheduled before it can act after it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use futures::StreamExt;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, trace, warn};

use crate::credential::{ClientAccessUrl, Credential};
use crate::protocol::json::{decode_inbound_bytes, encode_outbound};
use crate::protocol::{AckErrorName, AckId, Inbound, Outbound, Secret};
use crate::session::{
    AckIds, AckOutcome, AfterDrop, DropContext, Keepalive, KeepaliveAction, PendingAcks, Recovery,
    RecoveryStep, RetryState, SeqVerdict, SequenceTracker, recovery_url,
};

use super::dispatch::{CallbackPanicked, Subscribers};
use super::event::{Event, GroupMessage, ServerMessage, StopReason};
use super::messages::*;
use super::transport::{self, FrameSink, InFrame, OutFrame, SocketSettings};
use super::{AckResult, ClientError, ClientOptions, ClientState, ConnectionInfo};
use super::{AcquireHandle, ReleaseHandle, StatusSnapshot};

/// How often the actor checks its deadlines (sequence acks, keepalive, ack timeouts). One
/// timer per client, not one per deadline, keeps 10,000 idle clients cheap.
const TICK: Duration = Duration::from_millis(500);
/// How long a stopped client waits for the peer's close frame before dropping the socket.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);
/// A recovered socket counts as recovered once a frame arrived on it or it stayed open this long.
const RECOVERY_CONFIRM: Duration = Duration::from_secs(1);

/// Where the client is in its life.
#[derive(Debug)]
enum Phase {
    /// Not started, or stopped.
    Stopped,
    /// Opening a new connection (first start or reconnect); `system/connected` not yet seen.
    Connecting,
    /// A connection is up.
    Connected,
    /// The socket dropped; trying to recover the same connection.
    Recovering(Recovery),
    /// Waiting before the next reconnect attempt.
    WaitingToReconnect,
}

/// An operation waiting for its ack, kept until it resolves so it can be resent.
struct Op {
    frame: Outbound,
    reply: Option<oneshot::Sender<Result<AckResult, ClientError>>>,
    retry: RetryState,
    /// Sent on the current socket (false: waiting for a socket, or for a retry).
    sent: bool,
    /// Was sent on a socket that dropped: resent after a recovery, failed on a reconnect.
    orphaned: bool,
    membership: Membership,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Membership {
    None,
    Join,
    Leave,
    /// An automatic rejoin: a failure is reported as `RejoinGroupFailed`.
    Rejoin,
}

/// The client's counters, reported by [`ClientStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Data messages delivered to subscribers.
    pub delivered: u64,
    /// Replayed messages dropped as duplicates (sequence id at or below the max).
    pub duplicates_dropped: u64,
    /// Frames that failed to decode (ignored, counted).
    pub bad_frames: u64,
    /// Frames of unknown types (ignored, counted).
    pub unknown_frames: u64,
    /// Acks for ack ids nobody waited for.
    pub unknown_acks: u64,
    /// Recoveries that succeeded.
    pub recoveries: u64,
    /// New connections after the first.
    pub reconnects: u64,
    /// Operations resent with the same ack id (after a recovery or a retriable failure).
    pub resends: u64,
    /// Events dropped for slow subscribers.
    pub events_dropped: u64,
    /// Frames sent.
    pub frames_sent: u64,
}

/// The actor behind a [`super::Client`].
pub struct ClientActor {
    options: ClientOptions,
    credential: Credential,
    span: tracing::Span,
    phase: Phase,
    generation: u64,
    sink: Option<SinkWrite<OutFrame, FrameSink>>,
    stream: Option<SpawnHandle>,
    tick: Option<SpawnHandle>,
    access_url: Option<ClientAccessUrl>,
    connection_id: Option<String>,
    user_id: Option<String>,
    reconnection_token: Option<Secret>,
    last_disconnect_message: Option<String>,
    /// Set while a recovered socket waits for its confirmation (a frame other than
    /// `disconnected`, or one second open): when the old socket was lost, when the new one
    /// opened, and the recovery it belongs to, which goes on if this socket fails too.
    recovered_at: Option<(Instant, Instant, Recovery)>,
    /// The connect or recovery attempt in flight, cancelled by a stop.
    opening: Option<SpawnHandle>,
    /// When the current socket was lost.
    lost_at: Option<Instant>,
    ack_ids: AckIds,
    pending: PendingAcks<Op>,
    sequence: SequenceTracker,
    keepalive: Keepalive,
    reconnect: RetryState,
    groups: BTreeSet<String>,
    start_waiters: Vec<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    subscribers: Subscribers,
    counters: ClientCounters,
    ever_connected: bool,
    // Handles and the status they read (h5; see the block at the end of this file).
    status_tx: watch::Sender<StatusSnapshot>,
    handles: usize,
    released: bool,
}

impl ClientActor {
    /// A stopped client; send it [`Start`] to connect.
    pub fn new(credential: Credential, options: ClientOptions) -> ClientActor {
        let now = Instant::now();
        let span = tracing::info_span!(
            "client",
            index = options.index,
            connection_id = tracing::field::Empty
        );
        ClientActor {
            keepalive: Keepalive::with_timing(
                options.keepalive_interval,
                options.keepalive_timeout,
                now,
            ),
            reconnect: RetryState::new(options.reconnect_retry),
            options,
            credential,
            span,
            phase: Phase::Stopped,
            generation: 0,
            sink: None,
            stream: None,
            tick: None,
            access_url: None,
            connection_id: None,
            user_id: None,
            reconnection_token: None,
            last_disconnect_message: None,
            recovered_at: None,
            opening: None,
            lost_at: None,
            ack_ids: AckIds::new(),
            pending: PendingAcks::new(),
            sequence: SequenceTracker::new(),
            groups: BTreeSet::new(),
            start_waiters: Vec::new(),
            subscribers: Subscribers::default(),
            counters: ClientCounters::default(),
            ever_connected: false,
            status_tx: watch::Sender::new(StatusSnapshot::STOPPED),
            handles: 0,
            released: false,
        }
    }

    fn settings(&self) -> SocketSettings {
        SocketSettings {
            subprotocol: self.options.protocol.name(),
            connect_timeout: self.options.start_timeout,
            max_frame_size: self.options.max_frame_size,
            local_address: self.options.local_address,
            tls: self.options.tls.clone(),
        }
    }

    fn emit(&mut self, event: Event) {
        self.publish_status();
        if let Some(observer) = &self.options.observer {
            observer.observe(self.options.index, &event);
        }
        self.subscribers.deliver(&event);
        self.counters.events_dropped = self.subscribers.dropped_total;
    }

    // ---- lifecycle -------------------------------------------------------------------

    fn start(&mut self, ctx: &mut Context<Self>) {
        self.reconnect.reset();
        self.ensure_tick(ctx);
        self.open_new_connection(ctx);
    }

    fn ensure_tick(&mut self, ctx: &mut Context<Self>) {
        if self.tick.is_none() {
            self.tick = Some(ctx.run_interval(TICK, |act, ctx| act.on_tick(ctx)));
        }
    }

    /// Drops the current socket without a word to the peer. The writer is cancelled too: on a
    /// dead link a pending write could otherwise hold the socket until TCP gives up.
    fn drop_socket(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.stream.take() {
            ctx.cancel_future(handle);
        }
        if let Some(sink) = self.sink.take() {
            ctx.cancel_future(sink.handle());
        }
    }

    /// Cancels a connect or recovery attempt in flight (its socket is never attached).
    fn cancel_opening(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.opening.take() {
            ctx.cancel_future(handle);
        }
    }

    fn open_new_connection(&mut self, ctx: &mut Context<Self>) {
        self.drop_socket(ctx);
        self.generation += 1;
        let generation = self.generation;
        self.phase = Phase::Connecting;
        self.publish_status();
        let credential = self.credential.clone();
        let settings = self.settings();
        let open = async move {
            let url = credential
                .next_url(SystemTime::now())
                .await
                .map_err(ClientError::Credential)?;
            let socket = transport::open(url.expose().as_str(), &settings)
                .await
                .map_err(|e| ClientError::from_open(e, settings.connect_timeout))?;
            Ok::<_, ClientError>((url, socket))
        };
        self.cancel_opening(ctx);
        self.opening = Some(
            ctx.spawn(open.into_actor(self).map(move |result, act, ctx| {
                if act.generation != generation {
                    return;
                }
                act.opening = None;
                match result {
                    Ok((url, (sink, stream))) => {
                        act.access_url = Some(url);
                        act.attach(sink, stream, ctx);
                        // The socket is open; `system/connected` must follow within the timeout.
                        ctx.run_later(act.options.start_timeout, move |act, ctx| {
                            if act.generation == generation
                                && matches!(act.phase, Phase::Connecting)
                            {
                                act.connect_failed(
                                    ClientError::StartTimeout(act.options.start_timeout),
                                    ctx,
                                );
                            }
                        });
                    }
                    Err(e) => act.connect_failed(e, ctx),
                }
            })),
        );
    }

    fn attach(&mut self, sink: FrameSink, stream: transport::FrameStream, ctx: &mut Context<Self>) {
        let generation = self.generation;
        self.sink = Some(SinkWrite::new(sink, ctx));
        self.stream = Some(ctx.add_stream(stream.map(move |f| Frame(generation, f))));
        self.keepalive.on_socket_opened(Instant::now());
    }

    /// Opening a new connection failed (socket, credential or start timeout).
    fn connect_failed(&mut self, error: ClientError, ctx: &mut Context<Self>) {
        self.drop_socket(ctx);
        if !self.ever_connected && !self.start_waiters.is_empty() {
            // The first start fails as the official clients' start() does: with the error.
            warn!(parent: &self.span, %error, "start failed");
            self.finish_stop(StopReason::StartFailed(error), ctx);
            return;
        }
        let fatal = matches!(error, ClientError::Unauthorized) && self.credential.is_fixed();
        let delay = if fatal {
            None
        } else {
            self.reconnect.next_delay_with_jitter(rand::random::<f64>())
        };
        match delay {
            Some(delay) => {
                warn!(parent: &self.span, %error, ?delay, "connect failed; retrying");
                self.schedule_reconnect(delay, ctx);
            }
            None => {
                warn!(parent: &self.span, %error, "connect failed; giving up");
                self.finish_stop(StopReason::ReconnectGaveUp(error), ctx);
            }
        }
    }

    fn schedule_reconnect(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        self.generation += 1;
        let generation = self.generation;
        self.phase = Phase::WaitingToReconnect;
        self.emit(Event::Reconnecting {
            attempt: self.reconnect.retries().max(1),
            delay,
        });
        ctx.run_later(delay, move |act, ctx| {
            if act.generation == generation {
                act.open_new_connection(ctx);
            }
        });
    }

    /// `system/connected` on a socket.
    fn on_connected(
        &mut self,
        connection_id: String,
        user_id: Option<String>,
        token: Option<Secret>,
    ) {
        if token.is_some() {
            self.reconnection_token = token;
        }
        if !matches!(self.phase, Phase::Connecting) {
            // Repeated after a recovery: refresh the token, no second `connected` event.
            return;
        }
        let new_connection = self.connection_id.as_deref() != Some(connection_id.as_str());
        self.span.record("connection_id", connection_id.as_str());
        info!(parent: &self.span, user_id = ?user_id, "connected");
        if self.ever_connected {
            self.counters.reconnects += 1;
        }
        self.ever_connected = true;
        self.phase = Phase::Connected;
        self.reconnect.reset();
        self.connection_id = Some(connection_id.clone());
        self.user_id = user_id.clone();
        self.last_disconnect_message = None;
        if new_connection {
            self.sequence.on_new_connection();
        }
        self.send_unsent();
        if self.options.auto_rejoin_groups {
            for group in self.groups.clone() {
                self.submit(
                    Outbound::JoinGroup {
                        group,
                        ack_id: None,
                    },
                    None,
                    Membership::Rejoin,
                );
            }
        }
        let info = ConnectionInfo {
            connection_id: connection_id.clone(),
            user_id: user_id.clone(),
        };
        self.publish_status();
        for waiter in self.start_waiters.drain(..) {
            let _ = waiter.send(Ok(info.clone()));
        }
        self.emit(Event::Connected {
            connection_id,
            user_id,
        });
    }

    /// The socket is gone: recover, reconnect or stop.
    fn on_socket_lost(&mut self, close_code: Option<u16>, ctx: &mut Context<Self>) {
        self.drop_socket(ctx);
        let now = Instant::now();
        match &self.phase {
            Phase::Connecting => {
                self.connect_failed(ClientError::from_close(close_code), ctx);
                return;
            }
            Phase::Recovering(_) => {
                self.recovery_attempt_failed(close_code, ctx);
                return;
            }
            Phase::Stopped | Phase::WaitingToReconnect => return,
            Phase::Connected => {}
        }
        // A recovered socket lost before it was confirmed: that recovery attempt failed, and
        // the same recovery goes on (1 s apart, within its window; 1008 ends it).
        if let Some((_, _, recovery)) = self.recovered_at.take() {
            debug!(parent: &self.span, ?close_code, "recovered socket lost before confirmation");
            self.mark_all_unsent();
            self.phase = Phase::Recovering(recovery);
            self.recovery_attempt_failed(close_code, ctx);
            return;
        }
        let decision = DropContext {
            reliable: self.options.protocol.is_reliable(),
            resumable: self.connection_id.is_some() && self.reconnection_token.is_some(),
            stopping: false,
            auto_reconnect: self.options.auto_reconnect,
            close_code,
        }
        .decide();
        self.mark_all_unsent();
        self.lost_at = Some(now);
        match decision {
            AfterDrop::Recover => {
                let connection_id = self.connection_id.clone().unwrap_or_default();
                info!(parent: &self.span, ?close_code, "socket lost; recovering");
                self.phase = Phase::Recovering(Recovery::start(now));
                self.emit(Event::Recovering { connection_id });
                self.try_recover(ctx);
            }
            AfterDrop::Reconnect => {
                info!(parent: &self.span, ?close_code, "connection lost; reconnecting");
                self.connection_lost(ctx);
                self.schedule_reconnect(Duration::from_millis(rand::random_range(0..100)), ctx);
            }
            AfterDrop::Stop => {
                info!(parent: &self.span, ?close_code, "connection lost; stopping");
                self.connection_lost(ctx);
                self.finish_stop(StopReason::ConnectionLost, ctx);
            }
        }
    }

    /// A connection ended for good: operations sent on it fail, `disconnected` is emitted.
    fn connection_lost(&mut self, _ctx: &mut Context<Self>) {
        self.fail_sent(|ack_id| ClientError::ConnectionLost { ack_id });
        let connection_id = self.connection_id.take();
        self.reconnection_token = None;
        self.sequence.on_new_connection();
        let message = self.last_disconnect_message.take();
        self.emit(Event::Disconnected {
            connection_id,
            message,
        });
    }

    fn try_recover(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let step = match &mut self.phase {
            Phase::Recovering(recovery) => recovery.next_attempt(now),
            _ => return,
        };
        match step {
            RecoveryStep::WaitUntil(at) => {
                let generation = self.generation;
                ctx.run_later(at.saturating_duration_since(now), move |act, ctx| {
                    if act.generation == generation {
                        act.try_recover(ctx);
                    }
                });
            }
            RecoveryStep::GiveUp => {
                info!(parent: &self.span, "recovery gave up; starting a new connection");
                self.recovery_gave_up(ctx);
            }
            RecoveryStep::TryNow(attempt) => {
                let (Some(url), Some(id), Some(token)) = (
                    self.access_url.as_ref(),
                    self.connection_id.as_deref(),
                    self.reconnection_token.as_ref(),
                ) else {
                    self.recovery_gave_up(ctx);
                    return;
                };
                debug!(parent: &self.span, attempt, "recovery attempt");
                let url = recovery_url(url.expose(), id, token);
                self.generation += 1;
                let generation = self.generation;
                let settings = self.settings();
                let open = async move { transport::open(url.as_str(), &settings).await };
                self.cancel_opening(ctx);
                self.opening = Some(ctx.spawn(open.into_actor(self).map(
                    move |result, act, ctx| {
                        if act.generation != generation {
                            return;
                        }
                        act.opening = None;
                        match result {
                            Ok((sink, stream)) => act.recovered_socket(sink, stream, ctx),
                            Err(e) => {
                                let error = ClientError::from_open(e, act.options.start_timeout);
                                debug!(parent: &act.span, %error, "recovery attempt failed");
                                act.recovery_attempt_failed(None, ctx);
                            }
                        }
                    },
                )));
            }
        }
    }

    fn recovery_attempt_failed(&mut self, close_code: Option<u16>, ctx: &mut Context<Self>) {
        if let Phase::Recovering(recovery) = &mut self.phase {
            recovery.on_attempt_failed(Instant::now(), close_code);
        }
        self.try_recover(ctx);
    }

    fn recovery_gave_up(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Connected; // leave Recovering so the drop path reconnects
        self.recovered_at = None;
        if self.options.auto_reconnect {
            self.connection_lost(ctx);
            self.schedule_reconnect(Duration::ZERO, ctx);
        } else {
            self.connection_lost(ctx);
            self.finish_stop(StopReason::ConnectionLost, ctx);
        }
    }

    fn recovered_socket(
        &mut self,
        sink: FrameSink,
        stream: transport::FrameStream,
        ctx: &mut Context<Self>,
    ) {
        let Phase::Recovering(recovery) = std::mem::replace(&mut self.phase, Phase::Connected)
        else {
            return;
        };
        let dropped_at = self.lost_at.unwrap_or_else(Instant::now);
        self.attach(sink, stream, ctx);
        self.recovered_at = Some((dropped_at, Instant::now(), recovery));
        self.sequence.on_recovered(Instant::now());
        self.flush_sequence_ack();
        self.send_unsent();
    }

    /// A recovered socket proved itself (a frame arrived, or it stayed open a second).
    fn confirm_recovery(&mut self) {
        if let Some((since, _, _)) = self.recovered_at.take() {
            self.counters.recoveries += 1;
            let connection_id = self.connection_id.clone().unwrap_or_default();
            info!(parent: &self.span, "recovered");
            self.send_unsent();
            let info = ConnectionInfo {
                connection_id: connection_id.clone(),
                user_id: self.user_id.clone(),
            };
            self.publish_status();
            for waiter in self.start_waiters.drain(..) {
                let _ = waiter.send(Ok(info.clone()));
            }
            self.emit(Event::Recovered {
                connection_id,
                after: since.elapsed(),
            });
        }
    }

    fn stop(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        if let Some(sink) = self.sink.as_mut() {
            let _ = sink.write(OutFrame::Close(crate::protocol::CLOSE_NORMAL));
        }
        let was_connected = self.connection_id.is_some();
        self.fail_all(|ack_id| ClientError::Stopped {
            ack_id: Some(ack_id),
        });
        if was_connected {
            let connection_id = self.connection_id.take();
            let message = self.last_disconnect_message.take();
            self.emit(Event::Disconnected {
                connection_id,
                message,
            });
        }
        self.finish_stop(StopReason::Requested, ctx);
    }

    /// Ends in `Stopped`: no socket, no timer, no event after this one.
    fn finish_stop(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        self.generation += 1;
        // The closing handshake: the writer flushes the close frame written by stop(), and the
        // read half stays until the peer answers (its frames are ignored, being of an older
        // generation), at most CLOSE_HANDSHAKE. Dropping it at once would reset the TCP
        // connection under the peer's reply, and the peer would see no close frame at all.
        // (SinkWrite::close() was seen to end the TCP connection before the close frame went
        // out, so the writer is kept as it is and dropped with the reader.)
        let writer = self.sink.take().map(|sink| sink.handle());
        let reader = self.stream.take();
        if writer.is_some() || reader.is_some() {
            ctx.run_later(CLOSE_HANDSHAKE, move |_, ctx| {
                for handle in writer.into_iter().chain(reader) {
                    ctx.cancel_future(handle);
                }
            });
        }
        if let Some(tick) = self.tick.take() {
            ctx.cancel_future(tick);
        }
        self.cancel_opening(ctx);
        self.phase = Phase::Stopped;
        self.recovered_at = None;
        self.connection_id = None;
        self.reconnection_token = None;
        self.fail_all(|ack_id| ClientError::Stopped {
            ack_id: Some(ack_id),
        });
        let error = match &reason {
            StopReason::StartFailed(e) => e.clone(),
            _ => ClientError::Stopped { ack_id: None },
        };
        self.publish_status();
        for waiter in self.start_waiters.drain(..) {
            let _ = waiter.send(Err(error.clone()));
        }
        info!(parent: &self.span, ?reason, "stopped");
        self.emit(Event::Stopped { reason });
    }

    // ---- operations -----------------------------------------------------------------

    /// Registers an operation and sends it when a socket is up.
    fn submit(
        &mut self,
        mut frame: Outbound,
        reply: Option<oneshot::Sender<Result<AckResult, ClientError>>>,
        membership: Membership,
    ) {
        let ack_id = self.ack_ids.assign(frame.ack_id());
        set_ack_id(&mut frame, Some(ack_id));
        let op = Op {
            frame,
            reply,
            retry: RetryState::new(self.options.message_retry),
            sent: false,
            orphaned: false,
            membership,
        };
        self.register(ack_id, op);
        if matches!(self.phase, Phase::Connected) && self.recovered_at.is_none() {
            self.send_op(ack_id);
        }
    }

    fn register(&mut self, ack_id: AckId, op: Op) {
        match self.options.ack_timeout {
            Some(t) => self.pending.register_until(ack_id, op, Instant::now() + t),
            None => self.pending.register(ack_id, op),
        }
    }

    /// Writes an operation's frame once for all waiters of its ack id.
    fn send_op(&mut self, ack_id: AckId) {
        let Some(text) = self
            .pending
            .waiters_mut(ack_id)
            .find(|op| !op.sent)
            .map(|op| encode_outbound(&op.frame))
        else {
            return;
        };
        if self.write(text) {
            for op in self.pending.waiters_mut(ack_id) {
                op.sent = true;
            }
        }
    }

    /// Sends every operation waiting for a socket, in the order first submitted; those sent
    /// on a socket that dropped go again with the same ack id.
    fn send_unsent(&mut self) {
        for ack_id in self.pending.resend_order() {
            let mut orphaned = false;
            for op in self.pending.waiters_mut(ack_id) {
                orphaned |= op.orphaned;
                op.orphaned = false;
            }
            if orphaned {
                self.counters.resends += 1;
            }
            self.send_op(ack_id);
        }
    }

    fn mark_all_unsent(&mut self) {
        for ack_id in self.pending.resend_order() {
            for op in self.pending.waiters_mut(ack_id) {
                op.orphaned |= op.sent;
                op.sent = false;
            }
        }
    }

    /// Fails the operations that were sent on a connection that ended for good.
    fn fail_sent(&mut self, error: impl Fn(AckId) -> ClientError) {
        for ack_id in self.pending.resend_order() {
            if self.pending.waiters_mut(ack_id).any(|op| op.orphaned) {
                for op in self.pending.take(ack_id) {
                    self.finish_op(ack_id, op, Err(error(ack_id)));
                }
            }
        }
    }

    fn fail_all(&mut self, error: impl Fn(AckId) -> ClientError) {
        for (ack_id, op) in self.pending.fail_all() {
            self.finish_op(ack_id, op, Err(error(ack_id)));
        }
    }

    fn finish_op(&mut self, ack_id: AckId, op: Op, result: Result<AckResult, ClientError>) {
        if let (Membership::Rejoin, Err(error)) = (op.membership, &result) {
            if let Outbound::JoinGroup { group, .. } = &op.frame {
                let group = group.clone();
                self.emit(Event::RejoinGroupFailed {
                    group,
                    error: error.clone(),
                });
            }
        }
        if let (Membership::Rejoin, Ok(_), Outbound::JoinGroup { group, .. }) =
            (op.membership, &result, &op.frame)
        {
            let group = group.clone();
            self.emit(Event::Rejoined { group });
        }
        if result.is_ok() {
            match (&op.frame, op.membership) {
                (Outbound::JoinGroup { group, .. }, Membership::Join | Membership::Rejoin) => {
                    self.groups.insert(group.clone());
                }
                (Outbound::LeaveGroup { group, .. }, Membership::Leave) => {
                    self.groups.remove(group);
                }
                _ => {}
            }
        }
        trace!(parent: &self.span, ack_id, ok = result.is_ok(), "operation finished");
        if let Some(reply) = op.reply {
            let _ = reply.send(result);
        }
    }

    fn on_ack(
        &mut self,
        ack_id: AckId,
        success: bool,
        error: Option<crate::protocol::AckError>,
        ctx: &mut Context<Self>,
    ) {
        let Some((ops, outcome)) = self.pending.resolve(ack_id, success, error) else {
            self.counters.unknown_acks = self.pending.unknown_acks();
            return;
        };
        match outcome {
            AckOutcome::Success { duplicated } => {
                for op in ops {
                    self.finish_op(
                        ack_id,
                        op,
                        Ok(AckResult {
                            ack_id: Some(ack_id),
                            duplicated,
                        }),
                    );
                }
            }
            AckOutcome::Failed(error) => {
                let error = error.unwrap_or(crate::protocol::AckError {
                    name: AckErrorName::Other("Unknown".into()),
                    message: String::new(),
                });
                let retriable = super::error::ack_is_transient(&error.name);
                for mut op in ops {
                    let delay = if retriable {
                        op.retry.next_delay()
                    } else {
                        None
                    };
                    match delay {
                        Some(delay) => {
                            op.sent = false;
                            self.register(ack_id, op);
                            let generation = self.generation;
                            ctx.run_later(delay, move |act, _| {
                                if act.generation == generation {
                                    act.counters.resends += 1;
                                    act.send_op(ack_id);
                                }
                            });
                        }
                        None => self.finish_op(
                            ack_id,
                            op,
                            Err(ClientError::Ack {
                                ack_id,
                                error: error.clone(),
                            }),
                        ),
                    }
                }
            }
        }
    }

    // ---- frames ---------------------------------------------------------------------

    fn write(&mut self, text: String) -> bool {
        if self.options.log_payloads {
            trace!(parent: &self.span, frame = %text, "send");
        } else {
            trace!(parent: &self.span, bytes = text.len(), "send");
        }
        match self.sink.as_mut() {
            Some(sink) => {
                let ok = sink.write(OutFrame::Text(text)).is_ok();
                if ok {
                    self.counters.frames_sent += 1;
                }
                ok
            }
            None => false,
        }
    }

    fn flush_sequence_ack(&mut self) {
        if let Some(sequence_id) = self.sequence.poll_ack(Instant::now()) {
            if !self.write(encode_outbound(&Outbound::SequenceAck { sequence_id })) {
                self.sequence.on_ack_send_failed(Instant::now());
            }
        }
    }

    fn on_frame(&mut self, frame: InFrame, ctx: &mut Context<Self>) {
        let now = Instant::now();
        match frame {
            InFrame::Text(bytes) | InFrame::Binary(bytes) => {
                self.keepalive.on_received(now);
                match decode_inbound_bytes(&bytes) {
                    Ok(inbound) => {
                        // `disconnected` comes before a refusal's close: it confirms nothing.
                        if self.recovered_at.is_some()
                            && !matches!(inbound, Inbound::Disconnected { .. })
                        {
                            self.confirm_recovery();
                        }
                        // `connected` carries the reconnection token: never logged whole.
                        let has_secret = matches!(inbound, Inbound::Connected { .. });
                        if self.options.log_payloads && !has_secret {
                            trace!(parent: &self.span, frame = %String::from_utf8_lossy(&bytes), "recv");
                        } else {
                            trace!(parent: &self.span, bytes = bytes.len(), "recv");
                        }
                        self.on_inbound(inbound, ctx)
                    }
                    Err(error) => {
                        self.counters.bad_frames += 1;
                        warn!(parent: &self.span, %error, bytes = bytes.len(), "ignoring a malformed frame");
                    }
                }
            }
            InFrame::Ping(payload) => {
                self.keepalive.on_received(now);
                if let Some(sink) = self.sink.as_mut() {
                    let _ = sink.write(OutFrame::Pong(payload));
                }
            }
            InFrame::Pong => self.keepalive.on_received(now),
            InFrame::Closed { code, reason } => {
                debug!(parent: &self.span, ?code, ?reason, "socket closed");
                self.on_socket_lost(code, ctx);
            }
            InFrame::Failed(error) => {
                debug!(parent: &self.span, %error, "socket failed");
                self.on_socket_lost(None, ctx);
            }
        }
    }

    fn on_inbound(&mut self, inbound: Inbound, ctx: &mut Context<Self>) {
        match inbound {
            Inbound::Ack {
                ack_id,
                success,
                error,
            } => self.on_ack(ack_id, success, error, ctx),
            Inbound::GroupMessage {
                sequence_id,
                group,
                from_user_id,
                data,
            } => {
                if self.accept_sequence(sequence_id) {
                    self.counters.delivered += 1;
                    self.emit(Event::GroupMessage(std::sync::Arc::new(GroupMessage {
                        group,
                        from_user_id,
                        data,
                        sequence_id,
                    })));
                }
            }
            Inbound::ServerMessage { sequence_id, data } => {
                if self.accept_sequence(sequence_id) {
                    self.counters.delivered += 1;
                    self.emit(Event::ServerMessage(std::sync::Arc::new(ServerMessage {
                        data,
                        sequence_id,
                    })));
                }
            }
            Inbound::Connected {
                connection_id,
                user_id,
                reconnection_token,
            } => self.on_connected(connection_id, user_id, reconnection_token),
            Inbound::Disconnected { message } => {
                debug!(parent: &self.span, ?message, "service said disconnected");
                self.last_disconnect_message = message;
            }
            Inbound::Pong => {}
            Inbound::Unknown { kind } => {
                self.counters.unknown_frames += 1;
                trace!(parent: &self.span, %kind, "ignoring a frame of an unknown type");
            }
        }
    }

    /// Sequence bookkeeping of a data message; false when it is a replayed duplicate.
    fn accept_sequence(&mut self, sequence_id: Option<u64>) -> bool {
        let verdict = self.sequence.on_message(sequence_id, Instant::now());
        self.flush_sequence_ack();
        match verdict {
            SeqVerdict::Deliver => true,
            SeqVerdict::Duplicate => {
                self.counters.duplicates_dropped += 1;
                false
            }
        }
    }

    fn on_tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for (ack_id, op) in self.pending.expired(now) {
            let after = self.options.ack_timeout.unwrap_or_default();
            self.finish_op(ack_id, op, Err(ClientError::AckTimeout { ack_id, after }));
        }
        if !matches!(self.phase, Phase::Connected) {
            return;
        }
        if let Some((_, opened, _)) = &self.recovered_at {
            let opened = *opened;
            if now.duration_since(opened) >= RECOVERY_CONFIRM {
                self.confirm_recovery();
            }
        }
        self.flush_sequence_ack();
        match self.keepalive.poll(now) {
            KeepaliveAction::Nothing => {}
            KeepaliveAction::SendPing => {
                if self.write(encode_outbound(&Outbound::Ping)) {
                    self.keepalive.on_sent_ping(now);
                }
            }
            KeepaliveAction::Dead => {
                warn!(parent: &self.span, "nothing received for the keepalive timeout; dropping the socket");
                self.on_socket_lost(None, ctx);
            }
        }
    }

    fn status(&self) -> ClientStatus {
        ClientStatus {
            state: self.client_state(),
            connection_id: self.connection_id.clone(),
            user_id: self.user_id.clone(),
            groups: self.groups.iter().cloned().collect(),
            pending: self.pending.len(),
            counters: self.counters.clone(),
        }
    }
}

/// Sets (or, with `None`, removes) the ack id of an operation frame.
fn set_ack_id(frame: &mut Outbound, id: Option<AckId>) {
    match frame {
        Outbound::JoinGroup { ack_id, .. }
        | Outbound::LeaveGroup { ack_id, .. }
        | Outbound::SendToGroup { ack_id, .. }
        | Outbound::Event { ack_id, .. } => *ack_id = id,
        Outbound::SequenceAck { .. } | Outbound::Ping => {}
    }
}

impl Actor for ClientActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        debug!(parent: &self.span, "client actor stopped");
        // The last handle is gone (or the arbiter stopped): nobody can wait on these anymore,
        // but answer them so no future hangs.
        self.fail_all(|ack_id| ClientError::Stopped {
            ack_id: Some(ack_id),
        });
    }
}

/// A frame tagged with the generation of the socket it came from.
struct Frame(u64, InFrame);

impl StreamHandler<Frame> for ClientActor {
    fn handle(&mut self, Frame(generation, frame): Frame, ctx: &mut Context<Self>) {
        if generation == self.generation {
            self.on_frame(frame, ctx);
        }
    }

    // Socket streams end with an explicit `Closed` frame; the actor lives on.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl WriteHandler<String> for ClientActor {
    fn error(&mut self, error: String, ctx: &mut Context<Self>) -> Running {
        debug!(parent: &self.span, %error, "socket write failed");
        // Called from inside the writer's own poll, which holds its state borrowed: touching
        // the writer now would panic, so the loss is handled on the next turn.
        let generation = self.generation;
        ctx.run_later(Duration::ZERO, move |act, ctx| {
            if act.generation == generation {
                act.on_socket_lost(None, ctx);
            }
        });
        // A failed sink is finished: polling it again would panic inside futures' adapters.
        Running::Stop
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

// ---- command handlers -------------------------------------------------------------------

impl Handler<Start> for ClientActor {
    type Result = ResponseFuture<Result<ConnectionInfo, ClientError>>;

    fn handle(&mut self, _: Start, ctx: &mut Context<Self>) -> Self::Result {
        // An actor started without a `Client` constructor is checked here, and one whose last
        // handle was dropped is ending: an `Addr` must not bring it back (h5).
        if let Err(error) = self.options.validate() {
            return Box::pin(async move { Err(error) });
        }
        if self.released {
            return Box::pin(async { Err(ClientError::ActorGone) });
        }
        let (tx, rx) = oneshot::channel();
        match (&self.phase, &self.connection_id) {
            (Phase::Connected, Some(id)) => {
                let _ = tx.send(Ok(ConnectionInfo {
                    connection_id: id.clone(),
                    user_id: self.user_id.clone(),
                }));
            }
            (Phase::Stopped, _) => {
                self.start_waiters.push(tx);
                self.ever_connected = false;
                self.start(ctx);
            }
            _ => self.start_waiters.push(tx),
        }
        Box::pin(async move { rx.await.unwrap_or(Err(ClientError::ActorGone)) })
    }
}

impl Handler<Stop> for ClientActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.stop(ctx);
    }
}

impl Handler<Operation> for ClientActor {
    type Result = ResponseFuture<Result<AckResult, ClientError>>;

    fn handle(&mut self, msg: Operation, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let membership = match &msg.frame {
            Outbound::JoinGroup { .. } => Membership::Join,
            Outbound::LeaveGroup { .. } => Membership::Leave,
            _ => Membership::None,
        };
        if matches!(self.phase, Phase::Stopped) {
            let _ = tx.send(Err(ClientError::NotStarted));
        } else if msg.fire_and_forget {
            let _ = tx.send(self.fire_and_forget(msg.frame, membership));
        } else if self.pending.len() >= self.options.max_pending {
            let _ = tx.send(Err(ClientError::TooManyPending {
                max: self.options.max_pending,
            }));
        } else {
            self.submit(msg.frame, Some(tx), membership);
        }
        Box::pin(async move { rx.await.unwrap_or(Err(ClientError::ActorGone)) })
    }
}

impl ClientActor {
    fn fire_and_forget(
        &mut self,
        mut frame: Outbound,
        membership: Membership,
    ) -> Result<AckResult, ClientError> {
        let connected = matches!(self.phase, Phase::Connected) && self.sink.is_some();
        set_ack_id(&mut frame, None);
        if !connected || !self.write(encode_outbound(&frame)) {
            return Err(ClientError::NotConnected);
        }
        match (&frame, membership) {
            (Outbound::JoinGroup { group, .. }, Membership::Join) => {
                self.groups.insert(group.clone());
            }
            (Outbound::LeaveGroup { group, .. }, Membership::Leave) => {
                self.groups.remove(group);
            }
            _ => {}
        }
        Ok(AckResult {
            ack_id: None,
            duplicated: false,
        })
    }
}

impl Handler<SubscribeCallback> for ClientActor {
    type Result = MessageResult<SubscribeCallback>;

    fn handle(&mut self, msg: SubscribeCallback, ctx: &mut Context<Self>) -> Self::Result {
        let panics = ctx.address().recipient();
        MessageResult(self.subscribers.add_callback(
            msg.kind,
            msg.callback,
            self.options.event_queue,
            panics,
        ))
    }
}

impl Handler<SubscribeRecipient> for ClientActor {
    type Result = MessageResult<SubscribeRecipient>;

    fn handle(&mut self, msg: SubscribeRecipient, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.subscribers.add_recipient(msg.kind, msg.recipient))
    }
}

impl Handler<SubscribeStream> for ClientActor {
    type Result = MessageResult<SubscribeStream>;

    fn handle(&mut self, msg: SubscribeStream, _: &mut Context<Self>) -> Self::Result {
        let capacity = msg.capacity.unwrap_or(self.options.event_queue);
        MessageResult(self.subscribers.add_channel(msg.kind, capacity))
    }
}

impl Handler<Unsubscribe> for ClientActor {
    type Result = bool;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) -> bool {
        self.subscribers.remove(msg.0)
    }
}

impl Handler<GetStatus> for ClientActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<CallbackPanicked> for ClientActor {
    type Result = ();

    fn handle(&mut self, msg: CallbackPanicked, _: &mut Context<Self>) {
        // After `stopped` nothing is emitted, not even a late panic report.
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        self.emit(Event::CallbackPanicked {
            kind: msg.kind,
            message: msg.message,
        });
    }
}

// ---- handles and the published status (h5) -----------------------------------------------
// `Client` handles count here: each handle family (a `Client` and its clones) is acquired once
// and released when its last clone drops; the last release stops the client and ends the
// actor. The status the handles read synchronously is published from the calls above: in
// `emit`, when a new connection is being opened, and before `start()` waiters are answered.

impl ClientActor {
    /// The actor of a `Client` constructor: its first handle family is counted before the
    /// actor starts, and the handles read the status published through `status_tx`.
    pub(super) fn with_first_handle(mut self, status_tx: watch::Sender<StatusSnapshot>) -> Self {
        self.status_tx = status_tx;
        self.handles = 1;
        self
    }

    fn client_state(&self) -> ClientState {
        match self.phase {
            Phase::Stopped => ClientState::Stopped,
            Phase::Connecting => ClientState::Connecting,
            Phase::Connected => ClientState::Connected,
            Phase::Recovering(_) => ClientState::Recovering,
            Phase::WaitingToReconnect => ClientState::Disconnected,
        }
    }

    /// Publishes state and connection for the handles' accessors, if they changed (compared
    /// in place: no allocation on the per-message path).
    fn publish_status(&self) {
        // Between a lost connection's `disconnected` and the next phase, `phase` may still say
        // Connected while the connection id is gone: that is not connected.
        let state = match (&self.phase, &self.connection_id) {
            (Phase::Connected, None) => ClientState::Disconnected,
            _ => self.client_state(),
        };
        self.status_tx.send_if_modified(|published| {
            if published.state == state
                && published.connection_id == self.connection_id
                && published.user_id == self.user_id
            {
                return false;
            }
            *published = StatusSnapshot {
                state,
                connection_id: self.connection_id.clone(),
                user_id: self.user_id.clone(),
            };
            true
        });
    }
}

impl Handler<AcquireHandle> for ClientActor {
    type Result = MessageResult<AcquireHandle>;

    fn handle(&mut self, _: AcquireHandle, _: &mut Context<Self>) -> Self::Result {
        if self.released {
            return MessageResult(None);
        }
        self.handles += 1;
        MessageResult(Some(self.status_tx.subscribe()))
    }
}

impl Handler<ReleaseHandle> for ClientActor {
    type Result = ();

    fn handle(&mut self, _: ReleaseHandle, ctx: &mut Context<Self>) {
        self.handles = self.handles.saturating_sub(1);
        if self.handles > 0 || self.released {
            return;
        }
        self.released = true;
        debug!(parent: &self.span, "last handle dropped; stopping");
        self.stop(ctx);
        // The close frame and the peer's answer get the closing handshake's time, then the
        // actor ends, and with it every socket half, timer and subscriber it holds.
        ctx.run_later(CLOSE_HANDSHAKE, |_, ctx| ctx.stop());
    }
}
