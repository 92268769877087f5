//! The report of a run: JSON for the harness, a short table for people.

use crate::cli::{Args, Proto, Scenario};
use crate::deliveries::Tally;
use crate::gate::ServerFigures;
use crate::scenario::outcome::{Outcome, StreamTally};
use crate::scenario::storm::StormTally;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub scenario: Scenario,
    pub proto: Proto,
    pub command: String,
    pub unix_time: u64,
    pub processes: usize,
    pub clients: u32,
    pub rooms: usize,
    pub senders: usize,
    pub rate: f64,
    pub planned: u64,
    pub connected: u64,
    pub failed: u64,
    pub unfinished: u64,
    pub sessions: u64,
    pub errors: u64,
    pub foreign: u64,
    pub first_error: Option<String>,
    pub window_secs: f64,
    pub drain_secs: f64,
    /// Deliveries the server CPU is divided by (SSE: ticks in the window).
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    /// Share of the expected deliveries that arrived, in percent.
    pub delivery_rate_pct: Option<f64>,
    pub messages: Option<Tally>,
    pub streams: Option<StreamTally>,
    pub storm: Option<StormTally>,
    pub latency: Latency,
    pub server: Option<ServerFigures>,
}

impl Report {
    pub fn new(
        args: &Args,
        processes: usize,
        outcome: Outcome,
        server: Option<ServerFigures>,
    ) -> Self {
        let summary = outcome.latency_us.summary();
        let (expected, received) = match (&outcome.tally, &outcome.streams) {
            (Some(tally), _) => (tally.expected, tally.received),
            (None, Some(streams)) => (streams.expected, streams.received),
            (None, None) => (0, 0),
        };
        Report {
            label: args.label.clone(),
            scenario: args.scenario,
            proto: args.proto,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            unix_time: crate::codec::stamp::unix_micros() / 1_000_000,
            processes,
            clients: args.clients,
            rooms: args.rooms,
            senders: args.senders,
            rate: args.rate,
            planned: outcome.planned,
            connected: outcome.connected,
            failed: outcome.failed,
            unfinished: outcome.unfinished,
            sessions: outcome.sessions,
            errors: outcome.errors,
            foreign: outcome.foreign,
            first_error: outcome.first_error,
            window_secs: outcome.window_secs,
            drain_secs: outcome.drain_secs,
            deliveries: outcome.deliveries,
            deliveries_per_sec: outcome.deliveries as f64 / outcome.window_secs.max(1e-9),
            delivery_rate_pct: (expected > 0).then(|| received as f64 * 100.0 / expected as f64),
            messages: outcome.tally,
            streams: outcome.streams,
            storm: outcome.storm,
            latency: Latency {
                count: summary.count,
                p50_ms: summary.p50 as f64 / 1000.0,
                p99_ms: summary.p99 as f64 / 1000.0,
                max_ms: summary.max as f64 / 1000.0,
            },
            server,
        }
    }

    /// A few lines for a terminal.
    pub fn table(&self) -> String {
        let mut lines = vec![format!(
            "{:?} {:?}{}: {}/{} connected, {} failed, {} sessions, {} errors{}",
            self.scenario,
            self.proto,
            if self.label.is_empty() {
                String::new()
            } else {
                format!(" [{}]", self.label)
            },
            self.connected,
            self.planned,
            self.failed,
            self.sessions,
            self.errors,
            self.first_error
                .as_ref()
                .map(|error| format!(" (first: {error})"))
                .unwrap_or_default()
        )];
        if let Some(tally) = &self.messages {
            lines.push(format!(
                "messages: sent {} accepted {} rejected {} | deliveries expected {} received {} lost {} dup {} out-of-order {} id-regressions {}",
                tally.sent, tally.accepted, tally.rejected, tally.expected, tally.received,
                tally.lost, tally.duplicates, tally.out_of_order, tally.id_regressions
            ));
        }
        if let Some(streams) = &self.streams {
            lines.push(format!(
                "streams: {} judged, reference {} ticks | expected {} received {} lost {} dup {} out-of-order {} | snapshots {} resets {} keep-alives {}",
                streams.streams, streams.reference_ticks, streams.expected, streams.received,
                streams.lost, streams.duplicates, streams.out_of_order, streams.snapshots,
                streams.resets, streams.keepalives
            ));
        }
        if let Some(storm) = &self.storm {
            lines.push(format!(
                "storm: joined in {:.2} s | members known expected {} received {} missing {} | notices dup {} out-of-order {} | disconnected {}",
                storm.join_secs, storm.expected, storm.received, storm.missing,
                storm.duplicates, storm.out_of_order, storm.disconnected
            ));
        }
        lines.push(format!(
            "delivery {} | latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms | {:.0} deliveries/s over {:.1} s (+{:.1} s drain)",
            self.delivery_rate_pct
                .map(|rate| format!("{rate:.3} %"))
                .unwrap_or_else(|| "n/a".into()),
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            self.deliveries_per_sec,
            self.window_secs,
            self.drain_secs
        ));
        if let Some(server) = &self.server {
            lines.push(format!(
                "server: CPU {:.2} s (user {:.2}, system {:.2}) over {:.1} s ({:.2} cores), {} µs/delivery | RSS {} → {} KiB, {} KiB/connection, slope {} KiB/connection, {} GiB at 1M",
                server.cpu_seconds,
                server.cpu_user_seconds,
                server.cpu_system_seconds,
                server.window_secs,
                server.cpu_cores,
                fmt_option(server.cpu_us_per_delivery, 3),
                server.rss_before_kib,
                server.rss_after_kib,
                fmt_option(server.kib_per_connection, 2),
                fmt_option(server.slope_kib_per_connection, 2),
                fmt_option(server.projected_gib_at_1m, 2),
            ));
        }
        lines.join("\n")
    }
}

fn fmt_option(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".into(), |value| format!("{value:.decimals$}"))
}
