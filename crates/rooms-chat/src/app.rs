//! The state every handler shares, the task that turns store events
//! (messages, room-list changes, evictions) into deliveries on this
//! instance, and the task that hands released messages to the sockets.

use crate::health::Link;
use crate::metrics::Metrics;
use crate::rooms_push::RoomsPush;
use crate::sequencer::Sequencer;
use crate::session::Session;
use crate::store::{Store, StoreEvent};
use ops::Shutdown;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A disconnection the store could not record yet (Redis was down).
pub struct PendingLeave {
    pub room: String,
    pub name: String,
    pub sid: String,
}

pub struct App<A: Adapter> {
    pub store: Arc<dyn Store>,
    /// Retried once the store is back, so that a name never stays taken
    /// by a socket that is gone.
    pub pending_leaves: Mutex<Vec<PendingLeave>>,
    pub sequencer: Sequencer<SocketRef<A>>,
    pub rooms_push: RoomsPush,
    pub link: Arc<Link>,
    pub metrics: Metrics,
    pub msg_rate: u32,
}

impl<A: Adapter> App<A> {
    /// `sid` lost its name in `room` to a newer socket of the same client:
    /// it leaves the room quietly (the others see no leave and no join).
    fn evict(&self, room: &str, sid: &str) {
        let Ok(sid) = socketioxide::socket::Sid::from_str(sid) else {
            return;
        };
        if let Some(member) = self.sequencer.detach(room, sid) {
            if let Some(session) = member.socket.extensions.get::<Arc<Session>>() {
                session.exit(room);
            }
            tracing::debug!(%sid, room, "socket replaced by a newer one of the same client");
        }
    }
}

/// Runs until shutdown: applies store events in order and repairs gaps.
pub async fn run_events<A: Adapter>(
    app: Arc<App<A>>,
    mut events: mpsc::UnboundedReceiver<StoreEvent>,
    gap_check: Duration,
    shutdown: Shutdown,
) {
    let mut ticker = tokio::time::interval(gap_check);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(StoreEvent::Message(envelope)) => {
                    app.sequencer.arrive(envelope);
                }
                Some(StoreEvent::RoomsChanged) => app.rooms_push.changed(),
                Some(StoreEvent::Evicted { room, sid }) => app.evict(&room, &sid),
                Some(StoreEvent::Resync) => {
                    // Off this task, so live events keep flowing meanwhile.
                    let app = app.clone();
                    tokio::spawn(async move {
                        app.sequencer.resync(app.store.as_ref()).await;
                        app.rooms_push.changed();
                    });
                }
                None => return,
            },
            _ = ticker.tick() => {
                let app = app.clone();
                tokio::spawn(async move { app.sequencer.repair_gaps(app.store.as_ref()).await });
            }
            _ = shutdown.wait() => return,
        }
    }
}

/// Runs until shutdown: every write delay, hands the released messages to
/// the sockets (nothing to do when messages go out at once).
pub async fn run_flushes<A: Adapter>(app: Arc<App<A>>, shutdown: Shutdown) {
    let delay = app.sequencer.write_delay();
    if delay.is_zero() {
        return;
    }
    let mut ticker = tokio::time::interval(delay);
    // After a stall, one flush sends everything; no burst of catch-up ticks.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => app.sequencer.flush(),
            _ = shutdown.wait() => return,
        }
    }
}
