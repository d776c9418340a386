//! Settling publishes while a run goes on, so the recorder's memory does not grow with the
//! run's length: a publish whose outcome is known is judged against every receiver of its
//! group as soon as the verdict can no longer change, counted into the receiver's
//! [`Settled`](super::track::Settled) counters, and dropped from its publisher's log.
//!
//! A verdict is final when the publish was delivered (deliveries are judged as they arrive),
//! or when every membership interval that covers it has ended (intervals never reopen). An
//! undelivered publish in an interval that is still open is only final when it was acked and
//! a later one from the same publisher already arrived there: it is lost however the
//! interval ends. Anything else parks in the receiver's group track until the final check;
//! that holds only what went missing, which is bounded by the faults, not by the traffic.
//!
//! The final [`super::checker::check`] gives the same counts as if nothing had been settled
//! (`recorder::tests` runs both on the same histories), with one exception: a publish settled as
//! not delivered that arrives later still (after the settle delay, in an interval that
//! had ended) counts as unexpected as well.

use super::checker::{Expectation, expectation};
use super::track::{End, GroupTrack, Outcome, PublishRecord};

/// Settles `record` of `publisher` against one receiver's `track` of the record's group, as
/// of `as_of_us` (intervals that ended later count as still open); `publisher_breaks` are the
/// publisher's socket drops up to then. Returns whether the verdict was final and counted;
/// if not, the caller parks the record in the track.
pub fn settle(
    record: &PublishRecord,
    publisher: u64,
    track: &mut GroupTrack,
    publisher_breaks: &[u64],
    as_of_us: u64,
) -> bool {
    let never_processed = matches!(record.outcome, Outcome::Refused | Outcome::NotSent);
    if let Some(stream) = track
        .streams
        .get_mut(&publisher)
        .filter(|s| s.delivered.contains(record.seq))
    {
        stream.matched += 1;
        track.settled.unexpected += u64::from(never_processed);
        return true;
    }
    if !never_processed {
        for interval in &track.intervals {
            let covers = interval
                .start_us
                .is_some_and(|start| record.sent_us >= start)
                && interval.end_us.is_none_or(|end| record.sent_us <= end);
            let still_open = matches!(interval.end, End::Open | End::Finished)
                || interval.end_us.is_some_and(|end| end > as_of_us);
            if !covers || !still_open {
                continue;
            }
            let later_arrived = interval
                .max_seq
                .get(&publisher)
                .is_some_and(|max| *max > record.seq);
            if interval.end == End::Open && record.outcome == Outcome::Acked && later_arrived {
                track.settled.lost += 1;
                return true;
            }
            return false;
        }
    }
    match expectation(record, publisher, track, Some(publisher_breaks)) {
        Expectation::Expected => track.settled.lost += 1,
        Expectation::Gap => track.settled.allowed_gap += 1,
        Expectation::Indeterminate => track.settled.indeterminate += 1,
        Expectation::Optional => {
            let last_broke_before = track
                .intervals
                .last()
                .is_some_and(|i| i.end == End::Broken && i.end_us < Some(record.sent_us));
            if last_broke_before && !never_processed {
                track.awaiting_reconnect += 1;
            }
        }
    }
    true
}
