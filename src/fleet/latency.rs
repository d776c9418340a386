//! Latency histograms and contention-free counters shared by the fleet and load layers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency a histogram holds exactly (longer ones are counted at this value): 10 min.
pub const MAX_LATENCY_US: u64 = 600_000_000;

/// A histogram of microseconds from 1 µs to [`MAX_LATENCY_US`] at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    // Cannot fail: the bounds are constants within hdrhistogram's rules.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds")
}

/// Records `d` in microseconds, clamped into the histogram's range.
pub fn record_duration(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl LatencySummary {
    /// Summarises a histogram of microseconds (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// A counter split over cache lines, so threads that bump it do not contend.
#[derive(Default)]
pub struct ShardedCounter {
    shards: [Padded; SHARDS],
}

#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// Shards of counters and histograms; a power of two above the usual core count.
pub const SHARDS: usize = 16;

impl ShardedCounter {
    /// Adds `n` on the shard of `key` (a client index).
    pub fn add(&self, key: u64, n: u64) {
        self.shards[key as usize % SHARDS].0.fetch_add(n, Relaxed);
    }
    /// The sum.
    pub fn get(&self) -> u64 {
        self.shards.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sharded_counter_sums_over_threads() {
        let counter = Arc::new(ShardedCounter::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        counter.add(t * 1000 + i, 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.get(), 4000);
    }

    #[test]
    fn latency_summary_of_empty_and_full() {
        assert_eq!(
            LatencySummary::of(&latency_histogram()),
            LatencySummary::default()
        );
        let mut h = latency_histogram();
        for ms in 1..=100 {
            record_duration(&mut h, Duration::from_millis(ms));
        }
        record_duration(&mut h, Duration::from_secs(100_000));
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 101);
        assert!((s.p50 - 51.0).abs() < 0.5, "{s:?}");
        assert!(s.max >= 599_000.0, "clamped to the bound: {s:?}");
    }
}
