//! After a connection drops: recover the session, start a new connection, or stop.

use std::time::{Duration, Instant};

use url::Url;

use crate::protocol::{CLOSE_UNRECOVERABLE, Secret};

/// How long after a drop recovery attempts may start: the service keeps a dropped session
/// for at least 30 s, and JS, Python and .NET all try for 30 s (protocol.md 3.3, 3.4, 7.1).
pub const DEFAULT_RECOVERY_WINDOW: Duration = Duration::from_secs(30);

/// Pause after a failed recovery attempt before the next one: 1 s in all three official
/// clients (protocol.md 7.1).
pub const DEFAULT_RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// Query parameter naming the connection to recover (protocol.md 1.2).
pub const CONNECTION_ID_PARAM: &str = "awps_connection_id";
/// Query parameter carrying the reconnection token (protocol.md 1.2).
pub const RECONNECTION_TOKEN_PARAM: &str = "awps_reconnection_token";

/// What the client does after its socket dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDrop {
    /// Reopen the same session (same connection id, groups kept, messages replayed):
    /// run a [`Recovery`].
    Recover,
    /// Start a brand-new connection from a fresh client access URL, then rejoin the
    /// groups the client had joined.
    Reconnect,
    /// Stop the client.
    Stop,
}

/// What the actor knows when its socket drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropContext {
    /// The subprotocol is a reliable one (only those can recover).
    pub reliable: bool,
    /// The `connected` frame gave a connection id and a reconnection token.
    pub resumable: bool,
    /// The user asked the client to stop.
    pub stopping: bool,
    /// The client reconnects by itself when the session is lost.
    pub auto_reconnect: bool,
    /// The WebSocket close code, if a close frame arrived (`None` for an abrupt drop).
    pub close_code: Option<u16>,
}

impl DropContext {
    /// Recovery is possible only on a reliable subprotocol, with a known connection id and
    /// reconnection token, when the client is not stopping and the close code is not 1008
    /// (the service's "this session cannot be recovered", protocol.md 3.4).
    pub fn can_recover(&self) -> bool {
        self.reliable
            && self.resumable
            && !self.stopping
            && self.close_code != Some(CLOSE_UNRECOVERABLE)
    }

    /// The decision right after the drop: the order of the official clients' close
    /// handlers (protocol.md 3.4).
    pub fn decide(&self) -> AfterDrop {
        if self.can_recover() {
            AfterDrop::Recover
        } else {
            reconnect_or_stop(self.stopping, self.auto_reconnect)
        }
    }
}

/// The decision once recovery is ruled out or gave up: a new connection when the client
/// reconnects by itself and is not stopping, else stop.
pub fn reconnect_or_stop(stopping: bool, auto_reconnect: bool) -> AfterDrop {
    if auto_reconnect && !stopping {
        AfterDrop::Reconnect
    } else {
        AfterDrop::Stop
    }
}

/// The next move of a running recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStep {
    /// Open the recovery URL now; this is attempt number `n` (from 1).
    TryNow(u32),
    /// Nothing to do before this instant; ask again then.
    WaitUntil(Instant),
    /// Recovery is over: decide with [`reconnect_or_stop`].
    GiveUp,
}

/// Timing of a recovery; shrink it in tests through the client's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPolicy {
    /// Attempts may start only before `dropped_at + window`.
    pub window: Duration,
    /// Pause between the end of a failed attempt and the next one.
    pub interval: Duration,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        RecoveryPolicy {
            window: DEFAULT_RECOVERY_WINDOW,
            interval: DEFAULT_RECOVERY_INTERVAL,
        }
    }
}

/// One recovery, from the drop until success (the actor drops this value) or give-up
/// (rule 10 of the [module contract](super)).
///
/// The first attempt starts at once; after a failed attempt the next one starts one
/// interval later; an attempt refused with close code 1008 ends the recovery; no attempt
/// starts at or after `dropped_at + window`, and when the next one would, the recovery
/// gives up at once instead of waiting for nothing.
#[derive(Debug, Clone)]
pub struct Recovery {
    policy: RecoveryPolicy,
    /// `None` when the window is too large to represent: never ends by time.
    ends_at: Option<Instant>,
    next_try_at: Instant,
    attempts: u32,
    gave_up: bool,
}

impl Recovery {
    /// A recovery with the default window and interval, for a drop at `dropped_at`.
    pub fn start(dropped_at: Instant) -> Recovery {
        Recovery::with_policy(dropped_at, RecoveryPolicy::default())
    }

    /// A recovery with the given timing.
    pub fn with_policy(dropped_at: Instant, policy: RecoveryPolicy) -> Recovery {
        Recovery {
            policy,
            ends_at: dropped_at.checked_add(policy.window),
            next_try_at: dropped_at,
            attempts: 0,
            gave_up: false,
        }
    }

