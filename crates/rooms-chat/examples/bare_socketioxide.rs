//! The floor under rooms-chat's memory per socket: socketioxide with the
//! same Engine.IO buffers and nothing of ours. Its only event is `join`,
//! answered with an empty ack of the contract's shape, so that the load
//! generator's idle scenario can hold joined sockets on it:
//!
//!     PORT=3900 cargo run --release -p rooms-chat --example bare_socketioxide
//!     loadgen idle --proto rooms-chat --target 127.0.0.1:3900 --server-pid <pid> --clients 19000
//!
//! BENCHMARKS.md compares its KiB per idle socket with rooms-chat's.
//!
//! With `BARE_NOTICES=1` a join is the contract's: its ack lists the
//! room's members by name, and it tells the room's other members
//! (`socket.to(room).emit("user_joined", …)`, as any Socket.IO chat does).
//! That is the same traffic as rooms-chat's joins, through socketioxide
//! alone, and it costs memory in socketioxide's stack: a socket that has
//! received many packets keeps more of its queue's blocks, and its
//! WebSocket write buffer keeps the size of the largest frame it ever
//! wrote, which in a big room is the join ack's member list. So this is
//! the floor for the same traffic.
//!
//! Its `message` event is socketioxide's own fan-out: the text goes to the
//! room (`socket.within(room).emit`, encoded once for every member) and
//! the sender gets the contract's ack. The load generator's fan-out
//! scenario run against it gives socketioxide's floor for CPU per
//! delivery, beside rooms-chat's in BENCHMARKS.md.

use anyhow::Result;
use ops::Shutdown;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Message ids: one sequence for every room (increasing in each).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<()> {
    ops::limits::raise_open_files_limit();
    let port: u16 = ops::env::env_or("PORT", 3900)?;
    let (service, io) = SocketIo::builder()
        // As rooms-chat's routes.rs sets it.
        .ws_read_buffer_size(256)
        .build_svc();
    // As rooms-chat does: handlers set in a connect middleware are in place
    // before the client may send its first event.
    if ops::env::env_or("BARE_NOTICES", 0u8)? == 1 {
        io.ns("/", on_connect.with(set_up_with_notices));
    } else {
        io.ns("/", on_connect.with(set_up));
    }
    let limits = ops::admission::AdmissionConfig::from_env()?;
    let listener = ops::server::bind(([127, 0, 0, 1], port).into()).await?;
    ops::server::Server::new(service, limits)
        .serve(listener, Shutdown::on_signals()?)
        .await;
    Ok(())
}

async fn set_up(socket: SocketRef) -> Result<(), Infallible> {
    socket.on("join", on_join);
    socket.on("message", on_message);
    Ok(())
}

async fn set_up_with_notices(socket: SocketRef) -> Result<(), Infallible> {
    socket.on("join", on_join_with_notice);
    socket.on("message", on_message);
    Ok(())
}

async fn on_connect() {}

async fn on_join(socket: SocketRef, TryData(request): TryData<Value>, ack: AckSender) {
    let request = request.unwrap_or(Value::Null);
    let room = room_of(&request);
    socket.join(room.clone());
    // A client gone before its ack has nobody to tell.
    let _ = ack.send(&json!({"ok": true, "room": room, "members": [], "history": []}));
}

/// The name a member joined with, kept in its socket's extensions.
#[derive(Clone)]
struct Name(String);

async fn on_join_with_notice(socket: SocketRef, TryData(request): TryData<Value>, ack: AckSender) {
    let request = request.unwrap_or(Value::Null);
    let room = room_of(&request);
    let name = request["name"].as_str().unwrap_or_default().to_owned();
    socket.extensions.insert(Name(name.clone()));
    socket.join(room.clone());
    let members: Vec<String> = socket
        .within(room.clone())
        .sockets()
        .iter()
        .filter_map(|member| member.extensions.get::<Name>().map(|Name(name)| name))
        .collect();
    let _ = ack.send(&json!({"ok": true, "room": room, "members": members, "history": []}));
    let notice = json!({"room": room, "name": name, "ts": 0});
    // A member whose queue is full misses it: fine for a floor of memory.
    let _ = socket.to(room).emit("user_joined", &notice).await;
}

async fn on_message(socket: SocketRef, TryData(request): TryData<Value>, ack: AckSender) {
    let request = request.unwrap_or(Value::Null);
    let room = room_of(&request);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let message = json!({
        "id": id, "room": room, "from": socket.id.to_string(),
        "text": request["text"], "ts": ts,
    });
    // A member whose queue is full misses it: socketioxide's own policy.
    let _ = socket.within(room).emit("message", &message).await;
    let _ = ack.send(&json!({"ok": true, "id": id, "ts": ts}));
}

/// The room a request names (a floor for memory and CPU needs no checks).
fn room_of(request: &Value) -> String {
    request["room"].as_str().unwrap_or("general").to_owned()
}
