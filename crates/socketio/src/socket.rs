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
    /// The private id a client hands back to recover the socket (with
    /// recovery on).
    pid: Option<Box<str>>,
    data: C,
}

impl<C> Socket<C> {
    pub(crate) fn new(
        engine: Arc<Engine>,
        id: Box<str>,
        pid: Option<Box<str>>,
        data: C,
    ) -> Socket<C> {
        Socket {
            engine,
            id,
            pid,
            data,
        }
    }

    /// The Socket.IO id the client was given in its connect reply.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The private id the client hands back to recover this socket, with
    /// [`crate::Config::recovery`] on.
    pub fn pid(&self) -> Option<&str> {
        self.pid.as_deref()
    }

    /// The app's data for this socket, made by its connect handler.
    pub fn data(&self) -> &C {
        &self.data
    }

    /// Sends a packet built once for many sockets (a room's event), after
    /// everything sent to this socket before, at once.
    pub fn send(&self, frame: &Frame) {
        self.engine.link.send(frame, true);
    }

    /// Queues a packet (a busy room's event) for the next [`Socket::flush`],
    /// which writes everything queued in one write.
    pub fn queue(&self, frame: &Frame) {
        self.engine.link.send(frame, false);
    }

    /// Writes what [`Socket::queue`] queued.
    pub fn flush(&self) {
        self.engine.link.flush();
    }

    /// Sends a packet only worth sending now (a typing notice, a snapshot
    /// the next one replaces): dropped, and false, for a client that is
    /// behind (it did not take the last write).
    pub fn send_volatile(&self, frame: &Frame) -> bool {
        self.engine.link.send_volatile(frame)
    }

    /// Ends the connection, not the socket: the client gets what was sent
    /// before, then the transport closes without the disconnect packet, so
    /// the official client reconnects (and the app expects it to resume).
    pub fn cut_off(&self) {
        self.engine.deliver(Delivery::Close(Reason::CutOff));
    }

    /// Sends the event `name` with one argument to this socket alone.
    pub fn emit<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> serde_json::Result<()> {
        self.send(&Frame::event(name, data)?);
        Ok(())
    }

    /// Disconnects the socket: the client is told (`41`), then the session
    /// ends and the disconnect handler runs.
    pub fn disconnect(&self) {
        self.engine
            .link
            .send(&Frame::new(&encode::disconnect()), true);
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
            Ok(text) => self.engine.link.send(&Frame::new(&text), true),
            Err(error) => tracing::error!(%error, "an ack that does not serialize"),
        }
    }
}