    /// What to do at `now`. A `TryNow` counts as started: asking again before the attempt
    /// failed gives a `WaitUntil`, never a second parallel attempt.
    pub fn next_attempt(&mut self, now: Instant) -> RecoveryStep {
        let next = now.max(self.next_try_at);
        let window_over = self.ends_at.is_some_and(|end| next >= end);
        if self.gave_up || window_over {
            self.gave_up = true;
            return RecoveryStep::GiveUp;
        }
        if now < self.next_try_at {
            return RecoveryStep::WaitUntil(self.next_try_at);
        }
        self.attempts = self.attempts.saturating_add(1);
        self.schedule_next(now);
        RecoveryStep::TryNow(self.attempts)
    }

    /// The attempt started by the last `TryNow` failed at `now`, with the close code if the
    /// socket opened and was closed (`None` for a refused handshake or network error).
    pub fn on_attempt_failed(&mut self, now: Instant, close_code: Option<u16>) {
        if close_code == Some(CLOSE_UNRECOVERABLE) {
            self.gave_up = true;
        } else {
            self.schedule_next(now);
        }
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn schedule_next(&mut self, now: Instant) {
        match now.checked_add(self.policy.interval) {
            Some(at) => self.next_try_at = at,
            // An interval too large to represent leaves no next attempt.
            None => self.gave_up = true,
        }
    }
}

/// The recovery URL: the original client access URL (its `access_token` is kept, as JS,
/// Python and .NET do) with `awps_connection_id` and `awps_reconnection_token` appended.
/// Older `awps_*` parameters are replaced. The result holds the token: never log it.
pub fn recovery_url(access_url: &Url, connection_id: &str, reconnection_token: &Secret) -> Url {
    let mut url = access_url.clone();
    let is_recovery_param = |k: &str| k == CONNECTION_ID_PARAM || k == RECONNECTION_TOKEN_PARAM;
    if access_url.query_pairs().any(|(k, _)| is_recovery_param(&k)) {
        // Rebuilding re-encodes the other parameters, so it happens only when needed.
        let kept: Vec<(String, String)> = access_url
            .query_pairs()
            .filter(|(k, _)| !is_recovery_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    url.query_pairs_mut()
        .append_pair(CONNECTION_ID_PARAM, connection_id)
        .append_pair(RECONNECTION_TOKEN_PARAM, reconnection_token.expose());
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use AfterDrop::{Reconnect, Recover, Stop};
    use RecoveryStep::{GiveUp, TryNow, WaitUntil};

    const SEC: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    /// The decision for a reliable, resumable, auto-reconnecting client after `change`.
    fn decide(change: impl FnOnce(&mut DropContext)) -> AfterDrop {
        let mut ctx = DropContext {
            reliable: true,
            resumable: true,
            stopping: false,
            auto_reconnect: true,
            close_code: None,
        };
        change(&mut ctx);
        ctx.decide()
    }

    #[test]
    fn recovers_after_abrupt_drop_or_other_close_codes() {
        for code in [None, Some(1000), Some(1001), Some(1006), Some(1011)] {
            assert_eq!(decide(|c| c.close_code = code), Recover, "{code:?}");
        }
        // Recovery does not depend on auto-reconnect: the session is still the same one.
        assert_eq!(decide(|c| c.auto_reconnect = false), Recover);
    }

    #[test]
    fn no_recovery_on_close_1008() {
        assert_eq!(
            decide(|c| c.close_code = Some(CLOSE_UNRECOVERABLE)),
            Reconnect
        );
    }

    #[test]
    fn no_recovery_without_reconnection_token() {
        assert_eq!(decide(|c| c.resumable = false), Reconnect);
    }

    #[test]
    fn no_recovery_on_plain_json() {
        assert_eq!(decide(|c| c.reliable = false), Reconnect);
    }

    #[test]
    fn no_recovery_when_stopping() {
        assert_eq!(decide(|c| c.stopping = true), Stop);
    }

    #[test]
    fn stops_instead_of_reconnecting_when_auto_reconnect_is_off() {
        let no_auto = |c: &mut DropContext| (c.reliable, c.auto_reconnect) = (false, false);
        assert_eq!(decide(no_auto), Stop);
        let table = [(false, true), (false, false), (true, true), (true, false)];
        let decisions = table.map(|(stopping, auto)| reconnect_or_stop(stopping, auto));
        assert_eq!(decisions, [Reconnect, Stop, Stop, Stop]);
    }

    #[test]
    fn recovery_tries_one_second_apart() {
        let t0 = Instant::now();
        let mut r = Recovery::start(t0);
        assert_eq!(r.next_attempt(t0), TryNow(1));
        // Asked again before the attempt failed: no parallel attempt.
        assert_eq!(r.next_attempt(t0), WaitUntil(t0 + SEC));
        let failed = t0 + 200 * MS;
        r.on_attempt_failed(failed, None);
        assert_eq!(r.next_attempt(failed), WaitUntil(failed + SEC));
        assert_eq!(r.next_attempt(failed + SEC), TryNow(2));
        r.on_attempt_failed(failed + SEC, Some(1011));
        assert_eq!(r.next_attempt(failed + 2 * SEC), TryNow(3));
        assert_eq!(r.attempts(), 3);
    }

    #[test]
    fn recovery_gives_up_after_30s_window() {
        let t0 = Instant::now();
        let (mut r, mut now, mut tries) = (Recovery::start(t0), t0, 0);
        loop {
            match r.next_attempt(now) {
                TryNow(_) => {
                    tries += 1;
                    r.on_attempt_failed(now, None);
                }
                WaitUntil(at) => now = at,
                GiveUp => break,
            }
            assert!(tries <= 100, "recovery never gave up");
        }
        // Attempts at 0 s, 1 s, ..., 29 s; gives up when the next would be at 30 s.
        assert_eq!((tries, now), (30, t0 + 29 * SEC));
        assert_eq!(r.next_attempt(now + 60 * SEC), GiveUp);
        // Asked first after the window: no attempt at all.
        let mut late = Recovery::start(t0);
        assert_eq!(late.next_attempt(t0 + DEFAULT_RECOVERY_WINDOW), GiveUp);
        assert_eq!(late.attempts(), 0);
    }

    #[test]
    fn recovery_gives_up_on_1008_during_attempt() {
        let t0 = Instant::now();
        let mut r = Recovery::start(t0);
        assert_eq!(r.next_attempt(t0), TryNow(1));
        r.on_attempt_failed(t0, Some(CLOSE_UNRECOVERABLE));
        assert_eq!(r.next_attempt(t0 + 5 * SEC), GiveUp);
    }

    #[test]
    fn shorter_policy_and_huge_values() {
        let t0 = Instant::now();
        let policy = |window, interval| RecoveryPolicy { window, interval };
        let mut r = Recovery::with_policy(t0, policy(2 * SEC, 500 * MS));
        assert_eq!(r.next_attempt(t0), TryNow(1));
        r.on_attempt_failed(t0 + SEC, None);
        assert_eq!(r.next_attempt(t0 + SEC), WaitUntil(t0 + 1500 * MS));
        r.on_attempt_failed(t0 + 1600 * MS, None); // a repeated report is harmless
        assert_eq!(r.next_attempt(t0 + 2 * SEC), GiveUp);
        // No next attempt is representable: give up rather than overflow.
        let mut r = Recovery::with_policy(t0, policy(Duration::MAX, Duration::MAX));
        assert_eq!(r.next_attempt(t0), TryNow(1));
        assert_eq!(r.next_attempt(t0 + SEC), GiveUp);
        // A window too large to represent never ends.
        let mut r = Recovery::with_policy(t0, policy(Duration::MAX, SEC));
        assert_eq!(r.next_attempt(t0), TryNow(1));
        r.on_attempt_failed(t0, None);
        assert_eq!(r.next_attempt(t0 + 1000 * SEC), TryNow(2));
    }

    #[test]
    fn recovery_url_appends_connection_id_and_token() {
        let base = Url::parse("wss://host/client/hubs/chat?access_token=a.b-c_d").unwrap();
        let url = recovery_url(&base, "conn 1", &Secret::new("tok/en+="));
        let expected = "wss://host/client/hubs/chat?access_token=a.b-c_d\
                        &awps_connection_id=conn+1&awps_reconnection_token=tok%2Fen%2B%3D";
        assert_eq!(url.as_str(), expected);
        let mut pairs = url.query_pairs();
        let token = pairs.find(|(k, _)| k == RECONNECTION_TOKEN_PARAM);
        assert_eq!(token.unwrap().1, "tok/en+=");
    }

    #[test]
    fn recovery_url_without_query_and_replacing_old_params() {
        let params = "awps_connection_id=c&awps_reconnection_token=t";
        let replaced = format!("x=1&{params}");
        let mixed = format!("h=x&access_token=j&{params}");
        let table = [
            ("ws://h/client/hubs/h", params),
            (
                "ws://h/c?awps_connection_id=o&awps_reconnection_token=x",
                params,
            ),
            ("ws://h/c?awps_reconnection_token=x&x=1", &replaced),
            ("ws://h/c?h=x&awps_connection_id=o&access_token=j", &mixed),
        ];
        for (base, query) in table {
            let url = recovery_url(&Url::parse(base).unwrap(), "c", &Secret::new("t"));
            assert_eq!(url.query(), Some(query), "{base}");
        }
    }
}
