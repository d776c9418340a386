//! Fleet options and targets: one type, a consuming builder, documented defaults.

use std::sync::Arc;
use std::time::Duration;

use crate::client::{ClientOptions, Observer};
use crate::credential::{ConnectionString, Credential, CredentialError};

use super::identity::{Identities, Identity, IdentityTemplate};
use super::limits::is_loopback_host;
use super::supervise::RestartPolicy;

/// New clients started per second: 500. One local hub on two shared cores accepts that
/// without start timeouts (each start is a TCP and a WebSocket handshake plus a token
/// signature on each side), and it brings 1,000 clients up in two seconds.
pub const DEFAULT_CONNECT_RATE: f64 = 500.0;
/// Starts in flight at once: 200. Bounds the burst a slow hub sees, whatever the rate.
pub const DEFAULT_CONNECT_CONCURRENCY: usize = 200;
/// How long `stop()` waits for every client to stop: 10 s, then the arbiters are stopped
/// anyway and the clients still running are counted as timed out.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the credential of a client from its index and identity.
pub type CredentialFn = Arc<dyn Fn(u64, &Identity) -> Credential + Send + Sync>;

/// Where the clients connect.
#[derive(Clone)]
pub enum FleetTarget {
    /// A hub of a Web PubSub resource (or the local hub): every client mints its own
    /// tokens with the connection string's key and its identity's claims.
    ConnectionString {
        /// The resource.
        connection_string: ConnectionString,
        /// The hub name.
        hub: String,
    },
    /// Any other credential source, per client index and identity.
    Custom {
        /// Builds client `index`'s credential.
        credential: CredentialFn,
        /// Whether the endpoint is on loopback (source addresses are spread only then).
        loopback: bool,
    },
}

impl FleetTarget {
    /// A hub reached with a connection string.
    pub fn new(connection_string: ConnectionString, hub: impl Into<String>) -> FleetTarget {
        FleetTarget::ConnectionString {
            connection_string,
            hub: hub.into(),
        }
    }

    /// The credential of client `index`.
    pub fn credential(
        &self,
        index: u64,
        identity: &Identity,
    ) -> Result<Credential, CredentialError> {
        match self {
            FleetTarget::ConnectionString {
                connection_string,
                hub,
            } => Credential::from_connection_string(
                connection_string.clone(),
                hub.clone(),
                identity.token_options(),
            ),
            FleetTarget::Custom { credential, .. } => Ok(credential(index, identity)),
        }
    }

    /// Whether the endpoint is on this machine's loopback.
    pub fn is_loopback(&self) -> bool {
        match self {
            FleetTarget::ConnectionString {
                connection_string, ..
            } => connection_string
                .endpoint()
                .host_str()
                .is_some_and(is_loopback_host),
            FleetTarget::Custom { loopback, .. } => *loopback,
        }
    }
}

impl std::fmt::Debug for FleetTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetTarget::ConnectionString {
                connection_string,
                hub,
            } => f
                .debug_struct("ConnectionString")
                .field("endpoint", &connection_string.endpoint_str())
                .field("hub", hub)
                .finish(),
            FleetTarget::Custom { loopback, .. } => f
                .debug_struct("Custom")
                .field("loopback", loopback)
                .finish_non_exhaustive(),
        }
    }
}

/// Options of a [`super::Fleet`].
#[derive(Clone)]
pub struct FleetOptions {
    /// Clients to run.
    pub clients: u64,
    /// New clients started per second during the ramp-up.
    pub connect_rate: f64,
    /// Starts in flight at most.
    pub connect_concurrency: usize,
    /// Arbiter threads the clients are spread over; 0 means one per core.
    pub arbiters: usize,
    /// Who each client is.
    pub identities: Identities,
    /// Options of every client (the fleet sets `index`, `observer` and `local_address`).
    pub client: ClientOptions,
    /// Restarts of clients that stopped on a failure.
    pub restart: RestartPolicy,
    /// How long `stop()` waits.
    pub stop_timeout: Duration,
    /// File descriptors one client costs in this process: 1, or 2 when the hub runs in the
    /// same process (it holds the other end of each socket).
    pub fds_per_client: u64,
    /// Spread clients over 127.0.0.x source addresses when the target is on loopback and one
    /// address runs out of ephemeral ports.
    pub spread_sources: bool,
    /// Told of every event of every client, after the fleet's own counters (recorders).
    pub observer: Option<Arc<dyn Observer>>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            clients: 1,
            connect_rate: DEFAULT_CONNECT_RATE,
            connect_concurrency: DEFAULT_CONNECT_CONCURRENCY,
            arbiters: 0,
            identities: Identities::default(),
            client: ClientOptions::default(),
            restart: RestartPolicy::default(),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            fds_per_client: 1,
            spread_sources: true,
            observer: None,
        }
    }
}

impl std::fmt::Debug for FleetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetOptions")
            .field("clients", &self.clients)
            .field("connect_rate", &self.connect_rate)
            .field("connect_concurrency", &self.connect_concurrency)
            .field("arbiters", &self.arbiters)
            .field("identities", &self.identities)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

impl FleetOptions {
    /// `clients` clients with the defaults.
    pub fn new(clients: u64) -> Self {
        FleetOptions {
            clients,
            ..Self::default()
        }
    }
    /// Sets the connect rate (clients per second).
    pub fn with_connect_rate(mut self, per_second: f64) -> Self {
        self.connect_rate = per_second;
        self
    }
    /// Sets the starts in flight at most.
    pub fn with_connect_concurrency(mut self, n: usize) -> Self {
        self.connect_concurrency = n;
        self
    }
    /// Sets the number of arbiter threads (0: one per core).
    pub fn with_arbiters(mut self, n: usize) -> Self {
        self.arbiters = n;
        self
    }
    /// Sets the identity template.
    pub fn with_identity(mut self, template: IdentityTemplate) -> Self {
        self.identities = Identities::Template(template);
        self
    }
    /// Sets a function from client index to identity.
    pub fn with_identity_fn(mut self, f: impl Fn(u64) -> Identity + Send + Sync + 'static) -> Self {
        self.identities = Identities::Custom(Arc::new(f));
        self
    }
    /// Sets the options of every client.
    pub fn with_client_options(mut self, options: ClientOptions) -> Self {
        self.client = options;
        self
    }
    /// Sets the restart policy.
    pub fn with_restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }
    /// Sets the stop timeout.
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }
    /// Sets the file descriptors per client.
    pub fn with_fds_per_client(mut self, n: u64) -> Self {
        self.fds_per_client = n;
        self
    }
    /// Turns source address spreading on or off.
    pub fn with_spread_sources(mut self, on: bool) -> Self {
        self.spread_sources = on;
        self
    }
    /// Sets an observer of every event.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Arbiters to start: the option, or one per core.
    pub fn arbiter_count(&self) -> usize {
        if self.arbiters > 0 {
            self.arbiters
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }

    pub(super) fn validate(&self) -> Result<(), super::FleetError> {
        let invalid = |s: &str| Err(super::FleetError::InvalidOptions(s.to_owned()));
        if self.connect_rate.is_nan() || self.connect_rate <= 0.0 {
            return invalid("connect_rate must be above 0 clients per second");
        }
        if self.connect_concurrency == 0 {
            return invalid("connect_concurrency must be at least 1");
        }
        if let Identities::Template(t) = &self.identities {
            t.validate()?;
        }
        Ok(())
    }
}
