//! The local hub: an actix-web server that speaks the Azure Web PubSub client protocol and
//! REST API, so that clients can be developed, tested and load tested with no cloud account.
//!
//! ```no_run
//! # async fn demo() -> Result<(), webpubsub_fleet::hub::HubError> {
//! use webpubsub_fleet::hub::{Hub, HubConfig};
//!
//! let hub = Hub::start(HubConfig::new().bind("127.0.0.1:0".parse().unwrap())).await?;
//! println!("clients connect to {}/client/hubs/chat", hub.endpoint());
//! let connection_string = hub.connection_string(); // prints AccessKey=[REDACTED]
//! # let _ = connection_string;
//! hub.stop().await;
//! # Ok(()) }
//! ```
//!
//! What it does, as the service does (protocol.md): the first frame is `system/connected`;
//! `json.reliable.webpubsub.azure.v1` and `json.webpubsub.azure.v1` are negotiated (a client
//! offering neither is a simple WebSocket client); tokens are HS256 JWTs checked before the
//! upgrade (HTTP 401); roles and per-group roles, `Forbidden` and `Duplicate` acks, `noEcho`;
//! reliable sessions with sequence ids, a replay buffer trimmed by `sequenceAck`, recovery
//! within the window and close code 1008 when a session cannot be recovered; the REST API with
//! bearer JWT auth; a binary frame holding UTF-8 JSON is a request on the JSON subprotocols;
//! fragmented messages are reassembled within the message limit; anonymous clients only with
//! [`HubConfig::allow_anonymous`] (`anonymousConnectPolicy`). Beyond the service: [`Fault`]
//! injection (including deliveries silently lost, duplicated or reordered, to prove a delivery
//! checker) and [`HubStats`] counters, from Rust and from `POST /_fleet/faults` and
//! `GET /_fleet/stats` (bearer auth as the REST API).
//!
//! Where it knowingly differs from the service:
//! - protobuf subprotocols: a group message carries no `fromUserId` (the protobuf
//!   `DataMessage` has no such field), JSON data goes to protobuf receivers as `json_data`
//!   (field 4, as the service's C# protobuf definitions; the docs say `text_data`), and a
//!   frame that does not decode closes the connection with 1008 (a text frame: 1003);
//! - event handlers ([`EventHandler`], `hub --config`): the service's contract (blocking
//!   `connect`, `connected`, `disconnected`, user events, abuse protection, every header,
//!   `ce-connectionState`, the group presence events `joined`/`left` as
//!   `azure.webpubsub.gp.*` when a handler's system-event filter lists them, for every join and
//!   leave but not for the groups a closing connection drops), but no client certificates;
//!   a failed user event with an ack id gets an `InvocationFailed` ack (the connection stays;
//!   without an ack id the connection ends with 1008, as the service drops it);
//!   without a handler that takes it, an `event` request is acked (and echoed with
//!   `echo_events`) and simple clients in sendEvent mode are not disconnected; `connect`
//!   failures answer 500 (handler 5xx), 502 (no usable answer), 503 (too many calls in
//!   flight) or 504 (no answer in time), and a `connect` answer's roles and groups add to the
//!   token's;
//! - `invoke` (protocol.md 8.3, JSON subprotocols only): the user event's handler call,
//!   answered by `invokeResponse` with the reply (data type by `Content-Type`); the error
//!   names are the hub's choice where the service documents none: `InvocationFailed` (handler
//!   failed, timed out, overloaded, or no handler and no `echo_events`), `BadRequest` (bad
//!   field, invocation id over 128 characters), `Duplicate` (id in flight),
//!   `TooManyInvocations` (past `max_invocations_per_connection`); an `invoke` without a usable
//!   `invocationId` closes with 1008 like other malformed requests; invocations in flight are
//!   not answered after a recovery;
//! - adding a *user* to a group affects the user's current connections only;
//! - a REST close of a reliable connection uses close code 1008, of others 1000;
//! - a reconnection token never expires on its own; it dies with its session;
//! - OData `filter`: `userId`, `connectionId`, `groups`, `eq`, `ne`, `in`, `and`, `or`, `not` only;
//! - a socket whose peer stops reading entirely keeps its TCP connection (and the frames
//!   already queued) until the peer reads or the OS gives up, although its session is removed
//!   as soon as its queue passes the bound;
//! - a token's audience must name one of the hub's own addresses (or a configured
//!   [`HubConfig::authority`]); the request's `Host` counts only with
//!   [`HubConfig::trust_host_header`], and `:generateToken` mints for the hub's own address.
//!
//! Hostile-input limits, where the service documents none (docs/security.md has the threat
//! model and the test of each): request heads and REST bodies must arrive within
//! [`DEFAULT_REQUEST_TIMEOUT`] (408); a REST body is read only after its token is checked;
//! REST paths with `.`/`..` segments or encoded slashes are refused (400); a WebSocket frame
//! whose header announces more than the message limit is closed with 1009 before its payload
//! is read; reserved bits close with 1002; upgrades with a version other than 13 get 426 and a
//! `Sec-WebSocket-Key` that is not base64 of 16 bytes gets 400; event names are 1..=128 bytes
//! of `[A-Za-z0-9_.-]` not starting with `.` or `-` (else a `BadRequest` ack); at most
//! [`DEFAULT_MAX_UPSTREAM_CALLS`] event handler calls are in flight (past it an
//! `InvocationFailed` ack at once); a connection is in at most
//! [`DEFAULT_MAX_GROUPS_PER_CONNECTION`] groups (a `BadRequest` ack, REST 400, a token listing
//! more is refused with 400); `minutesToExpire` is 1..=525,600; the connection limit defaults
//! to the soft open-files limit minus [`FD_HEADROOM`].
//!
//! Choices where the service's behaviour is not documented (protocol.md section 10):
//! a malformed request closes with `system/disconnected` and 1008, and input that closes a
//! socket (1009, 1007, 1003, 1008) ends the session; a client close with 1000, 1001 or no code
//! ends a reliable session, any other close or drop keeps it for the recovery window; `connected`
//! is sent again after a recovery, with the same reconnection token; only ack ids of operations
//! that took effect are remembered (the last 1000 per connection), so a `Forbidden` request is
//! judged again on retry; invalid fields with an ack id get a `BadRequest` ack; a `sequenceAck`
//! beyond the last id sent is clamped; the connection limit answers HTTP 429; `api-version` is
//! not required; `messageTtlSeconds` (0 to 300, else 400 `InvalidMessageTtl`) drops a
//! message that expired while waiting in a socket's queue or a detached session's replay
//! buffer (the service's exact expiry point is not documented); half-open sockets are
//! dropped after 60 s of silence; the access key must have at least 32 bytes.
//!
//! Threads: [`Hub::start`] runs the server on its own thread with its own actix system and
//! `workers` HTTP worker threads, so it can be started from `#[actix_rt::test]`, from
//! `#[tokio::test]`, or from a CLI that also runs a client fleet in the same process.

