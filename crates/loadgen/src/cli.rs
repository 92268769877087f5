//! The command line: one flat set of options shared by the scenarios, each
//! scenario reading the ones it needs.

use crate::clients::context::ChatProto;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Every option of the command line, as parsed: one flat set that each
/// scenario reads what it needs from.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(
    name = "loadgen",
    about = "Load generator for ws-chat, sse-stocks and rooms-chat",
    args_override_self = true
)]
pub struct Args {
    /// What to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Protocol (fanout, idle and jitter); `streams` always speaks SSE.
    #[arg(long, value_enum, default_value = "rooms-chat")]
    pub proto: Proto,
    /// Server address; give it several times to spread clients over instances.
    #[arg(long = "target")]
    pub targets: Vec<SocketAddr>,
    /// Clients (or streams) in all, over every process.
    #[arg(long, default_value_t = 1000)]
    pub clients: u32,
    /// Rooms (rooms-chat, rawtcp); ws-chat is one chat.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// How many of the clients send (the first ones, spread over the rooms).
    #[arg(long, default_value_t = 0)]
    pub senders: usize,
    /// Messages per second sent by all senders together (open loop).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Length of the measured window, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Longest drain after the window, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain_max: f64,
    /// SSE streams: how long they are still read after the window, seconds,
    /// so that events the server wrote in the window still count when the
    /// load generator itself fell behind.
    #[arg(long, default_value_t = 2.0)]
    pub stream_grace: f64,
    /// Message text length in bytes (stamp plus padding).
    #[arg(long, default_value_t = 48)]
    pub text_bytes: usize,
    /// Connection steps, with a server RSS reading after each (RSS slope);
    /// for `churn`, the number of rounds.
    #[arg(long, default_value_t = 1)]
    pub steps: usize,
    /// Server process to measure (CPU, RSS); may be given several times.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Load generator processes (0: as many as the open-files limit needs).
    #[arg(long, default_value_t = 0)]
    pub processes: usize,
    /// Loopback source addresses per process.
    #[arg(long, default_value_t = 16)]
    pub source_ips: usize,
    /// Seconds between the last join of a step and the server's RSS
    /// reading: long enough for the server to finish the joins' side work
    /// and, past its allocator's decay time, to give freed pages back.
    #[arg(long, default_value_t = 1.5)]
    pub settle: f64,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Longest time one client may take to connect and join, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub join_timeout: f64,
    /// Longest time the whole ramp may take, seconds.
    #[arg(long, default_value_t = 300.0)]
    pub connect_timeout: f64,
    /// SSE: symbols per stream (0: all symbols, no query).
    #[arg(long, default_value_t = 0)]
    pub symbols_per_stream: usize,
    /// Jitter: mean seconds between forced closes of one client.
    #[arg(long, default_value_t = 15.0)]
    pub jitter_every: f64,
    /// Jitter: mean seconds a client stays away.
    #[arg(long, default_value_t = 2.0)]
    pub jitter_down: f64,
    /// Runtime worker threads per process.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Write the JSON report here (else to stdout after the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A name for the run in the report.
    #[arg(long, default_value = "")]
    pub label: String,
    /// rawtcp / raw-server: frames per write system call. 0: whatever is
    /// waiting; 1: one write per frame; N: N frames gathered per write (the
    /// last ones of a burst after at most `RAW_GATHER_MS`), so that the
    /// reference makes as many writes as the server it is compared with.
    #[arg(long, default_value_t = 0)]
    pub frames_per_write: usize,
    /// raw-server: port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// report, median-round, is-clean, frames-per-write: the results directory `scripts/bench.sh`
    /// fills (each run's JSON report and files, `about/run.json`).
    #[arg(long, default_value = "target/bench")]
    pub results: PathBuf,
    /// report: the targets the runs are judged against.
    #[arg(long, default_value = "bench/targets.toml")]
    pub targets_file: PathBuf,
    /// report: write the document here (else to stdout).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// median-round: the light row whose rounds (`<run>-r1` …) to pick
    /// from; is-clean, frames-per-write: the run.
    #[arg(long, default_value = "")]
    pub run: String,
    /// median-round: how many interleaved rounds ran.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Internal: run as worker K of N under a parent process ("K/N").
    #[arg(long, hide = true)]
    pub worker: Option<String>,
    /// Internal: the tag of names and rooms, shared by a parent's workers.
    #[arg(long, hide = true)]
    pub run_tag: Option<String>,
}

/// The scenarios, one measurement each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// C clients, R rooms (or one chat), S senders at a rate, open loop.
    Fanout,
    /// Hold C joined connections; server RSS per connection.
    Idle,
    /// C SSE streams.
    Streams,
    /// Clients cut about every 15 s, back after about 2 s, resuming.
    Jitter,
    /// The same fan-out through the raw TCP reference server.
    Rawtcp,
    /// rooms-chat: every client joins one room at once; notices checked.
    Storm,
    /// Serve as the raw TCP reference server.
    RawServer,
    /// Rounds of `--clients` clients that connect, join, talk, leave and
    /// go (some with a TCP reset); `--steps` rounds, the server's
    /// descriptors, tasks and RSS checked against the baseline after each.
    Churn,
    /// Render BENCHMARKS.md from `--results` and `--targets-file`.
    Report,
    /// Of `--rounds` light rounds of `--run`, make the median one the row.
    MedianRound,
    /// Succeed when the run `--run` of `--results` was clean (the ceiling search).
    IsClean,
    /// Print how many frames per write copy the writes of the run `--run`.
    FramesPerWrite,
}

/// The server a run talks to, by the protocol it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    /// ws-chat, plain WebSocket.
    WsChat,
    /// rooms-chat, Socket.IO.
    RoomsChat,
    /// sse-stocks, Server-Sent Events.
    Sse,
    /// The raw TCP reference server.
    Raw,
}

impl Proto {
    /// The port the server listens on when `PORT` is not set.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            Proto::WsChat => 8080,
            Proto::RoomsChat => 3000,
            Proto::Sse => 5000,
            Proto::Raw => 7000,
        }
    }

    /// The chat protocol, for the scenarios that send messages.
    pub(crate) fn chat(self) -> Option<ChatProto> {
        match self {
            Proto::WsChat => Some(ChatProto::WsChat),
            Proto::RoomsChat => Some(ChatProto::RoomsChat),
            Proto::Raw => Some(ChatProto::Raw),
            Proto::Sse => None,
        }
    }
}

impl Args {
    /// `Some((k, n))` when this process is worker k of n.
    pub(crate) fn worker_slot(&self) -> anyhow::Result<Option<(usize, usize)>> {
        let Some(slot) = &self.worker else {
            return Ok(None);
        };
        let (index, count) = slot
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("--worker wants K/N, got {slot}"))?;
        Ok(Some((index.parse()?, count.parse()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_options_override_earlier_ones() {
        let args = Args::try_parse_from([
            "loadgen",
            "idle",
            "--processes",
            "3",
            "--processes",
            "1",
            "--worker",
            "2/3",
        ])
        .unwrap();
        assert_eq!(args.processes, 1);
        assert_eq!(args.worker_slot().unwrap(), Some((2, 3)));
        assert_eq!(args.proto, Proto::RoomsChat);
    }

    #[test]
    fn targets_repeat() {
        let args = Args::try_parse_from([
            "loadgen",
            "fanout",
            "--target",
            "127.0.0.1:1",
            "--target",
            "127.0.0.1:2",
        ])
        .unwrap();
        assert_eq!(args.targets.len(), 2);
    }
}
