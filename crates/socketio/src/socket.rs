//! A connected Socket.IO socket as the app sees it ([`Socket`]): its id,
//! the app's data for it, and what the app may do with it (send, emit,
//! disconnect); and the answer to one client event ([`Ack`]).

use crate::engine::{Delivery, Engine, Reason};
use crate::link::Frame;
use crate::sio_packet::encode;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// A connected socket, shared by the app (rooms hold it) and its session.
pub type SocketRef<C> = Arc<Socket<C>>;

/// One socket connected to `/`, with the app's data `C` for it.
pub struct Socket<C> {
    engine: Arc<Engine>,
    id: Box<str>,
    data: C,
}

impl<C> Socket<C> {
    pub(crate) fn new(engine: Arc<Engine>, id: Box<str>, data: C) -> Socket<C> {
        Socket { engine, id, data }
    }

    /// The Socket.IO id the client was given in its connect reply.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The app's data for this socket, made by its connect handler.
    pub fn data(&self) -> &C {
        &self.data
    }

    /// Sends a packet built once for many sockets (a room's event), after
    /// everything sent to this socket before.
    pub fn send(&self, frame: &Frame) {
        self.engine.link.send(frame);
    }

    /// Sends the event `name` with one argument to this socket alone.
    pub fn emit<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> serde_json::Result<()> {
        self.send(&Frame::event(name, data)?);
        Ok(())
    }

    /// Disconnects the socket: the client is told (`41`), then the session
    /// ends and the disconnect handler runs.
    pub fn disconnect(&self) {
        self.engine.link.send(&Frame::new(&encode::disconnect()));
        self.engine
            .deliver(Delivery::Close(Reason::ServerDisconnect));
    }
}

impl<C> fmt::Debug for Socket<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").field("id", &self.id).finish()
    }
}

/// The answer to one client event: sent at most once, and only if the
/// client asked for one (it gave an ack id).
pub struct Ack {
    engine: Arc<Engine>,
    id: Option<u64>,
}

impl Ack {
    pub(crate) fn new(engine: Arc<Engine>, id: Option<u64>) -> Ack {
        Ack { engine, id }
    }

    /// Whether the client waits for an answer.
    pub fn expected(&self) -> bool {
        self.id.is_some()
    }

    /// Answers with one argument, in order with everything else sent to
    /// the socket; nothing if the client asked for no answer.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) {
        let Some(id) = self.id else {
            return;
        };
        match encode::ack(id, data) {
            Ok(text) => self.engine.link.send(&Frame::new(&text)),
            Err(error) => tracing::error!(%error, "an ack that does not serialize"),
        }
    }
}
