//! `ClientActor`: the I/O shell around one [`ClientSession`].
//!
//! Every decision (recover or reconnect, what to resend, when an operation fails, which event
//! to report) is the session's, a pure state machine in `session/` tested with tables and a
//! simulator. The actor does what the session cannot: it opens sockets through the transport,
//! writes and reads frames, keeps one timer armed at the session's next deadline, answers the
//! handles' futures and hands events to the subscribers. Frames and open results carry the
//! [`SocketId`] they belong to, and the session ignores stale ones, which is how `stop()` wins
//! every race.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use futures::StreamExt;
use tokio::sync::{oneshot, watch};
use tracing::{debug, trace, warn};

use crate::credential::{ClientAccessUrl, Credential};
use crate::protocol::{CLOSE_NORMAL, Codec, FrameKind, Inbound, Outbound, WireFrame};
use crate::session::{
    Action, ClientSession, Incoming, OpError, OpId, OpenKind, SessionConfig, SessionEvent,
    SessionState, SocketId, recovery_url,
};

use super::dispatch::{CallbackPanicked, Subscribers};
use super::event::Event;
use super::messages::*;
use super::outputs;
use super::transport::{
    self, Blackhole, FrameSink, InFrame, OutFrame, SocketFault, SocketSettings,
};
use super::{AckResult, ClientError, ClientOptions, ClientState, ConnectionInfo, InvokeResponse};
use super::{AcquireHandle, ReleaseHandle, StatusSnapshot};

/// How long a stopped client waits for the peer's close frame before dropping the socket.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// The actor behind a [`super::Client`].
pub struct ClientActor {
    options: ClientOptions,
    /// The codec of the subprotocol asked for (the socket opens only if the peer chose it).
    codec: Codec,
    credential: Credential,
    span: tracing::Span,
    session: ClientSession<ClientError>,
    /// The open socket: its id, writer and reader.
    socket: Option<SocketId>,
    sink: Option<SinkWrite<OutFrame, FrameSink>>,
    stream: Option<SpawnHandle>,
    /// The open socket's blackhole switch (a fault injected on purpose, [`SocketFault`]).
    hole: Option<Blackhole>,
    /// The connect or recovery attempt in flight.
    opening: Option<SpawnHandle>,
    /// The timer armed at the session's next deadline, and that deadline.
    wake: Option<(Instant, SpawnHandle)>,
    access_url: Option<ClientAccessUrl>,
    start_waiters: Vec<Reply<ConnectionInfo>>,
    replies: HashMap<OpId, Reply<AckResult>>,
    /// Who waits for each invocation.
    invocations: HashMap<OpId, Reply<InvokeResponse>>,
    subscribers: Subscribers,
    // Handles and the status they read (h5; see the block at the end of this file).
    status_tx: watch::Sender<StatusSnapshot>,
    /// What `status_tx` was last given, as the session's state and identity epoch: most
    /// batches (a message delivered) change neither, and comparing these two is cheaper than
    /// taking the channel's lock to compare strings.
    published: Option<(ClientState, u64)>,
    handles: usize,
    released: bool,
}

