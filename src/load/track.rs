//! What the recorder keeps, as plain data with pure transitions: per receiver, its
//! membership intervals per group and the sequence numbers it got from each publisher; per
//! publisher, what it published and how each publish ended. Times are microseconds of the
//! run's [`super::Clock`]. The [`super::checker`] reads these at the end of a run.
//!
//! Membership is recorded conservatively, so that a message is only *expected* when the hub
//! must have had the receiver in the group when it processed the message:
//! - groups joined on connect (token claims) start when `connected` was observed: the hub
//!   joined them before it sent `system/connected`;
//! - an explicit join starts at the earlier of its ack and the first delivery in the group;
//! - groups the client rejoins by itself after a reconnect start at their first delivery;
//! - a leave ends the interval when the leave was sent; a lost connection ends it as
//!   *broken*, where only a gap below a later delivery counts as a loss (see the checker).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::rangeset::RangeSet;
use super::stamp::{Stamp, StampError};

/// The maps a delivery looks up (groups by name, publishers by index): foldhash instead of
/// SipHash, as the keys come from our own run and these lookups run once per delivery.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The pseudo-group of echoed events: each client receives only its own.
pub const ECHO_GROUP: &str = "$echo";

/// How a membership interval ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Still a member.
    Open,
    /// The receiver left the group (or went away) on purpose.
    Left,
    /// The connection was lost: the session and what the hub had not sent yet are gone.
    Broken,
    /// The run ended (after the publishers stopped and deliveries drained).
    Finished,
}

/// One stretch of membership of a receiver in a group, on one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// From when every publish to the group must reach the receiver; `None` until confirmed.
    pub start_us: Option<u64>,
    /// When it ended.
    pub end_us: Option<u64>,
    /// How it ended.
    pub end: End,
    /// Largest sequence number delivered in this interval, per publisher.
    pub max_seq: FastMap<u64, u64>,
}

impl Interval {
    fn open(start_us: Option<u64>) -> Interval {
        Interval {
            start_us,
            end_us: None,
            end: End::Open,
            max_seq: FastMap::default(),
        }
    }
}

/// What one publisher's messages to one group looked like at one receiver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// Sequence numbers delivered.
    pub delivered: RangeSet,
    /// Delivered numbers already matched with a publish that was settled (and dropped from
    /// its publisher's log): the checker counts the rest of `delivered` against the log.
    pub matched: u64,
}

/// Verdicts on publishes already settled against one receiver's group (see
/// [`super::settle`]): the checker adds them to what it finds in the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Expected and not delivered.
    pub lost: u64,
    /// Not delivered because the receiver's connection was lost.
    pub allowed_gap: u64,
    /// Not delivered, with an unknown outcome.
    pub indeterminate: u64,
    /// Delivered although refused or never sent.
    pub unexpected: u64,
}

/// A receiver's record of one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTrack {
    /// Membership intervals, oldest first; only the last can be open.
    pub intervals: Vec<Interval>,
    /// Per publisher.
    pub streams: FastMap<u64, Stream>,
    /// Deliveries of a number already delivered.
    pub duplicated: u64,
    /// Deliveries below a number already delivered from the same publisher.
    pub reordered: u64,
    /// Deliveries without a valid stamp, or in a group the receiver never joined.
    pub unexpected: u64,
    /// Deliveries with a valid stamp.
    pub delivered: u64,
    /// Verdicts on settled publishes.
    pub settled: Settled,
    /// Settled publishes sent while the receiver's last connection was broken and no new
    /// one had joined the group: allowed gaps once it comes back, nothing if it never does.
    pub awaiting_reconnect: u64,
    /// Publishes (with their publisher) dropped from their publisher's log but not yet
    /// decidable here: undelivered while this receiver's interval was still open. Only
    /// undelivered publishes park, so this holds what went missing, not what arrived.
    pub parked: Vec<(u64, PublishRecord)>,
}

impl GroupTrack {
    fn open_interval(&mut self) -> Option<&mut Interval> {
        self.intervals.last_mut().filter(|i| i.end == End::Open)
    }

    fn close(&mut self, end: End, at_us: u64) {
        if let Some(interval) = self.open_interval() {
            interval.end = end;
            interval.end_us = Some(at_us);
        }
    }

