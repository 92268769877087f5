//! What the sequencer delivers to: a Socket.IO socket in production, a
//! recording stand-in in tests.

use crate::store::Envelope;
use protocol::rooms::server_event;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError};

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
        let _ = self.clone().disconnect();
    }
}
