//! The coordinator of a sharded run, as a state machine without I/O: shard 0 holds one and
//! serves it over HTTP (`cli/coordinate.rs`). Shards register (refused when their run
//! differs), wait at the barrier until every shard has ramped up (the workload then starts
//! at one instant everywhere), and post their reports. Every wait has a deadline; whoever
//! is missing when it passes is named by index.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::merge::Absent;
use super::shard::{RunKey, ShardReport, ShardSpec};

/// How long before the start instant the barrier opens: every shard polls well within it.
pub const START_LEAD_US: u64 = 1_000_000;

/// A shard's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The shard's index.
    pub index: u64,
    /// Its `--shards`.
    pub shards: u64,
    /// Its `--clients`.
    pub clients: u64,
    /// Its `--seed`, if given (the coordinator's seed applies otherwise).
    pub seed: Option<u64>,
    /// Its workload hash.
    pub workload: String,
}

/// The coordinator's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The run's seed.
    pub seed: u64,
}

/// Where the barrier is, for a shard that asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BarrierState {
    /// Not every shard has arrived: ask again soon.
    Wait,
    /// Start the workload at this wall time (µs since the Unix epoch).
    Start {
        /// The start instant.
        at_unix_us: u64,
    },
    /// The run is off.
    Abort {
        /// Why.
        error: String,
    },
}

/// A sharded run's coordinator.
#[derive(Debug)]
pub struct Coordinator {
    key: RunKey,
    barrier_deadline_us: u64,
    registered: BTreeSet<u64>,
    refused: BTreeMap<u64, String>,
    arrived: BTreeSet<u64>,
    start_at_us: Option<u64>,
    aborted: Option<String>,
    reports: BTreeMap<u64, ShardReport>,
}

impl Coordinator {
    /// A coordinator of the run `key` whose barrier gives up at `barrier_deadline_us`.
    pub fn new(key: RunKey, barrier_deadline_us: u64) -> Coordinator {
        Coordinator {
            key,
            barrier_deadline_us,
            registered: BTreeSet::new(),
            refused: BTreeMap::new(),
            arrived: BTreeSet::new(),
            start_at_us: None,
            aborted: None,
            reports: BTreeMap::new(),
        }
    }

    /// The run.
    pub fn key(&self) -> &RunKey {
        &self.key
    }

