//! Sharded runs: which clients a shard owns, and the shard report it hands to the merge.
//!
//! A run of `clients` over `count` shards gives client `i` (global index) to shard
//! `i % count`: striped, not in blocks, so the members of a group (consecutive indices) sit on
//! different shards and a group's publishers and receivers are on different shards. Every
//! shard derives the same plan from the same flags; identities, roles, groups and random
//! choices stay functions of the global index and the seed.
//!
//! The [`ShardReport`] carries what the merge needs to check deliveries exactly as one
//! process would: each publisher's records (group, outcome, send and outcome times, by
//! sequence number), each receiver's membership intervals, received sequence ranges per
//! publisher and connection breaks, serialized HDR histograms, and the shard's own
//! [`LoadReport`] (its slice, checked against its own publishers only).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use super::rangeset::RangeSet;
use super::report::LoadReport;
use super::track::{
    End, GroupTrack, Interval, Outcome, PublishRecord, PublisherLog, ReceiverTrack, Stream,
};

/// Largest sequence number or per-group count a shard report may hold: 2^32 (far beyond any
/// run, and small enough that sums over a whole report cannot overflow).
pub const MAX_COUNT: u64 = 1 << 32;

/// The `format` of a shard report this build writes and reads.
pub const SHARD_REPORT_FORMAT: &str = "webpubsub-fleet shard report 1";

/// One shard of a run: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// This shard, from 0.
    pub index: u64,
    /// Shards in the run, at least 1.
    pub count: u64,
}

impl ShardSpec {
    /// The whole run in one process.
    pub const WHOLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    /// Shard `index` of `count`, or why not.
    pub fn new(index: u64, count: u64) -> Result<ShardSpec, String> {
        if count == 0 {
            return Err("--shards must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range: with --shards {count} the indices are 0 to {}",
                count - 1
            ));
        }
        Ok(ShardSpec { index, count })
    }

    /// Whether this is a real shard of a bigger run.
    pub fn is_sharded(&self) -> bool {
        self.count > 1
    }

    /// The shard that owns global client `client`.
    pub fn owner(count: u64, client: u64) -> u64 {
        client % count.max(1)
    }

    /// Whether this shard owns global client `client`.
    pub fn owns(&self, client: u64) -> bool {
        Self::owner(self.count, client) == self.index
    }

    /// The position of global client `client` among this shard's clients, if it owns it.
    pub fn slot(&self, client: u64) -> Option<usize> {
        self.owns(client)
            .then(|| usize::try_from(client / self.count.max(1)).ok())
            .flatten()
    }

    /// The global index of this shard's `slot`-th client.
    pub fn global(&self, slot: u64) -> u64 {
        slot * self.count.max(1) + self.index
    }

    /// How many of a run's `clients` this shard owns.
    pub fn len(&self, clients: u64) -> u64 {
        if clients > self.index {
            (clients - self.index - 1) / self.count.max(1) + 1
        } else {
            0
        }
    }

    /// Whether this shard owns none of a run's `clients`.
    pub fn is_empty(&self, clients: u64) -> bool {
        self.len(clients) == 0
    }
}

/// What every shard of one run must agree on (checked at registration and in the merge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// Shards in the run.
    pub shards: u64,
    /// Clients in the whole run.
    pub clients: u64,
    /// Seed of the simulated users.
    pub seed: u64,
    /// A hash of every flag that shapes the workload (scenario, sizes, rates, duration, ...).
    pub workload: String,
}

