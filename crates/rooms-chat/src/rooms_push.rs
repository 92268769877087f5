//! The `rooms` push: when the room list or a count changes (a change
//! announced on the bus, from any instance), every client of this instance
//! gets the new list; a burst of joins within the push delay gives one
//! push, read fresh from the store, instead of one per join. The snapshot
//! goes through each socket's outlet as a volatile frame: a socket that is
//! behind skips it and gets the next.

use crate::app::App;
use crate::recipient::Member;
use crate::room::outlet::Frame;
use crate::session::Session;
use ops::Shutdown;
use protocol::rooms::{RoomList, server_event};
use serde_json::value::RawValue;
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
            let rooms = match app.rooms.store.rooms().await {
                Ok(rooms) => rooms,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the room list");
                    continue;
                }
            };
            let json = match serde_json::to_string(&RoomList { rooms })
                .map_err(anyhow::Error::from)
                .and_then(|json| Ok(RawValue::from_string(json)?))
            {
                Ok(json) => Arc::<RawValue>::from(json),
                Err(error) => {
                    tracing::error!(%error, "cannot encode the room list");
                    continue;
                }
            };
            let writer = app.rooms.delivery.writer();
            for socket in io.sockets() {
                let Some(session) = socket.extensions.get::<Arc<Session>>() else {
                    continue;
                };
                let member = Member {
                    socket,
                    hangups: app.hangups.clone(),
                };
                let frame = Frame::Other(server_event::ROOMS, json.clone());
                writer.send(&member, &session.outlet, frame, true);
            }
        }
    }
}
