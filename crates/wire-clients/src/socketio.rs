//! Socket.IO v5 over an Engine.IO v4 WebSocket, from the client's side:
//! the handshake every client makes (Engine.IO open, Socket.IO connect),
//! and [`Client`], a scripted client that keeps what arrives while it waits
//! for something else (events, acks), as a test needs one.
//!
//! The load generator runs its own read loop on the handshaken WebSocket
//! with [`crate::codec::socketio`], so nothing here is on its hot path.

use crate::codec::socketio::{self as codec, Inbound};
use crate::websocket::{self, WebSocket, next_text};
use anyhow::{Context, bail};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Waits for the Engine.IO open packet that starts every session.
pub async fn await_open(websocket: &mut WebSocket) -> anyhow::Result<()> {
    let open = next_text(websocket).await.context("waiting for open")?;
    match codec::decode(&open) {
        Inbound::Open(json) if json.contains("\"sid\"") => Ok(()),
        _ => bail!("expected an Engine.IO open packet, got {open:?}"),
    }
}

/// Connects the socket to the default namespace, with `auth` (a JSON
/// object) as the connect packet's payload. `Ok(Err(payload))` is the
/// server's `connect_error`. Engine.IO pings are answered meanwhile.
pub async fn connect(
    websocket: &mut WebSocket,
    auth: Option<&str>,
) -> anyhow::Result<Result<(), String>> {
    let packet = match auth {
        Some(auth) => format!("{}{auth}", codec::CONNECT),
        None => codec::CONNECT.to_owned(),
    };
    send(websocket, packet).await?;
    loop {
        let text = next_text(websocket)
            .await
            .context("waiting for the connect")?;
        match codec::decode(&text) {
            Inbound::Connected(_) => return Ok(Ok(())),
            Inbound::ConnectError(payload) => return Ok(Err(payload.to_owned())),
            Inbound::Ping => send(websocket, codec::PONG).await?,
            _ => {}
        }
    }
}

/// [`await_open`], then [`connect`] without auth; a refusal is an error.
pub async fn handshake(websocket: &mut WebSocket) -> anyhow::Result<()> {
    await_open(websocket).await?;
    if let Err(refusal) = connect(websocket, None).await? {
        bail!("Socket.IO connect refused: {refusal}");
    }
    Ok(())
}

/// Sends one Engine.IO packet.
pub async fn send(websocket: &mut WebSocket, packet: impl Into<Utf8Bytes>) -> anyhow::Result<()> {
    websocket
        .send(Message::text(packet))
        .await
        .context("sending a packet")
}

type Writer = Arc<Mutex<SplitSink<WebSocket, Message>>>;

/// What [`Client::listen`] heard.
#[derive(Debug)]
pub enum Heard {
    /// An event: its name and first argument.
    Event(String, Value),
    /// Nothing within the time given.
    Quiet,
    /// The server closed the connection.
    Closed,
}

/// A scripted client: it reads while its user writes, as a real client
/// does (a client that floods without reading would deadlock against any
/// server), answers pings, and keeps the events and acks that arrive while
/// it waits for another one. Every wait for a packet is bounded by its
/// patience, so a missing answer is an error, never a hang.
pub struct Client {
    writer: Writer,
    incoming: mpsc::UnboundedReceiver<String>,
    patience: Duration,
    next_ack: u64,
    /// Events received while waiting for something else: (name, payload).
    events: VecDeque<(String, Value)>,
    /// Acknowledgements received while waiting for another one.
    acks: HashMap<u64, Value>,
}