impl RunKey {
    /// Why `other` (from shard `index`) does not belong to the run this key describes.
    pub fn mismatch(&self, index: u64, other: &RunKey) -> Option<String> {
        let differ = |what: &str, ours: &dyn std::fmt::Display, theirs: &dyn std::fmt::Display| {
            Some(format!(
                "shard {index} runs with {what} {theirs}, the coordinator with {ours}: give every shard the same command line"
            ))
        };
        if self.shards != other.shards {
            return differ("--shards", &self.shards, &other.shards);
        }
        if self.clients != other.clients {
            return differ("--clients", &self.clients, &other.clients);
        }
        if self.seed != other.seed {
            return differ("--seed", &self.seed, &other.seed);
        }
        if self.workload != other.workload {
            return differ("workload flags hash", &self.workload, &other.workload);
        }
        None
    }
}

/// Serialized latency histograms (HDR V2, base64) of a shard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Delivery latency, µs.
    pub delivery: String,
    /// Connect latency, µs.
    pub connect: String,
    /// Recovery durations, µs.
    pub recovery: String,
}

/// One shard's report: its slice's own report and the tracks the merge checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardReport {
    /// [`SHARD_REPORT_FORMAT`].
    pub format: String,
    /// This shard's index.
    pub shard: u64,
    /// What the run's shards agree on.
    pub run: RunKey,
    /// The shard's slice, checked alone.
    pub report: LoadReport,
    /// Histograms to merge exactly.
    pub histograms: Histograms,
    /// The shard's publishers.
    pub publishers: Vec<PublisherWire>,
    /// The shard's receivers.
    pub receivers: Vec<ReceiverWire>,
}

/// A publisher's records, columnar: record `n` has sequence number `n + 1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublisherWire {
    /// Global client index.
    pub client: u64,
    /// The target group of consecutive records: `(group, records)`.
    pub groups: Vec<(String, u64)>,
    /// One letter per record: `P`ending, `A`cked, `W`ritten, `R`efused, `N`ot sent, `U`nknown.
    pub outcomes: String,
    /// Send times, µs: the first one, then differences to the one before.
    pub sent_us: Vec<i64>,
    /// Outcome time minus send time, µs (`null` while unresolved).
    pub done_after_us: Vec<Option<i64>>,
}

/// A receiver's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverWire {
    /// Global client index.
    pub client: u64,
    /// New connections.
    pub connections: u64,
    /// When the socket dropped, µs.
    pub breaks: Vec<u64>,
    /// Per group.
    pub groups: BTreeMap<String, GroupWire>,
}

/// A receiver's record of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupWire {
    /// Deliveries with a valid stamp.
    pub delivered: u64,
    /// Deliveries of a number already delivered.
    pub duplicated: u64,
    /// Deliveries below a number already delivered from the same publisher.
    pub reordered: u64,
    /// Deliveries without a valid stamp, or in a group never joined.
    pub unexpected: u64,
    /// Membership intervals, oldest first (allowed gaps follow from how they ended).
    pub intervals: Vec<IntervalWire>,
    /// Sequence numbers received, per publisher, as inclusive ranges.
    pub received: BTreeMap<u64, Vec<(u64, u64)>>,
}

/// One membership interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalWire {
    /// From when every publish had to arrive, µs.
    pub start_us: Option<u64>,
    /// When it ended, µs.
    pub end_us: Option<u64>,
    /// How it ended.
    pub end: EndWire,
    /// Largest sequence number received in it, per publisher.
    pub max_seq: BTreeMap<u64, u64>,
}

/// [`End`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndWire {
    /// Still a member.
    Open,
    /// Left on purpose.
    Left,
    /// The connection was lost.
    Broken,
    /// The run ended.
    Finished,
}

impl From<End> for EndWire {
    fn from(end: End) -> Self {
        match end {
            End::Open => EndWire::Open,
            End::Left => EndWire::Left,
            End::Broken => EndWire::Broken,
            End::Finished => EndWire::Finished,
        }
    }
}

impl From<EndWire> for End {
    fn from(end: EndWire) -> Self {
        match end {
            EndWire::Open => End::Open,
            EndWire::Left => End::Left,
            EndWire::Broken => End::Broken,
            EndWire::Finished => End::Finished,
        }
    }
}

