//! `churn`: clients come and go, and the server must give back what they
//! took. Each round, `--clients` clients connect, join, talk, leave and
//! disconnect at once; a third of them vanish with a TCP reset instead of a
//! goodbye, and on rooms-chat every other one uses HTTP long-polling
//! instead of the WebSocket. After each round the server's open descriptors
//! (`/proc/PID/fd`), live tokio tasks (`tokio_alive_tasks` in `/metrics`)
//! and RSS are read once they settle; a round passes when they are back
//! within the bound of the baseline, read before the first client:
//!
//! - descriptors and tasks: at most [`COUNT_SLACK`] above the baseline;
//! - RSS: at most a tenth or [`RSS_SLACK_KIB`] above the RSS after the
//!   first round, whichever is more. The first round grows the heap once
//!   (allocator arenas, buffers, room history) and that memory is kept for
//!   reuse; a leak shows as growth from one round to the next.
//!
//! A reset client's session lives until the server's ping timeout, so the
//! servers should run with short pings (`scripts/churn.sh` sets them).

use super::churn_client::{self, Lifecycle};
use crate::cli::{Args, Proto};
use crate::net::SourceAddrs;
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use wire_clients::http;

/// Descriptors or tasks a settled server may hold above its baseline (a
/// scrape in flight, a timer between two runs).
pub const COUNT_SLACK: u64 = 3;
/// RSS a settled server may hold above its baseline, at least.
pub const RSS_SLACK_KIB: u64 = 8 * 1024;
/// A run fails when more than one client in this many failed.
const MAX_FAILED_PER_CLIENTS: u64 = 100;
/// Longest wait for the figures to settle after a round.
const SETTLE_MAX: Duration = Duration::from_secs(20);
/// Longest one client may take for its whole life.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's figures at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Figures {
    pub fds: u64,
    pub tasks: u64,
    pub rss_kib: u64,
}

/// One round's outcome.
#[derive(Debug, Serialize)]
pub struct Round {
    pub round: usize,
    pub clients: u32,
    pub failed: u32,
    pub resets: u32,
    pub polling: u32,
    pub settle_secs: f64,
    pub figures: Figures,
    pub within_bound: bool,
}

/// Runs the rounds against `--target` (one), measuring `--server-pid` (one).
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let target = *args.targets.first().context("churn wants one --target")?;
    let pid = *args
        .server_pids
        .first()
        .context("churn wants the server's --server-pid")?;
    let sources = SourceAddrs::new(0, args.source_ips);
    let rounds = args.steps.max(1);

    // The baseline is the server before any client: whatever a round
    // leaves behind counts against it (RSS has its slack for what the
    // allocator keeps and for room history).
    let baseline = read_figures(target, pid).await?;
    eprintln!(
        "churn {:?}: {} clients a round; baseline before any client: {} fds, {} tasks, {} KiB RSS",
        args.proto, args.clients, baseline.fds, baseline.tasks, baseline.rss_kib
    );
    eprintln!("round  clients  failed  resets  polling  settle_s   fds  tasks  rss_kib  ok");
    let mut report = Vec::new();
    let mut baseline = baseline;
    for round in 1..=rounds {
        let outcome = run_round(args.proto, target, &sources, args.clients, round).await;
        let started = Instant::now();
        let reference = if round == 1 {
            // The RSS reference is what the first round leaves.
            Figures {
                rss_kib: u64::MAX / 2,
                ..baseline
            }
        } else {
            baseline
        };
        let (figures, within_bound) = settle(target, pid, reference).await?;
        if round == 1 {
            baseline.rss_kib = figures.rss_kib;
        }
        let round = Round {
            round,
            clients: args.clients,
            failed: outcome.failed,
            resets: outcome.resets,
            polling: outcome.polling,
            settle_secs: started.elapsed().as_secs_f64(),
            figures,
            within_bound,
        };
        eprintln!(
            "{:>5}  {:>7}  {:>6}  {:>6}  {:>7}  {:>8.1}  {:>4}  {:>5}  {:>7}  {}",
            round.round,
            round.clients,
            round.failed,
            round.resets,
            round.polling,
            round.settle_secs,
            figures.fds,
            figures.tasks,
            figures.rss_kib,
            if within_bound { "yes" } else { "NO" }
        );
        report.push(round);
    }
    let json = serde_json::to_string_pretty(&json!({
        "scenario": "churn",
        "proto": args.proto,
        "label": args.label,
        "baseline": baseline,
        "bound": {"count_slack": COUNT_SLACK, "rss_slack_kib": RSS_SLACK_KIB, "rss_slack_fraction": 0.1},
        "rounds": report,
    }))?;
    match &args.json {
        Some(path) => std::fs::write(path, json).with_context(|| format!("writing {path:?}"))?,
        None => println!("{json}"),
    }
    let failed_rounds = report.iter().filter(|round| !round.within_bound).count();
    let failed_clients: u32 = report.iter().map(|round| round.failed).sum();
    if failed_rounds > 0 {
        bail!("{failed_rounds} of {rounds} rounds did not return to the baseline");
    }
    // A client may fail on a machine busy with other work (a ping missed,
    // a timeout): counted and shown, and a run fails when more than one in
    // a hundred did, which is a server that stopped serving.
    let clients = u64::from(args.clients) * rounds as u64;
    if u64::from(failed_clients) * MAX_FAILED_PER_CLIENTS > clients {
        bail!("{failed_clients} of {clients} clients failed their round");
    }
    Ok(())
}

