//! [`HubConfig`]: what a hub listens on and the limits it enforces, with the service's values
//! as defaults so that a client tested against the local hub meets the same limits in Azure.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use url::Url;

use super::HubError;
use super::handlers::{EventHandler, SystemEvent};
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

/// Connections (attached or awaiting recovery) the hub accepts before answering 429 when the
/// process's open-files limit cannot be read (not Linux): below the common soft limit of
/// 1024 descriptors, so the 429 fires before `accept` fails.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024 - FD_HEADROOM;

/// Descriptors kept free below the soft `RLIMIT_NOFILE` when the connection limit is derived
/// from it: `/api/health`, REST calls, upgrade requests that are then refused with 429, the
/// event handler's sockets, the runtime's own descriptors. Without them the limit could never
/// fire: `accept` would fail first and every new client (and `/api/health`) would hang.
pub const FD_HEADROOM: usize = 256;

/// How long a client may take to send a request's headers, and a REST call's body, before
/// the hub answers 408 and closes: a slow (or stalled) client cannot hold a socket and a
/// half-read body for ever. The service's value is not documented; 10 s is generous for any
/// honest client of a local hub.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Event handler calls in flight at once. Past it a user event is refused at once with an
/// `InvocationFailed` ack and a system event is dropped (both counted in
/// `HubStats::upstream_dropped`), so a handler that never answers holds at most this many
/// sockets and tasks. The service's limit is not documented.
pub const DEFAULT_MAX_UPSTREAM_CALLS: usize = 256;

/// How long one event handler call may take, connect to last byte, before it fails.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Groups one connection may be in at once. The service documents no such limit; without one
/// a client with the `joinLeaveGroup` role could grow the hub's memory by a few KB per join
/// (10,000 joins took 17 MB). A join past it gets a `BadRequest` ack (REST: 400).
pub const DEFAULT_MAX_GROUPS_PER_CONNECTION: usize = 1000;

/// `invoke` calls one connection may have in flight at once; one more is answered at once
/// with a failed `invokeResponse` (`TooManyInvocations`), so a client cannot queue unbounded
/// handler calls.
pub const DEFAULT_MAX_INVOCATIONS_PER_CONNECTION: usize = 64;

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
    pub(crate) request_timeout: Duration,
    pub(crate) max_upstream_calls: usize,
    pub(crate) upstream_timeout: Duration,
    pub(crate) max_groups_per_connection: usize,
    pub(crate) max_invocations_per_connection: usize,
    pub(crate) trust_host_header: bool,
    pub(crate) authorities: Vec<String>,
    pub(crate) remembered_ack_ids: usize,
    pub(crate) workers: usize,
    pub(crate) echo_events: bool,
    pub(crate) event_handlers: Vec<EventHandler>,
    pub(crate) secondary_access_key: Option<Secret>,
    pub(crate) upstream_ca_pem: Vec<Vec<u8>>,
    pub(crate) webhook_origin: Option<String>,
    pub(crate) allow_anonymous: bool,
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
            max_connections: default_max_connections(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_upstream_calls: DEFAULT_MAX_UPSTREAM_CALLS,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            max_groups_per_connection: DEFAULT_MAX_GROUPS_PER_CONNECTION,
            max_invocations_per_connection: DEFAULT_MAX_INVOCATIONS_PER_CONNECTION,
            trust_host_header: false,
            authorities: Vec::new(),
            remembered_ack_ids: DEFAULT_REMEMBERED_ACK_IDS,
            workers: default_workers(),
            echo_events: false,
            event_handlers: Vec::new(),
            secondary_access_key: None,
            upstream_ca_pem: Vec::new(),
            webhook_origin: None,
            allow_anonymous: false,
            tls: None,
        }
    }
}

