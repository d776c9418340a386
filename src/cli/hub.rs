//! `webpubsub-fleet hub`: run the local hub until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use url::Url;
use webpubsub_fleet::hub::{Hub, HubConfig, HubStats};

/// How often the hub prints a stats line.
const STATS_EVERY: Duration = Duration::from_secs(60);

/// Run the local hub: the first stdout line is its connection string, key included.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Access key signing the tokens (at least 32 bytes; the development key by default).
    #[arg(long, env = "WEBPUBSUB_HUB_ACCESS_KEY", hide_env_values = true)]
    access_key: Option<String>,
    /// Echo every client event back to its sender as a server message.
    #[arg(long)]
    echo_events: bool,
    /// Forward client events to this upstream (CloudEvents over HTTP or HTTPS, as the service
    /// does; `{hub}` and `{event}` are replaced): every user event, `connected` and
    /// `disconnected`. Handlers with filters and the blocking `connect`: --config.
    #[arg(long, value_name = "URL")]
    event_handler: Option<Url>,
    /// Settings from a TOML file (event handlers with filters, limits, keys); flags given on
    /// the command line apply after it. The keys are documented in the README and on
    /// `HubConfig::with_toml`; an unknown key is an error.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file when calling https event handlers.
    #[arg(long, value_name = "FILE")]
    handler_ca: Option<PathBuf>,
    /// Serve https/wss with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve the hub's counters (Prometheus text format) at http://IP:PORT/metrics.
    #[arg(long, value_name = "IP:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// Most connections held at once; past it new clients get HTTP 429. Default: the soft
    /// open-files limit minus 256, so the 429 fires before the process runs out of sockets.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// Also accept tokens minted for the request's Host header, and mint :generateToken
    /// tokens for it (for a proxy in front of the hub). Off: only the hub's own addresses.
    #[arg(long)]
    trust_host_header: bool,
    /// Let clients connect without an access token (the service's anonymousConnectPolicy
    /// allow): no user id, no roles, no groups. Off by default.
    #[arg(long)]
    allow_anonymous: bool,
}

impl HubArgs {
    fn config(&self) -> Result<HubConfig, String> {
        let mut config = HubConfig::new().bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)));
        if let Some(path) = &self.config {
            config = config.with_file(path).map_err(|e| e.to_string())?;
        }
        // Switches override the file only when given.
        if self.echo_events {
            config = config.echo_events(true);
        }
        if self.trust_host_header {
            config = config.trust_host_header(true);
        }
        if self.allow_anonymous {
            config = config.allow_anonymous(true);
        }
        if let Some(path) = &self.handler_ca {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the handler CA file {}: {e}", path.display()))?;
            config = config.upstream_ca(pem);
        }
        if let Some(n) = self.max_connections {
            config = config.max_connections(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(key) = &self.access_key {
            config = config.access_key(key.clone());
        }
        if let Some(url) = &self.event_handler {
            config = config.event_handler(url.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let read = |path: &PathBuf| {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            };
            let key = String::from_utf8(read(key)?)
                .map_err(|_| format!("{} is not a PEM text file", key.display()))?;
            config = config.tls(read(cert)?, key);
        }
        Ok(config)
    }
}

pub fn run(args: HubArgs) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => return super::fail(e),
    };
    let metrics_addr = args.metrics_addr;
    let outcome = actix_rt::System::new().block_on(async move {
        let hub = Hub::start(config).await.map_err(|e| e.to_string())?;
        // Live metrics (issue 14): the hub's counters, read at each scrape.
        let _metrics = match metrics_addr {
            Some(addr) => {
                let stats = hub.clone();
                let registry = webpubsub_fleet::metrics::hub_registry(move || stats.stats());
                Some(webpubsub_fleet::metrics::serve(addr, registry).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        // The one line meant to carry the key: scripts read it to configure their clients.
        println!("{}", hub.connection_string().expose());
        let mut every = tokio::time::interval(STATS_EVERY);
        every.tick().await;
        loop {
            tokio::select! {
                signal = tokio::signal::ctrl_c() => {
                    if let Err(e) = signal {
                        tracing::warn!(error = %e, "cannot listen for Ctrl-C; stopping");
                    }
                    break;
                }
                _ = every.tick() => println!("{}", stats_line(&hub.stats())),
            }
        }
        eprintln!("stopping the hub");
        hub.stop().await;
        Ok::<(), String>(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}

/// One line of the counters people watch.
pub fn stats_line(s: &HubStats) -> String {
    format!(
        "connections {} (attached {}, recoverable {}) | groups {} | opened {} | in {} | out {} | recoveries {} | refused {} | unauthorized {} | slow clients {}",
        s.connections,
        s.attached,
        s.detached_sessions,
        s.groups,
        s.connections_opened,
        s.messages_in,
        s.messages_out,
        s.recoveries,
        s.recoveries_refused,
        s.unauthorized,
        s.slow_clients
    )
}