mod auth;
mod config;
mod connect;
mod faults;
mod filter;
mod frame_guard;
mod handlers;
mod http;
mod inject;
mod names;
pub(crate) mod outbox;
mod publication;
mod queue;
mod reading;
mod requests;
mod rest;
mod roles;
mod socket;
mod state;
mod stats;
mod upstream;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use tokio::sync::oneshot;

pub use config::{
    DEFAULT_ADDRESS, DEFAULT_CLIENT_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_GROUPS_PER_CONNECTION, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_UPSTREAM_CALLS,
    DEFAULT_OUTBOUND_QUEUE_BYTES, DEFAULT_OUTBOUND_QUEUE_MESSAGES, DEFAULT_RECOVERY_WINDOW,
    DEFAULT_REMEMBERED_ACK_IDS, DEFAULT_REPLAY_BUFFER_BYTES, DEFAULT_REPLAY_BUFFER_MESSAGES,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_UPSTREAM_TIMEOUT, DEVELOPMENT_ACCESS_KEY, FD_HEADROOM,
    HubConfig,
};
pub use faults::{Fault, FaultRequest, Misdelivery, Target};
pub use frame_guard::{FrameGuard, Guarded};
pub use handlers::{EventHandler, SystemEvent};
pub use stats::HubStats;

use url::Url;

use crate::credential::ConnectionString;
use crate::protocol::{CLOSE_GOING_AWAY, Secret};
use state::HubState;

/// The OData filter parser, for the fuzz targets in fuzz/ only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use filter::fuzzing as filter_fuzzing;

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {address}: {source}; choose another address or port (port 0 picks a free one)"
    )]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The access key is unusable.
    #[error(
        "the access key is unusable: {0}; use at least 32 characters, no `;` and no control characters"
    )]
    InvalidAccessKey(&'static str),
    /// The development key was about to be exposed beyond this machine.
    #[error(
        "the development access key is public and only allowed on a loopback address, but the hub would listen on {0}: configure an access key of your own"
    )]
    DevelopmentKeyOnPublicAddress(SocketAddr),
    /// The TLS certificate or key could not be used.
    #[error(
        "the TLS certificate or private key is unusable: {0}; give a PEM certificate chain and a PEM private key"
    )]
    Tls(String),
    /// An event handler setting cannot be used (its URL, or the extra CA certificates).
    #[error("the event handler setting is unusable: {0}")]
    InvalidEventHandler(String),
    /// The `hub.toml` file could not be read or holds an unusable setting.
    #[error("the hub config file {path} is unusable: {problem}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong, with the key and line where TOML says.
        problem: String,
    },
    /// The server thread could not be started.
    #[error("the hub's server thread failed to start: {0}")]
    Startup(String),
}

