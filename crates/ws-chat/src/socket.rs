//! The socket side of a session: what can wake its task up ([`Event`]),
//! why it ends ([`Ending`]), and one tungstenite socket driven by hand
//! ([`Socket`]: drive a pending write, read the next frame, tell whether it
//! takes more, write a message as fragments).
//!
//! The session polls its socket itself, so it drives tungstenite's
//! non-blocking core directly over the upgraded connection instead of
//! through tokio-tungstenite's `Stream`/`Sink` adapter: that adapter keeps
//! its wakers in four atomic cells, registered on every poll so that
//! separate reader and writer tasks could share one socket, which costs a
//! one-task session a measurable share of its CPU per delivery.

use crate::frame;
use crate::hub::Outgoing;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes, WebSocket};
use tokio_util::sync::WaitForCancellationFutureOwned;

/// One WebSocket: tungstenite's state machine over the upgraded connection.
pub struct Socket {
    ws: WebSocket<Connection>,
    /// The last write found the connection full: frames wait in
    /// tungstenite's buffer until a flush gets through.
    blocked: bool,
}

/// The upgraded connection as the blocking-style `Read` and `Write` that
/// tungstenite speaks: an operation that would wait registers the session
/// task's waker with tokio and reports `WouldBlock`.
struct Connection {
    io: TokioIo<Upgraded>,
    /// The session task's waker, from its latest poll.
    waker: Waker,
}

impl Socket {
    pub fn new(upgraded: Upgraded, config: WebSocketConfig) -> Socket {
        let connection = Connection {
            io: TokioIo::new(upgraded),
            waker: Waker::noop().clone(),
        };
        Socket {
            ws: WebSocket::from_raw_socket(connection, Role::Server, Some(config)),
            blocked: false,
        }
    }

    /// Queues one message in tungstenite's write buffer; never waits.
    pub fn queue(&mut self, message: Message) -> Result<(), WsError> {
        match self.ws.write(message) {
            Ok(()) => Ok(()),
            // Queued all the same: the flush in progress takes it out.
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// True when the socket takes another frame without piling it onto a
    /// write that does not go out.
    pub fn has_room(&mut self) -> bool {
        if self.blocked {
            self.blocked = !matches!(self.flush_now(), Poll::Ready(Ok(())));
        }
        !self.blocked
    }

    /// Drives the pending write out; `Pending` until the peer took it all.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.ws.get_mut().set_waker(cx.waker());
        self.flush_now()
    }

    fn flush_now(&mut self) -> Poll<Result<(), WsError>> {
        match self.ws.flush() {
            Ok(()) => {
                self.blocked = false;
                Poll::Ready(Ok(()))
            }
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            // The close handshake completed: everything went out.
            Err(WsError::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    /// The next frame from the client; `None` once the connection closed.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        self.ws.get_mut().set_waker(cx.waker());
        match self.ws.read() {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    pub async fn flush(&mut self) -> Result<(), WsError> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Sends a close frame (or tungstenite's reply to the peer's) and waits
    /// until it went out.
    pub async fn close(&mut self, frame: CloseFrame) -> Result<(), WsError> {
        match self.ws.close(Some(frame)) {
            Ok(()) => {}
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.flush().await
    }

    /// The connection itself, for the last courtesies of a close.
    pub fn io_mut(&mut self) -> &mut TokioIo<Upgraded> {
        &mut self.ws.get_mut().io
    }
}

impl Connection {
    fn set_waker(&mut self, waker: &Waker) {
        if !self.waker.will_wake(waker) {
            self.waker = waker.clone();
        }
    }

    fn poll<T>(
        &mut self,
        operation: impl FnOnce(Pin<&mut TokioIo<Upgraded>>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T> {
        let mut cx = Context::from_waker(&self.waker);
        match operation(Pin::new(&mut self.io), &mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.poll(|io, cx| {
            let mut read = ReadBuf::new(buf);
            io.poll_read(cx, &mut read).map_ok(|()| read.filled().len())
        })
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.poll(|io, cx| io.poll_write(cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.poll(|io, cx| io.poll_flush(cx))
    }
}

/// How often a socket whose writes are stuck checks whether it fell too far behind.
const STALL_CHECK: Duration = Duration::from_millis(250);

/// Something that woke the session up.
pub(crate) enum Event {
    Incoming(Message),
    /// The socket can no longer be read or written.
    Broken(Ending),
    Flushed,
    Delivery(Result<Outgoing, RecvError>),
    /// `WRITE_DELAY_MS` have passed since the last write.
    HoldOver,
    PingDue,
    StallCheck,
    ShutdownBeforeJoin,
}

/// Why the session ends, and what the client is told.
pub(crate) enum Ending {
    /// The peer closed or the connection broke: nothing left to say.
    PeerGone,
    /// The server closes with this code and reason.
    Close(CloseCode, &'static str),
}

/// Resolves when the hold after a write is over, never while none is armed.
pub(crate) async fn until_hold_over(hold: &mut Option<Pin<Box<Sleep>>>) {
    match hold {
        Some(hold) => hold.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the shutdown signal fires, never once it was dropped.
pub(crate) async fn until_shutdown(signal: &mut Option<Pin<Box<WaitForCancellationFutureOwned>>>) {
    match signal {
        Some(signal) => signal.await,
        None => std::future::pending().await,
    }
}

/// Drives a pending write (arming the stall timer while it does not go
/// out), then looks for the next client frame. Errors become the ending
/// they mean right here, so no large error value lives in the session.
pub(crate) fn poll_socket(
    ws: &mut Socket,
    flushing: bool,
    reading: bool,
    stall: &mut Option<Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
) -> Poll<Event> {
    if flushing {
        if let Poll::Ready(result) = ws.poll_flush(cx) {
            *stall = None;
            return Poll::Ready(match result {
                Ok(()) => Event::Flushed,
                Err(error) => {
                    tracing::debug!(%error, "write failed");
                    Event::Broken(Ending::PeerGone)
                }
            });
        }
        let timer = stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL_CHECK)));
        if timer.as_mut().poll(cx).is_ready() {
            *stall = None;
            return Poll::Ready(Event::StallCheck);
        }
    }
    if !reading {
        return Poll::Pending;
    }
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

/// Writes every fragment of `json` into tungstenite's buffer at once (a chat
/// frame is at most a few KiB, so this stays bounded).
pub(crate) fn write_fragmented(ws: &mut Socket, json: &Utf8Bytes) -> Result<(), WsError> {
    for frame in frame::text_frames(frame::pieces(json.as_ref())) {
        ws.queue(frame)?;
    }
    Ok(())
}
