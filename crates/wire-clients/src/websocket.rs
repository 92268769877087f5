//! A WebSocket client over a socket the caller connected, with small
//! buffers (thousands of clients live in one load-generator process, and
//! frames are small), and the read every protocol on it starts from.

use anyhow::{Context, bail};
use futures::StreamExt;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// A WebSocket client connection over plain TCP.
pub type WebSocket = WebSocketStream<TcpStream>;

/// An upgrade request the server answered with another status than `101`.
#[derive(Debug)]
pub struct Refusal {
    /// The status code.
    pub status: u16,
    /// The body (a JSON error, usually), empty when there was none.
    pub body: Vec<u8>,
}

fn config() -> WebSocketConfig {
    // Writes go out at once (no write batching on the client).
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Sends `request` (a `ws://` URL, or a request with extra headers) over
/// `tcp`: the open WebSocket, or the server's refusal, which is an answer
/// and not an error.
pub async fn upgrade(
    tcp: TcpStream,
    request: impl IntoClientRequest + Unpin,
) -> anyhow::Result<Result<WebSocket, Refusal>> {
    match tokio_tungstenite::client_async_with_config(request, tcp, Some(config())).await {
        Ok((websocket, _response)) => Ok(Ok(websocket)),
        Err(WsError::Http(response)) => Ok(Err(Refusal {
            status: response.status().as_u16(),
            body: response.body().clone().unwrap_or_default(),
        })),
        Err(error) => Err(error).context("WebSocket handshake"),
    }
}

/// Opens `ws://target/path` over `tcp`; a refusal is an error.
pub async fn open(tcp: TcpStream, target: SocketAddr, path: &str) -> anyhow::Result<WebSocket> {
    let url = format!("ws://{target}{path}");
    match upgrade(tcp, url.as_str())
        .await
        .with_context(|| format!("opening {url}"))?
    {
        Ok(websocket) => Ok(websocket),
        Err(refusal) => bail!("{url} refused the upgrade with {}", refusal.status),
    }
}

/// The next text frame. Pings are answered by tungstenite on the way;
/// pongs and binary frames (no server of ours sends one) are skipped. A
/// close frame or the end of the connection is an error.
///
/// Cancel-safe: nothing read is held across an await, so it can race a
/// timer in `select!`.
pub async fn next_text(websocket: &mut WebSocket) -> anyhow::Result<Utf8Bytes> {
    loop {
        match websocket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(close))) => bail!("the server closed the WebSocket: {close:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error).context("reading the WebSocket"),
            None => bail!("the server closed the connection"),
        }
    }
}
