//! What the sequencer delivers to: a Socket.IO socket in production, a
//! recording stand-in in tests.

use crate::store::Envelope;
use protocol::rooms::server_event;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError};

/// How often a full socket is asked again to take its disconnect packet.
const CUT_OFF_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// The outcome of handing one message to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Its outgoing buffer is full: it must be cut off, never skipped.
    TooSlow,
    /// It is closed already.
    Gone,
}

pub trait Recipient: Clone + Send + Sync + 'static {
    fn sid(&self) -> Sid;
    fn deliver(&self, envelope: &Envelope) -> Delivery;
    /// Joins the Socket.IO room, so that the adapter's notices reach it.
    fn enter_room(&self, room: &str);
    fn exit_room(&self, room: &str);
    /// Disconnects it; its client reconnects and re-joins with `since`.
    fn cut_off(&self);
}

impl<A: Adapter> Recipient for SocketRef<A> {
    fn sid(&self) -> Sid {
        self.id
    }

    fn deliver(&self, envelope: &Envelope) -> Delivery {
        // The message's JSON was serialized once; each socket only frames it.
        match self.emit(server_event::MESSAGE, envelope.json.as_ref()) {
            Ok(()) => Delivery::Sent,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Delivery::TooSlow,
            Err(SendError::Socket(SocketError::Closed)) => Delivery::Gone,
            Err(SendError::Serialize(error)) => {
                // Cannot happen with JSON we produced; cut off rather than skip.
                tracing::error!(%error, "cannot encode a message");
                Delivery::TooSlow
            }
        }
    }

    fn enter_room(&self, room: &str) {
        self.join(room.to_owned());
    }

    fn exit_room(&self, room: &str) {
        self.leave(room.to_owned());
    }

    fn cut_off(&self) {
        // socketioxide queues the disconnect packet behind what the socket
        // already holds, and refuses (doing nothing) while that queue is
        // full. So retry until the client has drained a little: it then
        // receives every message it was given, in order, and the disconnect
        // right after them; never a silent gap.
        let socket = self.clone();
        tokio::spawn(async move {
            while socket.connected() {
                match socket.clone().disconnect() {
                    Err(SocketError::InternalChannelFull) => {
                        tokio::time::sleep(CUT_OFF_RETRY).await;
                    }
                    _ => return,
                }
            }
        });
    }
}
