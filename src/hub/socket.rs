//! The client endpoint (`/client/hubs/{hub}`, `/client/?hub=`) and one session actor per
//! socket. This is the only file that names actix-web-actors types.
//!
//! Handshake order: hub name (400), recovery (`awps_connection_id`: the upgrade is accepted
//! and a refused recovery is closed with 1008, as clients expect), connection limit (429),
//! access token (401), token group claims (400), the blocking `connect` event when a handler
//! takes it (its 4xx, or 500/502/503/504: `connect.rs`), subprotocol and mode (400), upgrade.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, SpawnHandle, StreamHandler,
    WrapFuture,
};
use actix_http::ws::Item;
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws::{self, CloseCode, CloseReason, Message, ProtocolError};
use base64::Engine as _;
use futures::Stream;

use super::auth;
use super::connect;
use super::frame_guard::{FrameGuard, Guarded};
use super::http::{self, first, plain};
use super::names;
use super::outbox::SocketEnd;
use super::reading::{ReadSwitch, Switched};
use super::requests::{self, After, Outcome};
use super::roles::Roles;
use super::state::{
    Connection, HubState, Mode, OutFrame, OutQueue, Publication, RawFrame, SocketRef, ToSocket,
};
use super::stats::bump;
use super::upstream::Reply;
use crate::protocol::{
    CLOSE_GOING_AWAY, CLOSE_INVALID_PAYLOAD, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG,
    CLOSE_UNRECOVERABLE, CLOSE_UNSUPPORTED_DATA, Inbound, Outbound, Payload,
    ProtocolError as FrameError, Subprotocol, json, protobuf,
};

/// The subprotocols the hub speaks (all four): the client's order decides.
const SUPPORTED: [Subprotocol; 4] = Subprotocol::ALL;

/// The first subprotocol the client offers that the hub supports, with the spelling the
/// client used (so the handshake echoes it exactly). Names compare ignoring ASCII case.
fn negotiate(req: &HttpRequest) -> Option<(Subprotocol, String)> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|offered| {
            SUPPORTED
                .iter()
                .find(|p| p.name().eq_ignore_ascii_case(offered))
                .map(|p| (*p, offered.to_owned()))
        })
}

/// What RFC 6455 4.2.1 requires of an upgrade beyond what actix-web-actors checks (it accepts
/// versions 7 and 8 and any key): version 13 only, answered otherwise with 426 and the version
/// the hub speaks (4.2.2); a key that is the base64 of 16 bytes, else 400. Requests without
/// these headers are left to `ws::handshake`, which refuses them with its own reason.
fn upgrade_problem(req: &HttpRequest) -> Option<HttpResponse> {
    let headers = req.headers();
    if let Some(version) = headers.get(header::SEC_WEBSOCKET_VERSION) {
        if version.as_bytes() != b"13" {
            return Some(
                HttpResponse::UpgradeRequired()
                    .insert_header((header::SEC_WEBSOCKET_VERSION, "13"))
                    .content_type("text/plain; charset=utf-8")
                    .body("Unsupported WebSocket version: the hub speaks version 13 (RFC 6455)"),
            );
        }
    }
    if let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
        if !decoded.is_ok_and(|k| k.len() == 16) {
            return Some(plain(
                StatusCode::BAD_REQUEST,
                "Invalid Sec-WebSocket-Key: it must be the base64 encoding of 16 random bytes",
            ));
        }
    }
    None
}

