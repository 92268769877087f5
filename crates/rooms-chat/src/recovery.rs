//! Connection state recovery (socket.io's, server side): a socket whose
//! connection dropped is held for `RECOVERY_MS`, and a client that comes
//! back with its `pid` and last offset gets its socket back.

use crate::app::App;
use crate::recipient::Client;
use crate::session::Session;
use socketio::{Reason, Resume};

/// What a recovered socket gets back.
pub(crate) struct Restored {
    /// Its former id.
    pub(crate) sid: String,
    /// Its rooms and the names it holds there.
    pub(crate) rooms: Vec<(String, String)>,
}

/// Holds the socket for its client to recover it, when its connection
/// dropped (rather than being closed on purpose): true if held.
pub(crate) async fn hold(_app: &App, _socket: &Client, _reason: Reason) -> bool {
    false
}

/// The former socket `resume` names, taken for `session`'s socket.
pub(crate) async fn claim(_app: &App, _resume: &Resume, _session: &Session) -> Option<Restored> {
    None
}

/// Sends a recovered socket the events it missed.
pub(crate) async fn resume(_app: &App, _socket: &Client) {}
