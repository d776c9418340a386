//! `webpubsub-fleet load`: run a workload over a fleet, print progress, a table and
//! optionally a JSON report; thresholds turn the report into an exit status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use futures::FutureExt;
use webpubsub_fleet::client::{ClientOptions, DEFAULT_KEEPALIVE_INTERVAL};
use webpubsub_fleet::credential::ConnectionString;
use webpubsub_fleet::fleet::FleetTarget;
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::load::{
    self, Broadcast, Chaos, Chat, ClientChaos, Echo, Groups, Limit, LoadPlan, LoadReport,
    Simulation, Thresholds,
};
use webpubsub_fleet::protocol::Subprotocol;

use super::args::{
    CONNECTION_STRING_ENV, ChaosSide, ChaosSpec, chaos, connection_string, duration,
};
use super::shard::ShardArgs;

// `--scenario rest-broadcast` (issue 13): its own run loop, in load/rest.rs.
mod rest;
// `--scenario app-server` (issue 12): its own run loop, in load/app_server.rs.
mod app_server;

/// Load a hub with a fleet of clients.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The workload.
    #[arg(long, value_enum, default_value_t = Scenario::Groups)]
    scenario: Scenario,
    /// Clients.
    #[arg(long, default_value_t = load::DEFAULT_CLIENTS, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// Clients per group (groups, echo) or per room (chat: rooms = clients / group size).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    group_size: u64,
    /// Senders per group (groups, echo) or in all (broadcast).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    senders: u64,
    /// Messages per second per sender [default: 10; broadcast 5; chat 0.5 per user].
    #[arg(long)]
    rate: Option<f64>,
    /// Payload size in bytes (the stamp pads up to it).
    #[arg(long, default_value_t = load::DEFAULT_SIZE)]
    size: usize,
    /// Workload length after the ramp-up (500ms, 25s, 2m, ...).
    #[arg(long, default_value = "25s", value_parser = duration)]
    duration: Duration,
    /// New clients per second during the ramp-up (of the whole run, when sharded).
    #[arg(long, default_value_t = webpubsub_fleet::fleet::DEFAULT_CONNECT_RATE)]
    ramp_rate: f64,
    /// Subprotocol.
    #[arg(long, value_enum, default_value_t = Protocol::JsonReliable)]
    protocol: Protocol,
    /// Publish without acks.
    #[arg(long)]
    fire_and_forget: bool,
    /// Fault SHARE of the connections every PERIOD. `5%:2s` (or `hub:5%:2s`): the in-process
    /// local hub drops them abruptly. `client:5%:2s[:KIND]`: the fleet faults its own
    /// sockets, against any hub (the service too): KIND `drop` (default; the TCP connection
    /// ends without a close frame), `blackhole` (half-open: nothing read or written, noticed
    /// after --keepalive-timeout) or `close=CODE` (a close frame, such as close=1011).
    #[arg(long, value_name = "[hub:|client:]SHARE:PERIOD[:KIND]", value_parser = chaos, verbatim_doc_comment)]
    chaos: Option<ChaosSpec>,
    /// Call a client's socket dead after this long without a frame, then recover it (the
    /// liveness bound of a half-open socket, e.g. --chaos client:5%:2s:blackhole). Pings go
    /// out every third of it, at most every 20 s.
    #[arg(long, default_value = "120s", value_parser = duration)]
    keepalive_timeout: Duration,
    /// Target a resource instead of the in-process local hub (or set WebPubSubConnectionString).
    #[arg(long, env = CONNECTION_STRING_ENV, value_parser = connection_string, hide_env_values = true)]
    connection_string: Option<ConnectionString>,
    /// The hub name.
    #[arg(long, default_value = "loadtest")]
    hub: String,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as one self-contained HTML page with charts to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Serve live metrics (Prometheus text format) at http://IP:PORT/metrics during the run.
    #[arg(long, value_name = "IP:PORT")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// The live metrics the run feeds (set when --metrics-addr is given).
    #[arg(skip)]
    live_metrics: Option<webpubsub_fleet::metrics::LoadMetrics>,
    #[command(flatten)]
    thresholds: ThresholdArgs,
    /// Seed of the simulated users' random choices (printed when not given).
    #[arg(long)]
    seed: Option<u64>,
    /// Arbiter threads for the clients (0: one per core).
    #[arg(long, default_value_t = 0)]
    arbiters: usize,
    #[command(flatten)]
    shard: ShardArgs,
    /// rest-broadcast only: send to every connection (all) or round-robin to the groups of
    /// --group-size clients (groups).
    #[arg(long, value_enum, default_value_t = rest::RestTargetArg::All)]
    rest_target: rest::RestTargetArg,
}

