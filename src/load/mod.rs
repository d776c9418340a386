//! Load runs: workloads over a [`crate::fleet::Fleet`], stamped payloads, a recorder fed
//! inline by every client, a delivery checker, latency histograms and a report.
//!
//! | piece | what it does |
//! |---|---|
//! | [`Simulation`], [`SimUser`] | what clients do; write your own (see `examples/simulate_chat.rs`) |
//! | [`Groups`], [`Broadcast`], [`Echo`], [`Chat`] | the built-in workloads |
//! | [`stamp`] | `p=<publisher>;s=<seq>;t=<µs>;` at the start of every payload, padded to size |
//! | [`Recorder`] | an [`Observer`](crate::client::Observer) that tracks memberships and deliveries per client |
//! | [`checker`] | lost, duplicated, reordered, unexpected, allowed gaps across reconnects |
//! | [`run`] | ramp-up, workload, chaos, drain, check, [`LoadReport`] |
//! | [`html`] | the report as one self-contained HTML page with SVG charts |
//! | [`series`] | one record per second of the run, mergeable across shards |
//! | [`rest_broadcast`] | server-side broadcasts through the REST API to the fleet, checked per client |
//! | [`app_server`] | an in-process app server (the event handler layer) that admits connections and answers user events |
//!
//! Every figure is measured in this process: publishers and receivers share one monotonic
//! [`Clock`], so latency is exact even against a remote hub.

pub mod app_server;
pub mod chat;
pub mod checker;
pub mod coordinator;
pub mod html;
pub mod merge;
pub mod process;
pub mod rangeset;
pub mod recorder;
pub mod report;
pub mod rest_broadcast;
pub mod runner;
pub mod series;
pub mod settle;
pub mod shard;
pub mod sim;
pub mod stamp;
pub mod track;
pub mod workloads;

use thiserror::Error;

use crate::fleet::FleetError;

pub use chat::Chat;
pub use checker::{CheckReport, Counts, check, check_clients};
pub use merge::{Absent, merge};
pub use recorder::{Recorder, RecorderStats, Retained};
pub use report::{BenchmarkRule, Limit, LoadReport, ShardRow, Thresholds};
pub use rest_broadcast::{RestBroadcastPlan, RestBroadcastReport, RestTarget};
pub use runner::{
    BarrierFn, Chaos, ChaosFn, ClientChaos, DEFAULT_CLIENTS, DEFAULT_DRAIN, DEFAULT_DURATION,
    DEFAULT_SIZE, LoadPlan, Phase, Progress, run, run_shard,
};
pub use series::{REPORT_SCHEMA_VERSION, Series, SeriesPoint};
pub use shard::{RunKey, ShardReport, ShardSpec};
pub use sim::{ECHO_EVENT, SimSettings, SimUser, Simulation};
pub use stamp::{Clock, Stamp, StampError};
pub use workloads::{BROADCAST_GROUP, Broadcast, Echo, GROUP_TEMPLATE, Groups};

/// Why a load run could not run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LoadError {
    /// The fleet failed.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// The plan is inconsistent.
    #[error("invalid load plan: {0}")]
    Invalid(String),
    /// Every client's first start failed: there is nothing to load the hub with.
    #[error("none of the {clients} clients connected to {target}: {errors}")]
    NoClientConnected {
        /// Clients asked for.
        clients: u64,
        /// The target's name.
        target: String,
        /// The failures by kind, with an example or two.
        errors: String,
    },
    /// A sharded run's coordination failed (barrier, registration).
    #[error("{0}")]
    Coordination(String),
}
