//! The delivery checker (reliability.md section 1, "Proposed checker"): from the recorded
//! tracks, counts per receiver and per group what was lost, duplicated, reordered and
//! unexpected, and keeps losses across a lost connection apart as *allowed gaps*.
//!
//! Duplicates, reorders and unexpected deliveries are judged as they arrive
//! ([`ReceiverTrack::on_delivery`]). Losses need the end of the run: for every publish to a
//! group and every receiver with a membership interval that covers it,
//!
//! | publish outcome | interval ended | not delivered counts as |
//! |---|---|---|
//! | acked | still open at the end, or left after the ack | **lost** |
//! | acked | left before the ack | nothing (the leave may have won) |
//! | any processed | broken (connection lost), and a later message of the same publisher arrived in this interval | **lost**: per-group order means it should have come first |
//! | any | broken, and nothing later from that publisher arrived | **allowed gap**: the session and its unsent messages are gone |
//! | any sent | none: sent after a connection broke, before the next one rejoined | **allowed gap** |
//! | written (fire-and-forget) | the end of the run, the publisher's socket never dropped after the send | **lost** |
//! | written or unknown otherwise | any | **indeterminate** (not a violation) |
//! | refused or never sent | any | nothing; if it *was* delivered: **unexpected** |
//!
//! Intervals start conservatively (see [`super::track`]), so a message sent while a join
//! was in flight is never counted as lost.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::track::{ECHO_GROUP, End, Outcome, PublishRecord, PublisherLog, ReceiverTrack};

/// Counts of one receiver, one group, or the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Deliveries with a valid stamp in a group the receiver had joined.
    pub delivered: u64,
    /// Expected and never delivered.
    pub lost: u64,
    /// Delivered more than once (counted per extra delivery).
    pub duplicated: u64,
    /// Delivered after a higher number from the same publisher.
    pub reordered: u64,
    /// Delivered but never (validly) published to the receiver.
    pub unexpected: u64,
    /// Not delivered because the receiver's connection was lost (allowed).
    pub allowed_gap: u64,
    /// Not delivered, and the publish's own outcome is unknown (not a violation).
    pub indeterminate: u64,
}

impl Counts {
    /// Deliveries that were due: delivered, lost, or missed for an allowed or unknown reason.
    pub fn expected(&self) -> u64 {
        self.delivered + self.lost + self.allowed_gap + self.indeterminate
    }
}

impl Counts {
    /// Adds `other` to these counts.
    /// (Saturating: merged counts may come from reports read off the network.)
    pub fn add(&mut self, other: &Counts) {
        self.delivered = self.delivered.saturating_add(other.delivered);
        self.lost = self.lost.saturating_add(other.lost);
        self.duplicated = self.duplicated.saturating_add(other.duplicated);
        self.reordered = self.reordered.saturating_add(other.reordered);
        self.unexpected = self.unexpected.saturating_add(other.unexpected);
        self.allowed_gap = self.allowed_gap.saturating_add(other.allowed_gap);
        self.indeterminate = self.indeterminate.saturating_add(other.indeterminate);
    }

    /// Lost, duplicated, reordered or unexpected deliveries.
    pub fn violations(&self) -> u64 {
        (self.lost.saturating_add(self.duplicated))
            .saturating_add(self.reordered)
            .saturating_add(self.unexpected)
    }
}

/// The checker's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckReport {
    /// The whole run.
    pub total: Counts,
    /// Receivers with at least one violation or allowed gap, by client index.
    pub by_receiver: BTreeMap<u64, Counts>,
    /// Groups with at least one violation or allowed gap.
    pub by_group: BTreeMap<String, Counts>,
    /// Publishes whose outcome never resolved (no ack, no error) by the end of the run: a
    /// client that left an operation hanging, which no delivery count would show.
    pub unresolved: u64,
    /// Deliveries from publishers whose logs this check did not have (a shard checked alone,
    /// or a merge missing a shard): judged for duplicates and order, not for loss.
    pub unchecked: u64,
}

/// What one (publish, interval) pair says about a publish that was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expectation {
    Optional,
    Indeterminate,
    Gap,
    Expected,
}

/// Checks every receiver against every publisher. `receivers[i]` and `publishers[i]` are
/// client `i`'s tracks (a client can be both).
pub fn check(receivers: &[ReceiverTrack], publishers: &[PublisherLog]) -> CheckReport {
    let receivers: BTreeMap<u64, &ReceiverTrack> = (0u64..).zip(receivers).collect();
    let publishers: BTreeMap<u64, &PublisherLog> = (0u64..).zip(publishers).collect();
    check_clients(&receivers, &publishers, |_| true)
}