/// Whether `now` is within the bound of `baseline`.
pub fn within_bound(baseline: Figures, now: Figures) -> bool {
    let rss_slack = (baseline.rss_kib / 10).max(RSS_SLACK_KIB);
    now.fds <= baseline.fds + COUNT_SLACK
        && now.tasks <= baseline.tasks + COUNT_SLACK
        && now.rss_kib <= baseline.rss_kib + rss_slack
}

/// Reads the figures until they are within the bound of `baseline`, at
/// most [`SETTLE_MAX`]; the last reading, and whether it was within.
async fn settle(
    target: SocketAddr,
    pid: u32,
    baseline: Figures,
) -> anyhow::Result<(Figures, bool)> {
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let figures = read_figures(target, pid).await?;
        let settled = within_bound(baseline, figures);
        if settled || Instant::now() >= deadline {
            return Ok((figures, settled));
        }
    }
}

async fn read_figures(target: SocketAddr, pid: u32) -> anyhow::Result<Figures> {
    let tasks = scrape_alive_tasks(target).await?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .count() as u64;
    Ok(Figures {
        fds,
        tasks,
        rss_kib: crate::procfs::rss_kib(pid)?,
    })
}

async fn scrape_alive_tasks(target: SocketAddr) -> anyhow::Result<u64> {
    let mut stream = TcpStream::connect(target).await?;
    let (status, body) = http::get_body(&mut stream, &target.to_string(), "/metrics").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| line.strip_prefix("tokio_alive_tasks "))
        .and_then(|value| value.trim().parse().ok())
        .context("no tokio_alive_tasks in /metrics")
}

#[derive(Debug, Default)]
struct RoundOutcome {
    failed: u32,
    resets: u32,
    polling: u32,
}

async fn run_round(
    proto: Proto,
    target: SocketAddr,
    sources: &SourceAddrs,
    clients: u32,
    round: usize,
) -> RoundOutcome {
    let mut tasks = Vec::new();
    let mut outcome = RoundOutcome::default();
    for index in 0..clients {
        let lifecycle = Lifecycle {
            reset: index % 3 == 0,
            polling: proto == Proto::RoomsChat && index % 2 == 1,
        };
        outcome.resets += u32::from(lifecycle.reset);
        outcome.polling += u32::from(lifecycle.polling);
        let name = format!("churn{round}x{index}");
        let tcp = sources.connect(target).await;
        tasks.push(tokio::spawn(async move {
            let client = async { churn_client::run(proto, tcp?, target, &name, lifecycle).await };
            match tokio::time::timeout(CLIENT_TIMEOUT, client).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "churn client failed");
                    false
                }
                Err(_) => {
                    tracing::warn!("churn client timed out");
                    false
                }
            }
        }));
    }
    for task in tasks {
        if !matches!(task.await, Ok(true)) {
            outcome.failed += 1;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_allows_slack_and_no_more() {
        let baseline = Figures {
            fds: 20,
            tasks: 10,
            rss_kib: 100_000,
        };
        assert!(within_bound(baseline, baseline));
        assert!(within_bound(
            baseline,
            Figures {
                fds: 23,
                tasks: 13,
                rss_kib: 110_000
            }
        ));
        assert!(!within_bound(
            baseline,
            Figures {
                fds: 24,
                ..baseline
            }
        ));
        assert!(!within_bound(
            baseline,
            Figures {
                tasks: 14,
                ..baseline
            }
        ));
        assert!(!within_bound(
            baseline,
            Figures {
                rss_kib: 110_001,
                ..baseline
            }
        ));
    }
}