/// `GET /client/hubs/{hub}` and `GET /client/?hub={hub}`.
pub(crate) async fn client_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HubState>,
) -> HttpResponse {
    let state = state.into_inner();
    let query = http::query_pairs(&req);
    let in_path = req.match_info().get("hub");
    let in_query = first(&query, "hub");
    let hub = match (in_path, in_query) {
        (Some(p), Some(q)) if !p.eq_ignore_ascii_case(q) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "The hub in the path and the hub query parameter differ",
            );
        }
        (Some(h), _) | (None, Some(h)) => h.to_owned(),
        (None, None) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "No hub: use /client/hubs/{hub} or /client/?hub={hub}",
            );
        }
    };
    if !names::is_valid_hub_name(&hub) {
        return plain(
            StatusCode::BAD_REQUEST,
            "Invalid hub name: it must match ^[A-Za-z][A-Za-z0-9_`,.[\\]]{0,127}$",
        );
    }
    if state.is_stopping() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "The hub is shutting down");
    }
    if let Some(refusal) = upgrade_problem(&req) {
        return refusal;
    }
    if let Err(e) = ws::handshake(&req) {
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("Not a valid WebSocket upgrade request: {e}"),
        );
    }
    let offered = negotiate(&req);
    let max_size = state.config.max_message_size;

    if let Some(connection_id) = first(&query, "awps_connection_id") {
        return recover(
            &req,
            payload,
            &state,
            &hub,
            connection_id,
            first(&query, "awps_reconnection_token"),
            offered,
        );
    }

    if !state.has_room() {
        return HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, "1"))
            .content_type("text/plain; charset=utf-8")
            .body("ConnectionCountLimitReached: the hub holds its maximum number of connections");
    }

    let token = first(&query, "access_token")
        .filter(|t| !t.is_empty())
        .or_else(|| auth::bearer_token(http::authorization(&req)));
    let authorities = http::audience_authorities(&req, &state);
    let path = format!("/client/hubs/{hub}");
    let claims = match token {
        // `anonymousConnectPolicy: allow`: no user, no roles, no groups (a token, when
        // given, is still checked).
        None if state.config.allow_anonymous => anonymous(),
        None => {
            bump(&state.stats.unauthorized);
            return plain(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: no access token (use access_token or Authorization: Bearer)",
            );
        }
        Some(token) => {
            match auth::validate_for_path(token, &state.key, &authorities, &path, SystemTime::now())
            {
                Ok(claims) => claims,
                Err(e) => {
                    bump(&state.stats.unauthorized);
                    return plain(StatusCode::UNAUTHORIZED, &auth::unauthorized_reason(&e));
                }
            }
        }
    };
    let token = token.unwrap_or_default();
    if let Some(problem) = claims
        .groups
        .iter()
        .find_map(|g| names::group_name_problem(g))
    {
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("Invalid webpubsub.group claim: {problem}"),
        );
    }

    let cap = state.config.max_groups_per_connection;
    let distinct: std::collections::HashSet<&String> = claims.groups.iter().collect();
    if distinct.len() > cap {
        return plain(
            StatusCode::BAD_REQUEST,
            &format!(
                "The token's webpubsub.group claim lists {} groups; a connection may be in at most {cap}",
                distinct.len()
            ),
        );
    }

    // The blocking `connect` event, when a handler takes it (hub/connect.rs).
    let all_offered = connect::offered_subprotocols(&req);
    let admission = match connect::admit(&state, &req, &hub, token, claims, &all_offered).await {
        Ok(admission) => admission,
        Err((status, reason)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return plain(status, &reason);
        }
    };
    // A subprotocol the handler chose replaces the hub's own pick; one the hub does not
    // speak makes a simple client that is told that name in the handshake.
    let accepted: Option<(Option<Subprotocol>, String)> = match admission.subprotocol {
        Some(name) => Some((
            SUPPORTED
                .iter()
                .find(|p| p.name().eq_ignore_ascii_case(&name))
                .copied(),
            name,
        )),
        None => offered.map(|(p, name)| (Some(p), name)),
    };
    let mode = match &accepted {
        Some((Some(subprotocol), _)) => Mode::of(*subprotocol),
        _ => match simple_mode(&query) {
            Ok(mode) => mode,
            Err(reason) => return plain(StatusCode::BAD_REQUEST, reason),
        },
    };
    let conn = state.new_connection(
        admission.connection_id,
        &hub,
        admission.user_id,
        mode,
        Roles::from_claims(&admission.roles),
    );
    if let Some(handler_state) = admission.connection_state {
        conn.set_handler_state(handler_state);
    }
    let actor = Session::new(
        state.clone(),
        conn,
        Start::New {
            groups: admission.groups,
        },
    );
    start(
        actor,
        &req,
        payload,
        accepted.as_ref().map(|(_, name)| name.as_str()),
        max_size,
    )
}

