//! `load --scenario app-server`: the in-process hub calls an in-process app server
//! ([`webpubsub_fleet::load::app_server`]) for every connection and user event, and the echo
//! workload runs through it; the report adds what the app server handled, and the run fails
//! when that disagrees with what the fleet saw.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use webpubsub_fleet::hub::{EventHandler, Hub, HubConfig, SystemEvent};
use webpubsub_fleet::load::app_server::{AppListener, AppServerCounts, check_counts};
use webpubsub_fleet::load::{self, LoadReport};

use super::LoadArgs;

/// The load report with the app server's counts (`app_server` in the JSON).
#[derive(Serialize)]
struct AppServerReport {
    #[serde(flatten)]
    load: LoadReport,
    app_server: AppServerCounts,
}

impl std::fmt::Display for AppServerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.load)?;
        write!(f, "{}", self.app_server)
    }
}

/// Runs it in this process against the in-process hub.
pub(super) fn run(args: LoadArgs) -> ExitCode {
    if args.connection_string.is_some() || args.shard.is_sharded() {
        return crate::cli::fail(
            "app-server runs the local hub and its app server in this process: leave out the connection string and --shards",
        );
    }
    if args.html.is_some() || args.metrics_addr.is_some() || args.chaos.is_some() {
        return crate::cli::fail(
            "--html, --metrics-addr and --chaos are not supported with app-server yet: use --json",
        );
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("seed {seed} (replay with --seed {seed})");
    let json: Option<PathBuf> = args.json.clone();
    let system = actix_rt::System::new();
    match system.block_on(run_local(&args, seed)) {
        Ok(report) => {
            let mut thresholds = report.load.thresholds.clone();
            let failures = check_counts(
                &report.app_server,
                report.load.clients.ever_connected,
                report.load.messages.checked.delivered,
            );
            thresholds.passed &= failures.is_empty();
            thresholds.failures.extend(failures);
            super::finish_report(&report, &thresholds, json)
        }
        Err(message) => crate::cli::fail(message),
    }
}

async fn run_local(args: &LoadArgs, seed: u64) -> Result<AppServerReport, String> {
    let listener = AppListener::bind().map_err(|e| format!("the app server cannot bind: {e}"))?;
    let handler = EventHandler::new(listener.handler_url().map_err(|e| e.to_string())?)
        .hub(args.hub.clone())
        .system_events([
            SystemEvent::Connect,
            SystemEvent::Connected,
            SystemEvent::Disconnected,
        ]);
    let config = HubConfig::new()
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .handler(handler);
    let hub = Hub::start(config).await.map_err(|e| e.to_string())?;
    let app = match listener.serve(&args.hub, &hub.endpoint(), hub.access_key().clone()) {
        Ok(app) => app,
        Err(e) => {
            hub.stop().await;
            return Err(e);
        }
    };
    let mut plan = args.plan(seed);
    plan.target_name = format!(
        "local hub {} (in process) with an app server",
        hub.endpoint()
    );
    // Each socket has both ends in this process, and each connection one app server call.
    plan.fds_per_client = 2;
    let target =
        webpubsub_fleet::fleet::FleetTarget::new(hub.connection_string(), args.hub.clone());
    let result = load::run(target, plan, args.simulation(), |p| eprintln!("{p}")).await;
    let counts = app.counts();
    hub.stop().await;
    app.stop().await;
    let mut load = result.map_err(|e| e.to_string())?;
    load.scenario = "app-server (echo through an app server)".to_owned();
    Ok(AppServerReport {
        load,
        app_server: counts,
    })
}
