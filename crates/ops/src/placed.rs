//! A connection's stream that holds its place in the limits
//! ([`crate::admission::Ticket`]) for as long as it lives.
//!
//! hyper hands the stream of an upgraded request to the app's WebSocket, so
//! the place must travel with the stream: whatever ends the socket, its
//! place is given back when the stream is dropped. An app that drives the
//! upgraded connection on its own takes both out with
//! [`Placed::into_parts`] and keeps the place beside the stream.

use crate::admission::Ticket;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream holding its connection's place in the limits until dropped.
pub struct Placed<S> {
    stream: S,
    place: Option<Ticket>,
}

impl<S> Placed<S> {
    /// `stream`, holding `place` until dropped.
    pub fn new(stream: S, place: Option<Ticket>) -> Placed<S> {
        Placed { stream, place }
    }

    /// The stream itself and its place in the limits.
    pub fn into_parts(self) -> (S, Option<Ticket>) {
        (self.stream, self.place)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Placed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Placed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
