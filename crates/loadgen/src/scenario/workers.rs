//! Several load generator processes against one server: the open-files
//! limit (20,000 here, per process) caps one process's sockets. The parent
//! starts N copies of itself as workers (`--worker K/N`), each holding its
//! share of clients from its own source addresses; over their stdin and
//! stdout it steps them through the run and measures the servers in between.
//!
//! Worker → parent: `READY <joined> <failed>` after each step,
//! `WINDOW_END` when its window ends, `RESULT <outcome JSON>` at the end.
//! Parent → worker: one line after each `READY` to go on.

use super::outcome::Outcome;
use crate::gate::ServerMeter;
use anyhow::{Context, bail};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

struct Worker {
    child: Child,
    input: ChildStdin,
    output: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    /// Reads lines until one starts with `tag`; returns the rest of it.
    async fn expect(&mut self, tag: &str) -> anyhow::Result<String> {
        while let Some(line) = self.output.next_line().await? {
            if let Some(rest) = line.strip_prefix(tag) {
                return Ok(rest.trim().to_owned());
            }
        }
        bail!("a worker exited before {tag}")
    }
}

/// Runs `processes` workers with this process's own arguments.
pub async fn run_parent(
    processes: usize,
    steps: usize,
    run_tag: &str,
    meter: &mut ServerMeter,
) -> anyhow::Result<Outcome> {
    let program = std::env::current_exe().context("finding the loadgen binary")?;
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let mut workers = Vec::with_capacity(processes);
    for index in 0..processes {
        let mut child = Command::new(&program)
            .args(&arguments)
            .args([
                "--processes",
                "1",
                "--worker",
                &format!("{index}/{processes}"),
            ])
            .args(["--json", "/dev/null", "--run-tag", run_tag])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a worker")?;
        let input = child.stdin.take().context("worker stdin")?;
        let output = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
        workers.push(Worker {
            child,
            input,
            output,
        });
    }
    for step in 1..=steps.max(1) {
        let mut joined = 0;
        for worker in &mut workers {
            let counts = worker.expect("READY").await?;
            joined += counts
                .split_whitespace()
                .next()
                .and_then(|count| count.parse::<u64>().ok())
                .unwrap_or(0);
        }
        meter.step(joined).await?;
        if step == steps.max(1) {
            meter.window_started()?;
        }
        for worker in &mut workers {
            worker.input.write_all(b"GO\n").await?;
        }
    }
    for worker in &mut workers {
        worker.expect("WINDOW_END").await?;
    }
    meter.window_ended()?;
    let mut merged = Outcome::default();
    for worker in &mut workers {
        let json = worker.expect("RESULT").await?;
        merged.merge(serde_json::from_str(&json).context("reading a worker's result")?);
    }
    for worker in &mut workers {
        worker.child.wait().await?;
    }
    Ok(merged)
}
