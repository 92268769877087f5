//! Clients of the three servers (and of the raw TCP reference), one module
//! per protocol, driven by the same per-client loop in `chat`.

pub mod chat;
pub mod context;
pub mod http;
pub mod raw;
pub mod rooms_chat;
pub mod sse;
pub mod ws_chat;

use crate::net::SourceAddrs;
use anyhow::Context;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A WebSocket client connection over plain TCP.
pub type WebSocket = WebSocketStream<TcpStream>;

/// Opens a WebSocket to `ws://target/path` from the next source address.
pub async fn open_websocket(
    sources: &SourceAddrs,
    target: SocketAddr,
    path: &str,
) -> anyhow::Result<WebSocket> {
    let tcp = sources.connect(target).await?;
    let url = format!("ws://{target}{path}");
    // Small buffers: thousands of clients live in one process, and frames
    // are small. Writes go out at once (no write batching on the client).
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (websocket, _response) =
        tokio_tungstenite::client_async_with_config(url.as_str(), tcp, Some(config))
            .await
            .with_context(|| format!("WebSocket handshake with {url}"))?;
    Ok(websocket)
}
