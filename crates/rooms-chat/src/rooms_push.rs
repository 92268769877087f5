//! The `rooms` push: when the room list or a count changes, every client
//! gets the new list, but a burst of joins within the push delay gives one
//! push, read fresh from the store, instead of one per join.

use crate::store::Store;
use ops::Shutdown;
use protocol::rooms::{RoomList, server_event};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
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
    /// Every instance does the same for its own clients.
    pub async fn run<A: Adapter>(
        &self,
        io: SocketIo<A>,
        store: Arc<dyn Store>,
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
            match store.rooms().await {
                Ok(rooms) => {
                    // A client that misses one push gets the next: the list
                    // is a snapshot, so a full buffer loses nothing lasting.
                    let _ = io
                        .local()
                        .emit(server_event::ROOMS, &RoomList { rooms })
                        .await;
                }
                Err(error) => tracing::warn!(%error, "cannot read the room list"),
            }
        }
    }
}
