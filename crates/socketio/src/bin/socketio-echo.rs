//! A small server on the runtime, for its tests (Rust and the official
//! Node client) and as an example of the handler table: sockets connect
//! with an auth object, echo, join rooms whose events are encoded once
//! for all members, ask for a flood of events, get kicked or cut off.
//!
//! SIGTERM shuts it down as an app would: every session closed, so that
//! clients reconnect elsewhere.
//!
//! Settings from the environment: `HOST`, `PORT`, `PING_INTERVAL_MS`,
//! `PING_TIMEOUT_MS`, `MAX_PAYLOAD`, `MAX_QUEUED`, `CONNECT_TIMEOUT_MS`.

use anyhow::{Context, Result};
use parking_lot::Mutex;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use socketio::{
    Accepted, Config, Connect, Cx, Frame, Handlers, Reason, Refusal, SocketIo, SocketRef,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The app's state: its rooms and their members.
#[derive(Default)]
struct Echo {
    rooms: Mutex<HashMap<String, Vec<SocketRef<Member>>>>,
}

/// What the app keeps about one socket.
struct Member {
    auth: Value,
}

type EchoCx = Cx<Echo, Member>;

/// The apps' allocator (see rooms-chat's main.rs), so that the echo
/// server's memory per socket compares with theirs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Deserialize)]
struct Join {
    room: String,
}

#[derive(Deserialize)]
struct Say {
    room: String,
    text: String,
}

#[derive(Deserialize)]
struct Flood {
    count: u32,
    size: usize,
}

/// A socket whose auth says `{"deny":true}` is refused.
async fn connect(request: Connect<Echo>) -> Result<Accepted<Member>, Refusal> {
    if request.auth.get("deny") == Some(&Value::Bool(true)) {
        return Err(Refusal {
            message: "denied by the app".into(),
            data: Some(json!({"code": "denied"})),
        });
    }
    Ok(Accepted::new(Member { auth: request.auth }))
}

async fn echo(cx: EchoCx, data: Value) {
    cx.ack.send(&data);
}

async fn whoami(cx: EchoCx, _: IgnoredAny) {
    let socket = &cx.socket;
    cx.ack
        .send(&json!({"id": socket.id(), "auth": socket.data().auth}));
}

async fn join(cx: EchoCx, request: Join) {
    let mut rooms = cx.app.rooms.lock();
    let members = rooms.entry(request.room).or_default();
    if !members.iter().any(|member| Arc::ptr_eq(member, &cx.socket)) {
        members.push(cx.socket.clone());
    }
    drop(rooms);
    cx.ack.send(&json!({"ok": true}));
}

/// One frame, encoded once, for every member of the room.
async fn say(cx: EchoCx, request: Say) {
    let event = json!({"room": request.room, "text": request.text, "from": cx.socket.id()});
    match Frame::event("said", &event) {
        Ok(frame) => {
            let rooms = cx.app.rooms.lock();
            for member in rooms.get(&request.room).into_iter().flatten() {
                member.send(&frame);
            }
            drop(rooms);
            cx.ack.send(&json!({"ok": true}));
        }
        Err(error) => cx
            .ack
            .send(&json!({"ok": false, "error": error.to_string()})),
    }
}

/// `count` events of `size` bytes each to the asking socket, numbered,
/// as fast as they can be built (a copy each, no serializer), so that
/// the flood outruns any reader.
async fn flood(cx: EchoCx, request: Flood) {
    let filler = "x".repeat(request.size);
    for n in 0..request.count {
        let event = format!(r#"42["flood",{{"n":{n},"filler":"{filler}"}}]"#);
        cx.socket.send(&Frame::new(event.as_bytes()));
    }
    cx.ack.send(&json!({"ok": true, "sent": request.count}));
}

/// Waits, then answers: events after it wait for it.
async fn slow(cx: EchoCx, millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    cx.ack.send(&json!({"ok": true, "slept": millis}));
}

/// A bug in a handler: it panics. Only this socket's session may end.
async fn crash(_: EchoCx, _: IgnoredAny) {
    panic!("the crash event was asked for");
}

async fn kick(cx: EchoCx, _: IgnoredAny) {
    cx.socket.disconnect();
}

/// Ends the connection, not the socket: the client should reconnect.
async fn cut(cx: EchoCx, _: IgnoredAny) {
    cx.socket.cut_off();
}

async fn disconnected(app: Arc<Echo>, socket: SocketRef<Member>, reason: Reason) {
    tracing::debug!(id = socket.id(), ?reason, "disconnected");
    for members in app.rooms.lock().values_mut() {
        members.retain(|member| !Arc::ptr_eq(member, &socket));
    }
}

/// SIGTERM or SIGINT.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name} must be a number, not {value:?}")),
        Err(_) => Ok(default),
    }
}

fn config() -> Result<Config> {
    let default = Config::default();
    Ok(Config {
        ping_interval: Duration::from_millis(env_number("PING_INTERVAL_MS", 25_000)?),
        ping_timeout: Duration::from_millis(env_number("PING_TIMEOUT_MS", 20_000)?),
        max_payload: env_number("MAX_PAYLOAD", default.max_payload as u64)? as usize,
        max_queued: env_number("MAX_QUEUED", default.max_queued as u64)? as usize,
        connect_timeout: Duration::from_millis(env_number("CONNECT_TIMEOUT_MS", 45_000)?),
        ..default
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let handlers = Handlers::new(connect)
        .on("echo", echo)
        .on("whoami", whoami)
        .on("join", join)
        .on("say", say)
        .on("flood", flood)
        .on("slow", slow)
        .on("kick", kick)
        .on("cut", cut)
        .on("crash", crash)
        .on_disconnect(disconnected);
    let io = SocketIo::new(config()?, Arc::new(Echo::default()), handlers);
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = env_number("PORT", 3000)?;
    let listener = TcpListener::bind(format!("{host}:{port}"))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    tracing::info!(addr = %listener.local_addr()?, "socketio-echo listening");
    tokio::select! {
        () = socketio::standalone::serve(listener, io.clone()) => {}
        () = terminated() => io.shut_down(Duration::from_secs(3)).await,
    }
    Ok(())
}
