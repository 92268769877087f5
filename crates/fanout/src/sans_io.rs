//! A socket's connection as the blocking-style `std::io::Read` and `Write`
//! that a sans-I/O protocol library (tungstenite) speaks, for a socket
//! task that drives the library itself: a read that would wait registers
//! the task's waker and reports `WouldBlock`; a write goes into the
//! socket's [`Outbox`], in order with every other frame, and never blocks.

use crate::outbox::Outbox;
use bytes::{Buf, Bytes};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, WebSocket};

/// The connection behind `outbox`, read by one task.
pub struct SansIo {
    outbox: Arc<Outbox>,
    /// Bytes the client sent right behind its upgrade request, read first.
    unread: Bytes,
    /// The reading task's waker, from its latest poll.
    waker: Waker,
}

impl SansIo {
    /// The connection of `outbox`; `unread` is what the HTTP server read
    /// past the upgrade request (copied: it is a view into the server's
    /// read buffer, which it would otherwise keep alive).
    pub fn new(outbox: Arc<Outbox>, unread: &[u8]) -> SansIo {
        SansIo {
            outbox,
            unread: Bytes::copy_from_slice(unread),
            waker: Waker::noop().clone(),
        }
    }

    /// The reading task is this one: call before each read.
    pub fn set_waker(&mut self, waker: &Waker) {
        if !self.waker.will_wake(waker) {
            self.waker = waker.clone();
        }
    }
}

/// The next message tungstenite reads over `ws` for the task polling with
/// `cx`; `None` once the connection closed. tungstenite's own answers (a
/// pong, a close reply) go out at once, into the outbox, so this never
/// waits on a write.
pub fn poll_message(
    ws: &mut WebSocket<SansIo>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Message, WsError>>> {
    ws.get_mut().set_waker(cx.waker());
    let read = ws.read();
    let _ = ws.flush();
    match read {
        Ok(message) => Poll::Ready(Some(Ok(message))),
        Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(None),
        Err(error) => Poll::Ready(Some(Err(error))),
    }
}

impl Read for SansIo {
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
            // Registers for the peer's next bytes; ready at once means
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

impl Write for SansIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbox.send(Bytes::copy_from_slice(buf), true);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