impl Client {
    /// Connects to `addr` with `auth` as the connect packet's payload;
    /// `Ok(Err(payload))` is the server's `connect_error`.
    pub async fn connect(
        addr: SocketAddr,
        auth: Option<&Value>,
        patience: Duration,
    ) -> anyhow::Result<Result<Client, Value>> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let mut websocket = websocket::open(tcp, addr, codec::WEBSOCKET_PATH).await?;
        let auth = auth.map(Value::to_string);
        let connected = tokio::time::timeout(patience, async {
            await_open(&mut websocket).await?;
            connect(&mut websocket, auth.as_deref()).await
        })
        .await
        .with_context(|| format!("no Socket.IO connect within {patience:?}"))??;
        if let Err(refusal) = connected {
            let refusal = serde_json::from_str(&refusal).context("a connect_error not JSON")?;
            return Ok(Err(refusal));
        }
        Ok(Ok(Client::reading(websocket, patience)))
    }

    /// Starts the reader of a connected socket.
    fn reading(websocket: WebSocket, patience: Duration) -> Client {
        let (writer, mut reader) = websocket.split();
        let writer: Writer = Arc::new(Mutex::new(writer));
        let (queue, incoming) = mpsc::unbounded_channel();
        let pong = writer.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = reader.next().await {
                let Message::Text(text) = frame else {
                    continue;
                };
                if codec::decode(&text) == Inbound::Ping {
                    // A failed pong shows as the end of the reads that follow.
                    let _ = pong.lock().await.send(Message::text(codec::PONG)).await;
                } else if queue.send(text.as_str().to_owned()).is_err() {
                    return;
                }
            }
        });
        Client {
            writer,
            incoming,
            patience,
            next_ack: 0,
            events: VecDeque::new(),
            acks: HashMap::new(),
        }
    }

    async fn send(&mut self, packet: String) -> anyhow::Result<()> {
        self.writer
            .lock()
            .await
            .send(Message::text(packet))
            .await
            .context("sending a packet")
    }

    /// The next packet other than a ping; `None` once the connection ended.
    async fn read(&mut self, within: Duration) -> anyhow::Result<Option<String>> {
        tokio::time::timeout(within, self.incoming.recv())
            .await
            .with_context(|| format!("nothing received within {within:?}"))
    }

    /// The next packet other than a ping; the end of the connection is an
    /// error.
    async fn read_packet(&mut self) -> anyhow::Result<String> {
        self.read(self.patience)
            .await?
            .context("the connection closed")
    }

    /// Emits without waiting for anything.
    pub async fn emit(&mut self, event: &str, payload: &impl Serialize) -> anyhow::Result<()> {
        self.send(codec::encode_event(None, event, payload)).await
    }

    /// Emits and returns the acknowledgement's payload.
    pub async fn request(
        &mut self,
        event: &str,
        payload: &impl Serialize,
    ) -> anyhow::Result<Value> {
        let id = self.send_request(event, payload).await?;
        self.ack(id).await
    }

    /// Emits asking for an acknowledgement, without waiting for it; returns
    /// the ack id to wait for with [`Client::ack`].
    pub async fn send_request(
        &mut self,
        event: &str,
        payload: &impl Serialize,
    ) -> anyhow::Result<u64> {
        self.next_ack += 1;
        let id = self.next_ack;
        self.send(codec::encode_event(Some(id), event, payload))
            .await?;
        Ok(id)
    }

    /// The acknowledgement of request `id`.
    pub async fn ack(&mut self, id: u64) -> anyhow::Result<Value> {
        loop {
            if let Some(ack) = self.acks.remove(&id) {
                return Ok(ack);
            }
            let packet = self.read_packet().await?;
            self.keep(&packet)?;
        }
    }

    /// Keeps an event or an ack; other packets are dropped. Whether a
    /// packet ends the session is for the caller to see first.
    fn keep(&mut self, packet: &str) -> anyhow::Result<()> {
        match codec::decode(packet) {
            Inbound::Ack { id, payload } => {
                let arguments: Vec<Value> =
                    serde_json::from_str(payload).with_context(|| format!("an ack: {packet}"))?;
                let first = arguments.into_iter().next().unwrap_or(Value::Null);
                self.acks.insert(id, first);
            }
            Inbound::Event { payload, .. } => {
                let mut arguments: VecDeque<Value> =
                    serde_json::from_str(payload).with_context(|| format!("an event: {packet}"))?;
                let Some(Value::String(name)) = arguments.pop_front() else {
                    bail!("an event without a name: {packet}");
                };
                let first = arguments.pop_front().unwrap_or(Value::Null);
                self.events.push_back((name, first));
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether a packet ends the session: Engine.IO close, Socket.IO
    /// disconnect.
    fn ends(packet: &str) -> bool {
        matches!(codec::decode(packet), Inbound::Close | Inbound::Disconnect)
    }

    /// The next event called `name`; others received before it are dropped.
    pub async fn next(&mut self, name: &str) -> anyhow::Result<Value> {
        if let Some(index) = self.events.iter().position(|(event, _)| event == name) {
            let kept = self.events.drain(..=index).next_back();
            if let Some((_, payload)) = kept {
                return Ok(payload);
            }
        }
        self.events.clear();
        loop {
            let packet = self.read_packet().await?;
            self.keep(&packet)?;
            if let Some((event, payload)) = self.events.pop_back()
                && event == name
            {
                return Ok(payload);
            }
        }
    }

    /// The next event within `within`, or why there is none: a member may
    /// be cut off by the server (its client then re-joins with `since`).
    pub async fn listen(&mut self, within: Duration) -> anyhow::Result<Heard> {
        loop {
            if let Some((name, payload)) = self.events.pop_front() {
                return Ok(Heard::Event(name, payload));
            }
            match self.read(within).await {
                Err(_elapsed) => return Ok(Heard::Quiet),
                Ok(None) => return Ok(Heard::Closed),
                Ok(Some(packet)) if Self::ends(&packet) => return Ok(Heard::Closed),
                Ok(Some(packet)) => self.keep(&packet)?,
            }
        }
    }

    /// Emits and returns the acknowledgement, or `None` if the server cut
    /// the connection first.
    pub async fn try_request(
        &mut self,
        event: &str,
        payload: &impl Serialize,
    ) -> anyhow::Result<Option<Value>> {
        let Ok(id) = self.send_request(event, payload).await else {
            return Ok(None);
        };
        loop {
            if let Some(ack) = self.acks.remove(&id) {
                return Ok(Some(ack));
            }
            match self.read(self.patience).await? {
                None => return Ok(None),
                Some(packet) if Self::ends(&packet) => return Ok(None),
                Some(packet) => self.keep(&packet)?,
            }
        }
    }

    /// The next event of any name (one received earlier first).
    pub async fn next_any(&mut self) -> anyhow::Result<(String, Value)> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            let packet = self.read_packet().await?;
            self.keep(&packet)?;
        }
    }

    /// Waits for the server's Socket.IO disconnect packet.
    pub async fn disconnected(&mut self) -> anyhow::Result<()> {
        loop {
            let packet = self.read_packet().await?;
            if codec::decode(&packet) == Inbound::Disconnect {
                return Ok(());
            }
            self.keep(&packet)?;
        }
    }

    /// Leaves as the official client's `socket.disconnect()` does (our
    /// page calls it when it goes away): the disconnect packet, then the
    /// connection closed. The others are told at once.
    pub async fn close(mut self) {
        // Closing a socket the server already closed is no failure.
        let _ = self.send("41".to_owned()).await;
        let _ = self.writer.lock().await.close().await;
    }

    /// Drops the connection without a word, as a lost network does: the
    /// server may hold the socket for its recovery.
    pub async fn drop_connection(self) {
        let _ = self.writer.lock().await.close().await;
    }
}
