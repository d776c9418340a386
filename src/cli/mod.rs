//! The `webpubsub-fleet` command line: `load` (load a hub with a fleet, or one shard of a
//! bigger run), `token` (mint a client access URL), `hub` (run the local hub), `k8s` (render
//! the manifests of a sharded run) and `report merge` (merge shard reports).

mod args;
mod hub;
mod k8s;
mod load;
mod report;
mod shard;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Azure Web PubSub clients by the thousand, and a local hub that speaks the same protocol.
#[derive(Debug, Parser)]
#[command(name = "webpubsub-fleet", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a hub with many clients and check every delivery (the local hub by default).
    Load(load::LoadArgs),
    /// Mint a client access URL from a connection string.
    Token(token::TokenArgs),
    /// Run the local hub until Ctrl-C (first stdout line: its connection string).
    Hub(hub::HubArgs),
    /// Render Kubernetes manifests (Indexed Job, headless Service) for a sharded load run.
    K8s(k8s::K8sArgs),
    /// Work with reports: merge the shard reports of a sharded run.
    #[command(subcommand)]
    Report(report::ReportCommand),
}

/// Parses the command line, sets up logging, runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => {
            init_tracing("warn");
            load::run(args)
        }
        Command::Token(args) => {
            init_tracing("warn");
            token::run(args)
        }
        Command::Hub(args) => {
            init_tracing("info");
            hub::run(args)
        }
        Command::K8s(args) => {
            init_tracing("warn");
            let argv: Vec<String> = std::env::args()
                .skip_while(|a| a != "k8s")
                .skip(1)
                .collect();
            k8s::run(args, &argv)
        }
        Command::Report(command) => {
            init_tracing("warn");
            report::run(command)
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (or `default` when it is not set).
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints an error the way every command does, and the exit code for it.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
