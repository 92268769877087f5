//! The ws-chat tests' WebSocket client: `wire_clients`' ws-chat client
//! (the same code the load generator speaks) over real sockets to the real
//! binary, JSON frames in and out, and waits that fail with a message
//! instead of hanging.
#![allow(dead_code)]

use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::TestServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wire_clients::websocket::{self, Refusal, WebSocket, next_text};
use wire_clients::ws_chat;

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub async fn start(env: &[(&str, &str)]) -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_ws-chat"), env)
        .await
        .expect("ws-chat starts")
}

/// Sends the upgrade `request` to `server`: the WebSocket, or the refusal.
pub async fn upgrade(
    server: &TestServer,
    request: impl IntoClientRequest + Unpin,
) -> Result<WebSocket, Refusal> {
    let tcp = TcpStream::connect(server.addr).await.expect("connected");
    websocket::upgrade(tcp, request)
        .await
        .expect("an answer to the upgrade")
}

pub struct Client {
    pub ws: WebSocket,
}

impl Client {
    pub async fn connect(server: &TestServer) -> Client {
        let ws = upgrade(server, server.ws_url(ws_chat::PATH))
            .await
            .unwrap_or_else(|refusal| panic!("the upgrade is refused: {refusal:?}"));
        Client { ws }
    }

    /// Connects and says hello; returns the client and its welcome.
    pub async fn join(server: &TestServer, name: &str) -> (Client, Value) {
        Self::join_as(server, json!({"type": "hello", "name": name})).await
    }

    pub async fn join_as(server: &TestServer, hello: Value) -> (Client, Value) {
        let mut client = Client::connect(server).await;
        let welcome =
            tokio::time::timeout(PATIENCE, ws_chat::hello(&mut client.ws, hello.to_string()))
                .await
                .expect("a welcome in time")
                .expect("a welcome");
        let welcome = serde_json::from_str(&welcome).expect("the server sends JSON");
        (client, welcome)
    }

    pub async fn send(&mut self, frame: Value) {
        ws_chat::send(&mut self.ws, frame.to_string())
            .await
            .expect("the frame is sent");
    }

    pub async fn send_raw(&mut self, message: Message) {
        use futures::SinkExt;
        self.ws.send(message).await.expect("the frame is sent");
    }

    pub async fn say(&mut self, text: &str) {
        self.send(json!({"type": "message", "text": text})).await;
    }

    /// The next JSON frame from the server (pings are answered on the way).
    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.next_frame())
            .await
            .expect("a frame arrives in time")
    }

    async fn next_frame(&mut self) -> Value {
        let text = next_text(&mut self.ws).await.expect("a text frame");
        serde_json::from_str(&text).expect("the server sends JSON")
    }

    /// The next frame of type `kind`, skipping others (typing, joined, ...).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Asserts the next frame is an error with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], "error", "{frame}");
        assert_eq!(frame["code"], code, "{frame}");
        assert!(frame["message"].is_string(), "{frame}");
        frame
    }

    /// Reads until the server closes; returns the close code it sent, if any.
    pub async fn closed(&mut self) -> Option<CloseCode> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|frame| frame.code),
                    Some(Ok(_)) => continue,
                    Some(Err(WsError::ConnectionClosed)) | None => return None,
                    Some(Err(error)) => panic!("the socket broke instead of closing: {error}"),
                }
            }
        })
        .await
        .expect("the server closes the socket in time")
    }

    /// Asserts that nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(frame) = tokio::time::timeout(quiet, self.next_frame()).await {
            panic!("expected silence, got {frame}");
        }
    }
}

/// The status code of an upgrade request carrying `origin`, or 101.
pub async fn upgrade_status(server: &TestServer, origin: Option<&str>) -> u16 {
    let mut request = server.ws_url(ws_chat::PATH).into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match upgrade(server, request).await {
        Ok(_) => 101,
        Err(refusal) => refusal.status,
    }
}

/// The body of `GET path`, with its status.
pub async fn http_get(server: &TestServer, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of a Prometheus series without labels, e.g. `chat_users`.
pub fn metric(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| {
            let (series, value) = line.split_once(' ')?;
            (series == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no series {name} in\n{exposition}"))
}