/// What an anonymous connection is: nobody, with no roles and no groups.
fn anonymous() -> crate::credential::TokenClaims {
    crate::credential::TokenClaims {
        user_id: None,
        roles: Vec::new(),
        groups: Vec::new(),
        expires_at: 0,
        issued_at: None,
    }
}

/// The mode of a client without a supported subprotocol (protocol.md 1.3).
fn simple_mode(query: &[(String, String)]) -> Result<Mode, &'static str> {
    match first(query, "webpubsub_mode") {
        None | Some("sendEvent") => Ok(Mode::Simple { publish_to: None }),
        Some("sendToGroup") => match first(query, "group") {
            Some(g) if names::group_name_problem(g).is_none() => Ok(Mode::Simple {
                publish_to: Some(g.to_owned()),
            }),
            _ => Err("webpubsub_mode=sendToGroup needs a valid group query parameter"),
        },
        Some(_) => Err("Unknown webpubsub_mode: use sendEvent or sendToGroup"),
    }
}

fn recover(
    req: &HttpRequest,
    payload: web::Payload,
    state: &Arc<HubState>,
    hub: &str,
    connection_id: &str,
    token: Option<&str>,
    offered: Option<(Subprotocol, String)>,
) -> HttpResponse {
    let max_size = state.config.max_message_size;
    let protocol = offered.as_ref().map(|(_, name)| name.as_str());
    match state.check_recovery(hub, connection_id, token, offered.as_ref().map(|(p, _)| *p)) {
        Ok(conn) => start(
            Session::new(state.clone(), conn, Start::Recover),
            req,
            payload,
            protocol,
            max_size,
        ),
        Err(refusal) => {
            bump(&state.stats.recoveries_refused);
            let actor = Refusal {
                state: state.clone(),
                reason: refusal.reason(),
            };
            let builder =
                ws::WsResponseBuilder::new(actor, req, GuardedPayload::new(payload, max_size))
                    .frame_size(max_size);
            let protocols: Vec<&str> = protocol.into_iter().collect();
            builder
                .protocols(&protocols)
                .start()
                .unwrap_or_else(|e| plain(StatusCode::BAD_REQUEST, &e.to_string()))
        }
    }
}

fn start(
    actor: Session,
    req: &HttpRequest,
    payload: web::Payload,
    protocol: Option<&str>,
    max_size: usize,
) -> HttpResponse {
    let protocols: Vec<&str> = protocol.into_iter().collect();
    // The `stop_reading` fault flips this switch (hub/reading.rs).
    let reading = actor.reading.clone();
    let payload = Switched::new(GuardedPayload::new(payload, max_size), reading);
    ws::WsResponseBuilder::new(actor, req, payload)
        .frame_size(max_size)
        .protocols(&protocols)
        .start()
        .unwrap_or_else(|e| plain(StatusCode::BAD_REQUEST, &e.to_string()))
}

