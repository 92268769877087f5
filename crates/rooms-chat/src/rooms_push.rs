//! The `rooms` push: when the room list or a count changes (a change
//! announced on the bus, from any instance), every client of this instance
//! gets the new list; a burst of joins within the push delay gives one
//! push, read fresh from the store, instead of one per join. The snapshot
//! is volatile: a socket holds at most the latest one not yet written.

use crate::app::App;
use ops::Shutdown;
use protocol::rooms::{RoomList, server_event};
use socketioxide::SocketIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub struct RoomsPush {
    changed: Notify,
}

impl RoomsPush {
    /// Something changed: a push will follow.
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    /// Pushes the list to this instance's clients after each burst of changes.
    pub async fn run(&self, app: Arc<App>, io: SocketIo, delay: Duration, shutdown: Shutdown) {
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
            // One encoding shared by every socket (a frame per socket would
            // cost each its own copy of the list), and volatile: each
            // socket holds at most the latest snapshot not yet written, so a
            // burst of pushes never stacks copies of the list in a socket's
            // queue and write buffer (which keeps its largest size for good).
            let push = io.local().volatile();
            if let Err(error) = push.emit(server_event::ROOMS, &RoomList { rooms }).await {
                app.metrics.volatile_dropped.inc();
                tracing::debug!(%error, "a rooms push missed some sockets");
            }
        }
    }
}