/// A running hub. Cheap to clone; every clone controls the same server. Call [`Hub::stop`] to
/// shut it down (dropping the last clone also stops it, without waiting).
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<HubState>,
    addr: SocketAddr,
    tls: bool,
    server: ServerHandle,
    finished: Mutex<Option<oneshot::Receiver<()>>>,
    stopped: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.stopped.load(Ordering::Relaxed) {
            // The stop command is sent at once; nothing waits for it here.
            drop(self.server.stop(false));
        }
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("endpoint", &self.endpoint())
            .finish()
    }
}

/// The key to use, or why none is acceptable (emulator rules: not blank, no `;`, no control
/// characters, at least 32 bytes; the development key on loopback only).
fn resolve_key(config: &HubConfig) -> Result<Secret, HubError> {
    let key = config
        .access_key
        .clone()
        .unwrap_or_else(|| Secret::new(DEVELOPMENT_ACCESS_KEY));
    let k = key.expose();
    if k.trim().is_empty() {
        return Err(HubError::InvalidAccessKey("it is blank"));
    }
    if k.contains(';') || k.chars().any(char::is_control) {
        return Err(HubError::InvalidAccessKey(
            "it contains `;` or a control character",
        ));
    }
    if k.len() < 32 {
        return Err(HubError::InvalidAccessKey("it is shorter than 32 bytes"));
    }
    if k == DEVELOPMENT_ACCESS_KEY && !config.address.ip().is_loopback() {
        return Err(HubError::DevelopmentKeyOnPublicAddress(config.address));
    }
    Ok(key)
}

fn tls_config(pem: &config::TlsPem) -> Result<rustls::ServerConfig, HubError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(&pem.cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HubError::Tls(format!("certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(HubError::Tls("no certificate in the PEM chain".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(pem.private_key.expose().as_bytes()).map_err(|_| {
        HubError::Tls("the private key is not PEM PKCS#8, PKCS#1 or SEC1".to_owned())
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HubError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| HubError::Tls(e.to_string()))
}

/// The `host:port` a client reaches the hub at, as a URL's host is written (no port when it
/// is the scheme's default): what the official handler SDK compares origins with.
fn origin_of(bound: SocketAddr, tls: bool) -> String {
    let addr = reachable(bound);
    let default = if tls { 443 } else { 80 };
    match (addr.ip(), addr.port()) {
        (IpAddr::V6(ip), p) if p == default => format!("[{ip}]"),
        (ip, p) if p == default => ip.to_string(),
        _ => addr.to_string(),
    }
}

/// A reachable address for an address the hub is bound to (an unspecified one means loopback
/// for local clients).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

fn bind(
    state: Arc<HubState>,
    tls: Option<rustls::ServerConfig>,
) -> Result<(actix_web::dev::Server, SocketAddr), HubError> {
    let config = &state.config;
    let address = config.address;
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/client/hubs/{hub}", web::get().to(socket::client_endpoint))
            .route("/client", web::get().to(socket::client_endpoint))
            .route("/client/", web::get().to(socket::client_endpoint))
            .configure(rest::configure)
    })
    // Acks, pongs and small messages must not wait for Nagle and delayed ACKs (40 ms a round
    // trip). actix-web does not expose the option, so set it on each accepted TCP socket (TLS
    // sockets are wrapped in a type this crate cannot name, and keep the default).
    .on_connect(|io, _| {
        if let Some(tcp) = io.downcast_ref::<actix_rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
    })
    .workers(config.workers)
    // A client must send its request head within this time (408 otherwise): a slow-loris
    // peer cannot hold sockets open by dribbling headers. REST bodies get the same deadline
    // in `rest::read_body`.
    .client_request_timeout(config.request_timeout)
    // The embedding program owns the signals (a CLI stops the hub on Ctrl-C itself).
    .disable_signals()
    // When a socket actor stops, shut the TCP connection at once: a dropped socket must look
    // dropped to the client now, not after actix's default 1 s linger.
    .client_disconnect_timeout(Duration::ZERO)
    .shutdown_timeout(1);
    let server = match tls {
        Some(tls) => server.bind_rustls_0_23(address, tls),
        None => server.bind(address),
    }
    .map_err(|source| HubError::Bind { address, source })?;
    let bound = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| HubError::Startup("the server bound no address".to_owned()))?;
    Ok((server.run(), bound))
}