/// A frame header the decoder refuses as soon as it reads it: a 64-bit length with the top bit
/// set, which RFC 6455 forbids and actix-http reports as `ProtocolError::Overflow` (answered
/// with 1009) without reserving anything.
const REFUSED_HEADER: [u8; 10] = [0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/// The client's bytes through a [`FrameGuard`]: the frames before an oversized one reach the
/// decoder in order, then [`REFUSED_HEADER`] in place of the oversized header, then the end
/// (nothing more is read from the socket).
struct GuardedPayload<S> {
    inner: S,
    guard: FrameGuard,
    /// The refused header, when the bytes before it were returned first.
    next: Option<Bytes>,
    ended: bool,
}

impl<S> GuardedPayload<S> {
    fn new(inner: S, max_size: usize) -> GuardedPayload<S> {
        GuardedPayload {
            inner,
            guard: FrameGuard::new(max_size),
            next: None,
            ended: false,
        }
    }
}

impl<S> Stream for GuardedPayload<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(bytes) = this.next.take() {
            return Poll::Ready(Some(Ok(bytes)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            let chunk = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => chunk,
                other => return other,
            };
            match this.guard.feed(chunk) {
                Guarded::Forward(bytes) if bytes.is_empty() => continue,
                Guarded::Forward(bytes) => return Poll::Ready(Some(Ok(bytes))),
                Guarded::Oversized { before, .. } => {
                    this.ended = true;
                    let refused = Bytes::from_static(&REFUSED_HEADER);
                    if before.is_empty() {
                        return Poll::Ready(Some(Ok(refused)));
                    }
                    this.next = Some(refused);
                    return Poll::Ready(Some(Ok(before)));
                }
            }
        }
    }
}

/// Frames a socket's batch buffer may keep room for between batches (32 bytes each).
const BATCH_KEEP: usize = 16;

/// How a session actor begins.
enum Start {
    /// A new connection: register, send `connected`, join the token's groups.
    New { groups: Vec<String> },
    /// A recovery: attach to the existing session, send `connected`, replay.
    Recover,
    /// Started.
    Running,
}

/// One socket of one connection.
pub(crate) struct Session {
    state: Arc<HubState>,
    conn: Arc<Connection>,
    start: Start,
    generation: u64,
    /// Frames the state queued for this socket; a `Drain` takes them all.
    queue: Arc<OutQueue>,
    /// The batch being written (kept between batches for its capacity).
    batch: VecDeque<(OutFrame, usize)>,
    last_heard: Instant,
    /// What `stopped` reports to the state.
    end: SocketEnd,
    /// A close frame was written (or the socket is being dropped): write nothing more.
    closed: bool,
    /// A fragmented message being reassembled: whether it is text, and its bytes so far
    /// (at most the message limit: more closes the socket with 1009).
    fragments: Option<(bool, BytesMut)>,
    /// Turned off by the `stop_reading` fault.
    reading: ReadSwitch,
    /// `invoke` calls waiting for the event handler, by invocation id (at most the
    /// `max_invocations_per_connection` option): cancelling one drops its wait.
    invocations: HashMap<String, SpawnHandle>,
}

impl Session {
    fn new(state: Arc<HubState>, conn: Arc<Connection>, start: Start) -> Session {
        let generation = state.next_generation();
        Session {
            state,
            conn,
            start,
            generation,
            queue: Arc::new(OutQueue::default()),
            batch: VecDeque::new(),
            last_heard: Instant::now(),
            end: SocketEnd::Lost,
            closed: false,
            fragments: None,
            reading: ReadSwitch::default(),
            invocations: HashMap::new(),
        }
    }

    /// Writes a control frame (`connected`, an ack, `disconnected`) in the connection's
    /// subprotocol.
    fn send(&mut self, ctx: &mut ws::WebsocketContext<Self>, frame: &Inbound) {
        if self.closed {
            return;
        }
        if !self.conn.mode.is_protobuf() {
            return ctx.text(json::encode_inbound(frame));
        }
        match protobuf::encode_inbound(frame) {
            Ok(bytes) => ctx.binary(bytes),
            Err(e) => {
                tracing::error!(connection_id = %self.conn.id, error = %e, "a frame the hub built has no protobuf form; skipped")
            }
        }
    }

    fn send_connected(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.conn.mode.speaks_protocol() {
            let frame = Inbound::Connected {
                connection_id: self.conn.id.clone(),
                user_id: self.conn.user_id.clone(),
                reconnection_token: self.conn.reconnection_token().cloned(),
            };
            self.send(ctx, &frame);
        }
    }

