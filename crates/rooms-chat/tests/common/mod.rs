//! A minimal Socket.IO v5 client over a raw WebSocket (Engine.IO v4
//! framing: `0` open, `40` connect, `42[...]` event, `43[...]` ack, `2`/`3`
//! ping/pong), enough for these end-to-end tests. The full contract is
//! tested with the official JavaScript client in `tests/node`.
#![allow(dead_code)]

use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub const WAIT: Duration = Duration::from_secs(10);

type Writer = Arc<Mutex<SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>>>;

/// What [`Client::listen`] heard.
pub enum Heard {
    Event(String, Value),
    /// Nothing within the time given.
    Quiet,
    /// The server closed the connection.
    Closed,
}

/// Reads while the test writes, as a real client does (a client that
/// floods without reading would deadlock against any server), and answers
/// pings.
pub struct Client {
    writer: Writer,
    incoming: mpsc::UnboundedReceiver<String>,
    next_ack: u64,
    /// Events received while waiting for something else: (name, payload).
    events: VecDeque<(String, Value)>,
    /// Acknowledgements received while waiting for another one.
    acks: HashMap<u64, Value>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = connect_async(url).await.expect("websocket handshake");
        let (writer, mut reader) = ws.split();
        let writer: Writer = Arc::new(Mutex::new(writer));
        let (queue, incoming) = mpsc::unbounded_channel();
        let pong = writer.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = reader.next().await {
                let Message::Text(text) = frame else {
                    continue;
                };
                if text.as_str() == "2" {
                    let _ = pong.lock().await.send(Message::text("3")).await;
                } else if queue.send(text.to_string()).is_err() {
                    return;
                }
            }
        });
        let mut client = Client {
            writer,
            incoming,
            next_ack: 0,
            events: VecDeque::new(),
            acks: HashMap::new(),
        };
        let open = client.read_text().await;
        assert!(open.starts_with("0{") && open.contains("\"sid\""), "{open}");
        client.send("40").await;
        let connected = client.read_text().await;
        assert!(connected.starts_with("40{"), "{connected}");
        client
    }

    async fn send(&mut self, text: &str) {
        self.writer
            .lock()
            .await
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next Engine.IO text packet other than a ping.
    async fn read_text(&mut self) -> String {
        tokio::time::timeout(WAIT, self.incoming.recv())
            .await
            .expect("nothing received in time")
            .expect("connection closed")
    }

    /// Emits without waiting for anything.
    pub async fn emit(&mut self, event: &str, payload: Value) {
        let packet = format!("42{}", json!([event, payload]));
        self.send(&packet).await;
    }

    /// Emits and returns the acknowledgement's payload.
    pub async fn request(&mut self, event: &str, payload: Value) -> Value {
        let id = self.send_request(event, payload).await;
        self.ack(id).await
    }

    /// Emits asking for an acknowledgement, without waiting for it.
    pub async fn send_request(&mut self, event: &str, payload: Value) -> u64 {
        self.next_ack += 1;
        let id = self.next_ack;
        let packet = format!("42{id}{}", json!([event, payload]));
        self.send(&packet).await;
        id
    }

    /// The acknowledgement of request `id`.
    pub async fn ack(&mut self, id: u64) -> Value {
        loop {
            if let Some(ack) = self.acks.remove(&id) {
                return ack;
            }
            let text = self.read_text().await;
            self.keep(&text);
        }
    }

    fn keep(&mut self, text: &str) {
        if let Some(ack) = text.strip_prefix("43") {
            let start = ack.find('[').expect("ack arguments");
            let id = ack[..start].parse().expect("ack id");
            let mut args: Vec<Value> = serde_json::from_str(&ack[start..]).expect("ack JSON");
            self.acks.insert(id, args.remove(0));
        } else if let Some(event) = text.strip_prefix("42") {
            let args: Vec<Value> = serde_json::from_str(event).expect("event JSON");
            let name = args[0].as_str().expect("event name").to_owned();
            self.events
                .push_back((name, args.get(1).cloned().unwrap_or(Value::Null)));
        }
    }

    /// The next event called `name` (others received meanwhile are dropped).
    pub async fn next(&mut self, name: &str) -> Value {
        if let Some(index) = self.events.iter().position(|(event, _)| event == name) {
            let (_, payload) = self.events.remove(index).unwrap();
            self.events.drain(..index);
            return payload;
        }
        self.events.clear();
        loop {
            let text = self.read_text().await;
            self.keep(&text);
            if let Some((event, payload)) = self.events.pop_back()
                && event == name
            {
                return payload;
            }
        }
    }

    /// The next event within `within`, or why there is none: a member may
    /// be cut off by the server (its client then re-joins with `since`).
    pub async fn listen(&mut self, within: Duration) -> Heard {
        loop {
            if let Some((name, payload)) = self.events.pop_front() {
                return Heard::Event(name, payload);
            }
            match tokio::time::timeout(within, self.incoming.recv()).await {
                Err(_elapsed) => return Heard::Quiet,
                Ok(None) => return Heard::Closed,
                // Engine.IO close, or Socket.IO disconnect.
                Ok(Some(text)) if text == "1" || text.starts_with("41") => return Heard::Closed,
                Ok(Some(text)) => self.keep(&text),
            }
        }
    }

    /// Emits and returns the acknowledgement, or `None` if the server cut
    /// the connection first; an ack that takes longer than [`WAIT`] fails.
    pub async fn try_request(&mut self, event: &str, payload: Value) -> Option<Value> {
        self.next_ack += 1;
        let id = self.next_ack;
        let packet = format!("42{id}{}", json!([event, payload]));
        let sent = self.writer.lock().await.send(Message::text(packet)).await;
        if sent.is_err() {
            return None;
        }
        loop {
            if let Some(ack) = self.acks.remove(&id) {
                return Some(ack);
            }
            match tokio::time::timeout(WAIT, self.incoming.recv()).await {
                Err(_elapsed) => panic!("no ack within {WAIT:?}"),
                Ok(None) => return None,
                Ok(Some(text)) if text == "1" || text.starts_with("41") => return None,
                Ok(Some(text)) => self.keep(&text),
            }
        }
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
        let _ = self.writer.lock().await.close().await;
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
