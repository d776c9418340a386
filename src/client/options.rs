//! Client options: one type, a consuming builder, documented defaults.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::Subprotocol;
use crate::session::RetryPolicy;

/// Retries of one operation (join, leave, send, event) after a retriable failure: 3 times,
/// exponential from 0.8 s (0.8, 1.6, 3.2 s), as the Python and .NET clients do; capped at 60 s
/// as .NET (Python's cap is 120 s; neither is reached in 3 retries). Every retry reuses the
/// operation's ack id, so the service deduplicates it.
pub const DEFAULT_MESSAGE_RETRY: RetryPolicy = RetryPolicy::MESSAGE_DEFAULT;

/// Reconnect attempts after a connection is lost for good: without limit, exponential from
/// 1 s up to 5 s, as the .NET client does (a short cap brings a fleet back fast after a hub restart).
pub const DEFAULT_RECONNECT_RETRY: RetryPolicy = RetryPolicy::RECONNECT_DEFAULT;

/// How long `start()` waits for `system/connected`: 30 s, the Python client's start timeout.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an operation waits for its ack: 30 s, the Python client's ack timeout (JS and .NET
/// wait forever, which leaves a caller hanging when a hub withholds an ack).
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time an `invoke_event` waits for its `invokeResponse` before it sends
/// `cancelInvocation` and fails: as long as an ack.
pub const DEFAULT_INVOKE_TIMEOUT: Duration = DEFAULT_ACK_TIMEOUT;
/// Application-level ping interval: 20 s, as the JS client.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// Silence after which the socket is treated as dead: 120 s, as the JS client.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Events queued per subscriber before the slow-consumer policy drops: enough for a burst of
/// a second at 1,000 messages per second, small enough for thousands of clients.
pub const DEFAULT_EVENT_QUEUE: usize = 1024;
/// Operations waiting for an ack (or for a connection) per client.
pub const DEFAULT_MAX_PENDING: usize = 4096;
/// Largest frame accepted: the service's 1 MiB client message limit plus envelope.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024 + 64 * 1024;

/// Options of a [`super::Client`]. Build with [`ClientOptions::new`] and the `with_*` methods.
#[derive(Clone)]
pub struct ClientOptions {
    /// Subprotocol; reliable JSON by default.
    pub protocol: Subprotocol,
    /// Open a new connection when one is lost for good.
    pub auto_reconnect: bool,
    /// Rejoin the groups this client joined when a new connection starts.
    pub auto_rejoin_groups: bool,
    /// Retry policy of operations.
    pub message_retry: RetryPolicy,
    /// Retry policy of reconnects.
    pub reconnect_retry: RetryPolicy,
    /// How long `start()` waits (socket plus `system/connected`).
    pub start_timeout: Duration,
    /// How long an operation waits for its ack; `None` waits until the connection ends.
    pub ack_timeout: Option<Duration>,
    /// How long `invoke_event` waits for its response (`None`: until the connection ends).
    pub invoke_timeout: Option<Duration>,
    /// Ping interval; zero disables keepalive.
    pub keepalive_interval: Duration,
    /// Silence after which the socket is closed and recovered.
    pub keepalive_timeout: Duration,
    /// Capacity of each subscriber's queue.
    pub event_queue: usize,
    /// Operations pending at most.
    pub max_pending: usize,
    /// Largest frame accepted.
    pub max_frame_size: usize,
    /// Source address of the socket (spread over 127.0.0.x when one runs out of ports).
    pub local_address: Option<IpAddr>,
    /// TLS configuration; `None` uses the web PKI roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Log payload bodies at TRACE (off: frames are logged by type and size only).
    pub log_payloads: bool,
    /// A number that names the client in logs (the fleet sets it).
    pub index: u64,
    /// Told of every event inline (metrics, recorders); see [`super::Observer`].
    pub observer: Option<super::SharedObserver>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            protocol: Subprotocol::JsonReliable,
            auto_reconnect: true,
            auto_rejoin_groups: true,
            message_retry: DEFAULT_MESSAGE_RETRY,
            reconnect_retry: DEFAULT_RECONNECT_RETRY,
            start_timeout: DEFAULT_START_TIMEOUT,
            ack_timeout: Some(DEFAULT_ACK_TIMEOUT),
            invoke_timeout: Some(DEFAULT_INVOKE_TIMEOUT),
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            event_queue: DEFAULT_EVENT_QUEUE,
            max_pending: DEFAULT_MAX_PENDING,
            max_frame_size: DEFAULT_MAX_FRAME,
            local_address: None,
            tls: None,
            log_payloads: false,
            index: 0,
            observer: None,
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("protocol", &self.protocol)
            .field("auto_reconnect", &self.auto_reconnect)
            .field("auto_rejoin_groups", &self.auto_rejoin_groups)
            .field("start_timeout", &self.start_timeout)
            .field("ack_timeout", &self.ack_timeout)
            .field("invoke_timeout", &self.invoke_timeout)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the subprotocol: any of the four; the client encodes and decodes with its codec
    /// ([`crate::protocol::Codec`]).
    pub fn with_protocol(mut self, protocol: Subprotocol) -> Self {
        self.protocol = protocol;
        self
    }
    /// Turns auto reconnect on or off.
    pub fn with_auto_reconnect(mut self, on: bool) -> Self {
        self.auto_reconnect = on;
        self
    }
    /// Turns auto rejoin on or off.
    pub fn with_auto_rejoin_groups(mut self, on: bool) -> Self {
        self.auto_rejoin_groups = on;
        self
    }
    /// Sets the operation retry policy.
    pub fn with_message_retry(mut self, policy: RetryPolicy) -> Self {
        self.message_retry = policy;
        self
    }
    /// Sets the reconnect retry policy.
    pub fn with_reconnect_retry(mut self, policy: RetryPolicy) -> Self {
        self.reconnect_retry = policy;
        self
    }
    /// Sets the start timeout.
    pub fn with_start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }
    /// Sets the ack timeout (`None`: wait until the connection ends).
    pub fn with_ack_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.ack_timeout = timeout;
        self
    }
    /// Sets the invoke timeout (`None`: wait until the connection ends).
    pub fn with_invoke_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.invoke_timeout = timeout;
        self
    }
    /// Sets keepalive interval and dead-link timeout; a zero interval disables keepalive.
    pub fn with_keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout;
        self
    }
    /// Sets each subscriber's queue capacity.
    pub fn with_event_queue(mut self, capacity: usize) -> Self {
        self.event_queue = capacity;
        self
    }
    /// Sets how many operations may be pending.
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max;
        self
    }
    /// Sets the socket's source address.
    pub fn with_local_address(mut self, ip: IpAddr) -> Self {
        self.local_address = Some(ip);
        self
    }
    /// Sets the TLS configuration (for a private CA).
    pub fn with_tls(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Logs payload bodies at TRACE.
    pub fn with_payload_logging(mut self, on: bool) -> Self {
        self.log_payloads = on;
        self
    }
    /// Sets an inline observer of every event.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn super::Observer>) -> Self {
        self.observer = Some(observer);
        self
    }
    /// Sets the client's index in logs.
    pub fn with_index(mut self, index: u64) -> Self {
        self.index = index;
        self
    }
}