    fn write_frame(&mut self, ctx: &mut ws::WebsocketContext<Self>, frame: &OutFrame) {
        if self.closed {
            return;
        }
        let message = if self.conn.mode.is_protobuf() {
            Some(Message::Binary(
                frame.publication.protobuf_for(frame.sequence_id),
            ))
        } else if self.conn.mode.speaks_protocol() {
            text_message(frame.publication.json_for(frame.sequence_id))
        } else {
            match frame.publication.raw() {
                RawFrame::Text(b) => text_message(b.clone()),
                RawFrame::Binary(b) => Some(Message::Binary(b.clone())),
            }
        };
        match message {
            Some(m) => ctx.write_raw(m),
            None => {
                tracing::error!(connection_id = %self.conn.id, "a frame the hub built is not UTF-8; skipped")
            }
        }
    }

    /// Sends `system/disconnected` (JSON subprotocols) and a close frame, then stops.
    fn close(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        code: u16,
        reason: &str,
        end: SocketEnd,
    ) {
        if self.closed {
            return;
        }
        if self.conn.mode.speaks_protocol() {
            self.send(
                ctx,
                &Inbound::Disconnected {
                    message: Some(reason.to_owned()),
                },
            );
        }
        self.closed = true;
        self.state.stats.close_sent(code);
        ctx.close(Some(close_reason(code, reason)));
        self.end = end;
        ctx.stop();
    }

    /// Closes because of what the peer sent: the session ends.
    fn reject(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        tracing::debug!(connection_id = %self.conn.id, code, reason, "closing a client for its input");
        self.close(ctx, code, reason, SocketEnd::Ended);
    }

    /// Stops without a close frame.
    fn drop_now(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.closed {
            bump(&self.state.stats.drops);
        }
        self.closed = true;
        self.end = SocketEnd::Lost;
        ctx.stop();
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        match &self.conn.mode {
            Mode::Json | Mode::JsonReliable => self.on_request(text, ctx),
            Mode::Protobuf | Mode::ProtobufReliable => self.reject(
                ctx,
                CLOSE_UNSUPPORTED_DATA,
                "A protobuf subprotocol takes binary frames, each one UpstreamMessage",
            ),
            Mode::Simple { .. } => self.on_simple(Payload::Text(text.to_owned()), ctx),
        }
    }