/// Checks the receivers against the publishers, both by global client index, as [`check`]
/// does for a whole run; a sharded run's merge calls it with every shard's tracks. Deliveries
/// from a publisher that `publisher_known` says nothing about (it lives on a shard whose
/// report is absent) can be judged for duplicates and order only: they are counted as
/// `unchecked`, neither lost nor unexpected. A known publisher without a log published
/// nothing.
pub fn check_clients(
    receivers: &BTreeMap<u64, &ReceiverTrack>,
    publishers: &BTreeMap<u64, &PublisherLog>,
    publisher_known: impl Fn(u64) -> bool,
) -> CheckReport {
    // Index: (publisher, group) -> its records to that group, in sequence order.
    let mut by_target: HashMap<(u64, &str), Vec<&PublishRecord>> = HashMap::new();
    let mut publishers_of: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut unresolved = 0;
    for (&p, log) in publishers {
        for record in &log.records {
            unresolved += u64::from(record.outcome == Outcome::Pending);
            let list = by_target.entry((p, &*record.group)).or_default();
            if list.is_empty() {
                publishers_of.entry(&*record.group).or_default().push(p);
            }
            list.push(record);
        }
    }
    let no_publishers = Vec::new();
    let mut report = CheckReport {
        unresolved,
        ..CheckReport::default()
    };
    for (&r, receiver) in receivers {
        let mut receiver_counts = Counts::default();
        for (group, track) in &receiver.groups {
            let mut counts = Counts {
                delivered: track.delivered,
                duplicated: track.duplicated,
                reordered: track.reordered,
                unexpected: track.unexpected,
                ..Counts::default()
            };
            let publishers_here = publishers_of.get(group.as_str()).unwrap_or(&no_publishers);
            for &p in publishers_here {
                if group == ECHO_GROUP && p != r {
                    continue;
                }
                let records = &by_target[&(p, group.as_str())];
                let stream = track.streams.get(&p);
                let publisher = receivers.get(&p).copied();
                let mut matched = 0;
                for record in records {
                    let delivered = stream.is_some_and(|s| s.delivered.contains(record.seq));
                    if delivered {
                        matched += 1;
                        if matches!(record.outcome, Outcome::Refused | Outcome::NotSent) {
                            counts.unexpected += 1;
                        }
                        continue;
                    }
                    match expectation(record, p, track, publisher) {
                        Expectation::Expected => counts.lost += 1,
                        Expectation::Gap => counts.allowed_gap += 1,
                        Expectation::Indeterminate => counts.indeterminate += 1,
                        Expectation::Optional => {}
                    }
                }
                // Numbers delivered that this publisher never published to this group.
                let stray = stream
                    .map_or(0, |s| s.delivered.len())
                    .saturating_sub(matched);
                counts.unexpected = counts.unexpected.saturating_add(stray);
            }
            // Streams from publishers that never published to this group at all.
            for (p, stream) in &track.streams {
                if publishers_here.contains(p) && !(group == ECHO_GROUP && *p != r) {
                    continue;
                }
                if publisher_known(*p) {
                    counts.unexpected = counts.unexpected.saturating_add(stream.delivered.len());
                } else {
                    report.unchecked = report.unchecked.saturating_add(stream.delivered.len());
                }
            }
            if counts.violations() + counts.allowed_gap > 0 {
                report
                    .by_group
                    .entry(group.clone())
                    .or_default()
                    .add(&counts);
            }
            receiver_counts.add(&counts);
        }
        if receiver_counts.violations() + receiver_counts.allowed_gap > 0 {
            report.by_receiver.insert(r, receiver_counts);
        }
        report.total.add(&receiver_counts);
    }
    report
}

/// Whether `record` (not delivered) had to reach the receiver whose `track` this is.
fn expectation(
    record: &PublishRecord,
    publisher_index: u64,
    track: &super::track::GroupTrack,
    publisher: Option<&ReceiverTrack>,
) -> Expectation {
    let processed_for_sure = record.outcome == Outcome::Acked;
    let publisher_broke_after =
        |to: Option<u64>| publisher.is_none_or(|p| p.broke_between(record.sent_us, to));
    let mut verdict = Expectation::Optional;
    for interval in &track.intervals {
        let Some(start) = interval.start_us else {
            continue;
        };
        if record.sent_us < start || interval.end_us.is_some_and(|end| record.sent_us > end) {
            continue;
        }
        let later_arrived = interval
            .max_seq
            .get(&publisher_index)
            .is_some_and(|max| *max > record.seq);
        let this = match (interval.end, record.outcome) {
            (_, Outcome::Refused | Outcome::NotSent) => Expectation::Optional,
            (End::Broken, _) if later_arrived && processed_for_sure => Expectation::Expected,
            (End::Broken, _) if later_arrived && !publisher_broke_after(interval.end_us) => {
                Expectation::Expected
            }
            (End::Broken, _) => Expectation::Gap,
            (End::Open | End::Finished, Outcome::Acked) => Expectation::Expected,
            (End::Left, Outcome::Acked) => {
                let acked_before_leave = matches!(
                    (record.done_us, interval.end_us),
                    (Some(done), Some(end)) if done <= end
                );
                if acked_before_leave {
                    Expectation::Expected
                } else {
                    Expectation::Optional
                }
            }
            (End::Open | End::Finished, Outcome::Written) if !publisher_broke_after(None) => {
                Expectation::Expected
            }
            _ => Expectation::Indeterminate,
        };
        verdict = verdict.max(this);
    }
    if verdict == Expectation::Optional && sent_while_reconnecting(record, track) {
        verdict = Expectation::Gap;
    }
    verdict
}

/// Whether `record` was sent after one of the receiver's connections broke and before its
/// next connection rejoined the group: the messages a reconnect costs. A receiver that never
/// came back has no such window (it did not reconnect; its absence is not a gap).
fn sent_while_reconnecting(record: &PublishRecord, track: &super::track::GroupTrack) -> bool {
    if matches!(record.outcome, Outcome::Refused | Outcome::NotSent) {
        return false;
    }
    track.intervals.windows(2).any(|pair| {
        let (broken, next) = (&pair[0], &pair[1]);
        let bound = next.start_us.or(next.end_us).unwrap_or(u64::MAX);
        broken.end == End::Broken
            && broken.end_us.is_some_and(|end| record.sent_us > end)
            && record.sent_us < bound
    })
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;