    /// Registers a shard, or says why not (mismatched run, index out of range or taken).
    pub fn register(&mut self, r: &Registration) -> Result<Registered, String> {
        let theirs = RunKey {
            shards: r.shards,
            clients: r.clients,
            seed: r.seed.unwrap_or(self.key.seed),
            workload: r.workload.clone(),
        };
        let refusal = if let Some(why) = self.key.mismatch(r.index, &theirs) {
            Some(why)
        } else if let Err(why) = ShardSpec::new(r.index, self.key.shards) {
            Some(why)
        } else if self.registered.contains(&r.index) {
            Some(format!(
                "shard {} registered twice: is another process running with index {}?",
                r.index, r.index
            ))
        } else if self.start_at_us.is_some() || self.aborted.is_some() {
            Some(format!(
                "shard {} registered after the barrier closed",
                r.index
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            if r.index < self.key.shards && !self.registered.contains(&r.index) {
                self.refused.insert(r.index, why.clone());
            }
            return Err(why);
        }
        self.refused.remove(&r.index);
        self.registered.insert(r.index);
        Ok(Registered {
            seed: self.key.seed,
        })
    }

    /// Shard `index` has ramped up and waits (or asks again); `now_us` is the wall time.
    pub fn arrive(&mut self, index: u64, now_us: u64) -> Result<BarrierState, String> {
        if !self.registered.contains(&index) {
            return Err(format!("shard {index} is not registered"));
        }
        if self.aborted.is_none() && self.start_at_us.is_none() {
            self.arrived.insert(index);
        }
        Ok(self.barrier(now_us))
    }

    /// The barrier's state at `now_us`: it opens when every shard arrived, and aborts naming
    /// the missing shards when its deadline passes first.
    pub fn barrier(&mut self, now_us: u64) -> BarrierState {
        if let Some(error) = &self.aborted {
            return BarrierState::Abort {
                error: error.clone(),
            };
        }
        if let Some(at) = self.start_at_us {
            return BarrierState::Start { at_unix_us: at };
        }
        if self.arrived.len() as u64 == self.key.shards {
            let at = now_us + START_LEAD_US;
            self.start_at_us = Some(at);
            return BarrierState::Start { at_unix_us: at };
        }
        if now_us >= self.barrier_deadline_us {
            let error = format!(
                "the barrier timed out: {}",
                self.missing_at_barrier()
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            self.aborted = Some(error.clone());
            return BarrierState::Abort { error };
        }
        BarrierState::Wait
    }

    /// Calls the run off: shards still at the barrier are told `why`.
    pub fn abort(&mut self, why: String) {
        if self.start_at_us.is_none() {
            self.aborted.get_or_insert(why);
        }
    }

    /// Shards that have not reached the barrier, with why.
    pub fn missing_at_barrier(&self) -> BTreeMap<u64, String> {
        (0..self.key.shards)
            .filter(|i| !self.arrived.contains(i))
            .map(|i| {
                let why = if let Some(refusal) = self.refused.get(&i) {
                    format!("shard {i} was refused: {refusal}")
                } else if self.registered.contains(&i) {
                    format!("shard {i} registered but never reached the barrier")
                } else {
                    format!("shard {i} never registered")
                };
                (i, why)
            })
            .collect()
    }

    /// Whether a report of shard `index` may come now (checked before its body is read).
    pub fn expects_report(&self, index: u64) -> Result<(), String> {
        if !self.registered.contains(&index) {
            return Err(format!("shard {index} is not registered"));
        }
        if self.start_at_us.is_none() {
            return Err(format!("shard {index} reported before the barrier opened"));
        }
        if self.reports.contains_key(&index) {
            return Err(format!("shard {index} reported twice"));
        }
        Ok(())
    }

    /// Takes a shard's report, or says why not.
    pub fn accept_report(&mut self, report: ShardReport) -> Result<(), String> {
        let index = report.shard;
        if let Some(why) = self.key.mismatch(index, &report.run) {
            return Err(why);
        }
        ShardSpec::new(index, self.key.shards)?;
        self.expects_report(index)?;
        // Decoding now refuses a malformed report while its shard can still say so.
        report.decode_tracks()?;
        self.reports.insert(index, report);
        Ok(())
    }

    /// Shards whose reports are still missing.
    pub fn missing_reports(&self) -> Vec<u64> {
        (0..self.key.shards)
            .filter(|i| !self.reports.contains_key(i))
            .collect()
    }

    /// The reports so far, and why the others are missing (`waited` says how long the
    /// coordinator waited for them, for the message).
    pub fn take_reports(&mut self, waited: &str) -> (Vec<ShardReport>, Absent) {
        let mut absent = Absent::default();
        let barrier = self.missing_at_barrier();
        for i in self.missing_reports() {
            let why = barrier.get(&i).cloned().unwrap_or_else(|| {
                format!(
                    "shard {i} passed the barrier but sent no report within {waited} (did it die mid-run?)"
                )
            });
            absent.shards.insert(i, why);
        }
        let reports = std::mem::take(&mut self.reports).into_values().collect();
        (reports, absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RunKey {
        RunKey {
            shards: 3,
            clients: 30,
            seed: 42,
            workload: "abc".into(),
        }
    }

    fn reg(index: u64) -> Registration {
        Registration {
            index,
            shards: 3,
            clients: 30,
            seed: None,
            workload: "abc".into(),
        }
    }

    #[test]
    fn registration_refuses_other_runs_with_the_reason() {
        let mut c = Coordinator::new(key(), 10_000_000);
        assert_eq!(c.register(&reg(0)), Ok(Registered { seed: 42 }));
        let cases: [(Registration, &str); 5] = [
            (
                Registration {
                    shards: 4,
                    ..reg(1)
                },
                "--shards 4",
            ),
            (
                Registration {
                    seed: Some(7),
                    ..reg(1)
                },
                "--seed 7",
            ),
            (
                Registration {
                    workload: "xyz".into(),
                    ..reg(1)
                },
                "workload",
            ),
            (reg(3), "out of range"),
            (reg(0), "registered twice"),
        ];
        for (r, expected) in cases {
            let err = c.register(&r).unwrap_err();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
        assert!(
            c.missing_at_barrier()[&1].contains("refused"),
            "a refused shard is named with its refusal"
        );
        assert!(c.register(&reg(1)).is_ok(), "a corrected shard gets in");
    }

    #[test]
    fn the_barrier_opens_once_every_shard_arrived() {
        let mut c = Coordinator::new(key(), 10_000_000);
        for i in 0..3 {
            c.register(&reg(i)).unwrap();
        }
        assert!(c.arrive(5, 1).is_err());
        assert_eq!(c.arrive(0, 100), Ok(BarrierState::Wait));
        let early = c.expects_report(0).unwrap_err();
        assert!(early.contains("before the barrier"), "{early}");
        assert_eq!(c.arrive(2, 200), Ok(BarrierState::Wait));
        let start = BarrierState::Start {
            at_unix_us: 300 + START_LEAD_US,
        };
        assert_eq!(c.arrive(1, 300), Ok(start.clone()));
        assert_eq!(
            c.arrive(0, 400),
            Ok(start),
            "every shard gets the same instant"
        );
        assert_eq!(c.expects_report(2), Ok(()));
        assert!(c.expects_report(7).unwrap_err().contains("not registered"));
    }

    #[test]
    fn the_barrier_names_missing_shards_at_its_deadline() {
        let mut c = Coordinator::new(key(), 1_000);
        c.register(&reg(0)).unwrap();
        c.register(&reg(1)).unwrap();
        c.arrive(0, 10).unwrap();
        assert_eq!(c.barrier(999), BarrierState::Wait);
        let BarrierState::Abort { error } = c.barrier(1_000) else {
            panic!("no abort at the deadline");
        };
        assert!(
            error.contains("shard 1 registered but never reached the barrier")
                && error.contains("shard 2 never registered")
                && !error.contains("shard 0"),
            "{error}"
        );
        assert!(matches!(c.arrive(1, 1_001), Ok(BarrierState::Abort { .. })));
        assert!(c.register(&reg(2)).is_err(), "too late to register");
    }
}