fn outcome_letter(outcome: Outcome) -> char {
    match outcome {
        Outcome::Pending => 'P',
        Outcome::Acked => 'A',
        Outcome::Written => 'W',
        Outcome::Refused => 'R',
        Outcome::NotSent => 'N',
        Outcome::Unknown => 'U',
    }
}

fn outcome_of_letter(letter: char) -> Result<Outcome, String> {
    Ok(match letter {
        'P' => Outcome::Pending,
        'A' => Outcome::Acked,
        'W' => Outcome::Written,
        'R' => Outcome::Refused,
        'N' => Outcome::NotSent,
        'U' => Outcome::Unknown,
        other => {
            return Err(format!(
                "`{other}` is not a publish outcome letter (PAWRNU)"
            ));
        }
    })
}

/// Signed difference `b - a` of two µs times (saturating: times are far below 2^63).
fn delta(a: u64, b: u64) -> i64 {
    if b >= a {
        i64::try_from(b - a).unwrap_or(i64::MAX)
    } else {
        i64::try_from(a - b).map_or(i64::MIN, |d| -d)
    }
}

fn apply(base: u64, d: i64) -> Result<u64, String> {
    base.checked_add_signed(d)
        .ok_or_else(|| format!("a time difference of {d} µs leaves the range of times"))
}

impl PublisherWire {
    /// The wire form of client `client`'s log.
    pub fn from_log(client: u64, log: &PublisherLog) -> PublisherWire {
        let mut wire = PublisherWire {
            client,
            ..PublisherWire::default()
        };
        let mut last_sent = 0;
        for record in &log.records {
            match wire.groups.last_mut() {
                Some((group, n)) if **group == *record.group => *n += 1,
                _ => wire.groups.push((record.group.to_string(), 1)),
            }
            wire.outcomes.push(outcome_letter(record.outcome));
            wire.sent_us.push(delta(last_sent, record.sent_us));
            wire.done_after_us
                .push(record.done_us.map(|done| delta(record.sent_us, done)));
            last_sent = record.sent_us;
        }
        wire
    }

    /// The log back, or why this wire form is not one.
    pub fn to_log(&self) -> Result<PublisherLog, String> {
        let n = self.sent_us.len();
        let letters: Vec<char> = self.outcomes.chars().collect();
        let grouped = (self.groups.iter()).try_fold(0u64, |sum, (_, k)| sum.checked_add(*k));
        if letters.len() != n || self.done_after_us.len() != n || grouped != Some(n as u64) {
            return Err(format!(
                "publisher {}: {} send times, {} outcomes, {} outcome times and {} grouped records do not match",
                self.client,
                n,
                letters.len(),
                self.done_after_us.len(),
                grouped.map_or("too many".into(), |g| g.to_string())
            ));
        }
        let mut records = Vec::with_capacity(n);
        let mut groups = self
            .groups
            .iter()
            .flat_map(|(g, k)| std::iter::repeat_n(Arc::<str>::from(g.as_str()), *k as usize));
        let mut sent_us = 0;
        let columns = self.sent_us.iter().zip(&self.done_after_us).zip(letters);
        for (seq, ((sent, done), letter)) in (1..).zip(columns) {
            sent_us = apply(sent_us, *sent)?;
            let done_us = done.map(|d| apply(sent_us, d)).transpose()?;
            records.push(PublishRecord {
                seq,
                group: groups.next().ok_or("fewer grouped records than records")?,
                sent_us,
                done_us,
                outcome: outcome_of_letter(letter)?,
            });
        }
        // A shard's recorder settles nothing, so its log starts at sequence number 1.
        Ok(PublisherLog {
            published: n as u64,
            records: records.into(),
        })
    }
}

