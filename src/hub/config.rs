//! [`HubConfig`]: what a hub listens on and the limits it enforces, with the service's values
//! as defaults so that a client tested against the local hub meets the same limits in Azure.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::Url;

use crate::protocol::Secret;

/// Where a hub listens unless told otherwise: loopback only, on the port Microsoft's own
/// emulator uses, so a connection string written for the emulator works unchanged.
pub const DEFAULT_ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The access key used when none is configured. It is public (it is in this source file), so
/// the hub accepts it only on a loopback address, where only local processes can use it.
pub const DEVELOPMENT_ACCESS_KEY: &str = "LocalHubDevelopmentKey-NotASecret-0123456789abcdef=";

/// How long a reliable session survives after its socket dropped: the service keeps it "at
/// least 30 seconds" (client spec 1.4) and the official clients give up recovering after 30 s.
pub const DEFAULT_RECOVERY_WINDOW: Duration = Duration::from_secs(30);

/// Unacknowledged messages a reliable session may hold before it is closed as a slow client
/// and cannot be recovered (client spec 3.2; Microsoft's emulator uses the same number).
pub const DEFAULT_REPLAY_BUFFER_MESSAGES: usize = 1000;

/// Unacknowledged bytes a reliable session may hold (16 MiB, client spec 3.2 and the emulator).
pub const DEFAULT_REPLAY_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// Frames that may wait for a socket that does not read fast enough before the hub closes it
/// as a slow client (the emulator's outbound queue: 1000 messages / 16 MiB).
pub const DEFAULT_OUTBOUND_QUEUE_MESSAGES: usize = 1000;

/// Bytes that may wait for a slow socket (16 MiB, as the emulator).
pub const DEFAULT_OUTBOUND_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Interval of the WebSocket pings the hub sends: the hub setting
/// `webSocketKeepAliveIntervalInSeconds` defaults to 20.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// A socket from which nothing (not even a pong) arrived for this long is dropped as half-open.
/// The service's value is not documented; three missed keepalive intervals is the usual rule.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest client message, in bytes: the service's documented 1 MB client frame limit
/// (the emulator uses 1 MiB). Larger frames close the socket with 1009.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// Connections (attached or awaiting recovery) the hub accepts before answering 429. Sized for
/// one process with the usual 20,000 file descriptors: a fleet of clients in the same process
/// uses one descriptor per client and the hub one per connection.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// Ack ids remembered per connection for `Duplicate` detection. The service's window is not
/// documented; a client retries with the same ack id within seconds, so the most recent 1000
/// ids are plenty, and memory stays bounded for connections that live for days.
pub const DEFAULT_REMEMBERED_ACK_IDS: usize = 1000;

/// Configuration of a [`Hub`](super::Hub), built with consuming setters:
///
/// ```
/// use std::time::Duration;
/// use webpubsub_fleet::hub::HubConfig;
///
/// let config = HubConfig::new()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .recovery_window(Duration::from_secs(2));
/// assert_eq!(config.address().port(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub(crate) address: SocketAddr,
    pub(crate) access_key: Option<Secret>,
    pub(crate) recovery_window: Duration,
    pub(crate) replay_buffer_messages: usize,
    pub(crate) replay_buffer_bytes: usize,
    pub(crate) outbound_queue_messages: usize,
    pub(crate) outbound_queue_bytes: usize,
    pub(crate) keepalive_interval: Duration,
    pub(crate) client_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_connections: usize,
    pub(crate) remembered_ack_ids: usize,
    pub(crate) workers: usize,
    pub(crate) echo_events: bool,
    pub(crate) event_handler: Option<Url>,
    pub(crate) tls: Option<TlsPem>,
}

/// A certificate chain and private key in PEM, as given to [`HubConfig::tls`].
#[derive(Clone)]
pub(crate) struct TlsPem {
    pub(crate) cert_chain: Vec<u8>,
    pub(crate) private_key: Secret,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsPem { .. }")
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            address: DEFAULT_ADDRESS,
            access_key: None,
            recovery_window: DEFAULT_RECOVERY_WINDOW,
            replay_buffer_messages: DEFAULT_REPLAY_BUFFER_MESSAGES,
            replay_buffer_bytes: DEFAULT_REPLAY_BUFFER_BYTES,
            outbound_queue_messages: DEFAULT_OUTBOUND_QUEUE_MESSAGES,
            outbound_queue_bytes: DEFAULT_OUTBOUND_QUEUE_BYTES,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            client_timeout: DEFAULT_CLIENT_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            remembered_ack_ids: DEFAULT_REMEMBERED_ACK_IDS,
            workers: default_workers(),
            echo_events: false,
            event_handler: None,
            tls: None,
        }
    }
}

