//! The rooms-chat tests' Socket.IO client: `wire_clients::socketio`'s
//! scripted client (Engine.IO v4 framing over a raw WebSocket, the same
//! code the load generator speaks), with every failure a test failure.
//! The full contract is tested with the official JavaScript client in
//! `tests/node`.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use wire_clients::socketio;

pub use wire_clients::socketio::Heard;

/// The longest wait for any one packet.
pub const WAIT: Duration = Duration::from_secs(10);

/// A connected Socket.IO client; each method panics with its reason where
/// the shared client returns an error.
pub struct Client(socketio::Client);

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Self::connect_with(addr, None)
            .await
            .unwrap_or_else(|refused| panic!("connect refused: {refused}"))
    }

    /// Connects with `auth` as the connect packet's payload; a refusal is
    /// the `connect_error`'s payload.
    pub async fn connect_with(addr: SocketAddr, auth: Option<Value>) -> Result<Client, Value> {
        socketio::Client::connect(addr, auth.as_ref(), WAIT)
            .await
            .expect("the Socket.IO handshake")
            .map(Client)
    }

    /// Emits without waiting for anything.
    pub async fn emit(&mut self, event: &str, payload: Value) {
        self.0.emit(event, &payload).await.expect("emit");
    }

    /// Emits and returns the acknowledgement's payload.
    pub async fn request(&mut self, event: &str, payload: Value) -> Value {
        self.0.request(event, &payload).await.expect("an ack")
    }

    /// Emits asking for an acknowledgement, without waiting for it.
    pub async fn send_request(&mut self, event: &str, payload: Value) -> u64 {
        self.0.send_request(event, &payload).await.expect("emit")
    }

    /// The acknowledgement of request `id`.
    pub async fn ack(&mut self, id: u64) -> Value {
        self.0.ack(id).await.expect("an ack")
    }

    /// The next event called `name` (others received meanwhile are dropped).
    pub async fn next(&mut self, name: &str) -> Value {
        self.0
            .next(name)
            .await
            .unwrap_or_else(|error| panic!("no {name:?} event: {error:#}"))
    }

    /// The next event within `within`, or why there is none.
    pub async fn listen(&mut self, within: Duration) -> Heard {
        self.0.listen(within).await.expect("a readable packet")
    }

    /// Emits and returns the acknowledgement, or `None` if the server cut
    /// the connection first; an ack that takes longer than [`WAIT`] fails.
    pub async fn try_request(&mut self, event: &str, payload: Value) -> Option<Value> {
        self.0
            .try_request(event, &payload)
            .await
            .expect("an ack or the end of the connection")
    }

    /// The next event of any name (one received earlier first).
    pub async fn next_any(&mut self) -> (String, Value) {
        self.0.next_any().await.expect("an event")
    }

    /// Waits for the server's Socket.IO disconnect packet.
    pub async fn disconnected(&mut self) {
        self.0.disconnected().await.expect("a disconnect packet");
    }

    /// Joins `room` as `name`, asserting success; returns the ack.
    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        let ack = self
            .request("join", json!({"room": room, "name": name}))
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        ack
    }

    /// Closes the socket as a browser tab would.
    pub async fn close(self) {
        self.0.close().await;
    }
}

/// Waits until `server`'s `/healthz` says every Redis shard answers.
pub async fn wait_redis_up(server: &testkit::TestServer, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let health = reqwest::get(server.url("/healthz")).await.unwrap();
        let status = health.status();
        let body: Value = health.json().await.unwrap();
        if status == 200 && body["redis"] == "up" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz stayed {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
