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
//! connection ([`fanout::SansIo`]), so an idle socket is its task, its outbox and tungstenite's
//! small read buffer, and nothing else.

use bytes::Bytes;
use fanout::{Outbox, SansIo};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, WebSocket};

/// One WebSocket: tungstenite's reader over the connection, and the
/// outbox every frame to the client goes through.
pub struct Socket {
    ws: WebSocket<SansIo>,
    outbox: Arc<Outbox>,
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
        let connection = SansIo::new(outbox.clone(), &unread);
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
        fanout::sans_io::poll_message(&mut self.ws, cx)
    }

    /// Gives the outbox back, the reader done with: the session's last
    /// step, once nothing else sends to it.
    pub fn into_outbox(self) -> Arc<Outbox> {
        let Socket { ws, outbox } = self;
        drop(ws.into_inner());
        outbox
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