    fn on_binary(&mut self, bytes: Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        match &self.conn.mode {
            // The service reads a binary frame holding UTF-8 JSON as it reads a text frame.
            Mode::Json | Mode::JsonReliable => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_request(text, ctx),
                Err(_) => self.reject(
                    ctx,
                    CLOSE_INVALID_PAYLOAD,
                    "A binary frame on a JSON subprotocol must hold UTF-8 JSON",
                ),
            },
            Mode::Protobuf | Mode::ProtobufReliable => self.on_protobuf(&bytes, ctx),
            Mode::Simple { .. } => self.on_simple(Payload::Binary(bytes), ctx),
        }
    }

    /// A binary frame on a protobuf subprotocol: one `UpstreamMessage`. One that does not
    /// decode closes the connection with 1008, as an unparsable JSON frame does.
    fn on_protobuf(&mut self, bytes: &[u8], ctx: &mut ws::WebsocketContext<Self>) {
        match protobuf::decode_outbound(bytes) {
            Ok(request) => self.dispatch(request, ctx),
            Err(error) => {
                bump(&self.state.stats.messages_in);
                self.reject(
                    ctx,
                    CLOSE_UNRECOVERABLE,
                    &format!("Invalid request: {error}"),
                );
            }
        }
    }

    /// One frame of a fragmented message (RFC 6455 5.4): buffered up to the message limit,
    /// then handled as the whole message it completes.
    fn on_fragment(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (first, last, bytes) = match item {
            Item::FirstText(b) => (Some(true), false, b),
            Item::FirstBinary(b) => (Some(false), false, b),
            Item::Continue(b) => (None, false, b),
            Item::Last(b) => (None, true, b),
        };
        let max = self.state.config.max_message_size;
        let (text, mut buffer) = match (first, self.fragments.take()) {
            (Some(text), None) => (text, BytesMut::new()),
            (None, Some(started)) => started,
            (Some(_), Some(_)) => {
                return self.reject(
                    ctx,
                    CLOSE_PROTOCOL_ERROR,
                    "A fragmented message began before the previous one ended",
                );
            }
            (None, None) => {
                return self.reject(
                    ctx,
                    CLOSE_PROTOCOL_ERROR,
                    "A continuation frame arrived with no fragmented message to continue",
                );
            }
        };
        if buffer.len() + bytes.len() > max {
            return self.reject(
                ctx,
                CLOSE_TOO_BIG,
                &format!("Message exceeds the {max}-byte limit"),
            );
        }
        buffer.extend_from_slice(&bytes);
        if !last {
            self.fragments = Some((text, buffer));
            return;
        }
        let whole = buffer.freeze();
        if !text {
            return self.on_binary(whole, ctx);
        }
        match std::str::from_utf8(&whole) {
            Ok(t) => self.on_text(t, ctx),
            Err(_) => self.reject(ctx, CLOSE_INVALID_PAYLOAD, "Text frame is not valid UTF-8"),
        }
    }

    fn on_request(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        match json::decode_outbound(text) {
            Ok(request) => self.dispatch(request, ctx),
            Err(error) => {
                bump(&self.state.stats.messages_in);
                let problem = error.to_string();
                let ack = match error {
                    FrameError::NotJson { .. }
                    | FrameError::NotAnObject
                    | FrameError::InvalidUtf8 { .. } => None,
                    _ => requests::bad_request_ack(&self.state, text, &problem),
                };
                match ack {
                    Some(ack) => self.send(ctx, &ack),
                    None => self.reject(
                        ctx,
                        CLOSE_UNRECOVERABLE,
                        &format!("Invalid request: {problem}"),
                    ),
                }
            }
        }
    }

    /// Handles a decoded request: invocations here (they live with the socket), the rest in
    /// [`requests::handle`].
    fn dispatch(&mut self, request: Outbound, ctx: &mut ws::WebsocketContext<Self>) {
        match request {
            Outbound::Invoke {
                invocation_id,
                event,
                data,
            } => self.on_invoke(invocation_id, &event, data, ctx),
            Outbound::CancelInvocation { invocation_id } => {
                bump(&self.state.stats.messages_in);
                // Nothing more is sent for it; an unknown id (already answered) is no error.
                if let Some(handle) = self.invocations.remove(&invocation_id) {
                    ctx.cancel_future(handle);
                }
            }
            other => {
                let outcome = requests::handle(&self.state, &self.conn, other);
                self.follow(outcome, ctx);
            }
        }
    }

    fn on_invoke(
        &mut self,
        invocation_id: String,
        event: &str,
        data: Payload,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let duplicate = self.invocations.contains_key(&invocation_id);
        let start = requests::invoke(
            &self.state,
            &self.conn,
            self.invocations.len(),
            duplicate,
            &invocation_id,
            event,
            data,
        );
        match start {
            requests::InvokeStart::Answer(response) => self.send(ctx, &response),
            requests::InvokeStart::Await(reply) => {
                let id = invocation_id.clone();
                let handle = ctx.spawn(reply.into_actor(self).map(move |result, act, ctx| {
                    act.invocations.remove(&id);
                    let reply = result.unwrap_or_else(|_| {
                        Reply::Failed("the event handler call was abandoned".to_owned())
                    });
                    let response = requests::invoke_replied(&act.conn, id, reply);
                    act.send(ctx, &response);
                }));
                self.invocations.insert(invocation_id, handle);
            }
        }
    }

    /// Writes a request's reply and does what follows: nothing, drop, or wait for the event
    /// handler (other requests go on meanwhile; the ack is sent when the handler answers).
    fn follow(&mut self, outcome: Outcome, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(reply) = &outcome.reply {
            self.send(ctx, reply);
        }
        match outcome.after {
            After::Continue => {}
            After::DropSocket => self.drop_now(ctx),
            After::EndConnection(reason) => self.reject(ctx, CLOSE_UNRECOVERABLE, &reason),
            After::AwaitHandler { ack_id, reply } => {
                ctx.spawn(reply.into_actor(self).map(move |result, act, ctx| {
                    let reply = result.unwrap_or_else(|_| {
                        Reply::Failed("the event handler call was abandoned".to_owned())
                    });
                    let outcome = requests::handler_replied(&act.state, &act.conn, ack_id, reply);
                    act.follow(outcome, ctx);
                }));
            }
        }
    }

    /// A frame of a simple WebSocket client: a publish in sendToGroup mode, else a `message`
    /// user event (to the event handler, or echoed with `echo_events`).
    fn on_simple(&mut self, data: Payload, ctx: &mut ws::WebsocketContext<Self>) {
        bump(&self.state.stats.messages_in);
        match &self.conn.mode {
            Mode::Simple {
                publish_to: Some(group),
            } => {
                let group = group.clone();
                if self
                    .conn
                    .allows(super::roles::Permission::SendToGroup, &group)
                {
                    requests::publish(&self.state, &self.conn, &group, false, data);
                } else {
                    bump(&self.state.stats.forbidden);
                }
            }
            _ => {
                if let Some(reply) = self.state.invoke(&self.conn, "message", &data) {
                    let after = After::AwaitHandler {
                        ack_id: None,
                        reply,
                    };
                    self.follow(Outcome { reply: None, after }, ctx);
                } else if self.state.config.echo_events {
                    self.state.deliver(&self.conn, &Publication::server(data));
                }
            }
        }
    }
}

