//! The wire formats the load generator speaks, each in its own module and
//! free of I/O so that every one is unit-tested on its own.

pub mod chunked;
pub mod probe;
pub mod socketio;
pub mod sse;
pub mod stamp;