    fn open(&mut self, start_us: Option<u64>) {
        if self.open_interval().is_none() {
            // Publishes settled while the last connection was broken were sent before this
            // interval begins: the checker's reconnect window covers them.
            if self.intervals.last().is_some_and(|i| i.end == End::Broken) {
                self.settled.allowed_gap += std::mem::take(&mut self.awaiting_reconnect);
            }
            self.intervals.push(Interval::open(start_us));
        }
    }
}

/// The verdict on one delivery, decided when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New and in order.
    Ok,
    /// Already delivered.
    Duplicate,
    /// New, but below a number already delivered.
    Reordered,
    /// No valid stamp, or a group never joined.
    Unexpected,
}

/// Everything recorded about one client as a receiver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverTrack {
    connection_id: Option<String>,
    /// Groups joined on connect (token claims, and the echo pseudo-group).
    static_groups: Vec<String>,
    /// Groups joined explicitly and not left: the client rejoins them after a reconnect.
    explicit: BTreeSet<String>,
    /// Per group.
    pub groups: FastMap<String, GroupTrack>,
    /// When the client's socket dropped (recovering or disconnected), oldest first.
    pub breaks: Vec<u64>,
    /// New connections (the first included).
    pub connections: u64,
}

impl ReceiverTrack {
    /// A receiver whose connections join `static_groups` on connect.
    pub fn new(static_groups: Vec<String>) -> ReceiverTrack {
        ReceiverTrack {
            static_groups,
            ..ReceiverTrack::default()
        }
    }

    /// `connected` with a connection id, observed at `at_us`.
    pub fn on_connected(&mut self, connection_id: &str, at_us: u64) {
        if self.connection_id.as_deref() == Some(connection_id) {
            return;
        }
        self.connection_id = Some(connection_id.to_owned());
        self.connections += 1;
        for track in self.groups.values_mut() {
            track.close(End::Broken, at_us);
        }
        for group in &self.static_groups {
            self.groups
                .entry(group.clone())
                .or_default()
                .open(Some(at_us));
        }
        for group in &self.explicit {
            self.groups.entry(group.clone()).or_default().open(None);
        }
    }

    /// The socket dropped and the client is recovering the same connection.
    pub fn on_recovering(&mut self, at_us: u64) {
        self.breaks.push(at_us);
    }

    /// The connection is gone for good.
    pub fn on_disconnected(&mut self, at_us: u64) {
        self.breaks.push(at_us);
        self.connection_id = None;
        for track in self.groups.values_mut() {
            track.close(End::Broken, at_us);
        }
    }

    /// A join of `group` is about to be sent.
    pub fn on_joining(&mut self, group: &str) {
        self.explicit.insert(group.to_owned());
        if self.connection_id.is_some() {
            self.groups.entry(group.to_owned()).or_default().open(None);
        }
    }

    /// The join of `group` was acked at `at_us`.
    pub fn on_joined(&mut self, group: &str, at_us: u64) {
        if let Some(interval) = self
            .groups
            .get_mut(group)
            .and_then(GroupTrack::open_interval)
        {
            interval.start_us = Some(interval.start_us.map_or(at_us, |s| s.min(at_us)));
        }
    }

    /// The join of `group` failed: not a member (unless deliveries proved otherwise).
    pub fn on_join_failed(&mut self, group: &str, at_us: u64) {
        self.explicit.remove(group);
        self.on_leaving(group, at_us);
    }

    /// A leave of `group` is about to be sent at `at_us`.
    pub fn on_leaving(&mut self, group: &str, at_us: u64) {
        self.explicit.remove(group);
        if let Some(track) = self.groups.get_mut(group) {
            track.close(End::Left, at_us);
        }
    }

    /// The client is about to stop on purpose at `at_us` (it keeps its explicit groups and
    /// rejoins them when it comes back, as the client does).
    pub fn on_going_away(&mut self, at_us: u64) {
        for track in self.groups.values_mut() {
            track.close(End::Left, at_us);
        }
    }

    /// The run is over: close what is open.
    pub fn finish(&mut self, at_us: u64) {
        for track in self.groups.values_mut() {
            track.close(End::Finished, at_us);
        }
    }

