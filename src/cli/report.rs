//! `webpubsub-fleet report merge FILE...`: merges the shard reports a sharded run wrote with
//! `--shard-report`, for engines whose pods cannot reach each other.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use webpubsub_fleet::load::{self, Absent, ShardReport};

use super::load::ThresholdArgs;

/// Report commands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge shard reports into the report of the whole run (exit 1 when a threshold fails
    /// or a shard is missing).
    Merge(MergeArgs),
}

/// `report merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard reports written with `load --shard-report FILE`, one per shard.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write the merged report as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    #[command(flatten)]
    thresholds: ThresholdArgs,
}

/// Runs a report command.
pub fn run(command: ReportCommand) -> ExitCode {
    match command {
        ReportCommand::Merge(args) => merge(args),
    }
}

fn merge(args: MergeArgs) -> ExitCode {
    let mut reports = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) => return super::fail(format!("cannot read {}: {e}", path.display())),
        };
        match serde_json::from_slice::<ShardReport>(&text) {
            Ok(report) => reports.push(report),
            Err(e) => {
                return super::fail(format!(
                    "{} is not a shard report (write one with `load --shard-report FILE`): {e}",
                    path.display()
                ));
            }
        }
    }
    match load::merge(&reports, &Absent::default(), &args.thresholds.thresholds()) {
        Ok(report) => super::load::finish(&report, args.json),
        Err(e) => super::fail(format!("cannot merge: {e}")),
    }
}
