//! The socket side of a session: what can wake its task up ([`Event`]),
//! why it ends ([`Ending`]), and one WebSocket ([`Socket`]): tungstenite
//! reads the client's frames, and every byte the server sends, whoever
//! sends it, leaves through the socket's [`Outbox`].
//!
//! tungstenite is only the reader here (with its own replies to pings and
//! closes, which it writes into the outbox too): the hub's frames are
//! encoded once for every socket and written straight from the publisher
//! ([`fanout`]), which tungstenite's per-socket write buffer would undo.
//! The session drives tungstenite's non-blocking core directly over the
//! connection, so an idle socket is its task, its outbox and tungstenite's
//! small read buffer, and nothing else.

use bytes::{Buf, Bytes};
use fanout::Outbox;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, WebSocket};

/// One WebSocket: tungstenite's reader over the connection, and the
/// outbox every frame to the client goes through.
pub struct Socket {
    ws: WebSocket<Connection>,
    outbox: Arc<Outbox>,
}

/// The connection as the blocking-style `Read` and `Write` that tungstenite
/// speaks: a read that would wait registers the session task's waker and
/// reports `WouldBlock`; a write goes into the outbox, which never blocks.
struct Connection {
    outbox: Arc<Outbox>,
    /// Bytes the client sent right behind its upgrade request, read first.
    unread: Bytes,
    /// The session task's waker, from its latest poll.
    waker: Waker,
}

impl Socket {
    /// The WebSocket on `stream`, cut off past `max_queued` frames waiting
    /// to be written; `unread` is what the HTTP server had read past the
    /// upgrade request.
    pub fn new(
        stream: TcpStream,
        unread: Bytes,
        config: WebSocketConfig,
        max_queued: usize,
    ) -> Socket {
        let outbox = Arc::new(Outbox::new(stream, max_queued));
        let connection = Connection {
            outbox: outbox.clone(),
            // A copy: `unread` is a view into the HTTP server's read buffer,
            // which it would keep alive, several KiB, for the socket's life.
            unread: Bytes::copy_from_slice(&unread),
            waker: Waker::noop().clone(),
        };
        Socket {
            ws: WebSocket::from_raw_socket(connection, Role::Server, Some(config)),
            outbox,
        }
    }

    /// Where every frame to this client goes.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Sends a frame of the session's own (an error, a ping) after
    /// whatever was sent before it.
    pub fn send(&self, frame: Bytes) {
        self.outbox.send(frame, true);
    }

    /// The next frame from the client; `None` once the connection closed.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        self.ws.get_mut().set_waker(cx.waker());
        let read = self.ws.read();
        // tungstenite's answer to a ping or a close goes out now; its
        // writes land in the outbox, so this never waits.
        let _ = self.ws.flush();
        match read {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    /// Gives the outbox back, the reader done with: the session's last
    /// step, once nothing else sends to it.
    pub fn into_outbox(self) -> Arc<Outbox> {
        let Socket { ws, outbox } = self;
        drop(ws.into_inner());
        outbox
    }
}

impl Connection {
    fn set_waker(&mut self, waker: &Waker) {
        if !self.waker.will_wake(waker) {
            self.waker = waker.clone();
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.unread.is_empty() {
            let len = buf.len().min(self.unread.len());
            buf[..len].copy_from_slice(&self.unread[..len]);
            self.unread.advance(len);
            if self.unread.is_empty() {
                self.unread = Bytes::new();
            }
            return Ok(len);
        }
        let stream = self.outbox.stream();
        loop {
            match stream.try_read(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                result => return result,
            }
            // Registers for the client's next bytes; ready at once means
            // they came meanwhile.
            let mut cx = Context::from_waker(&self.waker);
            match stream.poll_read_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Err(error),
                Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbox.send(Bytes::copy_from_slice(buf), true);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Something that woke the session up.
pub(crate) enum Event {
    Incoming(Message),
    /// The socket can no longer be read.
    Broken(Ending),
    /// The outbox wrote everything queued, or the socket must end.
    Outbox(fanout::Wake),
    PingDue,
    ShutdownBeforeJoin,
}

/// Why the session ends, and what the client is told.
pub(crate) enum Ending {
    /// The peer closed or the connection broke: nothing left to say.
    PeerGone,
    /// The server closes with this code and reason.
    Close(CloseCode, &'static str),
}

/// The next client frame, with errors turned into the ending they mean
/// right here, so no large error value lives in the session.
pub(crate) fn poll_incoming(ws: &mut Socket, cx: &mut Context<'_>) -> Poll<Event> {
    ws.poll_read(cx).map(|incoming| match incoming {
        Some(Ok(message)) => Event::Incoming(message),
        Some(Err(error)) => Event::Broken(read_error_ending(error)),
        None => Event::Broken(Ending::PeerGone),
    })
}

/// What a read error means for the client: a frame over the limit gets
/// 1009, a protocol violation 1002, a broken connection nothing.
pub(crate) fn read_error_ending(error: WsError) -> Ending {
    match error {
        WsError::Capacity(_) => Ending::Close(CloseCode::Size, "frame too large: 16 KiB at most"),
        // A peer that vanished without a close frame is gone, not rude.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Ending::PeerGone,
        WsError::Protocol(error) => {
            tracing::debug!(%error, "protocol violation");
            Ending::Close(CloseCode::Protocol, "protocol violation")
        }
        WsError::Utf8(_) => Ending::Close(CloseCode::Invalid, "text frames must be UTF-8"),
        error => {
            tracing::debug!(%error, "read failed");
            Ending::PeerGone
        }
    }
}
