//! What the fleet does when a client stops: the stop-reason table as a pure function, and the
//! restart policy. The table is in the [module docs of `fleet`](super).

use std::time::Duration;

use crate::client::{ClientError, StopReason};
use crate::session::{RetryMode, RetryPolicy};

/// Delay between restarts of one client: exponential from 1 s up to 30 s. Longer than the
/// client's own reconnect delays, because a restart comes after the client itself gave up.
pub const DEFAULT_RESTART_BACKOFF: RetryPolicy = RetryPolicy {
    max_retries: DEFAULT_MAX_RESTARTS,
    delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(30),
    mode: RetryMode::Exponential,
};

/// Restarts of one client in a row (without a successful start between them) before the
/// fleet abandons it: 10, about 4 minutes of backoff, enough to ride out a hub restart.
pub const DEFAULT_MAX_RESTARTS: u32 = 10;

/// When and how often the fleet restarts a client that stopped on a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts in a row without a successful start in between; then the client is abandoned.
    /// A successful start resets the count.
    pub max_restarts: u32,
    /// Delay before restart `n` (its `max_retries` is not used; `max_restarts` is).
    pub backoff: RetryPolicy,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: DEFAULT_MAX_RESTARTS,
            backoff: DEFAULT_RESTART_BACKOFF,
        }
    }
}

impl RestartPolicy {
    /// Never restart.
    pub const NEVER: RestartPolicy = RestartPolicy {
        max_restarts: 0,
        backoff: DEFAULT_RESTART_BACKOFF,
    };

    /// Restart up to `max_restarts` times in a row, `delay` apart (no growth): for tests.
    pub fn fixed(max_restarts: u32, delay: Duration) -> RestartPolicy {
        RestartPolicy {
            max_restarts,
            backoff: RetryPolicy {
                max_retries: u32::MAX,
                delay,
                max_delay: delay,
                mode: RetryMode::Fixed,
            },
        }
    }
}

/// What the fleet does with a client that stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Leave it stopped: the stop was asked for (by the fleet or by a command).
    Leave,
    /// Start it again after this delay.
    Restart(Duration),
    /// Give up on it: restarting cannot help, or it failed too often in a row.
    Abandon(AbandonReason),
}

/// Why a client was abandoned.
#[derive(Debug, Clone, PartialEq)]
pub enum AbandonReason {
    /// The failure is a configuration error that the next attempt would hit again.
    NotRetriable(ClientError),
    /// `max_restarts` restarts in a row failed.
    TooManyRestarts(u32),
    /// The fleet is stopping.
    FleetStopping,
}

/// The stop-reason table. `failures_in_a_row` counts the restarts already made since the
/// client last started successfully; `random` in `[0, 1]` jitters the delay.
pub fn decide(
    reason: &StopReason,
    failures_in_a_row: u32,
    policy: &RestartPolicy,
    fleet_stopping: bool,
    random: f64,
) -> Decision {
    let error = match reason {
        StopReason::Requested => return Decision::Leave,
        StopReason::ConnectionLost => None,
        StopReason::ReconnectGaveUp(e) | StopReason::StartFailed(e) => Some(e),
    };
    if fleet_stopping {
        return Decision::Abandon(AbandonReason::FleetStopping);
    }
    if let Some(e) = error.filter(|e| !is_retriable(e)) {
        return Decision::Abandon(AbandonReason::NotRetriable(e.clone()));
    }
    if failures_in_a_row >= policy.max_restarts {
        return Decision::Abandon(AbandonReason::TooManyRestarts(failures_in_a_row));
    }
    let backoff = RetryPolicy {
        max_retries: u32::MAX,
        ..policy.backoff
    };
    let delay = backoff
        .delay_with_jitter(failures_in_a_row + 1, random)
        .unwrap_or(policy.backoff.max_delay);
    Decision::Restart(delay)
}

