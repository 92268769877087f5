//! One client of a `churn` round, per protocol: connect, join, talk, then
//! leave with a goodbye or vanish with a TCP reset ([`Lifecycle`]); on
//! rooms-chat over the WebSocket or over HTTP long-polling.

use crate::cli::Proto;
use crate::net;
use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire_clients::codec::socketio::{self, Inbound};
use wire_clients::websocket::{self, WebSocket, next_text};
use wire_clients::{http, ws_chat};

/// How one client of a round behaves.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// Vanish with a TCP reset instead of saying goodbye.
    pub reset: bool,
    /// rooms-chat over HTTP long-polling instead of the WebSocket.
    pub polling: bool,
}

/// Runs one client named `name` over `tcp`, already connected to `target`.
pub async fn run(
    proto: Proto,
    tcp: TcpStream,
    target: SocketAddr,
    name: &str,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    match proto {
        Proto::WsChat => ws_chat(tcp, target, name, lifecycle).await,
        Proto::RoomsChat if lifecycle.polling => {
            rooms_chat_polling(tcp, target, name, lifecycle).await
        }
        Proto::RoomsChat => rooms_chat_websocket(tcp, target, name, lifecycle).await,
        Proto::Sse => sse_stream(tcp, target, lifecycle).await,
        Proto::Raw => bail!("churn runs against ws-chat, rooms-chat or sse"),
    }
}

/// Ends a WebSocket client: a reset, or a close handshake.
async fn goodbye(mut websocket: WebSocket, lifecycle: Lifecycle) -> anyhow::Result<()> {
    if lifecycle.reset {
        net::reset(websocket.get_ref());
        return Ok(());
    }
    websocket.close(None).await.context("closing")?;
    // Read on until the server's close arrives and the socket ends.
    while let Some(message) = websocket.next().await {
        if message.is_err() {
            break;
        }
    }
    Ok(())
}

/// Reads text frames until `done` says so; answers Engine.IO pings.
async fn read_until(
    websocket: &mut WebSocket,
    mut done: impl FnMut(&str) -> bool,
) -> anyhow::Result<()> {
    loop {
        let text = next_text(websocket).await?;
        if socketio::decode(&text) == Inbound::Ping {
            wire_clients::socketio::send(websocket, socketio::PONG).await?;
        } else if done(&text) {
            return Ok(());
        }
    }
}

async fn ws_chat(
    tcp: TcpStream,
    target: SocketAddr,
    name: &str,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let mut websocket = websocket::open(tcp, target, ws_chat::PATH).await?;
    let hello = json!({"type": "hello", "name": name}).to_string();
    ws_chat::hello(&mut websocket, hello).await?;
    let text = format!("bye from {name}");
    let message = json!({"type": "message", "text": text}).to_string();
    ws_chat::send(&mut websocket, message).await?;
    read_until(&mut websocket, |frame| {
        frame.contains("\"type\":\"message\"") && frame.contains(&text)
    })
    .await?;
    goodbye(websocket, lifecycle).await
}

/// The rooms the churn clients use: few, so history stays bounded.
fn room_of(name: &str) -> String {
    format!("churn-{}", name.len() % 4)
}

async fn rooms_chat_websocket(
    tcp: TcpStream,
    target: SocketAddr,
    name: &str,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let mut websocket = websocket::open(tcp, target, socketio::WEBSOCKET_PATH).await?;
    wire_clients::socketio::handshake(&mut websocket).await?;
    let room = room_of(name);
    let requests = [
        ("join", json!({"room": room, "name": name})),
        (
            "message",
            json!({"room": room, "text": format!("bye from {name}")}),
        ),
        ("leave", json!({"room": room})),
    ];
    for (id, (event, data)) in (1u64..).zip(requests) {
        let packet = socketio::encode_event(Some(id), event, &data);
        wire_clients::socketio::send(&mut websocket, packet).await?;
        let mut answer = String::new();
        read_until(&mut websocket, |frame| match socketio::decode(frame) {
            Inbound::Ack { id: acked, payload } if acked == id => {
                answer = payload.to_owned();
                true
            }
            _ => false,
        })
        .await?;
        if !answer.contains("\"ok\":true") {
            bail!("{event} was refused: {answer}");
        }
    }
    goodbye(websocket, lifecycle).await
}

/// One long-polling request on a connection of its own; the response body.
async fn polling_request(
    tcp: Option<TcpStream>,
    target: SocketAddr,
    query: &str,
    post: Option<&str>,
    reset: bool,
) -> anyhow::Result<String> {
    let mut stream = match tcp {
        Some(stream) => stream,
        None => TcpStream::connect(target).await?,
    };
    let path = format!("/socket.io/?EIO=4&transport=polling{query}");
    let request = match post {
        None => format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"),
        Some(body) => format!(
            "POST {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    };
    stream.write_all(request.as_bytes()).await?;
    if reset {
        // Gone while the request waits: the server must notice on its own.
        net::reset(&stream);
        return Ok(String::new());
    }
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no response head")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("polling answered {head}");
    }
    Ok(body.to_owned())
}

async fn rooms_chat_polling(
    tcp: TcpStream,
    target: SocketAddr,
    name: &str,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let open = polling_request(Some(tcp), target, "", None, false).await?;
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no sid in the open packet")?
        .to_owned();
    let query = format!("&sid={sid}");
    polling_request(None, target, &query, Some(socketio::CONNECT), false).await?;
    let mut received = polling_request(None, target, &query, None, false).await?;
    let room = room_of(name);
    let requests = [
        ("join", json!({"room": room, "name": name})),
        (
            "message",
            json!({"room": room, "text": format!("bye from {name}")}),
        ),
        ("leave", json!({"room": room})),
    ];
    for (id, (event, data)) in (1u64..).zip(requests) {
        let packet = socketio::encode_event(Some(id), event, &data);
        polling_request(None, target, &query, Some(&packet), false).await?;
        // Packets of one response are separated by the record separator.
        let acked = |body: &str| {
            body.split('\u{1e}')
                .any(|packet| matches!(socketio::decode(packet), Inbound::Ack { id: acked, .. } if acked == id))
        };
        while !acked(&received) {
            received = polling_request(None, target, &query, None, false).await?;
            if received.split('\u{1e}').any(|packet| packet == "2") {
                polling_request(None, target, &query, Some(socketio::PONG), false).await?;
            }
        }
    }
    if lifecycle.reset {
        polling_request(None, target, &query, None, true).await?;
    } else {
        // Engine.IO close.
        polling_request(None, target, &query, Some("1"), false).await?;
    }
    Ok(())
}

async fn sse_stream(
    mut tcp: TcpStream,
    target: SocketAddr,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    http::write_get(&mut tcp, &target.to_string(), "/events?symbols=AAPL", &[]).await?;
    let head = http::read_head(&mut tcp).await?;
    if head.status != 200 {
        bail!("/events answered {}", head.status);
    }
    // Wait for the snapshot, then go.
    let mut seen = head.body_start.to_vec();
    while !seen.windows(8).any(|window| window == b"snapshot") {
        let mut buffer = [0u8; 2048];
        let read = tcp.read(&mut buffer).await?;
        if read == 0 {
            bail!("the stream ended before its snapshot");
        }
        seen.extend_from_slice(&buffer[..read]);
    }
    if lifecycle.reset {
        net::reset(&tcp);
    }
    Ok(())
}