impl ReceiverWire {
    /// The wire form of client `client`'s track.
    pub fn from_track(client: u64, track: &ReceiverTrack) -> ReceiverWire {
        let groups = track
            .groups
            .iter()
            .map(|(name, g)| {
                let wire = GroupWire {
                    delivered: g.delivered,
                    duplicated: g.duplicated,
                    reordered: g.reordered,
                    unexpected: g.unexpected,
                    intervals: g
                        .intervals
                        .iter()
                        .map(|i| IntervalWire {
                            start_us: i.start_us,
                            end_us: i.end_us,
                            end: i.end.into(),
                            max_seq: i.max_seq.iter().map(|(k, v)| (*k, *v)).collect(),
                        })
                        .collect(),
                    received: g
                        .streams
                        .iter()
                        .map(|(p, s)| (*p, s.delivered.ranges().to_vec()))
                        .collect(),
                };
                (name.clone(), wire)
            })
            .collect();
        ReceiverWire {
            client,
            connections: track.connections,
            breaks: track.breaks.clone(),
            groups,
        }
    }

    /// The track back (what the checker reads of it), or why this is not one.
    pub fn to_track(&self) -> Result<ReceiverTrack, String> {
        if self.breaks.windows(2).any(|w| w[0] > w[1]) {
            return Err(format!("receiver {}: breaks out of order", self.client));
        }
        let mut track = ReceiverTrack::new(Vec::new());
        track.connections = self.connections;
        track.breaks = self.breaks.clone();
        for (name, g) in &self.groups {
            let counts = [g.delivered, g.duplicated, g.reordered, g.unexpected];
            let seqs = (g.received.values().flatten().map(|r| r.1))
                .chain(g.intervals.iter().flat_map(|i| i.max_seq.values().copied()));
            if counts.into_iter().chain(seqs).any(|n| n > MAX_COUNT) {
                return Err(format!(
                    "receiver {}, group {name}: a count or sequence number above 2^32",
                    self.client
                ));
            }
            let mut streams = super::track::FastMap::default();
            for (p, ranges) in &g.received {
                let delivered = RangeSet::from_ranges(ranges.clone()).map_err(|e| {
                    format!("receiver {}, group {name}, publisher {p}: {e}", self.client)
                })?;
                streams.insert(
                    *p,
                    Stream {
                        delivered,
                        matched: 0,
                    },
                );
            }
            let intervals = g
                .intervals
                .iter()
                .map(|i| Interval {
                    start_us: i.start_us,
                    end_us: i.end_us,
                    end: i.end.into(),
                    max_seq: i.max_seq.iter().map(|(k, v)| (*k, *v)).collect(),
                })
                .collect();
            track.groups.insert(
                name.clone(),
                GroupTrack {
                    intervals,
                    streams,
                    duplicated: g.duplicated,
                    reordered: g.reordered,
                    unexpected: g.unexpected,
                    delivered: g.delivered,
                    ..GroupTrack::default()
                },
            );
        }
        Ok(track)
    }
}

/// Tracks decoded from a shard report, by global client index.
#[derive(Debug, Default)]
pub struct DecodedTracks {
    /// Receivers.
    pub receivers: BTreeMap<u64, ReceiverTrack>,
    /// Publishers.
    pub publishers: BTreeMap<u64, PublisherLog>,
}

impl ShardReport {
    /// Checks the format, the index and that every client in it belongs to this shard, and
    /// decodes its tracks.
    pub fn decode_tracks(&self) -> Result<DecodedTracks, String> {
        if self.format != SHARD_REPORT_FORMAT {
            return Err(format!(
                "shard report format `{}` is not `{SHARD_REPORT_FORMAT}`: merge reports of the same webpubsub-fleet version",
                self.format
            ));
        }
        let spec = ShardSpec::new(self.shard, self.run.shards)?;
        let check_client = |what: &str, client: u64, seen: &mut BTreeSet<u64>| {
            if client >= self.run.clients || !spec.owns(client) {
                return Err(format!(
                    "shard {}'s report holds {what} {client}, which is not one of its clients",
                    self.shard
                ));
            }
            if !seen.insert(client) {
                return Err(format!(
                    "shard {}'s report holds {what} {client} twice",
                    self.shard
                ));
            }
            Ok(())
        };
        let mut tracks = DecodedTracks::default();
        let mut seen = BTreeSet::new();
        for r in &self.receivers {
            check_client("receiver", r.client, &mut seen)?;
            tracks.receivers.insert(r.client, r.to_track()?);
        }
        seen.clear();
        for p in &self.publishers {
            check_client("publisher", p.client, &mut seen)?;
            tracks.publishers.insert(p.client, p.to_log()?);
        }
        Ok(tracks)
    }
}

