//! The one clock of this instance's rooms, so that no socket needs a
//! timer of its own for its writes.
//!
//! A busy room's frames wait in its members' outboxes (see
//! `room::outgoing`). Every `WRITE_DELAY_MS` the clock flushes every member
//! of the rooms that queued frames since the last tick: one vectored write
//! per socket and per delay, from this one task, instead of a wake-up of
//! every socket's task.

use crate::app::App;
use crate::recipient::Recipient;
use ops::Shutdown;
use std::sync::Arc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

/// Sockets flushed between two turns of the other tasks.
const FLUSHES_PER_TURN: usize = 64;

/// Runs the clock until the shutdown; with no write delay no room is ever
/// busy, and there is no clock.
pub(crate) async fn run(app: Arc<App>, shutdown: Shutdown) {
    let delay = app.write_delay;
    if delay.is_zero() {
        return;
    }
    let mut tick = interval_at(Instant::now() + delay, delay);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {
                let members = app.rooms.delivery.take_queued();
                flush(&members).await;
            }
        }
    }
}

/// Writes what each member queued, letting the sockets' own tasks (the
/// reads, the joins) have their turn every few sockets: a flush of
/// thousands of sockets would otherwise hold a worker thread for
/// milliseconds.
async fn flush<R: Recipient>(members: &[R]) {
    for share in members.chunks(FLUSHES_PER_TURN) {
        for member in share {
            member.flush();
        }
        tokio::task::yield_now().await;
    }
}
