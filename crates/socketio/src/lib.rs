//! Our Engine.IO v4 + Socket.IO v5 server runtime, on the fan-out core.
//!
//! A socket costs one task, which reads, decodes and handles its events
//! in order, and its way out: a WebSocket client's packets are written
//! straight from whoever sends them through its [`fanout::Outbox`], and a
//! room's event is encoded once, as a complete WebSocket frame
//! ([`Frame`]), for all its local members. Long-polling (with the upgrade
//! to WebSocket the official client makes) is served too, as the spec and
//! the official server serve it.
//!
//! The app gives a table of small typed handlers ([`Handlers`]) and gets a
//! tower service for its HTTP server ([`WithSocketIo`]).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod config;
pub mod eio_packet;
mod engine;
mod handlers;
mod http;
mod link;
mod packet_error;
mod server;
mod session;
pub mod sio_packet;
mod socket;
pub mod standalone;
mod ws;

pub use config::Config;
pub use engine::Reason;
pub use handlers::{Accepted, Connect, Cx, Handlers, Refusal, Resume};
pub use link::Frame;
pub use packet_error::PacketError;
pub use server::{Body, BoxError, SocketIo, WithSocketIo};
pub use socket::{Ack, Socket, SocketRef};
