//! The socket side of a session: what can wake its task up ([`Event`]),
//! why it ends ([`Ending`]), and the plumbing of one tungstenite socket
//! polled by hand (drive a pending write, read the next frame, tell whether
//! the sink takes more, write a message as fragments).

use crate::frame;
use crate::hub::Outgoing;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Sleep;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::WaitForCancellationFutureOwned;

pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

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
        if let Poll::Ready(result) = ws.poll_flush_unpin(cx) {
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
    ws.poll_next_unpin(cx).map(|incoming| match incoming {
        Some(Ok(message)) => Event::Incoming(message),
        Some(Err(error)) => Event::Broken(read_error_ending(error)),
        None => Event::Broken(Ending::PeerGone),
    })
}

/// True when tungstenite will take another frame without blocking.
pub(crate) fn sink_has_room(ws: &mut Socket) -> bool {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    matches!(ws.poll_ready_unpin(&mut cx), Poll::Ready(Ok(())))
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
        ws.start_send_unpin(frame)?;
    }
    Ok(())
}