/// Whether a new attempt could succeed where this one failed. Refused credentials, a
/// non-Web PubSub endpoint and other 4xx answers are configuration errors: every restart
/// would hit them again, so the fleet says so once instead of hammering the hub. 408 and
/// 429 are load, not configuration.
pub fn is_retriable(error: &ClientError) -> bool {
    match error {
        ClientError::Unauthorized | ClientError::NoSubprotocol | ClientError::Credential(_) => {
            false
        }
        ClientError::HandshakeStatus { status } => {
            !(400..500).contains(status) || matches!(status, 408 | 429)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::CredentialError;

    const POLICY: RestartPolicy = RestartPolicy {
        max_restarts: 3,
        backoff: RetryPolicy {
            max_retries: 0,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            mode: RetryMode::Exponential,
        },
    };

    fn tcp() -> ClientError {
        ClientError::Tcp("connection refused".into())
    }

    /// The whole table: one row per stop reason (and error class), checked against the
    /// decision the module docs promise.
    #[test]
    fn stop_reason_table() {
        let restart = |ms| Decision::Restart(Duration::from_millis(ms));
        let not_retriable = |e: ClientError| Decision::Abandon(AbandonReason::NotRetriable(e));
        let rows: Vec<(StopReason, Decision)> = vec![
            (StopReason::Requested, Decision::Leave),
            (StopReason::ConnectionLost, restart(100)),
            (StopReason::StartFailed(tcp()), restart(100)),
            (
                StopReason::StartFailed(ClientError::StartTimeout(Duration::from_secs(1))),
                restart(100),
            ),
            (
                StopReason::StartFailed(ClientError::HandshakeStatus { status: 503 }),
                restart(100),
            ),
            (
                StopReason::StartFailed(ClientError::HandshakeStatus { status: 429 }),
                restart(100),
            ),
            (StopReason::ReconnectGaveUp(tcp()), restart(100)),
            (
                StopReason::StartFailed(ClientError::Unauthorized),
                not_retriable(ClientError::Unauthorized),
            ),
            (
                StopReason::ReconnectGaveUp(ClientError::Unauthorized),
                not_retriable(ClientError::Unauthorized),
            ),
            (
                StopReason::StartFailed(ClientError::NoSubprotocol),
                not_retriable(ClientError::NoSubprotocol),
            ),
            (
                StopReason::StartFailed(ClientError::HandshakeStatus { status: 404 }),
                not_retriable(ClientError::HandshakeStatus { status: 404 }),
            ),
            (
                StopReason::StartFailed(ClientError::Credential(CredentialError::MissingEndpoint)),
                not_retriable(ClientError::Credential(CredentialError::MissingEndpoint)),
            ),
        ];
        for (reason, expected) in rows {
            assert_eq!(
                decide(&reason, 0, &POLICY, false, 0.5),
                expected,
                "{reason:?}"
            );
        }
    }

    #[test]
    fn backoff_grows_then_the_client_is_abandoned() {
        let reason = StopReason::StartFailed(tcp());
        let delays: Vec<_> = (0..4)
            .map(|n| decide(&reason, n, &POLICY, false, 0.5))
            .collect();
        assert_eq!(
            delays,
            [
                Decision::Restart(Duration::from_millis(100)),
                Decision::Restart(Duration::from_millis(200)),
                Decision::Restart(Duration::from_millis(350)),
                Decision::Abandon(AbandonReason::TooManyRestarts(3)),
            ]
        );
    }

    #[test]
    fn a_stopping_fleet_restarts_nothing() {
        let reason = StopReason::ConnectionLost;
        assert_eq!(
            decide(&reason, 0, &POLICY, true, 0.5),
            Decision::Abandon(AbandonReason::FleetStopping)
        );
        assert_eq!(
            decide(&StopReason::Requested, 0, &POLICY, true, 0.5),
            Decision::Leave
        );
    }

    #[test]
    fn never_policy_abandons_at_once() {
        assert_eq!(
            decide(
                &StopReason::ConnectionLost,
                0,
                &RestartPolicy::NEVER,
                false,
                0.0
            ),
            Decision::Abandon(AbandonReason::TooManyRestarts(0))
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let reason = StopReason::ConnectionLost;
        for random in [0.0, 1.0, f64::NAN, -3.0] {
            let Decision::Restart(d) = decide(&reason, 0, &POLICY, false, random) else {
                panic!("expected a restart");
            };
            assert!(d >= Duration::from_millis(80) && d <= Duration::from_millis(120));
        }
    }
}