/// A histogram as HDR V2 (uncompressed) in base64.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = V2Serializer::new().serialize(h, &mut bytes);
    BASE64.encode(bytes)
}

/// A histogram from [`encode_histogram`]'s text.
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("a histogram is not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| format!("a histogram is not HDR V2: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn striping_covers_every_client_once() {
        let clients = 11;
        let mut owners = vec![0; clients as usize];
        let mut total = 0;
        for index in 0..4 {
            let spec = ShardSpec::new(index, 4).unwrap();
            total += spec.len(clients);
            for slot in 0..spec.len(clients) {
                let g = spec.global(slot);
                assert!(spec.owns(g));
                assert_eq!(spec.slot(g), Some(slot as usize));
                owners[g as usize] += 1;
            }
        }
        assert_eq!(total, clients);
        assert!(owners.iter().all(|n| *n == 1));
        assert_eq!(ShardSpec::new(3, 4).unwrap().len(3), 0);
        // A group of 10 consecutive clients spans every shard.
        let shards: BTreeSet<u64> = (20..30).map(|c| ShardSpec::owner(4, c)).collect();
        assert_eq!(shards.len(), 4);
    }

    #[test]
    fn bad_shard_specs_say_what_to_do() {
        assert!(ShardSpec::new(0, 0).unwrap_err().contains("at least 1"));
        let err = ShardSpec::new(4, 4).unwrap_err();
        assert!(err.contains("0 to 3"), "{err}");
    }

    #[test]
    fn histograms_round_trip() {
        let mut h = crate::fleet::latency_histogram();
        for v in [1, 5, 900, 2_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back, h);
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
    }

    #[test]
    fn receivers_with_absurd_numbers_are_refused() {
        let mut wire = ReceiverWire {
            client: 1,
            ..ReceiverWire::default()
        };
        let group = GroupWire {
            received: BTreeMap::from([(0, vec![(1, u64::MAX - 1)])]),
            ..GroupWire::default()
        };
        wire.groups.insert("g".into(), group);
        assert!(wire.to_track().unwrap_err().contains("2^32"));
        let group = wire.groups.get_mut("g").unwrap();
        group.received.clear();
        group.delivered = u64::MAX;
        assert!(wire.to_track().is_err());
        wire.groups.get_mut("g").unwrap().delivered = 3;
        assert!(wire.to_track().is_ok());
    }

    #[test]
    fn publisher_logs_round_trip_and_refuse_inconsistent_columns() {
        let mut log = PublisherLog::default();
        for (i, group) in ["a", "a", "b", "a"].into_iter().enumerate() {
            let seq = log.begin(Arc::from(group), 1000 + 10 * i as u64);
            if i != 2 {
                log.end(seq, Outcome::Acked, 1003 + 10 * i as u64);
            }
        }
        let wire = PublisherWire::from_log(5, &log);
        assert_eq!(wire.groups.len(), 3);
        assert_eq!(wire.to_log().unwrap(), log);
        let mut bad = wire.clone();
        bad.outcomes.pop();
        assert!(bad.to_log().is_err());
        let mut bad = wire;
        bad.outcomes = "AAXA".into();
        assert!(bad.to_log().unwrap_err().contains("`X`"));
    }
}
