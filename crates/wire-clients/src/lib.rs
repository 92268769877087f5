//! Clients of the three protocols, over real sockets: what the load
//! generator drives by the thousand and what the apps' integration tests
//! talk to their servers with, written once.
//!
//! - [`codec`]: the wire formats, free of I/O (chunked bodies, the SSE
//!   event stream, Engine.IO/Socket.IO packets); the hot paths of the load
//!   generator, so they allocate nothing per frame.
//! - [`http`]: just enough HTTP/1.1 for a GET and its response head.
//! - [`websocket`]: a WebSocket over a socket the caller connected.
//! - [`ws_chat`], [`sse`], [`socketio`]: each protocol's handshake and
//!   reads, as the servers' contracts describe them.
//!
//! Everything works on a `TcpStream` the caller connected (the load
//! generator picks source addresses) and returns errors instead of
//! panicking; how long to wait is the caller's choice, except where a
//! client is built to wait ([`socketio::Client`]'s patience).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod http;
pub mod socketio;
pub mod sse;
pub mod websocket;
pub mod ws_chat;