/// The soft open-files limit minus [`FD_HEADROOM`] (at least 16), read when the config is
/// built; [`DEFAULT_MAX_CONNECTIONS`] where the limit cannot be read.
fn default_max_connections() -> usize {
    match soft_fd_limit() {
        Some(soft) => usize::try_from(soft)
            .unwrap_or(usize::MAX)
            .saturating_sub(FD_HEADROOM)
            .max(16),
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The soft `RLIMIT_NOFILE` from `/proc/self/limits` (the crate has no `libc` dependency);
/// `None` where `/proc` is missing. `unlimited` reads as `u64::MAX`.
fn soft_fd_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
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

    /// Most connections held at once; past it an upgrade is answered with 429. The default
    /// is the process's soft open-files limit minus [`FD_HEADROOM`] (read when the config is
    /// built), or [`DEFAULT_MAX_CONNECTIONS`] where that limit cannot be read. A value above
    /// the descriptor limit makes the 429 unreachable: new sockets then hang in `accept`.
    pub fn max_connections(mut self, connections: usize) -> HubConfig {
        self.max_connections = connections;
        self
    }

    /// How long a client may take to send request headers and a REST body
    /// ([`DEFAULT_REQUEST_TIMEOUT`]); past it the hub answers 408 and closes the socket.
    pub fn request_timeout(mut self, timeout: Duration) -> HubConfig {
        self.request_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// Event handler calls in flight at once ([`DEFAULT_MAX_UPSTREAM_CALLS`]); past it user
    /// events are refused at once with an `InvocationFailed` ack.
    pub fn max_upstream_calls(mut self, calls: usize) -> HubConfig {
        self.max_upstream_calls = calls.max(1);
        self
    }

    /// How long one event handler call may take ([`DEFAULT_UPSTREAM_TIMEOUT`]).
    pub fn upstream_timeout(mut self, timeout: Duration) -> HubConfig {
        self.upstream_timeout = timeout;
        self
    }

    /// `invoke` calls one connection may have in flight (default 64; at least 1); one more
    /// gets a failed `invokeResponse` (`TooManyInvocations`) at once.
    pub fn max_invocations_per_connection(mut self, invocations: usize) -> HubConfig {
        self.max_invocations_per_connection = invocations.max(1);
        self
    }

    /// Groups one connection may be in at once ([`DEFAULT_MAX_GROUPS_PER_CONNECTION`]).
    pub fn max_groups_per_connection(mut self, groups: usize) -> HubConfig {
        self.max_groups_per_connection = groups.max(1);
        self
    }

    /// Also accepts tokens whose audience names this `host[:port]`, e.g. the public name of a
    /// hub bound to `0.0.0.0`, or a proxy in front of it. The hub's own addresses (the bound
    /// address, `localhost:PORT`) are always accepted.
    pub fn authority(mut self, host_and_port: impl Into<String>) -> HubConfig {
        self.authorities.push(host_and_port.into());
        self
    }

    /// When true, a token whose audience names the request's `Host` is accepted too, and
    /// `:generateToken` mints tokens for that `Host`: what a hub behind a proxy that keeps the
    /// client's `Host` needs. Off by default: whoever can reach the hub chooses `Host`, so
    /// trusting it lets a token minted for another host (another hub sharing the key) in.
    pub fn trust_host_header(mut self, trust: bool) -> HubConfig {
        self.trust_host_header = trust;
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

    /// Adds an upstream event handler for every user event and the `connected` and
    /// `disconnected` system events (CloudEvents over HTTP; `{event}` and `{hub}` in the URL
    /// are replaced). User events go there instead of being echoed. Use
    /// [`HubConfig::handler`] for filters and the blocking `connect` event.
    pub fn event_handler(mut self, url: Url) -> HubConfig {
        self.event_handlers.push(EventHandler::from_url(&url));
        self
    }

    /// Adds an upstream event handler; an event goes to the first handler, in the order
    /// they were added, whose filters take it (as the service's hub settings do).
    pub fn handler(mut self, handler: EventHandler) -> HubConfig {
        self.event_handlers.push(handler);
        self
    }

    /// A second access key: event handler calls then carry two signatures in
    /// `ce-signature`, one per key, as the service's do with its primary and secondary keys
    /// (tokens are still signed and checked with [`HubConfig::access_key`] only).
    pub fn secondary_access_key(mut self, key: impl Into<Secret>) -> HubConfig {
        self.secondary_access_key = Some(key.into());
        self
    }

    /// Also trusts the CA certificates in this PEM text when calling `https://` event
    /// handlers (beside the Mozilla root set the hub always trusts): for a local app server
    /// with a self-signed or private-CA certificate.
    pub fn upstream_ca(mut self, pem: impl Into<Vec<u8>>) -> HubConfig {
        self.upstream_ca_pem.push(pem.into());
        self
    }

    /// The `WebHook-Request-Origin` the hub sends to event handlers (the service sends its
    /// own host name, `xxx.webpubsub.azure.com`). Default: the hub's own `host:port` as a
    /// client reaches it, which is what the official handler SDK derives from the endpoint
    /// given in its `allowedEndpoints`.
    pub fn webhook_origin(mut self, origin: impl Into<String>) -> HubConfig {
        self.webhook_origin = Some(origin.into());
        self
    }

    /// Lets clients connect without an access token, as the hub setting
    /// `anonymousConnectPolicy: allow` does: such a connection has no user id, no roles and
    /// no groups (a token, when given, is still checked). Off by default, as in the service.
    pub fn allow_anonymous(mut self, allow: bool) -> HubConfig {
        self.allow_anonymous = allow;
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

    /// Applies the settings of a `hub.toml` file (see [`HubConfig::with_toml`]).
    pub fn with_file(self, path: &Path) -> Result<HubConfig, HubError> {
        let text = std::fs::read_to_string(path).map_err(|e| HubError::ConfigFile {
            path: path.display().to_string(),
            problem: format!("cannot read it: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        self.with_toml(&text, base)
            .map_err(|problem| HubError::ConfigFile {
                path: path.display().to_string(),
                problem,
            })
    }

    /// Applies settings written in TOML; relative file names are read from `base_dir`.
    /// Every key is optional; an unknown key is refused (a typo would otherwise be a setting
    /// silently not applied):
    ///
    /// ```toml
    /// access_key = "..."              # at least 32 characters
    /// secondary_access_key = "..."    # a second ce-signature
    /// echo_events = false
    /// max_connections = 10000
    /// max_message_size = 1048576      # bytes
    /// max_upstream_calls = 256
    /// max_invocations_per_connection = 64  # invokes in flight per connection
    /// upstream_timeout_seconds = 30
    /// upstream_ca_file = "app-ca.pem" # trusted for https handlers, beside the web PKI roots
    /// webhook_origin = "127.0.0.1:8080"
    /// trust_host_header = false
    /// allow_anonymous = false         # clients without a token (anonymousConnectPolicy)
    ///
    /// [[event_handler]]               # as many as needed; the first that takes an event gets it
    /// url = "http://localhost:3000/api/{hub}/{event}"
    /// user_events = "*"               # "*", "name", "a,b" or "" for none
    /// system_events = ["connect", "connected", "disconnected"]  # also "joined", "left"
    /// hub = "chat"                    # only this hub's events (default: every hub)
    /// abuse_protection = true
    /// ```
    pub fn with_toml(mut self, text: &str, base_dir: &Path) -> Result<HubConfig, String> {
        let file: FileSettings = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(key) = file.access_key {
            self = self.access_key(key);
        }
        if let Some(key) = file.secondary_access_key {
            self = self.secondary_access_key(key);
        }
        if let Some(echo) = file.echo_events {
            self = self.echo_events(echo);
        }
        if let Some(n) = file.max_connections {
            self = self.max_connections(n);
        }
        if let Some(n) = file.max_message_size {
            self = self.max_message_size(n);
        }
        if let Some(n) = file.max_upstream_calls {
            self = self.max_upstream_calls(n);
        }
        if let Some(n) = file.max_invocations_per_connection {
            self = self.max_invocations_per_connection(n);
        }
        if let Some(seconds) = file.upstream_timeout_seconds {
            let timeout = Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|t| !t.is_zero())
                .ok_or("upstream_timeout_seconds must be a positive number of seconds")?;
            self = self.upstream_timeout(timeout);
        }
        if let Some(name) = file.upstream_ca_file {
            let path = base_dir.join(&name);
            let pem = std::fs::read(&path)
                .map_err(|e| format!("upstream_ca_file: cannot read {}: {e}", path.display()))?;
            self = self.upstream_ca(pem);
        }
        if let Some(origin) = file.webhook_origin {
            self = self.webhook_origin(origin);
        }
        if let Some(trust) = file.trust_host_header {
            self = self.trust_host_header(trust);
        }
        if let Some(allow) = file.allow_anonymous {
            self = self.allow_anonymous(allow);
        }
        for (i, h) in file.event_handlers.into_iter().enumerate() {
            let mut handler = EventHandler::new(h.url).user_events(&h.user_events);
            if let Some(events) = h.system_events {
                let events = events
                    .iter()
                    .map(|e| e.parse::<SystemEvent>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("event_handler {}: {e}", i + 1))?;
                handler = handler.system_events(events);
            }
            if let Some(hub) = h.hub {
                handler = handler.hub(hub);
            }
            if let Some(check) = h.abuse_protection {
                handler = handler.abuse_protection(check);
            }
            if let Some(problem) = handler.problem() {
                return Err(format!("event_handler {}: {problem}", i + 1));
            }
            self = self.handler(handler);
        }
        Ok(self)
    }
}

/// The keys of a `hub.toml` file (documented on [`HubConfig::with_toml`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    access_key: Option<String>,
    secondary_access_key: Option<String>,
    echo_events: Option<bool>,
    max_connections: Option<usize>,
    max_message_size: Option<usize>,
    max_upstream_calls: Option<usize>,
    max_invocations_per_connection: Option<usize>,
    upstream_timeout_seconds: Option<f64>,
    upstream_ca_file: Option<String>,
    webhook_origin: Option<String>,
    trust_host_header: Option<bool>,
    allow_anonymous: Option<bool>,
    #[serde(default, rename = "event_handler")]
    event_handlers: Vec<FileHandler>,
}

/// One `[[event_handler]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHandler {
    url: String,
    #[serde(default = "every_user_event")]
    user_events: String,
    system_events: Option<Vec<String>>,
    hub: Option<String>,
    abuse_protection: Option<bool>,
}

fn every_user_event() -> String {
    "*".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str) -> Result<HubConfig, String> {
        HubConfig::new().with_toml(text, Path::new("."))
    }

    #[test]
    fn a_file_with_handlers_and_limits() {
        let config = apply(
            r#"
            echo_events = true
            max_invocations_per_connection = 3
            upstream_timeout_seconds = 2.5
            secondary_access_key = "s"
            [[event_handler]]
            url = "http://localhost:3000/{hub}/{event}"
            system_events = ["connect"]
            user_events = "a,b"
            [[event_handler]]
            url = "https://example.com/{event}"
            hub = "chat"
            abuse_protection = false
            "#,
        )
        .unwrap();
        assert!(config.echo_events);
        assert_eq!(config.max_invocations_per_connection, 3);
        assert_eq!(config.upstream_timeout, Duration::from_millis(2500));
        assert!(config.secondary_access_key.is_some());
        assert_eq!(
            config.event_handlers,
            vec![
                EventHandler::new("http://localhost:3000/{hub}/{event}")
                    .system_events([SystemEvent::Connect])
                    .user_events("a,b"),
                EventHandler::new("https://example.com/{event}")
                    .hub("chat")
                    .abuse_protection(false),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_reason() {
        let unknown = apply("echo_event = true").unwrap_err();
        assert!(unknown.contains("unknown field `echo_event`"), "{unknown}");
        assert!(
            unknown.contains("echo_events"),
            "lists the known keys: {unknown}"
        );
        let nested = apply("[[event_handler]]\nurl = 'http://h/'\nsystem_event = []").unwrap_err();
        assert!(nested.contains("unknown field `system_event`"), "{nested}");
        let scheme = apply("[[event_handler]]\nurl = 'ftp://h/'").unwrap_err();
        assert!(scheme.starts_with("event_handler 1:"), "{scheme}");
        assert!(scheme.contains("http://"), "{scheme}");
        let event =
            apply("[[event_handler]]\nurl = 'http://h/'\nsystem_events = ['join']").unwrap_err();
        assert!(event.contains("unknown system event `join`"), "{event}");
        let timeout = apply("upstream_timeout_seconds = -1").unwrap_err();
        assert!(timeout.contains("positive"), "{timeout}");
        let missing = apply("upstream_ca_file = '/nonexistent/ca.pem'").unwrap_err();
        assert!(
            missing.contains("cannot read /nonexistent/ca.pem"),
            "{missing}"
        );
    }
}