impl ClientActor {
    /// A stopped client; send it [`Start`] to connect.
    pub fn new(credential: Credential, options: ClientOptions) -> ClientActor {
        let span = tracing::info_span!(
            "client",
            index = options.index,
            connection_id = tracing::field::Empty
        );
        let config = SessionConfig {
            reliable: options.protocol.is_reliable(),
            auto_reconnect: options.auto_reconnect,
            auto_rejoin_groups: options.auto_rejoin_groups,
            message_retry: options.message_retry,
            reconnect_retry: options.reconnect_retry,
            start_timeout: options.start_timeout,
            ack_timeout: options.ack_timeout,
            keepalive_interval: options.keepalive_interval,
            keepalive_timeout: options.keepalive_timeout,
            max_pending: options.max_pending,
            recovery: Default::default(),
            seed: rand::random(),
        };
        ClientActor {
            session: ClientSession::new(config, Instant::now()),
            codec: options.protocol.codec(),
            options,
            credential,
            span,
            socket: None,
            sink: None,
            stream: None,
            hole: None,
            opening: None,
            wake: None,
            access_url: None,
            start_waiters: Vec::new(),
            replies: HashMap::new(),
            invocations: HashMap::new(),
            subscribers: Subscribers::default(),
            status_tx: watch::Sender::new(StatusSnapshot::STOPPED),
            published: None,
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

    /// Performs what the session asked for, then arms the timer at its next deadline.
    fn run(&mut self, ctx: &mut Context<Self>) {
        self.perform(ctx);
        let Some(at) = self.session.next_wake() else {
            return;
        };
        // An armed timer that fires earlier than needed only costs a tick.
        if self.wake.as_ref().is_some_and(|(armed, _)| *armed <= at) {
            return;
        }
        if let Some((_, handle)) = self.wake.take() {
            ctx.cancel_future(handle);
        }
        let delay = at.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(delay, |act, ctx| {
            act.wake = None;
            act.session.on_tick(Instant::now());
            act.run(ctx);
        });
        self.wake = Some((at, handle));
    }

    fn perform(&mut self, ctx: &mut Context<Self>) {
        // The session's state is final for this batch: the handles read it before any event
        // or `start()` answer of the batch reaches anyone.
        self.publish_status();
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Send(frame) => self.write(&frame),
                Action::Open(socket, kind) => self.open(socket, kind, ctx),
                Action::Drop => self.drop_socket(ctx),
                Action::Close => self.close(ctx),
                Action::Emit(event) => self.emit_session_event(event, ctx),
                Action::Resolve(id, result) => {
                    if let Some(reply) = self.replies.remove(&id) {
                        let _ = reply.send(outputs::op_result(result));
                    }
                }
                Action::Invoked(id, result) => {
                    if let Some(reply) = self.invocations.remove(&id) {
                        let _ = reply.send(outputs::invoke_result(result));
                    }
                }
                Action::StartDone(result) => {
                    let result = outputs::start_result(result);
                    for waiter in self.start_waiters.drain(..) {
                        let _ = waiter.send(result.clone());
                    }
                }
            }
        }
    }

    fn emit_session_event(&mut self, event: SessionEvent<ClientError>, ctx: &mut Context<Self>) {
        if let SessionEvent::Stopped(_) = &event {
            if let Some((_, handle)) = self.wake.take() {
                ctx.cancel_future(handle);
            }
        }
        let event = outputs::event(event);
        outputs::log(&self.span, &event);
        self.emit(event);
    }

    fn emit(&mut self, event: Event) {
        if let Some(observer) = &self.options.observer {
            observer.observe(self.options.index, &event);
        }
        self.subscribers.deliver(&event);
    }

    // ---- sockets ----------------------------------------------------------------------

    /// Drops the current socket without a word to the peer, and any attempt in flight. The
    /// writer is cancelled too: on a dead link a pending write could otherwise hold the socket
    /// until TCP gives up.
    fn drop_socket(&mut self, ctx: &mut Context<Self>) {
        self.cancel_opening(ctx);
        self.socket = None;
        self.hole = None;
        if let Some(handle) = self.stream.take() {
            ctx.cancel_future(handle);
        }
        if let Some(sink) = self.sink.take() {
            ctx.cancel_future(sink.handle());
        }
    }

    fn cancel_opening(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.opening.take() {
            ctx.cancel_future(handle);
        }
    }

    /// The closing handshake: the writer flushes the close frame, and the read half stays
    /// until the peer answers (its frames are ignored, being of a retired socket), at most
    /// CLOSE_HANDSHAKE. Dropping it at once would reset the TCP connection under the peer's
    /// reply, and the peer would see no close frame at all. (SinkWrite::close() was seen to
    /// end the TCP connection before the close frame went out, so the writer is kept as it is
    /// and dropped with the reader.)
    fn close(&mut self, ctx: &mut Context<Self>) {
        self.close_with(CLOSE_NORMAL, ctx);
    }

    /// [`Self::close`] with this close code.
    fn close_with(&mut self, code: u16, ctx: &mut Context<Self>) {
        self.socket = None;
        self.hole = None;
        if let Some(sink) = self.sink.as_mut() {
            let _ = sink.write(OutFrame::Close(code));
        }
        let writer = self.sink.take().map(|sink| sink.handle());
        let reader = self.stream.take();
        if writer.is_some() || reader.is_some() {
            ctx.run_later(CLOSE_HANDSHAKE, move |_, ctx| {
                for handle in writer.into_iter().chain(reader) {
                    ctx.cancel_future(handle);
                }
            });
        }
        self.cancel_opening(ctx);
    }

