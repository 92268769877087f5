//! Clients of the three servers (and of the raw TCP reference), one module
//! per protocol, driven by the same per-client loop in `chat`. The
//! protocols themselves (handshakes, codecs) are `wire_clients`'; these
//! sessions add what a run measures.

pub mod chat;
pub mod context;
pub mod raw;
pub mod rooms_chat;
pub mod sse;
pub mod ws_chat;

use crate::net::SourceAddrs;
use std::net::SocketAddr;
pub use wire_clients::websocket::WebSocket;

/// Opens a WebSocket to `ws://target/path` from the next source address.
pub async fn open_websocket(
    sources: &SourceAddrs,
    target: SocketAddr,
    path: &str,
) -> anyhow::Result<WebSocket> {
    let tcp = sources.connect(target).await?;
    wire_clients::websocket::open(tcp, target, path).await
}
