//! `load --scenario rest-broadcast`: the app server broadcasts through the REST API
//! ([`webpubsub_fleet::load::rest_broadcast`]) to a fleet that only receives.

use std::process::ExitCode;

use clap::ValueEnum;
use webpubsub_fleet::hub::{Hub, HubConfig};
use webpubsub_fleet::load::{RestBroadcastPlan, RestTarget, rest_broadcast};

use super::LoadArgs;

/// `--rest-target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum RestTargetArg {
    /// `POST :send` to every connection.
    All,
    /// `POST groups/{g}/:send`, round-robin over groups of --group-size clients.
    Groups,
}

/// Runs it in this process, against the given connection string or an in-process hub.
pub(super) fn run(args: LoadArgs) -> ExitCode {
    if args.shard.is_sharded() {
        return crate::cli::fail("rest-broadcast runs in one process: leave out --shards");
    }
    if args.chaos.is_some() {
        return crate::cli::fail("--chaos is not supported with rest-broadcast yet");
    }
    let protocol = match args.protocol.as_slice() {
        [one] => one.subprotocol(),
        _ => return crate::cli::fail("rest-broadcast takes one --protocol, not a mixed fleet yet"),
    };
    if args.html.is_some() || args.metrics_addr.is_some() {
        return crate::cli::fail(
            "--html and --metrics-addr are not supported with rest-broadcast yet: use --json",
        );
    }
    let mut plan = RestBroadcastPlan {
        clients: args.clients,
        ramp_rate: args.ramp_rate,
        duration: args.duration,
        protocol,
        size: args.size,
        lanes: args.senders,
        rate: args.rate.unwrap_or(10.0),
        target: match args.rest_target {
            RestTargetArg::All => RestTarget::All,
            RestTargetArg::Groups => RestTarget::Groups {
                group_size: args.group_size,
            },
        },
        arbiters: args.arbiters,
        thresholds: args.thresholds.thresholds(),
        ..RestBroadcastPlan::default()
    };
    let system = actix_rt::System::new();
    let outcome = system.block_on(async move {
        match args.connection_string.clone() {
            Some(cs) => {
                plan.target_name = format!("{} hub {}", cs.endpoint_str(), args.hub);
                rest_broadcast::run(cs, &args.hub, plan, |p| eprintln!("{p}")).await
            }
            None => {
                let config = HubConfig::new().bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
                let hub = Hub::start(config)
                    .await
                    .map_err(|e| webpubsub_fleet::load::LoadError::Invalid(e.to_string()))?;
                plan.target_name = format!("local hub {} (in process)", hub.endpoint());
                // Each socket has both ends in this process.
                plan.fds_per_client = 2;
                let report = rest_broadcast::run(hub.connection_string(), &args.hub, plan, |p| {
                    eprintln!("{p}")
                })
                .await;
                hub.stop().await;
                report
            }
        }
        .map(|report| (report, args.json.clone()))
    });
    match outcome {
        Ok((report, json)) => super::finish_report(&report, &report.thresholds, json),
        Err(e) => crate::cli::fail(e),
    }
}
