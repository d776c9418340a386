//! The one support module of the integration tests: every `tests/*.rs` includes it with
//! `mod support;` and takes what it needs. The rules it exists for (tests/README.md):
//!
//! - **One deadline.** Every wait ends by [`DEADLINE`], so a hang fails the test instead of
//!   stalling CI; an absence ("nothing arrives") is watched for [`QUIET`].
//! - **Wait for a condition, never sleep and hope.** [`eventually`] polls a condition until it
//!   holds and fails with what was awaited and the last state seen; [`within`] bounds one
//!   future the same way.
//! - **One of each tool:** a raw WebSocket peer ([`ws`]), raw HTTP/1.1 ([`http`]), the hub in
//!   process ([`hub`]) and as a child process ([`process`]), the scripted fake hub
//!   ([`fake_hub`]), the fault proxy ([`fault_proxy`]), the official-SDK agents ([`interop`]),
//!   a scripted app server for the hub's event handler calls ([`app_server`]) and the real
//!   client's helpers ([`client`]). Resident memory comes from the crate's own
//!   `load::process`, not from a parser here.
//!
//! Cargo compiles each `tests/*.rs` as a crate of its own, and each uses a different part of
//! this module: what one test binary leaves unused is not dead code of the suite.
#![allow(dead_code)]

pub mod app_server;
pub mod client;
pub mod fake_hub;
pub mod fault_proxy;
pub mod http;
pub mod hub;
pub mod interop;
pub mod process;
pub mod ws;

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use webpubsub_fleet::load::process::ProcessSample;

/// How long any wait of the suite lasts before the test fails: long enough for a 2-core
/// machine shared by several builds, short enough that a hang fails in seconds, not minutes.
/// Waits measured against a protocol timer assert the elapsed time themselves.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How long "nothing arrives" is watched for: an absence can only be checked for a while.
pub const QUIET: Duration = Duration::from_millis(300);

/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(10);

/// What a condition polled by [`eventually`] returns: whether it holds, with a value when it
/// does, or a description of the state seen when it does not (for the failure message).
pub trait Outcome {
    /// What the wait returns once the condition holds.
    type Value;
    /// `Ok` when the condition holds, else the state seen.
    fn settle(self) -> Result<Self::Value, String>;
}

impl Outcome for bool {
    type Value = ();
    fn settle(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition is still false".to_owned())
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn settle(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_owned())
    }
}

impl<T> Outcome for Result<T, String> {
    type Value = T;
    fn settle(self) -> Result<T, String> {
        self
    }
}

/// Polls `check` until it holds; panics at [`DEADLINE`] with `what` and the last state seen.
pub async fn eventually<O: Outcome>(
    what: impl Display,
    mut check: impl AsyncFnMut() -> O,
) -> O::Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match check().await.settle() {
            Ok(value) => return value,
            Err(state) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {DEADLINE:?} waiting for {what}; last seen: {state}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Awaits `future`; panics with `what` if it takes longer than [`DEADLINE`].
pub async fn within<T>(what: impl Display, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}

/// This test process's resident memory in KiB, as the load reports measure it.
pub fn rss_kib() -> u64 {
    ProcessSample::now()
        .expect("/proc/self/status is readable on Linux")
        .rss_kib
}

/// Asserts a load run's checker found nothing lost, duplicated, reordered or unexpected,
/// printing the whole report on failure (what each test adds is asserted beside it).
pub fn assert_no_violations(report: &webpubsub_fleet::load::LoadReport) {
    let c = &report.messages.checked;
    assert_eq!(
        (c.lost, c.duplicated, c.reordered, c.unexpected),
        (0, 0, 0, 0),
        "lost, duplicated, reordered, unexpected:\n{report}"
    );
}
