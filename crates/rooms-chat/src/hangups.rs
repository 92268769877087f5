//! Where the connection of each socket is, so that a socket that cannot
//! keep up can be hung up (see `ops::hangup`).
//!
//! A socket that opened as a WebSocket keeps its upgrade request, and the
//! request carries its connection's [`Hangup`]. A socket that started with
//! long-polling and upgraded later keeps its first polling request, whose
//! connection is not the WebSocket's; so the origin guard, which sees every
//! request, notes the hang-up of each upgrade request by the socket's id
//! (the Engine.IO `sid`, which is the Socket.IO socket's id in protocol v5).

use ops::hangup::Hangup;
use parking_lot::Mutex;
use socketioxide::extract::SocketRef;
use std::collections::HashMap;

#[derive(Default)]
pub struct Hangups {
    upgraded: Mutex<HashMap<String, Hangup>>,
}

impl Hangups {
    /// An upgrade request of socket `sid` arrived on the connection of `hangup`.
    pub fn upgrading(&self, sid: &str, hangup: Hangup) {
        self.upgraded.lock().insert(sid.to_owned(), hangup);
    }

    /// The socket is gone.
    pub fn forget(&self, sid: &str) {
        self.upgraded.lock().remove(sid);
    }

    /// Ends the socket's connection, wherever it is.
    pub fn hang_up(&self, socket: &SocketRef) {
        let upgraded = self.upgraded.lock().remove(&socket.id.to_string());
        if let Some(hangup) = upgraded {
            hangup.hang_up();
        } else if let Some(hangup) = socket.req_parts().extensions.get::<Hangup>() {
            hangup.hang_up();
        }
    }
}
