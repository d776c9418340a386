//! Fixed-rate publish schedules (issue 10): a paced publisher's send times are its schedule,
//! not "one period after the last send went", so a hub that slows down cannot lower the
//! offered rate unseen.
//!
//! Publish `k` of a publisher is due at `first + k * period`. It goes as soon as it is due
//! and the publisher has fewer than its window of publishes in flight; if it cannot go
//! within [`MAX_LAG`] of its due time (the window stayed full, or the fleet's own threads
//! were too busy to wake the publisher), it is skipped and counted, never silently shifted.
//! A send more than [`LATE_AFTER`] behind its due time counts as late.
//!
//! Latency of a paced publish is measured from its *scheduled* send time (the stamp carries
//! it), not from the moment it went: a publish held back because earlier ones were not acked
//! yet waited because of the system under test, and leaving that wait out is the coordinated
//! omission that makes a saturated run look fast. Skipped sends have no latency at all; the
//! report counts them and compares offered with achieved rates instead
//! ([`super::report::PacingReport`]).
//!
//! [`Schedule`] is pure (time is passed in as the duration since the publisher's origin) so
//! its rules are tested without a clock; `workloads::send_at_rate` drives it.

use std::time::Duration;

/// How far behind its due time a publish may still go; later, it is skipped.
pub const MAX_LAG: Duration = Duration::from_secs(1);
/// A publish that goes more than this after its due time counts as late (timer wake-ups
/// are about a millisecond late as a rule: that is not lateness worth counting).
pub const LATE_AFTER: Duration = Duration::from_millis(10);
/// Publishes a paced publisher may have in flight (sent, outcome not known) by default:
/// above what a healthy hub needs at the rates of the table (300 msg/s with acks
/// within 300 ms), and far below the client's pending limit.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 100;

/// What a publisher's schedule says at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Nothing is due before `until` (since the origin).
    Wait {
        /// When the next publish is due.
        until: Duration,
    },
    /// The publish scheduled at `scheduled` (since the origin) is due: send it, then call
    /// [`Schedule::sent`]. If it cannot go yet (full window), it must go by `skip_at` or
    /// the next [`Schedule::poll`] skips it.
    Due {
        /// Its scheduled send time.
        scheduled: Duration,
        /// When it becomes too late to send.
        skip_at: Duration,
    },
}

/// Counts of one publisher's schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceCounts {
    /// Publishes whose scheduled time has come (sent, skipped, or due and waiting).
    pub scheduled: u64,
    /// Publishes sent.
    pub sent: u64,
    /// Of those, sent more than [`LATE_AFTER`] after their scheduled time.
    pub late: u64,
    /// Scheduled publishes not sent: too late to go, or still waiting when the run stopped.
    pub skipped: u64,
}

/// One publisher's fixed-rate schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    first: Duration,
    period: Duration,
    max_lag: Duration,
    /// Index of the next publish to send or skip.
    next: u64,
    sent: u64,
    late: u64,
    skipped: u64,
}

impl Schedule {
    /// A schedule whose first publish is due at `first`, then one every `period` (above
    /// zero: a zero period is taken as 1 µs); a publish more than `max_lag` behind is skipped.
    pub fn new(first: Duration, period: Duration, max_lag: Duration) -> Schedule {
        Schedule {
            first,
            period: period.max(Duration::from_micros(1)),
            max_lag,
            next: 0,
            sent: 0,
            late: 0,
            skipped: 0,
        }
    }

    /// When publish `k` is due.
    fn due(&self, k: u64) -> Duration {
        let offset = self.period.as_nanos().saturating_mul(u128::from(k));
        self.first.saturating_add(Duration::from_nanos(
            u64::try_from(offset).unwrap_or(u64::MAX),
        ))
    }

    /// Publishes due at or before `now`: `floor((now - first) / period) + 1`.
    fn due_by(&self, now: Duration) -> u64 {
        match now.checked_sub(self.first) {
            None => 0,
            Some(since) => {
                let k = since.as_nanos() / self.period.as_nanos();
                u64::try_from(k).unwrap_or(u64::MAX).saturating_add(1)
            }
        }
    }

    /// What to do at `now`: skips (and counts) every publish already more than `max_lag`
    /// behind, then says when the next is due or that it is due now.
    pub fn poll(&mut self, now: Duration) -> Pace {
        // Publishes due at or before `now - max_lag` are too late (all at once, however
        // many: a publisher that slept through a stall does not loop per missed send).
        let cutoff = now.checked_sub(self.max_lag);
        if let Some(before) = cutoff.and_then(|c| c.checked_sub(Duration::from_nanos(1))) {
            let too_late = self.due_by(before);
            if too_late > self.next {
                self.skipped += too_late - self.next;
                self.next = too_late;
            }
        }
        let scheduled = self.due(self.next);
        if scheduled > now {
            Pace::Wait { until: scheduled }
        } else {
            Pace::Due {
                scheduled,
                skip_at: scheduled.saturating_add(self.max_lag),
            }
        }
    }

    /// The publish [`Schedule::poll`] said was due went at `now`. Returns whether it was late.
    pub fn sent(&mut self, now: Duration) -> bool {
        let late = now.saturating_sub(self.due(self.next)) > LATE_AFTER;
        self.next += 1;
        self.sent += 1;
        self.late += u64::from(late);
        late
    }