    fn open(&mut self, socket: SocketId, kind: OpenKind, ctx: &mut Context<Self>) {
        self.drop_socket(ctx);
        let settings = self.settings();
        let credential = self.credential.clone();
        // A recovery reopens the access URL the connection was made with; a new connection
        // asks the credential for a fresh one.
        let recovery = match kind {
            OpenKind::Connect => None,
            OpenKind::Recover {
                connection_id,
                reconnection_token,
            } => {
                debug!(parent: &self.span, "recovery attempt");
                Some(
                    self.access_url
                        .as_ref()
                        .map(|url| recovery_url(url.expose(), &connection_id, &reconnection_token)),
                )
            }
        };
        let open = async move {
            let (url, target) = match recovery {
                Some(Some(target)) => (None, target),
                Some(None) => {
                    let reason = "no access URL to recover the connection with".to_owned();
                    return Err(ClientError::Handshake(reason));
                }
                None => {
                    let url = credential
                        .next_url(SystemTime::now())
                        .await
                        .map_err(ClientError::Credential)?;
                    let target = url.expose().clone();
                    (Some(url), target)
                }
            };
            let socket = transport::open(target.as_str(), &settings)
                .await
                .map_err(|e| ClientError::from_open(e, settings.connect_timeout))?;
            Ok::<_, ClientError>((url, socket))
        };
        let handle = ctx.spawn(open.into_actor(self).map(move |result, act, ctx| {
            act.opening = None;
            let now = Instant::now();
            match result {
                Ok((url, (sink, stream, hole))) => {
                    if act.session.on_socket_opened(socket, now) {
                        if url.is_some() {
                            act.access_url = url;
                        }
                        act.socket = Some(socket);
                        act.hole = Some(hole);
                        act.sink = Some(SinkWrite::new(sink, ctx));
                        let tagged = stream.map(move |frame| Frame(socket, frame));
                        act.stream = Some(ctx.add_stream(tagged));
                    }
                }
                Err(error) => {
                    warn!(parent: &act.span, %error, "opening a socket failed");
                    let fatal =
                        matches!(error, ClientError::Unauthorized) && act.credential.is_fixed();
                    act.session.on_open_failed(socket, error, fatal, now);
                }
            }
            act.run(ctx);
        }));
        self.opening = Some(handle);
    }

    fn write(&mut self, frame: &Outbound) {
        let wire = match self.codec.try_encode_outbound(frame) {
            Ok(wire) => wire,
            // Unreachable through the API (invokes are refused on protobuf first); a frame
            // the codec cannot carry is not written rather than written wrong.
            Err(error) => return warn!(parent: &self.span, %error, "frame not sent"),
        };
        if !self.options.log_payloads {
            trace!(parent: &self.span, bytes = wire.len(), "send");
        } else if let WireFrame::Text(text) = &wire {
            trace!(parent: &self.span, frame = %text, "send");
        } else {
            // Protobuf bytes say nothing to a reader: the frame they encode does.
            trace!(parent: &self.span, ?frame, bytes = wire.len(), "send");
        }
        // A failed write is the writer's error, reported through `WriteHandler::error`.
        if let Some(sink) = self.sink.as_mut() {
            let _ = sink.write(match wire {
                WireFrame::Text(text) => OutFrame::Text(text),
                WireFrame::Binary(bytes) => OutFrame::Binary(bytes),
            });
        }
    }

    fn on_frame(&mut self, socket: SocketId, frame: InFrame, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let incoming = match frame {
            InFrame::Text(bytes) => self.decode(FrameKind::Text, &bytes),
            InFrame::Binary(bytes) => self.decode(FrameKind::Binary, &bytes),
            InFrame::Ping(payload) => {
                if let Some(sink) = self.sink.as_mut() {
                    let _ = sink.write(OutFrame::Pong(payload));
                }
                Incoming::Traffic
            }
            InFrame::Pong => Incoming::Traffic,
            InFrame::Closed { code, reason } => {
                debug!(parent: &self.span, ?code, ?reason, "socket closed");
                self.session.on_socket_lost(socket, code, now);
                return self.run(ctx);
            }
            InFrame::Failed(error) => {
                debug!(parent: &self.span, %error, "socket failed");
                self.session.on_socket_lost(socket, None, now);
                return self.run(ctx);
            }
        };
        self.session.on_frame(socket, incoming, now);
        self.run(ctx);
    }