/// A text message from bytes the hub produced (always UTF-8; checked, not assumed).
fn text_message(bytes: Bytes) -> Option<Message> {
    bytes.try_into().ok().map(Message::Text)
}

/// A close frame's reason: at most 123 bytes, cut at a character boundary.
fn close_reason(code: u16, reason: &str) -> CloseReason {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseReason {
        code: CloseCode::from(code),
        description: Some(reason[..end].to_owned()),
    }
}

impl Actor for Session {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state.socket_started();
        let socket = SocketRef {
            generation: self.generation,
            recipient: ctx.address().recipient(),
            queue: self.queue.clone(),
        };
        match std::mem::replace(&mut self.start, Start::Running) {
            Start::New { groups } => {
                if !self.state.attach_new(&self.conn, socket) {
                    return self.close(
                        ctx,
                        CLOSE_GOING_AWAY,
                        "The hub is shutting down",
                        SocketEnd::Ended,
                    );
                }
                self.send_connected(ctx);
                self.state
                    .emit_system(&self.conn, "connected", serde_json::json!({}));
                // Joined before any request is read: requests are handled after `started`.
                for group in &groups {
                    // The handshake refused tokens with more groups than the cap.
                    let _ = self.state.join(&self.conn, group);
                }
            }
            Start::Recover => match self.state.attach_recovered(&self.conn, socket) {
                Ok(replay) => {
                    self.send_connected(ctx);
                    for frame in &replay {
                        self.write_frame(ctx, frame);
                    }
                }
                Err(refusal) => {
                    bump(&self.state.stats.recoveries_refused);
                    return self.close(
                        ctx,
                        CLOSE_UNRECOVERABLE,
                        refusal.reason(),
                        SocketEnd::Ended,
                    );
                }
            },
            Start::Running => {}
        }
        let timeout = self.state.config.client_timeout;
        ctx.run_interval(self.state.config.keepalive_interval, move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                tracing::debug!(connection_id = %act.conn.id, "no frame from the client within the timeout; dropping");
                act.drop_now(ctx);
            } else if !act.closed {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.state
            .socket_ended(&self.conn, self.generation, self.end);
        self.state.socket_stopped();
    }
}

