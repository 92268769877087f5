//! One frame to many sockets at the least cost per delivery and per socket.
//!
//! A chat sends the same frame to every member. Server frames of a
//! WebSocket are not masked, so every socket gets the very same bytes:
//! [`frame`] encodes a message once, header included, into shared
//! [`bytes::Bytes`]. Each socket has an [`Outbox`], shared by whoever
//! publishes to it and by the socket's own task:
//!
//! - a socket with nothing in flight is written **straight from the
//!   publisher**, a non-blocking write on its own descriptor: no task to
//!   wake, no buffer to fill, as a single event loop would do it;
//! - a busy chat's frames (see `ops::pace`) wait in each outbox's queue,
//!   and one clock for the whole chat flushes every outbox once per delay,
//!   each in one vectored write: no socket's task wakes for them either;
//! - frames that queued up behind one another leave together:
//!   [`Outbox::send_all`] writes a batch in one vectored write, and the
//!   lane takes every send queued behind the one it is writing;
//! - when a write would block (the peer reads slowly), what it did not
//!   take waits in the queue, and the socket's task writes it, with
//!   whatever joins it, when the peer reads again;
//! - a socket whose queue outgrows its bound is cut off (never skipped):
//!   what it got is a gap-free prefix, then the close.
//!
//! On a machine with more than one core, a [`Lane`] writes every other
//! socket's copy of a frame on another worker thread meanwhile.
//!
//! A socket task that reads with a sans-I/O library (tungstenite) gives
//! it the connection as [`SansIo`], whose writes go through the outbox too.
//!
//! Every byte of one socket leaves through its outbox, under its lock, so
//! frames of one socket never overtake each other, whoever writes them.
//! The same clock pings every socket ([`Outbox::ping`]), so an idle socket
//! holds no buffer, no timer and nothing queued.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod frame;
pub mod lane;
pub mod outbox;
pub mod sans_io;

pub use lane::Lane;
pub use outbox::{Ending, Outbox, Wake};
pub use sans_io::SansIo;
