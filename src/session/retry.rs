//! Retry policies as data, and the pure function from attempt number to delay.

use std::time::Duration;

/// How the delay grows from one retry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    /// Every retry waits `delay` (`max_delay` is not used, as in JS).
    Fixed,
    /// Retry `n` waits `delay * 2^(n-1)`, at most `max_delay` (same shape in JS, Python and
    /// .NET, protocol.md 7.1).
    Exponential,
}

/// When to retry and how long to wait first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; [`RetryPolicy::UNLIMITED`] never gives up.
    pub max_retries: u32,
    /// Delay before the first retry.
    pub delay: Duration,
    /// Longest delay of an exponential policy.
    pub max_delay: Duration,
    /// Fixed or exponential.
    pub mode: RetryMode,
}

/// Spread of [`RetryPolicy::delay_with_jitter`]: the delay is scaled by a factor between
/// `1 - JITTER` and `1 + JITTER`, the ±20 % Azure.Core applies, so thousands of clients
/// dropped together do not retry in lockstep.
pub const JITTER: f64 = 0.2;

impl RetryPolicy {
    /// `max_retries` meaning "retry forever".
    pub const UNLIMITED: u32 = u32::MAX;

    /// Retry of one send (join, leave, publish, event): 3 retries, exponential from 0.8 s up
    /// to 60 s, the Azure.Core default used by .NET; Python uses the same count and base
    /// with a 120 s cap, JS 3 fixed retries of 1 s (protocol.md 7.1). With 3 retries the
    /// cap is never reached (0.8, 1.6, 3.2 s).
    pub const MESSAGE_DEFAULT: RetryPolicy = RetryPolicy {
        max_retries: 3,
        delay: Duration::from_millis(800),
        max_delay: Duration::from_secs(60),
        mode: RetryMode::Exponential,
    };

    /// Reconnect after a lost session: forever, exponential from 1 s up to 5 s (.NET,
    /// protocol.md 7.1). Forever as in JS and .NET, because a client of a fleet should come
    /// back when the service does; 5 s cap so it comes back soon after, yet a whole fleet
    /// with jitter does not hammer a restarting hub.
    pub const RECONNECT_DEFAULT: RetryPolicy = RetryPolicy {
        max_retries: RetryPolicy::UNLIMITED,
        delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(5),
        mode: RetryMode::Exponential,
    };

    /// The delay before retry number `attempt` (1-based; 0 reads as 1), or `None` when
    /// `attempt > max_retries`: give up. Never overflows, whatever the attempt.
    pub fn delay_for(&self, attempt: u32) -> Option<Duration> {
        if attempt > self.max_retries {
            return None;
        }
        let doublings = attempt.saturating_sub(1);
        Some(match self.mode {
            RetryMode::Fixed => self.delay,
            RetryMode::Exponential => 1u32
                .checked_shl(doublings)
                .and_then(|factor| self.delay.checked_mul(factor))
                .map_or(self.max_delay, |d| d.min(self.max_delay)),
        })
    }

    /// [`Self::delay_for`] scaled by a factor between `1 - JITTER` and `1 + JITTER`, still at
    /// most `max_delay` in exponential mode. `random` is a number in `[0, 1]` drawn by the
    /// caller (out-of-range values are clamped, NaN reads as 0).
    pub fn delay_with_jitter(&self, attempt: u32, random: f64) -> Option<Duration> {
        let delay = self.delay_for(attempt)?;
        // Not `clamp`: it keeps NaN, and NaN must not reach the Duration arithmetic.
        let random = if random >= 0.0 { random.min(1.0) } else { 0.0 };
        let factor = 1.0 - JITTER + 2.0 * JITTER * random;
        // Not `mul_f64`: it panics when the product does not fit a Duration.
        let jittered =
            Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX);
        Some(match self.mode {
            RetryMode::Fixed => jittered,
            RetryMode::Exponential => jittered.min(self.max_delay),
        })
    }
}

/// The retries of one operation or one reconnect loop: counts failures against a policy.
/// [`RetryState::reset`] after a success, so the next failure starts from the first delay.
#[derive(Debug, Clone)]
pub struct RetryState {
    policy: RetryPolicy,
    retries: u32,
}

impl RetryState {
    /// No failure yet.
    pub fn new(policy: RetryPolicy) -> RetryState {
        RetryState { policy, retries: 0 }
    }

