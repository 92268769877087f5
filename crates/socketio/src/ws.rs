//! One WebSocket of a session: tungstenite reads the client's frames,
//! driven without a task of its own by the session's task over
//! [`SansIo`], and every byte the server sends leaves through the socket's
//! [`Outbox`] (tungstenite's own pongs and close replies included), as in
//! ws-chat.

use crate::config::Config;
use bytes::Bytes;
use fanout::{Outbox, SansIo};
use ops::admission::Ticket;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, WebSocket};

/// Client frames are small: the read buffer, kept by every idle socket,
/// is too (a longer frame just takes a few reads).
const READ_BUFFER: usize = 256;

/// tungstenite's settings for a client that may send `max_payload` bytes
/// in one message.
pub(crate) fn config(max_payload: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // tungstenite writes only its replies to pings and closes, straight
        // into the outbox.
        .write_buffer_size(0)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
}

/// tungstenite's reader over the connection, and the outbox every frame
/// to the client goes through.
pub(crate) struct WsSocket {
    ws: WebSocket<SansIo>,
    outbox: Arc<Outbox>,
    /// The connection's place in the server's limits, given back with it.
    _place: Option<Ticket>,
}

impl WsSocket {
    /// The WebSocket on `stream`, with the runtime's limits; `unread` is
    /// what the HTTP server read past the upgrade request, `place` the
    /// connection's place in the limits.
    pub(crate) fn new(
        stream: TcpStream,
        unread: Bytes,
        place: Option<Ticket>,
        limits: &Config,
    ) -> WsSocket {
        let outbox =
            Outbox::new(stream, limits.max_queued).with_max_queued_bytes(limits.max_queued_bytes);
        let outbox = Arc::new(outbox);
        let connection = SansIo::new(outbox.clone(), &unread);
        let config = config(limits.max_payload);
        WsSocket {
            ws: WebSocket::from_raw_socket(connection, Role::Server, Some(config)),
            outbox,
            _place: place,
        }
    }

    /// Where every frame to this client goes.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The next frame from the client; `None` once the connection closed.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>> {
        fanout::sans_io::poll_message(&mut self.ws, cx)
    }
}
