//! The scenarios. Every one has the same shape, written once in [`drive`]:
//! connect the clients in steps (the gate measures the server after each),
//! open the measured window, let it run, drain, stop, collect what each
//! client saw. `chat` and `streams` supply the clients and the accounting.

pub mod chat;
pub mod churn;
pub mod churn_client;
pub mod outcome;
pub mod storm;
pub mod streams;
pub mod workers;

use crate::gate::Gate;
use crate::run::{Phase, RunContext};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// What part of the clients this process runs, and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Global index of this process's first client.
    pub first: u32,
    pub count: u32,
    /// Connection steps, each followed by a gate (RSS slope).
    pub steps: usize,
    pub window: Duration,
    pub drain: Drain,
    /// How long the whole connection ramp may take.
    pub connect_timeout: Duration,
}

/// What happens after the window.
#[derive(Debug, Clone, Copy)]
pub enum Drain {
    /// Messages: wait until deliveries stop (and every client is back), at
    /// most `max`; the window's server CPU includes this drain.
    UntilQuiet { quiet: Duration, max: Duration },
    /// Streams never go quiet: measure the window alone, then keep
    /// receiving for a grace period so late copies still count.
    Grace(Duration),
}

/// The clients' final states and the timing of the run.
pub struct Driven<T> {
    pub clients: Vec<T>,
    /// Clients that did not stop in time (their deliveries are not counted).
    pub unfinished: u64,
    pub window_secs: f64,
    pub drain_secs: f64,
}

/// Runs the common shape of a scenario with `spawn(index)` as the client.
pub async fn drive<S, T, Fut>(
    context: &Arc<RunContext<S>>,
    plan: &Plan,
    gate: &mut Gate,
    mut spawn: impl FnMut(u32) -> Fut,
) -> anyhow::Result<Driven<T>>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut tasks = Vec::with_capacity(plan.count as usize);
    let ramp_deadline = Instant::now() + plan.connect_timeout;
    let steps = plan.steps.max(1);
    for step in 1..=steps {
        let step_end = (plan.count as u64 * step as u64 / steps as u64) as u32;
        while (tasks.len() as u32) < step_end {
            tasks.push(tokio::spawn(spawn(plan.first + tasks.len() as u32)));
        }
        wait_for_joins(context, tasks.len() as u64, ramp_deadline).await;
        let joined = context.joined.load(Ordering::Relaxed);
        let failed = context.failed.load(Ordering::Relaxed);
        gate.step(joined, failed).await?;
    }
    gate.window_started()?;
    let start = Instant::now();
    let end = start + plan.window;
    context.phase.send_replace(Phase::Sending { start, end });
    tokio::time::sleep_until(end).await;
    let window_secs = start.elapsed().as_secs_f64();
    context.phase.send_replace(Phase::Draining);
    let drain_start = Instant::now();
    match plan.drain {
        Drain::UntilQuiet { quiet, max } => {
            wait_until_quiet(context, quiet, drain_start + max).await;
            gate.window_ended()?;
        }
        Drain::Grace(grace) => {
            gate.window_ended()?;
            tokio::time::sleep(grace).await;
        }
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    context.phase.send_replace(Phase::Stopped);
    let collect_deadline = Instant::now() + Duration::from_secs(20);
    let mut clients = Vec::with_capacity(tasks.len());
    let mut unfinished = 0;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(collect_deadline, task).await {
            Ok(Ok(client)) => clients.push(client),
            Ok(Err(_)) => unfinished += 1,
            Err(_) => {
                abort.abort();
                unfinished += 1;
            }
        }
    }
    Ok(Driven {
        clients,
        unfinished,
        window_secs,
        drain_secs,
    })
}

async fn wait_for_joins<S>(context: &RunContext<S>, spawned: u64, deadline: Instant) {
    let mut last_log = Instant::now();
    loop {
        let joined = context.joined.load(Ordering::Relaxed);
        let failed = context.failed.load(Ordering::Relaxed);
        if joined + failed >= spawned {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(joined, failed, spawned, "connection ramp timed out");
            return;
        }
        if last_log.elapsed() >= Duration::from_secs(5) {
            tracing::info!(joined, failed, spawned, "connecting");
            last_log = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_quiet<S>(context: &RunContext<S>, quiet: Duration, deadline: Instant) {
    let mut last_count = context.deliveries.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let count = context.deliveries.load(Ordering::Relaxed);
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        } else if last_change.elapsed() >= quiet && context.offline.load(Ordering::Relaxed) == 0 {
            return;
        }
    }
}
