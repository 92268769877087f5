//! A way for an app to end one connection from outside its I/O, however
//! busy or blocked that I/O is.
//!
//! An app that must drop a client which stopped reading cannot always say
//! goodbye in-band (socketioxide, for one, refuses to queue a disconnect
//! packet behind a full buffer). The accept loop therefore wraps every
//! connection's stream in [`Hangable`] and hands its [`Hangup`] to the
//! app in each request's extensions: `hang_up()` makes every later read
//! and write of the connection fail, waking whatever task waits on it, so
//! the connection's tasks end and the socket closes (upgraded WebSockets
//! included, since the upgrade keeps the wrapped stream).
//!
//! The same wrapper carries the connection's place in the limits
//! ([`crate::admission::Ticket`]): hyper hands the stream to the upgraded
//! WebSocket, so the place lives as long as the socket, however it ends.

use crate::admission::Ticket;
use futures::task::AtomicWaker;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Ends one connection; cheap to clone, found in the request's extensions.
#[derive(Clone, Default)]
pub struct Hangup {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    hung_up: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Hangup {
    /// Fails every later read and write of the connection.
    pub fn hang_up(&self) {
        self.inner.hung_up.store(true, Ordering::Release);
        self.inner.reader.wake();
        self.inner.writer.wake();
    }

    /// Whether [`Hangup::hang_up`] was called.
    pub fn is_hung_up(&self) -> bool {
        self.inner.hung_up.load(Ordering::Acquire)
    }

    /// Passes `poll`'s outcome on, unless the connection is hung up. Only a
    /// task about to wait registers to be woken by a hang-up: registering on
    /// every poll would cost each read and write two atomic swaps for
    /// nothing, since a task that was not told to wait polls again anyway.
    fn guard<T>(
        &self,
        waker: &AtomicWaker,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        self.check()?;
        let outcome = poll(cx);
        if outcome.is_pending() {
            waker.register(cx.waker());
            // A hang-up between the check and the registration woke nobody.
            self.check()?;
        }
        outcome
    }

    fn check(&self) -> io::Result<()> {
        if self.is_hung_up() {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server hung up",
            ))
        } else {
            Ok(())
        }
    }
}

/// A stream that stops working once its [`Hangup`] is used, holding its
/// connection's place in the limits until it is dropped.
pub struct Hangable<S> {
    stream: S,
    hangup: Hangup,
    place: Option<Ticket>,
}

impl<S> Hangable<S> {
    /// `stream`, ended by `hangup`, holding `place` until dropped.
    pub fn new(stream: S, hangup: Hangup, place: Option<Ticket>) -> Hangable<S> {
        Hangable {
            stream,
            hangup,
            place,
        }
    }

    /// The stream itself, its hang-up and its place in the limits: for an
    /// app that drives the upgraded connection on its own, and must then
    /// hold the place for as long as it keeps the stream.
    pub fn into_parts(self) -> (S, Hangup, Option<Ticket>) {
        (self.stream, self.hangup, self.place)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Hangable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.hangup.guard(&this.hangup.inner.reader, cx, |cx| {
            Pin::new(&mut this.stream).poll_read(cx, buf)
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Hangable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.hangup.guard(&this.hangup.inner.writer, cx, |cx| {
            Pin::new(&mut this.stream).poll_write(cx, buf)
        })
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.hangup.guard(&this.hangup.inner.writer, cx, |cx| {
            Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.hangup.guard(&this.hangup.inner.writer, cx, |cx| {
            Pin::new(&mut this.stream).poll_flush(cx)
        })
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Once hung up, the socket is simply dropped: nothing more to say.
        self.hangup.check()?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Puts a connection's [`Hangup`] into every request it carries.
#[derive(Clone)]
pub struct WithHangup<S> {
    inner: S,
    hangup: Hangup,
}

impl<S> WithHangup<S> {
    /// `inner`, with `hangup` in every request's extensions.
    pub fn new(inner: S, hangup: Hangup) -> WithHangup<S> {
        WithHangup { inner, hangup }
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for WithHangup<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> S::Future {
        request.extensions_mut().insert(self.hangup.clone());
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_hang_up_wakes_a_blocked_reader_and_fails_writes() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let hangup = Hangup::default();
        let mut stream = Hangable::new(ours, hangup.clone(), None);
        theirs.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).await.unwrap();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            let read = stream.read(&mut buf).await;
            (read.is_err(), stream)
        });
        tokio::task::yield_now().await;
        hangup.hang_up();
        let (failed, mut stream) = reader.await.unwrap();
        assert!(failed, "the blocked read ends with an error");
        assert!(stream.write_all(b"more").await.is_err());
    }
}