/// Thresholds that turn a report into an exit status (`load` and `report merge`).
#[derive(Debug, Clone, Args)]
pub struct ThresholdArgs {
    /// Fail (exit 1) when more messages are lost: a count (0) or a share of expected (0.1%);
    /// any duplicated, reordered or unexpected delivery then fails the run too.
    #[arg(long)]
    max_loss: Option<Limit>,
    /// Fail (exit 1) when the delivery p99 is above this many milliseconds.
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// Fail (exit 1) when fewer clients are connected at the end: a count or a share (99%).
    #[arg(long)]
    min_connected: Option<Limit>,
}

impl ThresholdArgs {
    /// The thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            max_loss: self.max_loss,
            max_p99_ms: self.max_p99_ms,
            min_connected: self.min_connected,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Clients in groups of --group-size; --senders per group publish at --rate.
    Groups,
    /// One group of every client; --senders publish at --rate.
    Broadcast,
    /// send_event round trips echoed by the hub.
    Echo,
    /// Users join and leave rooms, post with think times, go away and come back.
    Chat,
    /// The app server broadcasts through the REST API (to all, or to groups: --rest-target);
    /// --senders concurrent REST senders at --rate each; the clients only receive.
    RestBroadcast,
    /// echo through an in-process app server: it admits and names every connection on the
    /// blocking connect event and answers every user event (issue 12).
    AppServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// json.webpubsub.azure.v1
    Json,
    /// json.reliable.webpubsub.azure.v1
    JsonReliable,
}

impl LoadArgs {
    /// Flags that cannot make a meaningful run, refused before anything starts.
    fn refuse_nonsense(&self) -> Result<(), String> {
        if let Some(rate) = self.rate.filter(|r| !r.is_finite() || *r <= 0.0) {
            return Err(format!("--rate {rate} must be above 0"));
        }
        if !self.ramp_rate.is_finite() || self.ramp_rate <= 0.0 {
            return Err(format!(
                "--ramp-rate {} must be above 0 clients per second",
                self.ramp_rate
            ));
        }
        if self.duration.is_zero() {
            return Err("--duration must be above zero".into());
        }
        let blackhole =
            (self.chaos.map(|c| c.fault)) == Some(webpubsub_fleet::client::SocketFault::Blackhole);
        if blackhole && self.keepalive_timeout.is_zero() {
            return Err(
                "--chaos ...:blackhole with --keepalive-timeout 0 (no liveness check): blackholed sockets would never be noticed".into(),
            );
        }
        let per_group = matches!(
            self.scenario,
            Scenario::Groups | Scenario::Echo | Scenario::AppServer
        );
        if per_group && self.senders > self.group_size {
            return Err(format!(
                "--senders {} is more than --group-size {}: senders are members of their group",
                self.senders, self.group_size
            ));
        }
        if self.scenario == Scenario::Broadcast && self.senders > self.clients {
            return Err(format!(
                "--senders {} is more than --clients {}",
                self.senders, self.clients
            ));
        }
        Ok(())
    }

    fn simulation(&self) -> Arc<dyn Simulation> {
        match self.scenario {
            Scenario::Groups => Arc::new(Groups {
                group_size: self.group_size,
                senders: self.senders,
                rate: self.rate.unwrap_or(10.0),
            }),
            // rest-broadcast never gets here: `run` hands it to `rest::run`.
            Scenario::Broadcast | Scenario::RestBroadcast => Arc::new(Broadcast {
                senders: self.senders,
                rate: self.rate.unwrap_or(5.0),
            }),
            Scenario::Echo | Scenario::AppServer => Arc::new(Echo {
                group_size: self.group_size,
                senders: self.senders,
                rate: self.rate.unwrap_or(10.0),
            }),
            Scenario::Chat => Arc::new(Chat {
                rooms: (self.clients / self.group_size).max(1),
                rate: self.rate.unwrap_or(0.5),
                ..Chat::default()
            }),
        }
    }

    fn plan(&self, seed: u64) -> LoadPlan {
        LoadPlan {
            clients: self.clients,
            ramp_rate: self.ramp_rate,
            duration: self.duration,
            protocol: match self.protocol {
                Protocol::Json => Subprotocol::Json,
                Protocol::JsonReliable => Subprotocol::JsonReliable,
            },
            fire_and_forget: self.fire_and_forget,
            size: self.size,
            seed,
            arbiters: self.arbiters,
            thresholds: self.thresholds.thresholds(),
            metrics: self.live_metrics.clone(),
            client: self.client_options(),
            client_chaos: self
                .chaos
                .filter(|spec| spec.side == ChaosSide::Client)
                .map(|spec| ClientChaos {
                    share: spec.share,
                    period: spec.period,
                    fault: spec.fault,
                }),
            ..LoadPlan::default()
        }
    }

