//! What one process measured in a run, in a form that crosses process
//! boundaries (worker → parent, as one JSON line) and merges by addition.

use crate::deliveries::Tally;
use crate::histogram::Snapshot;
use crate::scenario::storm::StormTally;
use serde::{Deserialize, Serialize};

/// Stream accounting against the reference stream (see `scenario::streams`).
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamTally {
    /// Streams judged against the reference (the reference excluded).
    pub streams: u64,
    /// Ticks the reference stream saw in the window.
    pub reference_ticks: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub snapshots: u64,
    pub resets: u64,
    pub keepalives: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub planned: u64,
    pub connected: u64,
    pub failed: u64,
    pub unfinished: u64,
    /// Connections opened in all (more than `connected` under jitter).
    pub sessions: u64,
    pub errors: u64,
    /// Messages without a stamp (not from this run).
    pub foreign: u64,
    pub first_error: Option<String>,
    pub window_secs: f64,
    pub drain_secs: f64,
    /// Deliveries the server CPU is divided by.
    pub deliveries: u64,
    pub tally: Option<Tally>,
    pub streams: Option<StreamTally>,
    #[serde(default)]
    pub storm: Option<StormTally>,
    pub latency_us: Snapshot,
}

impl Outcome {
    pub fn merge(&mut self, other: Outcome) {
        self.planned += other.planned;
        self.connected += other.connected;
        self.failed += other.failed;
        self.unfinished += other.unfinished;
        self.sessions += other.sessions;
        self.errors += other.errors;
        self.foreign += other.foreign;
        self.first_error = self.first_error.take().or(other.first_error);
        self.window_secs = self.window_secs.max(other.window_secs);
        self.drain_secs = self.drain_secs.max(other.drain_secs);
        self.deliveries += other.deliveries;
        self.tally = merge_option(self.tally, other.tally, add_tallies);
        self.streams = merge_option(self.streams, other.streams, add_stream_tallies);
        // A storm runs in one process: there is nothing to add.
        self.storm = self.storm.or(other.storm);
        self.latency_us.merge(&other.latency_us);
    }
}

fn merge_option<T>(one: Option<T>, two: Option<T>, add: fn(T, T) -> T) -> Option<T> {
    match (one, two) {
        (Some(one), Some(two)) => Some(add(one, two)),
        (one, two) => one.or(two),
    }
}

fn add_tallies(one: Tally, two: Tally) -> Tally {
    Tally {
        sent: one.sent + two.sent,
        accepted: one.accepted + two.accepted,
        rejected: one.rejected + two.rejected,
        expected: one.expected + two.expected,
        received: one.received + two.received,
        lost: one.lost + two.lost,
        unacknowledged_received: one.unacknowledged_received + two.unacknowledged_received,
        duplicates: one.duplicates + two.duplicates,
        out_of_order: one.out_of_order + two.out_of_order,
        id_regressions: one.id_regressions + two.id_regressions,
    }
}

fn add_stream_tallies(one: StreamTally, two: StreamTally) -> StreamTally {
    StreamTally {
        streams: one.streams + two.streams,
        reference_ticks: one.reference_ticks.max(two.reference_ticks),
        expected: one.expected + two.expected,
        received: one.received + two.received,
        lost: one.lost + two.lost,
        duplicates: one.duplicates + two.duplicates,
        out_of_order: one.out_of_order + two.out_of_order,
        snapshots: one.snapshots + two.snapshots,
        resets: one.resets + two.resets,
        keepalives: one.keepalives + two.keepalives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_merge_by_addition_and_survive_json() {
        let one = Outcome {
            connected: 2,
            deliveries: 10,
            window_secs: 5.0,
            streams: Some(StreamTally {
                expected: 4,
                received: 3,
                lost: 1,
                ..StreamTally::default()
            }),
            ..Outcome::default()
        };
        let two: Outcome = serde_json::from_str(&serde_json::to_string(&one).unwrap()).unwrap();
        let mut merged = one.clone();
        merged.merge(two);
        assert_eq!(merged.connected, 4);
        assert_eq!(merged.deliveries, 20);
        assert_eq!(merged.window_secs, 5.0);
        assert_eq!(merged.streams.unwrap().lost, 2);
        assert!(merged.tally.is_none());
    }
}
