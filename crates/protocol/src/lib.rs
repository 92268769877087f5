//! The wire contract of the three servers (`shared/PROTOCOL.md`), written once.
//!
//! Every message shape that crosses a socket is a type here, and every limit of
//! the contract (name lengths, text lengths, control characters, error codes) is
//! checked here. Nothing in this crate does I/O, so the apps, the load
//! generator and the tests all agree on the same bytes.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod rooms;
pub mod sse;
pub mod validate;
pub mod ws;

pub use error::{ErrorBody, ErrorCode};

/// Largest WebSocket frame (and Socket.IO payload) a server accepts.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// How many recent messages a newcomer receives.
pub const HISTORY_LEN: usize = 50;

/// Current time as the contract spells it: Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