/// One worker per core, as actix-web does: the hub's work is spread by connection.
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl HubConfig {
    /// The defaults: [`DEFAULT_ADDRESS`], the development key, the service's limits.
    pub fn new() -> HubConfig {
        HubConfig::default()
    }

    /// Listens on `address`; port 0 picks a free port (read it back with `Hub::addr`).
    pub fn bind(mut self, address: SocketAddr) -> HubConfig {
        self.address = address;
        self
    }

    /// Signs and checks every token with this key. Without one the hub uses
    /// [`DEVELOPMENT_ACCESS_KEY`], which it refuses on a non-loopback address.
    pub fn access_key(mut self, key: impl Into<Secret>) -> HubConfig {
        self.access_key = Some(key.into());
        self
    }

    /// How long a dropped reliable session can be recovered ([`DEFAULT_RECOVERY_WINDOW`]).
    pub fn recovery_window(mut self, window: Duration) -> HubConfig {
        self.recovery_window = window;
        self
    }

    /// Bounds of the replay buffer of a reliable session ([`DEFAULT_REPLAY_BUFFER_MESSAGES`],
    /// [`DEFAULT_REPLAY_BUFFER_BYTES`]); past either the session is closed with 1008.
    pub fn replay_buffer(mut self, messages: usize, bytes: usize) -> HubConfig {
        self.replay_buffer_messages = messages.max(1);
        self.replay_buffer_bytes = bytes.max(1);
        self
    }

    /// Bounds of the frames waiting for one socket ([`DEFAULT_OUTBOUND_QUEUE_MESSAGES`],
    /// [`DEFAULT_OUTBOUND_QUEUE_BYTES`]); past either the socket is closed as a slow client.
    pub fn outbound_queue(mut self, messages: usize, bytes: usize) -> HubConfig {
        self.outbound_queue_messages = messages.max(1);
        self.outbound_queue_bytes = bytes.max(1);
        self
    }

    /// Interval of WebSocket pings ([`DEFAULT_KEEPALIVE_INTERVAL`]).
    pub fn keepalive_interval(mut self, interval: Duration) -> HubConfig {
        self.keepalive_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Silence after which a socket is dropped as half-open ([`DEFAULT_CLIENT_TIMEOUT`]).
    pub fn client_timeout(mut self, timeout: Duration) -> HubConfig {
        self.client_timeout = timeout;
        self
    }

    /// Largest client message in bytes ([`DEFAULT_MAX_MESSAGE_SIZE`]); also the largest REST body.
    pub fn max_message_size(mut self, bytes: usize) -> HubConfig {
        self.max_message_size = bytes.max(64);
        self
    }

    /// Most connections held at once ([`DEFAULT_MAX_CONNECTIONS`]).
    pub fn max_connections(mut self, connections: usize) -> HubConfig {
        self.max_connections = connections;
        self
    }

    /// Ack ids remembered per connection for `Duplicate` ([`DEFAULT_REMEMBERED_ACK_IDS`]).
    pub fn remembered_ack_ids(mut self, ids: usize) -> HubConfig {
        self.remembered_ack_ids = ids.max(1);
        self
    }

    /// HTTP worker threads (default: one per core).
    pub fn workers(mut self, workers: usize) -> HubConfig {
        self.workers = workers.max(1);
        self
    }

    /// When true, the data of every `event` request goes back to its sender as a server
    /// message: the echo workload of load tests, with no event handler needed.
    pub fn echo_events(mut self, echo: bool) -> HubConfig {
        self.echo_events = echo;
        self
    }

    /// An upstream event handler (CloudEvents over HTTP, `http://` only; `{event}` in the URL is
    /// replaced by the event name). User events go there instead of being echoed.
    pub fn event_handler(mut self, url: Url) -> HubConfig {
        self.event_handler = Some(url);
        self
    }

    /// Serves `https`/`wss` with this PEM certificate chain and PEM private key.
    pub fn tls(
        mut self,
        cert_chain_pem: impl Into<Vec<u8>>,
        private_key_pem: impl Into<String>,
    ) -> HubConfig {
        self.tls = Some(TlsPem {
            cert_chain: cert_chain_pem.into(),
            private_key: Secret::new(private_key_pem.into()),
        });
        self
    }

    /// The configured listening address (port 0 until the hub is started).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}
