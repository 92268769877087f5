//! The chat's one clock, so that no socket needs a timer of its own.
//!
//! Every `WRITE_DELAY_MS` while the chat is busy, it flushes every
//! member's outbox: a busy chat's frames wait there, and leave together in
//! one vectored write per socket and per delay, from this one task (and the
//! lane) instead of a wake-up of every socket's task. Every `PING_MS` it
//! pings every member, and the members that left too many pings unanswered
//! are ended ([`fanout::Outbox::ping`]).

use crate::app::App;
use crate::session::MAX_UNANSWERED_PINGS;
use ops::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

/// The period of a tick that is never needed.
const NEVER: Duration = Duration::from_secs(24 * 60 * 60);

/// Outboxes flushed between two turns of the other tasks.
const FLUSHES_PER_TURN: usize = 64;

/// Runs the clock until the shutdown.
pub async fn run(app: Arc<App>, shutdown: Shutdown) {
    // With no delay the chat is never busy, and there is nothing to flush.
    let delay = Some(app.config.write_delay)
        .filter(|delay| !delay.is_zero())
        .unwrap_or(NEVER);
    let mut flush_tick = interval_at(Instant::now() + delay, delay);
    flush_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ping_interval = app.config.ping_interval;
    let mut ping_tick = interval_at(Instant::now() + ping_interval, ping_interval);
    ping_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = flush_tick.tick() => {
                // Every busy frame was published after an earlier look,
                // so this tick or the next flushes it.
                if app.hub.busy_since_last_tick() {
                    flush(app.hub.flush_lane()).await;
                }
            }
            _ = ping_tick.tick() => app.hub.ping(MAX_UNANSWERED_PINGS),
        }
    }
}

/// Writes what each of `outboxes` queued, letting the sockets' own tasks
/// (the reads, the joins) have their turn every few sockets: a flush of
/// thousands of sockets would otherwise hold a worker thread for
/// milliseconds.
async fn flush(outboxes: Vec<Arc<fanout::Outbox>>) {
    for share in outboxes.chunks(FLUSHES_PER_TURN) {
        for outbox in share {
            outbox.flush();
        }
        tokio::task::yield_now().await;
    }
}