impl Handler<ToSocket> for Session {
    type Result = ();

    fn handle(&mut self, message: ToSocket, ctx: &mut Self::Context) {
        match message {
            ToSocket::Drain => {
                let mut batch = std::mem::take(&mut self.batch);
                self.queue.take(&mut batch);
                let mut now = None;
                for (frame, _) in batch.drain(..) {
                    if frame
                        .publication
                        .expired(|| *now.get_or_insert_with(Instant::now))
                    {
                        bump(&self.state.stats.messages_expired);
                    } else {
                        self.write_frame(ctx, &frame);
                    }
                }
                // A burst's buffer is not kept: thousands of idle sockets would hold it.
                if batch.capacity() <= BATCH_KEEP {
                    self.batch = batch;
                }
            }
            ToSocket::Close { code, reason } => {
                let end = if code == CLOSE_UNRECOVERABLE {
                    SocketEnd::Ended
                } else {
                    SocketEnd::ClosedRecoverable
                };
                self.close(ctx, code, &reason, end);
            }
            ToSocket::Drop => self.drop_now(ctx),
            ToSocket::StopReading => self.reading.stop(),
        }
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for Session {
    fn handle(&mut self, item: Result<Message, ProtocolError>, ctx: &mut Self::Context) {
        if self.closed {
            return;
        }
        self.last_heard = Instant::now();
        match item {
            Ok(Message::Text(text)) => self.on_text(&text, ctx),
            Ok(Message::Binary(bytes)) => self.on_binary(bytes, ctx),
            Ok(Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(Message::Ping(payload)) => ctx.pong(&payload),
            Ok(Message::Pong(_)) | Ok(Message::Nop) => {}
            Ok(Message::Close(reason)) => {
                let code = reason.as_ref().map(|r| u16::from(r.code)).unwrap_or(1005);
                self.closed = true;
                self.end = SocketEnd::ClientClosed(code);
                // Answer the closing handshake with the same code (RFC 6455 5.5.1).
                ctx.close(reason.map(|r| CloseReason {
                    code: r.code,
                    description: None,
                }));
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => {
                let max = self.state.config.max_message_size;
                self.reject(
                    ctx,
                    CLOSE_TOO_BIG,
                    &format!("Message exceeds the {max}-byte limit"),
                );
            }
            // actix reports a text frame that is not UTF-8 as an I/O error carrying the
            // UTF-8 decoder's message; any other I/O error is the connection failing.
            Err(ProtocolError::Io(e)) if e.to_string().contains("utf-8") => {
                self.reject(ctx, CLOSE_INVALID_PAYLOAD, "Text frame is not valid UTF-8");
            }
            // actix-http reports reserved bits (RSV1-3) set without a negotiated extension as
            // its only `InvalidData` I/O error; RFC 6455 5.2 says to fail the connection.
            Err(ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.reject(
                    ctx,
                    CLOSE_PROTOCOL_ERROR,
                    "Reserved bits are set but no extension was negotiated",
                );
            }
            Err(ProtocolError::Io(_)) => self.drop_now(ctx),
            Err(other) => self.reject(
                ctx,
                CLOSE_PROTOCOL_ERROR,
                &format!("WebSocket protocol error: {other}"),
            ),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The peer's stream ended without a close frame: the socket is lost.
        ctx.stop();
    }
}

/// A socket whose recovery was refused: accepted, then closed with 1008 at once, which is how
/// clients learn that they must start a new connection.
struct Refusal {
    state: Arc<HubState>,
    reason: &'static str,
}

impl Actor for Refusal {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state.socket_started();
        self.state.stats.close_sent(CLOSE_UNRECOVERABLE);
        ctx.close(Some(close_reason(CLOSE_UNRECOVERABLE, self.reason)));
        ctx.stop();
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.state.socket_stopped();
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for Refusal {
    fn handle(&mut self, _item: Result<Message, ProtocolError>, _ctx: &mut Self::Context) {}
}