    /// A delivery in `group` with payload text `text` (or a non-text payload), at `at_us`.
    /// Returns the verdict and the stamp, if valid.
    pub fn on_delivery(
        &mut self,
        group: &str,
        text: Result<&str, StampError>,
        at_us: u64,
    ) -> (Verdict, Option<Stamp>) {
        let stamp = text.and_then(Stamp::parse);
        let track = match self.groups.get_mut(group) {
            Some(track) => track,
            None => self.groups.entry(group.to_owned()).or_default(),
        };
        let Ok(stamp) = stamp else {
            track.unexpected += 1;
            return (Verdict::Unexpected, None);
        };
        if track.intervals.is_empty() {
            track.unexpected += 1;
            return (Verdict::Unexpected, Some(stamp));
        }
        track.delivered += 1;
        if let Some(interval) = track.open_interval() {
            interval.start_us.get_or_insert(at_us);
            let max = interval.max_seq.entry(stamp.publisher).or_insert(0);
            *max = (*max).max(stamp.seq);
        }
        let stream = track.streams.entry(stamp.publisher).or_default();
        let above_all = stream.delivered.max().is_none_or(|m| stamp.seq > m);
        let verdict = if !stream.delivered.insert(stamp.seq) {
            track.duplicated += 1;
            Verdict::Duplicate
        } else if !above_all {
            track.reordered += 1;
            Verdict::Reordered
        } else {
            Verdict::Ok
        };
        (verdict, Some(stamp))
    }

    /// Whether the socket dropped between `from_us` and `to_us` (inclusive), or after
    /// `from_us` when `to_us` is `None`.
    pub fn broke_between(&self, from_us: u64, to_us: Option<u64>) -> bool {
        broke_between(&self.breaks, from_us, to_us)
    }
}

/// Whether one of `breaks` (sorted) lies between `from_us` and `to_us` (inclusive), or
/// after `from_us` when `to_us` is `None`.
pub fn broke_between(breaks: &[u64], from_us: u64, to_us: Option<u64>) -> bool {
    let i = breaks.partition_point(|b| *b < from_us);
    breaks
        .get(i)
        .is_some_and(|b| to_us.is_none_or(|to| *b <= to))
}

/// How a publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not resolved (yet).
    Pending,
    /// Acked with success (or `Duplicate`): the hub processed it.
    Acked,
    /// Fire-and-forget, written to the socket.
    Written,
    /// The hub answered with an error ack: it must not be delivered.
    Refused,
    /// It never left the client (not connected, too many pending, not started).
    NotSent,
    /// Unknown: the connection ended or the ack timed out.
    Unknown,
}

/// One publish.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishRecord {
    /// Sequence number.
    pub seq: u64,
    /// The group (or [`ECHO_GROUP`]).
    pub group: Arc<str>,
    /// When it was stamped.
    pub sent_us: u64,
    /// When its outcome was known.
    pub done_us: Option<u64>,
    /// Its outcome.
    pub outcome: Outcome,
}

/// What one publisher published and has not been settled yet, in sequence order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublisherLog {
    /// The records not settled yet, consecutive sequence numbers, oldest first.
    pub records: VecDeque<PublishRecord>,
    /// Publishes begun so far (the last sequence number).
    pub published: u64,
}

impl PublisherLog {
    /// Records a new publish to `group` at `sent_us`; returns its sequence number.
    pub fn begin(&mut self, group: Arc<str>, sent_us: u64) -> u64 {
        self.published += 1;
        let seq = self.published;
        self.records.push_back(PublishRecord {
            seq,
            group,
            sent_us,
            done_us: None,
            outcome: Outcome::Pending,
        });
        seq
    }

    /// Records how publish `seq` ended (nothing if it was settled already).
    pub fn end(&mut self, seq: u64, outcome: Outcome, at_us: u64) {
        let first = self.records.front().map_or(u64::MAX, |r| r.seq);
        if let Some(record) = seq
            .checked_sub(first)
            .and_then(|i| self.records.get_mut(i as usize))
        {
            record.outcome = outcome;
            record.done_us = Some(at_us);
        }
    }

    /// Removes and returns up to `max` records from the front whose outcome was known by
    /// `resolved_by_us`. Stops at the first one still pending: settling keeps sequence
    /// order, and a pending publish resolves within the ack timeout.
    pub fn take_resolved(&mut self, resolved_by_us: u64, max: usize) -> Vec<PublishRecord> {
        let mut taken = Vec::new();
        while taken.len() < max
            && self.records.front().is_some_and(|r| {
                r.outcome != Outcome::Pending && r.done_us.is_some_and(|d| d <= resolved_by_us)
            })
        {
            taken.extend(self.records.pop_front());
        }
        taken
    }
}