    /// Decodes a data frame with the subprotocol's codec. A frame that does not decode (bad
    /// JSON, a truncated protobuf message, an `Any` without a type, a text frame on a
    /// protobuf subprotocol) is logged and reported as `Malformed`: the session counts it and
    /// the connection goes on, whichever the codec.
    fn decode(&self, kind: FrameKind, bytes: &[u8]) -> Incoming {
        match self.codec.decode_inbound(kind, bytes) {
            Ok(inbound) => {
                // `connected` carries the reconnection token: never logged whole.
                let has_secret = matches!(inbound, Inbound::Connected { .. });
                if !self.options.log_payloads || has_secret {
                    trace!(parent: &self.span, bytes = bytes.len(), "recv");
                } else if self.codec == Codec::Json {
                    trace!(parent: &self.span, frame = %String::from_utf8_lossy(bytes), "recv");
                } else {
                    trace!(parent: &self.span, frame = ?inbound, bytes = bytes.len(), "recv");
                }
                if let Inbound::Disconnected { message } = &inbound {
                    debug!(parent: &self.span, ?message, "service said disconnected");
                }
                Incoming::Frame(inbound)
            }
            Err(error) => {
                warn!(parent: &self.span, %error, bytes = bytes.len(), "ignoring a malformed frame");
                Incoming::Malformed
            }
        }
    }
}

impl Actor for ClientActor {
    type Context = Context<Self>;

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        debug!(parent: &self.span, "client actor stopped");
        // The last handle is gone (or the arbiter stopped): nobody can wait on these anymore,
        // but answer them so no future hangs.
        self.session.abandon();
        self.perform(ctx);
    }
}

/// A frame tagged with the socket it came from.
struct Frame(SocketId, InFrame);

impl StreamHandler<Frame> for ClientActor {
    fn handle(&mut self, Frame(socket, frame): Frame, ctx: &mut Context<Self>) {
        if self.socket == Some(socket) {
            self.on_frame(socket, frame, ctx);
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
        if let Some(socket) = self.socket {
            ctx.run_later(Duration::ZERO, move |act, ctx| {
                act.session.on_socket_lost(socket, None, Instant::now());
                act.run(ctx);
            });
        }
        // A failed sink is finished: polling it again would panic inside futures' adapters.
        Running::Stop
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

// ---- command handlers -------------------------------------------------------------------

impl Handler<Start> for ClientActor {
    type Result = ResponseFuture<Result<ConnectionInfo, ClientError>>;

    fn handle(&mut self, _: Start, ctx: &mut Context<Self>) -> Self::Result {
        // An actor whose last handle was dropped is ending: an `Addr` must not bring it back
        // (h5).
        if self.released {
            return Box::pin(async { Err(ClientError::ActorGone) });
        }
        let (tx, rx) = oneshot::channel();
        self.start_waiters.push(tx);
        self.session.start(Instant::now());
        self.run(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(ClientError::ActorGone)) })
    }
}

impl Handler<Stop> for ClientActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.session.stop(Instant::now());
        self.run(ctx);
    }
}

impl Handler<Operation> for ClientActor {
    type Result = ResponseFuture<Result<AckResult, ClientError>>;

    fn handle(&mut self, msg: Operation, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if msg.fire_and_forget {
            let writable = self.sink.as_ref().is_some_and(|sink| !sink.closed());
            let result = match self.session.state() {
                SessionState::Stopped => Err(OpError::NotStarted),
                _ if !writable => Err(OpError::NotConnected),
                _ => self.session.send_without_ack(msg.frame),
            };
            let _ = tx.send(outputs::op_result(result));
        } else {
            let id = self.session.submit(msg.frame, Instant::now());
            self.replies.insert(id, tx);
        }
        self.run(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(ClientError::ActorGone)) })
    }
}

impl Handler<super::Invoke> for ClientActor {
    type Result = ResponseFuture<Result<InvokeResponse, ClientError>>;