    /// An attempt failed: the delay before the next one, or `None` to give up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.retries = self.retries.saturating_add(1);
        self.policy.delay_for(self.retries)
    }

    /// [`Self::next_delay`] with jitter from `random` in `[0, 1]`.
    pub fn next_delay_with_jitter(&mut self, random: f64) -> Option<Duration> {
        self.retries = self.retries.saturating_add(1);
        self.policy.delay_with_jitter(self.retries, random)
    }

    /// The operation succeeded: start over.
    pub fn reset(&mut self) {
        self.retries = 0;
    }

    /// Retries asked for since the last reset.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RetryMode::{Exponential, Fixed};

    const MS: Duration = Duration::from_millis(1);

    /// 100 ms doubling up to 1 s.
    const EXP: RetryPolicy = RetryPolicy {
        max_retries: 10,
        delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        mode: Exponential,
    };

    /// The delays of `attempts`, in milliseconds (`None`: give up).
    fn delays<const N: usize>(p: RetryPolicy, attempts: [u32; N]) -> [Option<u128>; N] {
        attempts.map(|n| p.delay_for(n).map(|d| d.as_millis()))
    }

    #[test]
    fn exponential_delay_doubles_and_caps() {
        let got = delays(EXP, [0, 1, 2, 3, 4, 5, 6, 10]);
        let expected = [100, 100, 200, 400, 800, 1000, 1000, 1000];
        assert_eq!(got, expected.map(Some));
    }

    #[test]
    fn fixed_delay_constant() {
        let fixed = RetryPolicy {
            mode: Fixed,
            max_delay: 50 * MS,
            ..EXP
        };
        assert_eq!(delays(fixed, [1, 2, 5, 10]), [Some(100); 4]);
    }

    #[test]
    fn gives_up_after_max_retries() {
        let three = RetryPolicy {
            max_retries: 3,
            ..EXP
        };
        assert_eq!(delays(three, [3, 4]), [Some(400), None]);
        let never = RetryPolicy {
            max_retries: 0,
            ..EXP
        };
        assert_eq!(never.delay_for(1), None);
        let mut state = RetryState::new(three);
        let got = [(); 5].map(|_| state.next_delay().map(|d| d.as_millis()));
        assert_eq!(got, [Some(100), Some(200), Some(400), None, None]);
    }

    #[test]
    fn no_overflow_at_huge_attempts() {
        let unlimited = RetryPolicy {
            max_retries: RetryPolicy::UNLIMITED,
            ..EXP
        };
        assert_eq!(
            delays(unlimited, [31, 32, 33, 1000, u32::MAX]),
            [Some(1000); 5]
        );
        let huge = RetryPolicy {
            delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..unlimited
        };
        assert_eq!(huge.delay_for(2), Some(Duration::MAX));
        assert_eq!(huge.delay_with_jitter(2, 1.0), Some(Duration::MAX));
    }

    #[test]
    fn defaults_match_the_official_clients() {
        let message = delays(RetryPolicy::MESSAGE_DEFAULT, [1, 2, 3, 4]);
        assert_eq!(message, [Some(800), Some(1600), Some(3200), None]);
        let reconnect = delays(RetryPolicy::RECONNECT_DEFAULT, [1, 2, 3, 4, u32::MAX]);
        assert_eq!(reconnect, [1000, 2000, 4000, 5000, 5000].map(Some));
    }

    #[test]
    fn jitter_spreads_within_twenty_percent_and_keeps_the_cap() {
        // Out-of-range randoms are clamped; NaN reads as 0.
        let randoms = [0.0, 0.5, 1.0, -3.0, 7.0, f64::NAN];
        let got = randoms.map(|r| EXP.delay_with_jitter(1, r).map(|d| d.as_millis()));
        assert_eq!(got, [80, 100, 120, 80, 120, 80].map(Some));
        assert_eq!(EXP.delay_with_jitter(8, 1.0), Some(1000 * MS), "capped");
        assert_eq!(EXP.delay_with_jitter(11, 0.5), None);
        let fixed = RetryPolicy { mode: Fixed, ..EXP };
        assert_eq!(fixed.delay_with_jitter(1, 1.0), Some(120 * MS));
    }

    #[test]
    fn backoff_resets_after_success() {
        let mut state = RetryState::new(EXP);
        assert_eq!(state.next_delay(), Some(100 * MS));
        assert_eq!(state.next_delay_with_jitter(0.5), Some(200 * MS));
        assert_eq!(state.retries(), 2);
        state.reset();
        assert_eq!(state.retries(), 0);
        assert_eq!(state.next_delay(), Some(100 * MS));
    }
}