/// Removes expired detached sessions, at a quarter of the recovery window (at most every
/// second), so a session lives at most a quarter window longer than promised.
async fn sweeper(state: Arc<HubState>) {
    let period =
        (state.config.recovery_window / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut interval = actix_rt::time::interval(period);
    loop {
        interval.tick().await;
        if state.is_stopping() {
            break;
        }
        state.sweep(Instant::now());
    }
}

impl Hub {
    /// Starts a hub on its own thread and returns once it listens.
    pub async fn start(config: HubConfig) -> Result<Hub, HubError> {
        let key = resolve_key(&config)?;
        let tls = config.tls.as_ref().map(tls_config).transpose()?;
        if let Some(problem) = config.event_handlers.iter().find_map(|h| h.problem()) {
            return Err(HubError::InvalidEventHandler(problem));
        }
        let upstream_tls = upstream::client_tls(&config)?;
        let is_tls = tls.is_some();
        let state = Arc::new(HubState::new(config, key));
        let (ready_tx, ready_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let thread_state = state.clone();
        std::thread::Builder::new()
            .name("webpubsub-hub".to_owned())
            .spawn(move || {
                let system = actix_rt::System::new();
                system.block_on(async move {
                    match bind(thread_state.clone(), tls) {
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                        Ok((server, bound)) => {
                            let port = bound.port();
                            let mut authorities =
                                vec![reachable(bound).to_string(), format!("localhost:{port}")];
                            if bound.ip().is_unspecified() {
                                authorities.push(bound.to_string());
                            }
                            authorities.extend(thread_state.config.authorities.iter().cloned());
                            thread_state.set_authorities(authorities);
                            let config = &thread_state.config;
                            if !config.event_handlers.is_empty() {
                                let settings = upstream::Settings {
                                    handlers: config.event_handlers.clone(),
                                    keys: std::iter::once(thread_state.key.clone())
                                        .chain(config.secondary_access_key.clone())
                                        .collect(),
                                    origin: config
                                        .webhook_origin
                                        .clone()
                                        .unwrap_or_else(|| origin_of(bound, is_tls)),
                                    tls: upstream_tls,
                                    checks: thread_state.stats.handler_checks.clone(),
                                };
                                let (upstream, task) = upstream::channel(settings, config);
                                thread_state.set_upstream(upstream);
                                actix_rt::spawn(task);
                            }
                            let _ = ready_tx.send(Ok((bound, server.handle())));
                            actix_rt::spawn(sweeper(thread_state));
                            let _ = server.await;
                        }
                    }
                });
                let _ = done_tx.send(());
            })
            .map_err(|e| HubError::Startup(e.to_string()))?;
        let (addr, server) = ready_rx.await.map_err(|_| {
            HubError::Startup("the server thread ended before listening".to_owned())
        })??;
        tracing::info!(address = %addr, tls = is_tls, "local hub listening");
        Ok(Hub {
            inner: Arc::new(Inner {
                state,
                addr,
                tls: is_tls,
                server,
                finished: Mutex::new(Some(done_rx)),
                stopped: AtomicBool::new(false),
            }),
        })
    }

    /// The address the hub listens on (with the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The endpoint clients and server SDKs use: `http://127.0.0.1:PORT` (`https://` with TLS;
    /// an unspecified bind address is reported as loopback).
    pub fn endpoint(&self) -> String {
        let scheme = if self.inner.tls { "https" } else { "http" };
        format!("{scheme}://{}", reachable(self.inner.addr))
    }

    /// The connection string of this hub (`Endpoint=http://127.0.0.1;Port=PORT;AccessKey=...;`).
    /// Its `Display` redacts the key; `expose()` gives the whole string to hand to an SDK.
    pub fn connection_string(&self) -> ConnectionString {
        // The endpoint is built here from a socket address, so it is always a valid URL.
        let endpoint = Url::parse(&self.endpoint()).expect("the hub endpoint is a URL");
        ConnectionString::new(endpoint, self.inner.state.key.clone())
            .expect("the hub endpoint and key make a connection string")
    }

    /// Connections the hub holds at most before answering 429 (the configured or derived
    /// [`HubConfig::max_connections`]).
    pub fn max_connections(&self) -> usize {
        self.inner.state.config.max_connections
    }

    /// The access key signing every token of this hub.
    pub fn access_key(&self) -> &Secret {
        &self.inner.state.key
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> HubStats {
        let state = &self.inner.state;
        state.stats.snapshot(state.group_count())
    }

    /// Injects a fault; returns how many connections it affected (for counted faults: the count).
    pub fn inject(&self, fault: Fault) -> usize {
        inject::apply(&self.inner.state, fault)
    }

    /// Drops one connection's socket without a close frame. False if it has no socket.
    pub fn drop_connection(&self, connection_id: &str) -> bool {
        self.inject(Fault::Drop(Target::Connection(connection_id.to_owned()))) > 0
    }

    /// Drops a random share (0.0..=1.0, rounded up) of the sockets; returns how many.
    pub fn drop_fraction(&self, share: f64) -> usize {
        self.inject(Fault::Drop(Target::Fraction(share)))
    }

    /// Drops every socket; returns how many.
    pub fn drop_all(&self) -> usize {
        self.inject(Fault::Drop(Target::All))
    }

    /// Closes one connection's socket with `code` and `reason`. False if it has no socket.
    pub fn close_connection(&self, connection_id: &str, code: u16, reason: &str) -> bool {
        self.inject(Fault::Close {
            target: Target::Connection(connection_id.to_owned()),
            code,
            reason: reason.to_owned(),
        }) > 0
    }

    /// Closes the next `n` recovery attempts with 1008.
    pub fn refuse_recoveries(&self, n: u64) {
        self.inject(Fault::RefuseRecoveries(n));
    }

    /// Processes the next `n` acked requests without sending their acks.
    pub fn drop_next_acks(&self, n: u64) {
        self.inject(Fault::DropAcks(n));
    }

    /// Processes the next `n` acked requests, then drops the socket instead of acking.
    pub fn close_after_processing(&self, n: u64) {
        self.inject(Fault::CloseAfterProcessing(n));
    }

    /// Silently drops the next `count` deliveries to each connection of `target` (no sequence
    /// id used, nothing to replay); returns how many connections were armed. Counted in
    /// [`HubStats::injected_lost`] as they happen.
    pub fn lose_deliveries(&self, target: Target, count: u64) -> usize {
        self.misdeliver(target, Misdelivery::Lose, count)
    }

    /// Delivers each of the next `count` messages to each connection of `target` twice (a
    /// sequence id per copy); returns how many connections were armed. Counted in
    /// [`HubStats::injected_duplicated`].
    pub fn duplicate_deliveries(&self, target: Target, count: u64) -> usize {
        self.misdeliver(target, Misdelivery::Duplicate, count)
    }

    /// Swaps `count` times, for each connection of `target`, a message with the next one from
    /// the same publisher; returns how many connections were armed. Counted in
    /// [`HubStats::injected_reordered`] when the held message is sent.
    pub fn reorder_deliveries(&self, target: Target, count: u64) -> usize {
        self.misdeliver(target, Misdelivery::Reorder, count)
    }

    fn misdeliver(&self, target: Target, kind: Misdelivery, count: u64) -> usize {
        self.inject(Fault::Misdeliver {
            target,
            kind,
            count,
        })
    }

    /// Stops reading one connection's socket (the hub still writes to it): the client's
    /// frames back up and its requests go unanswered until the hub's silence timeout
    /// ([`HubConfig::client_timeout`]) drops the socket. False if it has no socket.
    pub fn stop_reading(&self, connection_id: &str) -> bool {
        self.inject(Fault::StopReading(Target::Connection(
            connection_id.to_owned(),
        ))) > 0
    }

    /// Drops every socket and forgets every session; returns how many connections there were.
    pub fn restart(&self) -> usize {
        self.inject(Fault::Restart)
    }

    /// Closes every connection (`system/disconnected`, close 1001) and stops the server; returns
    /// once its thread has ended. Calling it again does nothing.
    pub async fn stop(&self) {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let state = &self.inner.state;
        state.shutdown(CLOSE_GOING_AWAY, "ServiceShutdown: the hub is stopping");
        // Every socket actor writes its close frame and stops; waiting for the clients to
        // answer the closing handshake (a graceful server stop) could take as long as the
        // slowest client, so the server is stopped at once when the actors are done.
        let deadline = Instant::now() + Duration::from_secs(1);
        while state.live_sockets() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.inner.server.stop(false).await;
        let finished = self
            .inner
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(finished) = finished {
            let _ = finished.await;
        }
    }
}