    fn handle(&mut self, msg: super::Invoke, ctx: &mut Context<Self>) -> Self::Result {
        // Refused before the session sees it: the protobuf codec has no invoke frames.
        if self.codec != Codec::Json {
            let refused = ClientError::InvokeUnsupported(self.options.protocol);
            return Box::pin(async move { Err(refused) });
        }
        let (tx, rx) = oneshot::channel();
        let timeout = self.options.invoke_timeout;
        let id = self
            .session
            .invoke(msg.event, msg.data, timeout, Instant::now());
        self.invocations.insert(id, tx);
        // Either end of the caller's future (answered or dropped) drops the sender; after an
        // answer the cancel is a no-op.
        ctx.spawn(msg.cancel.into_actor(self).map(move |_, act, ctx| {
            act.session.cancel_invocation(id);
            act.invocations.remove(&id);
            act.run(ctx);
        }));
        self.run(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(ClientError::ActorGone)) })
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
        MessageResult(outputs::status(
            &self.session,
            self.subscribers.dropped_total,
        ))
    }
}

impl Handler<CallbackPanicked> for ClientActor {
    type Result = ();

    fn handle(&mut self, msg: CallbackPanicked, _: &mut Context<Self>) {
        // After `stopped` nothing is emitted, not even a late panic report.
        if self.session.state() == SessionState::Stopped {
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
// actor. The status the handles read synchronously is published before each batch of the
// session's actions is performed.

impl ClientActor {
    /// The actor of a `Client` constructor: its first handle family is counted before the
    /// actor starts, and the handles read the status published through `status_tx`.
    pub(super) fn with_first_handle(mut self, status_tx: watch::Sender<StatusSnapshot>) -> Self {
        self.status_tx = status_tx;
        self.handles = 1;
        self
    }

    /// Publishes state and connection for the handles' accessors, if they changed (compared
    /// in place: no allocation on the per-message path).
    fn publish_status(&mut self) {
        let connection_id = self.session.connection_id();
        let user_id = self.session.user_id();
        // Connected without a connection id is a connection already lost: not connected.
        let state = match (outputs::client_state(self.session.state()), connection_id) {
            (ClientState::Connected, None) => ClientState::Disconnected,
            (state, _) => state,
        };
        let now = Some((state, self.session.identity_epoch()));
        if self.published == now {
            return;
        }
        self.published = now;
        self.status_tx.send_if_modified(|published| {
            if published.state == state
                && published.connection_id.as_deref() == connection_id
                && published.user_id.as_deref() == user_id
            {
                return false;
            }
            *published = StatusSnapshot {
                state,
                connection_id: connection_id.map(str::to_owned),
                user_id: user_id.map(str::to_owned),
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
        self.session.stop(Instant::now());
        self.run(ctx);
        // The close frame and the peer's answer get the closing handshake's time, then the
        // actor ends, and with it every socket half, timer and subscriber it holds.
        ctx.run_later(CLOSE_HANDSHAKE, |_, ctx| ctx.stop());
    }
}

// ---- faults injected into the client's own socket (issue 8: chaos against any hub) --------
// The fault itself is the transport's (`SocketFault`); the actor only tells the session what
// happened, as if the network or the peer had done it, and the session decides the rest.

impl Handler<super::InjectFault> for ClientActor {
    type Result = bool;

    fn handle(
        &mut self,
        super::InjectFault(fault): super::InjectFault,
        ctx: &mut Context<Self>,
    ) -> bool {
        // No socket, or one already blackholed: nothing left to fault.
        let (Some(socket), Some(hole)) = (self.socket, self.hole.as_ref()) else {
            return false;
        };
        if hole.engaged() || fault.validate().is_err() {
            return false;
        }
        debug!(parent: &self.span, %fault, "injecting a fault into the socket");
        let now = Instant::now();
        match fault {
            SocketFault::Drop => {
                self.drop_socket(ctx);
                self.session.on_socket_lost(socket, None, now);
            }
            // The session finds out by itself, through its keepalive: that is the point.
            SocketFault::Blackhole => hole.engage(),
            SocketFault::Close(code) => {
                self.close_with(code, ctx);
                self.session.on_socket_lost(socket, Some(code), now);
            }
        }
        self.run(ctx);
        true
    }
}
