//! The `rooms` push: when the room list or a count changes (a change
//! announced on the bus, from any instance), every client of this instance
//! gets the new list; a burst of joins within the push delay gives one
//! push, read fresh from the store, instead of one per join. The snapshot
//! is volatile: a WebSocket client that is behind skips it (the next one
//! replaces it anyway).

use crate::app::App;
use crate::session::Session;
use ops::Shutdown;
use protocol::rooms::{RoomList, server_event};
use socketio::{Frame, SocketIo};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The `rooms` push of this instance.
#[derive(Default)]
pub(crate) struct RoomsPush {
    changed: Notify,
}

impl RoomsPush {
    /// Something changed: a push will follow.
    pub(crate) fn changed(&self) {
        self.changed.notify_one();
    }

    /// Pushes the list to this instance's clients after each burst of changes.
    pub(crate) async fn run(
        &self,
        app: Arc<App>,
        io: SocketIo<App, Session>,
        delay: Duration,
        shutdown: Shutdown,
    ) {
        loop {
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = shutdown.wait() => return,
            }
            tokio::time::sleep(delay).await;
            if shutdown.is_triggered() {
                return;
            }
            if !app.rooms.link.is_up() {
                // Pushed again once the link is back (see liveness).
                continue;
            }
            let rooms = match app.rooms.list().await {
                Ok(rooms) => rooms,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the room list");
                    continue;
                }
            };
            // One frame shared by every socket (a frame per socket would
            // cost each its own copy of the list), and volatile: a socket
            // that is behind skips this snapshot, so a burst of pushes never
            // stacks copies of the list in a slow socket's queue.
            let frame = match Frame::event(server_event::ROOMS, &RoomList { rooms }) {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::error!(%error, "cannot encode the room list");
                    continue;
                }
            };
            let dropped = io.send_volatile_to_all(&frame);
            app.metrics.volatile_dropped.inc_by(dropped as u64);
        }
    }
}
