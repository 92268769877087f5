//! Raw clients of the runtime for its protocol tests: the echo server on
//! a free port, a long-polling session made of plain HTTP requests, and a
//! WebSocket that reads Engine.IO packets, each wait bounded so that a
//! missing answer fails the test instead of hanging it.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use testkit::TestServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single answer may take.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The echo server with `env` added.
pub async fn echo_server(env: &[(&str, &str)]) -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_socketio-echo"), env)
        .await
        .expect("the echo server starts")
}

/// The Engine.IO URL of `server` with `query` after `EIO=4&`.
pub fn engine_url(server: &TestServer, query: &str) -> String {
    server.url(&format!("/socket.io/?EIO=4&{query}"))
}

/// Waits at most [`PATIENCE`] for `future`, failing with `what`.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// A long-polling session, request by request.
#[derive(Clone)]
pub struct Polling {
    http: reqwest::Client,
    url: String,
    pub sid: String,
}

/// Any request: its status and body.
pub async fn request(method: reqwest::Method, url: &str, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(method, url)
        .body(body.to_owned())
        .send()
        .await
        .expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

impl Polling {
    /// Opens a session; gives the handshake's JSON too.
    pub async fn open(server: &TestServer) -> (Polling, Value) {
        let url = engine_url(server, "transport=polling");
        let (status, body) = within("the handshake", request(reqwest::Method::GET, &url, "")).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with('0'), "an open packet: {body}");
        let open: Value = serde_json::from_str(&body[1..]).expect("the handshake is JSON");
        let sid = open["sid"].as_str().expect("a sid").to_owned();
        let polling = Polling {
            http: reqwest::Client::new(),
            url: format!("{url}&sid={sid}"),
            sid,
        };
        (polling, open)
    }

    /// Opens a session and connects its socket to `/`.
    pub async fn connected(server: &TestServer) -> Polling {
        let (polling, _) = Polling::open(server).await;
        assert_eq!(polling.post("40").await, (200, "ok".into()));
        let reply = polling.get().await.1;
        assert!(reply.starts_with("40{\"sid\":"), "{reply}");
        polling
    }

    /// Asserts the session is over: GETs get its last packets, then the
    /// close packet (the session ended, its id not yet forgotten) or 400
    /// (forgotten), then 400. A session still open would hold a GET until
    /// its next ping, past [`PATIENCE`].
    pub async fn assert_over(&self) {
        for _ in 0..3 {
            match self.get().await {
                (400, _) => return,
                (200, body) if body.split('\x1e').next_back() == Some("1") => {
                    assert_eq!(self.get().await.0, 400);
                    return;
                }
                // The last packets sent before the end.
                (200, _) => {}
                other => panic!("unexpected answer {other:?}"),
            }
        }
        panic!("the session is still open");
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One GET: its status and payload.
    pub async fn get(&self) -> (u16, String) {
        within("a GET", self.send(reqwest::Method::GET, "")).await
    }

    /// One POST of `payload`: its status and body.
    pub async fn post(&self, payload: &str) -> (u16, String) {
        within("a POST", self.send(reqwest::Method::POST, payload)).await
    }

    /// A request that may wait longer than [`PATIENCE`] (the caller bounds it).
    pub async fn send(&self, method: reqwest::Method, payload: &str) -> (u16, String) {
        let response = self
            .http
            .request(method, &self.url)
            .body(payload.to_owned())
            .send()
            .await
            .expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }
}

/// A WebSocket to `url`.
pub async fn websocket(url: &str) -> Ws {
    let url = url.replacen("http://", "ws://", 1);
    let (ws, _) = within(
        "the WebSocket handshake",
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("the WebSocket opens");
    ws
}

/// A WebSocket session connected to `/`: its open packet's JSON.
pub async fn ws_connected(server: &TestServer) -> (Ws, Value) {
    let mut ws = websocket(&engine_url(server, "transport=websocket")).await;
    let open = next_text(&mut ws).await;
    let json: Value = serde_json::from_str(&open[1..]).expect("the handshake is JSON");
    send_text(&mut ws, "40").await;
    let reply = next_text(&mut ws).await;
    assert!(reply.starts_with("40{\"sid\":"), "{reply}");
    (ws, json)
}

/// Sends one text frame.
pub async fn send_text(ws: &mut Ws, text: &str) {
    within("a send", ws.send(Message::text(text)))
        .await
        .expect("the frame goes out");
}

/// The next frame, whatever it is; `None` once the connection ended.
pub async fn next_message(ws: &mut Ws) -> Option<Message> {
    match within("a frame", ws.next()).await {
        Some(Ok(message)) => Some(message),
        Some(Err(_)) | None => None,
    }
}

/// The next text frame (skipping control frames).
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        match next_message(ws).await {
            Some(Message::Text(text)) => return text.to_string(),
            Some(Message::Ping(_) | Message::Pong(_)) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next text frame that is not a ping (`2`), which it answers.
pub async fn next_packet(ws: &mut Ws) -> String {
    loop {
        let text = next_text(ws).await;
        if text == "2" {
            send_text(ws, "3").await;
        } else {
            return text;
        }
    }
}

/// Reads until the server closes: the close frame's code, if it sent one.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match next_message(ws).await {
            Some(Message::Close(frame)) => return frame.map(|frame| u16::from(frame.code)),
            Some(_) => {}
            None => return None,
        }
    }
}
