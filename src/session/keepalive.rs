//! Application-level keepalive: when to send `ping`, when to call a silent socket dead.

use std::time::{Duration, Instant};

/// Send `{"type":"ping"}` this often while connected (JS `keepAliveIntervalInMs = 20000`,
/// also the service's default WebSocket ping interval; protocol.md 1.6, 7.7).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);

/// Call the socket dead after this long without any frame, so a half-open TCP connection is
/// noticed and recovered (JS `keepAliveTimeoutInMs = 120000`, protocol.md 7.7).
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_secs(120);

/// What the keepalive wants done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing yet; see [`Keepalive::next_deadline`].
    Nothing,
    /// Send a `ping`, then call [`Keepalive::on_sent_ping`].
    SendPing,
    /// Nothing was received for too long: close the socket, which starts a recovery.
    Dead,
}

/// Keepalive state of one socket (rule 12 of the [module contract](super)).
///
/// A `ping` is due one interval after the socket opened or the last ping, whatever was
/// received meanwhile (the service should hear from us too). Any frame received counts as
/// life: data, ack, `pong`, WebSocket ping or pong. Dead wins over ping.
#[derive(Debug, Clone)]
pub struct Keepalive {
    ping_interval: Duration,
    dead_after: Duration,
    last_received: Instant,
    last_ping: Instant,
}

impl Keepalive {
    /// Keepalive with the JS defaults for a socket opened at `now`.
    pub fn new(now: Instant) -> Keepalive {
        Keepalive::with_timing(DEFAULT_PING_INTERVAL, DEFAULT_DEAD_AFTER, now)
    }

    /// Keepalive with other timing (zero disables that part) for a socket opened at `now`.
    pub fn with_timing(ping_interval: Duration, dead_after: Duration, now: Instant) -> Keepalive {
        Keepalive {
            ping_interval,
            dead_after,
            last_received: now,
            last_ping: now,
        }
    }

    /// A new socket opened at `now` (after a recovery or reconnect): both clocks restart.
    pub fn on_socket_opened(&mut self, now: Instant) {
        self.last_received = now;
        self.last_ping = now;
    }

    /// Any frame arrived at `now`.
    pub fn on_received(&mut self, now: Instant) {
        self.last_received = self.last_received.max(now);
    }

    /// A `ping` went out at `now`.
    pub fn on_sent_ping(&mut self, now: Instant) {
        self.last_ping = self.last_ping.max(now);
    }

    /// What to do at `now`.
    pub fn poll(&self, now: Instant) -> KeepaliveAction {
        let reached = |deadline: Option<Instant>| deadline.is_some_and(|d| d <= now);
        if reached(self.dead_at()) {
            KeepaliveAction::Dead
        } else if reached(self.ping_at()) {
            KeepaliveAction::SendPing
        } else {
            KeepaliveAction::Nothing
        }
    }

    /// The next instant [`Self::poll`] may answer something else than `Nothing`; `None`
    /// when both parts are disabled.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.dead_at(), self.ping_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn ping_at(&self) -> Option<Instant> {
        enabled(self.ping_interval).and_then(|d| self.last_ping.checked_add(d))
    }

    fn dead_at(&self) -> Option<Instant> {
        enabled(self.dead_after).and_then(|d| self.last_received.checked_add(d))
    }
}

fn enabled(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeepaliveAction::{Dead, Nothing, SendPing};

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn ping_due_after_interval() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(t0);
        assert_eq!(k.next_deadline(), Some(t0 + DEFAULT_PING_INTERVAL));
        assert_eq!([19, 20].map(|s| k.poll(t0 + s * SEC)), [Nothing, SendPing]);
        // Receiving does not postpone the ping: the service should hear from us too.
        k.on_received(t0 + 19 * SEC);
        assert_eq!(k.poll(t0 + 20 * SEC), SendPing);
        k.on_sent_ping(t0 + 20 * SEC);
        assert_eq!([39, 40].map(|s| k.poll(t0 + s * SEC)), [Nothing, SendPing]);
    }

    #[test]
    fn dead_after_silence() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(t0);
        k.on_sent_ping(t0 + 100 * SEC);
        assert_eq!(k.poll(t0 + 119 * SEC), Nothing);
        // At 120 s a ping is due too, but dead wins.
        assert_eq!(k.poll(t0 + DEFAULT_DEAD_AFTER), Dead);
        k.on_received(t0 + 100 * SEC);
        assert_eq!(
            [120, 219, 220].map(|s| k.poll(t0 + s * SEC)),
            [SendPing, SendPing, Dead]
        );
        // A new socket restarts both clocks.
        k.on_socket_opened(t0 + 300 * SEC);
        assert_eq!(k.poll(t0 + 300 * SEC), Nothing);
        assert_eq!(k.next_deadline(), Some(t0 + 320 * SEC));
    }

    #[test]
    fn keepalive_disabled_with_zero() {
        let t0 = Instant::now();
        let (zero, max) = (Duration::ZERO, Duration::MAX);
        // (ping interval, dead after) -> poll at 1000 s, next deadline
        let table = [
            (zero, zero, Nothing, None),
            (zero, 10 * SEC, Dead, Some(t0 + 10 * SEC)),
            (5 * SEC, zero, SendPing, Some(t0 + 5 * SEC)),
            (max, max, Nothing, None), // too far to represent: never
        ];
        for (interval, dead_after, action, deadline) in table {
            let k = Keepalive::with_timing(interval, dead_after, t0);
            let got = (k.poll(t0 + 1000 * SEC), k.next_deadline());
            assert_eq!(got, (action, deadline), "{interval:?} {dead_after:?}");
        }
    }
}