    /// The counts when the publisher stops at `now`: publishes due by then and not sent
    /// count as skipped, except those due within [`LATE_AFTER`] of the stop: the stop raced
    /// them, they were not held back (they count neither as scheduled nor as skipped).
    pub fn finish(&self, now: Duration) -> PaceCounts {
        let held_back = now.checked_sub(LATE_AFTER + Duration::from_nanos(1));
        let settled = held_back.map_or(0, |t| self.due_by(t));
        let scheduled = settled.max(self.next);
        PaceCounts {
            scheduled,
            sent: self.sent,
            late: self.late,
            skipped: scheduled - self.sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn schedule() -> Schedule {
        // Due at 5, 15, 25, ... ms; skipped once 100 ms behind.
        Schedule::new(5 * MS, 10 * MS, 100 * MS)
    }

    #[test]
    fn sends_are_due_at_fixed_times_whatever_the_send_times() {
        let mut s = schedule();
        assert_eq!(s.poll(Duration::ZERO), Pace::Wait { until: 5 * MS });
        assert_eq!(
            s.poll(5 * MS),
            Pace::Due {
                scheduled: 5 * MS,
                skip_at: 105 * MS
            }
        );
        // Sent 8 ms late: the next is still due at 15 ms, not 18 ms.
        assert!(!s.sent(13 * MS));
        assert_eq!(s.poll(13 * MS), Pace::Wait { until: 15 * MS });
        // Polled late (the window was full until 47 ms): 15, 25, 35 and 45 are all due, in
        // order, each with its own scheduled time; the three more than 10 ms behind are late.
        for due in [15, 25, 35, 45] {
            assert_eq!(
                s.poll(47 * MS),
                Pace::Due {
                    scheduled: due * MS,
                    skip_at: (due + 100) * MS
                }
            );
            assert_eq!(s.sent(47 * MS), 47 - due > 10, "sent at 47, due {due}");
        }
        assert_eq!(s.poll(47 * MS), Pace::Wait { until: 55 * MS });
        assert_eq!(
            s.finish(50 * MS),
            PaceCounts {
                scheduled: 5,
                sent: 5,
                late: 3,
                skipped: 0
            }
        );
    }

    #[test]
    fn sends_too_far_behind_are_skipped_and_counted_not_shifted() {
        let mut s = schedule();
        assert!(matches!(s.poll(5 * MS), Pace::Due { .. }));
        s.sent(5 * MS);
        // A stall until 1 s: 15 .. 895 ms are more than 100 ms behind (89 publishes) and
        // skipped; 905 ms is the oldest that may still go.
        assert_eq!(
            s.poll(1000 * MS),
            Pace::Due {
                scheduled: 905 * MS,
                skip_at: 1005 * MS
            }
        );
        // Stopping now would also skip 915 .. 985 (waiting more than 10 ms), not 995.
        assert_eq!(s.finish(1000 * MS).skipped, 89 + 9);
        assert!(s.sent(1000 * MS), "95 ms behind is late");
        let counts = s.finish(1000 * MS);
        // Due by 990 ms: 5, 15, ..., 985 = 99 publishes; 2 sent, the 8 still due are
        // skipped if the run stops now.
        assert_eq!(
            counts,
            PaceCounts {
                scheduled: 99,
                sent: 2,
                late: 1,
                skipped: 97
            }
        );
    }

    #[test]
    fn a_publish_is_skipped_exactly_when_its_lag_passes() {
        let mut s = schedule();
        // Due at 5 ms: still due at 105 ms (100 ms behind), skipped just after.
        assert!(matches!(
            s.poll(105 * MS),
            Pace::Due { scheduled, .. } if scheduled == 5 * MS
        ));
        assert!(matches!(
            s.poll(105 * MS + Duration::from_nanos(1)),
            Pace::Due { scheduled, .. } if scheduled == 15 * MS
        ));
        assert_eq!(s.finish(106 * MS).skipped, 10);
    }

    #[test]
    fn a_stop_counts_only_sends_held_back_before_it() {
        let s = schedule();
        assert_eq!(s.finish(4 * MS), PaceCounts::default());
        // Due at 5 ms: a stop at 15 ms raced it; at 15 ms and 1 ns it had waited too long.
        assert_eq!(s.finish(15 * MS), PaceCounts::default());
        let counts = s.finish(15 * MS + Duration::from_nanos(1));
        assert_eq!((counts.scheduled, counts.skipped), (1, 1));
    }

    #[test]
    fn odd_periods_do_not_panic() {
        let mut s = Schedule::new(Duration::ZERO, Duration::ZERO, Duration::ZERO);
        assert!(matches!(s.poll(Duration::ZERO), Pace::Due { .. }));
        let mut s = Schedule::new(Duration::MAX, Duration::MAX, MAX_LAG);
        assert_eq!(
            s.poll(Duration::ZERO),
            Pace::Wait {
                until: Duration::MAX
            }
        );
        assert_eq!(s.finish(Duration::from_secs(1)), PaceCounts::default());
    }
}
