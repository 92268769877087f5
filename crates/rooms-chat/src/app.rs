//! The state every handler shares, and the task that takes this instance's
//! store events (room events from the bus, room-list changes, evictions,
//! resyncs) to the rooms.

use crate::hangups::Hangups;
use crate::metrics::Metrics;
use crate::recipient::Member;
use crate::room::{Rooms, repair};
use crate::rooms_push::RoomsPush;
use crate::store::StoreEvent;
use ops::Shutdown;
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct App {
    pub rooms: Arc<Rooms>,
    pub rooms_push: RoomsPush,
    pub hangups: Arc<Hangups>,
    pub metrics: Metrics,
    pub msg_rate: u32,
}

impl App {
    /// The socket as the room delivers to it.
    pub fn member(&self, socket: &SocketRef) -> Member {
        Member {
            socket: socket.clone(),
            hangups: self.hangups.clone(),
        }
    }
}

/// Runs until shutdown: applies store events in order and repairs gaps
/// that lasted `gap_repair_delay`.
pub async fn run_events(
    app: Arc<App>,
    mut events: mpsc::UnboundedReceiver<StoreEvent>,
    gap_repair_delay: Duration,
    shutdown: Shutdown,
) {
    let mut ticker = tokio::time::interval(gap_repair_delay / 2);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(StoreEvent::Room(event)) => {
                    app.rooms.delivery.arrive(event);
                }
                Some(StoreEvent::RoomsChanged) => app.rooms_push.changed(),
                Some(StoreEvent::Evicted { room, sid }) => app.rooms.evict(&room, &sid),
                Some(StoreEvent::Resync) => {
                    // Off this task, so live events keep flowing meanwhile.
                    let app = app.clone();
                    tokio::spawn(async move {
                        let rooms = &app.rooms;
                        repair::resync(&rooms.delivery, rooms.store.as_ref(), &app.metrics).await;
                        app.rooms_push.changed();
                    });
                }
                None => return,
            },
            _ = ticker.tick() => {
                let app = app.clone();
                tokio::spawn(async move {
                    let rooms = &app.rooms;
                    repair::repair_gaps(
                        &rooms.delivery,
                        rooms.store.as_ref(),
                        gap_repair_delay,
                        &app.metrics,
                    )
                    .await;
                });
            }
            _ = shutdown.wait() => return,
        }
    }
}
