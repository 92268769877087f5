//! The wire formats the clients speak, each in its own module and free of
//! I/O so that every one is unit-tested (and fuzzed) on its own.

pub mod chunked;
pub mod socketio;
pub mod sse;
