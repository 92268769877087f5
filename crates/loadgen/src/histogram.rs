//! A lock-free latency histogram shared by every client task: log-linear
//! buckets (64 per power of two, about 1.5 % precision), atomic counters, so
//! that recording a delivery costs one relaxed add.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
const SUB_BITS: u32 = 6;
const BUCKETS: usize = LINEAR as usize + (64 - 7) * (1 << SUB_BITS);

fn bucket_of(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let shift = exponent - SUB_BITS;
    let sub = (value >> shift) - (1 << SUB_BITS);
    LINEAR as usize + (exponent as usize - 7) * (1 << SUB_BITS) + sub as usize
}

/// The smallest value that falls in `bucket`.
fn lower_bound(bucket: usize) -> u64 {
    if bucket < LINEAR as usize {
        return bucket as u64;
    }
    let index = bucket - LINEAR as usize;
    let exponent = (index >> SUB_BITS) as u32 + 7;
    let sub = (index & ((1 << SUB_BITS) - 1)) as u64;
    ((1 << SUB_BITS) + sub) << (exponent - SUB_BITS)
}

pub struct Histogram {
    counts: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

/// A histogram's content, to merge across processes and to summarise.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// `(bucket, count)` for every non-empty bucket.
    pub buckets: Vec<(u32, u64)>,
    pub max: u64,
}

/// Percentiles of a snapshot, in the histogram's unit.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Histogram {
    pub fn record(&self, value: u64) {
        self.counts[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
        // Read first: a new maximum is rare, and a plain load is cheaper.
        if value > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(value, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: self
                .counts
                .iter()
                .enumerate()
                .filter_map(|(bucket, count)| {
                    let count = count.load(Ordering::Relaxed);
                    (count > 0).then_some((bucket as u32, count))
                })
                .collect(),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

impl Snapshot {
    pub fn merge(&mut self, other: &Snapshot) {
        let mut merged: std::collections::BTreeMap<u32, u64> =
            self.buckets.iter().copied().collect();
        for &(bucket, count) in &other.buckets {
            *merged.entry(bucket).or_default() += count;
        }
        self.buckets = merged.into_iter().collect();
        self.max = self.max.max(other.max);
    }

    pub fn summary(&self) -> Summary {
        let count: u64 = self.buckets.iter().map(|&(_, count)| count).sum();
        let percentile = |fraction: f64| {
            let rank = ((count as f64) * fraction).ceil().max(1.0) as u64;
            let mut seen = 0;
            for &(bucket, bucket_count) in &self.buckets {
                seen += bucket_count;
                if seen >= rank {
                    return lower_bound(bucket as usize).min(self.max);
                }
            }
            self.max
        };
        Summary {
            count,
            p50: percentile(0.50),
            p99: percentile(0.99),
            max: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_precise() {
        let mut previous = 0;
        for value in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket >= previous && bucket < BUCKETS, "{value}");
            previous = bucket;
            let low = lower_bound(bucket);
            assert!(low <= value, "{value}");
            assert!(value - low <= value / 64, "{value} in bucket from {low}");
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let histogram = Histogram::default();
        for value in 1..=1000 {
            histogram.record(value);
        }
        let summary = histogram.snapshot().summary();
        assert_eq!(summary.count, 1000);
        assert!((490..=500).contains(&summary.p50), "{summary:?}");
        assert!((975..=990).contains(&summary.p99), "{summary:?}");
        assert_eq!(summary.max, 1000);
    }

    #[test]
    fn snapshots_merge() {
        let (one, two) = (Histogram::default(), Histogram::default());
        one.record(10);
        two.record(10);
        two.record(5000);
        let mut merged = one.snapshot();
        merged.merge(&two.snapshot());
        let summary = merged.summary();
        assert_eq!((summary.count, summary.p50, summary.max), (3, 10, 5000));
    }
}