    /// The clients' keepalive: dead after `--keepalive-timeout`, pinging three times within
    /// it so a healthy idle socket is never called dead.
    fn client_options(&self) -> ClientOptions {
        let interval = DEFAULT_KEEPALIVE_INTERVAL.min(self.keepalive_timeout / 3);
        ClientOptions::default().with_keepalive(interval, self.keepalive_timeout)
    }

    /// `--chaos` through the in-process hub (the default side).
    fn hub_chaos(&self) -> Option<ChaosSpec> {
        self.chaos.filter(|spec| spec.side == ChaosSide::Hub)
    }
}

impl LoadArgs {
    /// The run's settings for the HTML report (never the connection string: it holds a key).
    fn parameters(&self, seed: u64) -> Vec<(String, String)> {
        let target = match &self.connection_string {
            Some(cs) => format!("{} hub {}", cs.endpoint_str(), self.hub),
            None => "local hub in this process".to_owned(),
        };
        [
            ("scenario", format!("{:?}", self.scenario).to_lowercase()),
            ("target", target),
            ("clients", self.clients.to_string()),
            ("group size", self.group_size.to_string()),
            ("senders", self.senders.to_string()),
            (
                "rate",
                self.rate.map_or("default".into(), |r| format!("{r}/s")),
            ),
            ("size", format!("{} bytes", self.size)),
            ("duration", format!("{:?}", self.duration)),
            ("ramp rate", format!("{}/s", self.ramp_rate)),
            ("protocol", format!("{:?}", self.protocol)),
            ("fire and forget", self.fire_and_forget.to_string()),
            (
                "chaos",
                self.chaos.map_or("none".into(), |c| match c.side {
                    ChaosSide::Hub => {
                        format!("hub drops {:.0}% every {:?}", c.share * 100.0, c.period)
                    }
                    ChaosSide::Client => format!(
                        "client {} of {:.0}% every {:?}",
                        c.fault,
                        c.share * 100.0,
                        c.period
                    ),
                }),
            ),
            ("seed", seed.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

pub fn run(mut args: LoadArgs) -> ExitCode {
    if let Err(message) = args.refuse_nonsense() {
        return super::fail(message);
    }
    if args.scenario == Scenario::RestBroadcast {
        return rest::run(args);
    }
    if args.scenario == Scenario::AppServer {
        return app_server::run(args);
    }
    if args.shard.is_sharded() {
        return run_sharded(args);
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("seed {seed} (replay with --seed {seed})");
    let html = args.html.clone().map(|path| (path, args.parameters(seed)));
    let system = actix_rt::System::new();
    let outcome = system.block_on(async move {
        let server = match args.metrics_addr {
            Some(addr) => {
                let (metrics, registry) = webpubsub_fleet::metrics::LoadMetrics::new();
                args.live_metrics = Some(metrics);
                let server =
                    webpubsub_fleet::metrics::serve(addr, registry).map_err(|e| e.to_string())?;
                eprintln!("metrics at http://{}/metrics", server.addr());
                Some(server)
            }
            None => None,
        };
        let report = match args.connection_string.clone() {
            Some(cs) => run_remote(&args, cs, seed).await,
            None => run_local(&args, seed).await,
        };
        if let Some(server) = server {
            server.stop().await;
        }
        let report = report?;
        Ok::<_, String>((report, args.json.clone()))
    });
    match outcome {
        Ok((report, json)) => {
            if let Some((path, parameters)) = html {
                let page = load::html::render(&report, &parameters);
                if let Err(e) = std::fs::write(&path, page) {
                    return super::fail(format!("cannot write {}: {e}", path.display()));
                }
            }
            finish(&report, json)
        }
        Err(message) => super::fail(message),
    }
}

/// Loads a resource (or any hub reachable with a connection string).
async fn run_remote(
    args: &LoadArgs,
    cs: ConnectionString,
    seed: u64,
) -> Result<LoadReport, String> {
    if args.hub_chaos().is_some() {
        return Err(
            "--chaos without client: needs the local hub: leave out the connection string, or fault the clients' own sockets with --chaos client:SHARE:PERIOD".into(),
        );
    }
    let mut plan = args.plan(seed);
    plan.target_name = format!("{} hub {}", cs.endpoint_str(), args.hub);
    let target = FleetTarget::new(cs, args.hub.clone());
    load::run(target, plan, args.simulation(), |p| eprintln!("{p}"))
        .await
        .map_err(|e| e.to_string())
}

/// Starts the local hub in this process (port 0, events echoed for the echo scenario) and
/// loads it; `--chaos` drops connections through its fault API.
async fn run_local(args: &LoadArgs, seed: u64) -> Result<LoadReport, String> {
    let config = HubConfig::new()
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .echo_events(true);
    let hub = Hub::start(config).await.map_err(|e| e.to_string())?;
    let mut plan = args.plan(seed);
    plan.target_name = format!("local hub {} (in process)", hub.endpoint());
    // Each socket has both ends in this process.
    plan.fds_per_client = 2;
    plan.chaos = args.hub_chaos().map(|spec| {
        let hub = hub.clone();
        Chaos {
            share: spec.share,
            period: spec.period,
            inject: Arc::new(move |share| {
                let dropped = hub.drop_fraction(share);
                tracing::debug!(dropped, "chaos: dropped connections");
                async { Ok(()) }.boxed()
            }),
        }
    });
    let target = FleetTarget::new(hub.connection_string(), args.hub.clone());
    let result = load::run(target, plan, args.simulation(), |p| eprintln!("{p}")).await;
    hub.stop().await;
    result.map_err(|e| e.to_string())
}

/// A shard of a sharded run: against a hub every shard reaches, coordinated through shard 0
/// or writing its report to a file.
fn run_sharded(args: LoadArgs) -> ExitCode {
    let Some(cs) = args.connection_string.clone() else {
        return super::fail(
            "a sharded run needs a hub every shard reaches: give --connection-string (or set WebPubSubConnectionString); `webpubsub-fleet hub` runs a local one",
        );
    };
    if args.hub_chaos().is_some() {
        return super::fail(
            "--chaos without client: needs the in-process hub, which a sharded run cannot use; --chaos client:SHARE:PERIOD faults the clients' own sockets",
        );
    }
    if let Some(rate) = args.rate.filter(|r| r.is_nan() || *r <= 0.0) {
        return super::fail(format!("--rate {rate} must be above 0"));
    }
    let target_name = format!("{} hub {}", cs.endpoint_str(), args.hub);
    let workload = args.workload_hash(cs.endpoint_str());
    let target = FleetTarget::new(cs, args.hub.clone());
    let plan = {
        let mut plan = args.plan(0);
        plan.target_name = target_name;
        plan
    };
    let run = super::shard::ShardRun {
        plan,
        seed: args.seed,
        workload,
        target,
        simulation: args.simulation(),
        json: args.json.clone(),
    };
    super::shard::run(&args.shard, run)
}

impl LoadArgs {
    /// `--shards`.
    pub fn shard_count(&self) -> u64 {
        self.shard.shards
    }

    /// `--clients`.
    pub fn client_count(&self) -> u64 {
        self.clients
    }

    /// Whether a connection string was given (flag or environment).
    pub fn has_connection_string(&self) -> bool {
        self.connection_string.is_some()
    }

    /// A hash of every flag that shapes the run, which all shards must share (the
    /// endpoint, not the key: the hash is logged and sent over the network).
    fn workload_hash(&self, endpoint: &str) -> String {
        use sha2::Digest as _;
        let text = format!(
            "{:?} {:?}",
            (
                self.scenario,
                self.clients,
                self.group_size,
                self.senders,
                self.rate.map(f64::to_bits),
                self.size,
                self.duration,
            ),
            (
                self.ramp_rate.to_bits(),
                self.protocol,
                self.fire_and_forget,
                &self.hub,
                endpoint,
                self.shard.shards,
            )
        );
        let digest = sha2::Sha256::digest(text.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Prints the table, writes the JSON, and turns thresholds into the exit status.
pub(super) fn finish(report: &LoadReport, json: Option<PathBuf>) -> ExitCode {
    finish_report(report, &report.thresholds, json)
}

/// [`finish`] for any report (rest-broadcast has its own).
pub(super) fn finish_report(
    report: &(impl std::fmt::Display + serde::Serialize),
    thresholds: &load::report::ThresholdResult,
    json: Option<PathBuf>,
) -> ExitCode {
    println!("{report}");
    if let Some(path) = json {
        let text = match serde_json::to_string_pretty(report) {
            Ok(text) => text,
            Err(e) => return super::fail(format!("cannot serialize the report: {e}")),
        };
        if let Err(e) = std::fs::write(&path, text + "\n") {
            return super::fail(format!("cannot write {}: {e}", path.display()));
        }
    }
    if thresholds.passed {
        ExitCode::SUCCESS
    } else {
        for failure in &thresholds.failures {
            eprintln!("threshold failed: {failure}");
        }
        ExitCode::from(1)
    }
}
