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
//! With `BARE_NOTICES=1` each join also tells the room's other members
//! (`socket.to(room).emit("user_joined", …)`, as any Socket.IO chat does):
//! the same traffic as rooms-chat's joins, through socketioxide alone. A
//! socket that has received many packets keeps more of socketioxide's
//! buffers than one that received two, so this is the floor for the same
//! traffic.

use anyhow::Result;
use ops::Shutdown;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use std::convert::Infallible;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<()> {
    ops::limits::raise_open_files_limit();
    let port: u16 = ops::config::env_or("PORT", 3900)?;
    let (service, io) = SocketIo::builder()
        // As rooms-chat's routes.rs sets it.
        .ws_read_buffer_size(256)
        .build_svc();
    // As rooms-chat does: handlers set in a connect middleware are in place
    // before the client may send its first event.
    if ops::config::env_or("BARE_NOTICES", 0u8)? == 1 {
        io.ns("/", on_connect.with(set_up_with_notices));
    } else {
        io.ns("/", on_connect.with(set_up));
    }
    let listener = ops::server::bind(([127, 0, 0, 1], port).into()).await?;
    ops::server::serve(listener, service, Shutdown::on_signals()?).await
}

async fn set_up(socket: SocketRef) -> Result<(), Infallible> {
    socket.on("join", on_join);
    Ok(())
}

async fn set_up_with_notices(socket: SocketRef) -> Result<(), Infallible> {
    socket.on("join", on_join_with_notice);
    Ok(())
}

async fn on_connect() {}

async fn on_join(socket: SocketRef, data: TryData<Value>, ack: AckSender) {
    join(&socket, data, ack);
}

async fn on_join_with_notice(socket: SocketRef, data: TryData<Value>, ack: AckSender) {
    let room = join(&socket, data, ack);
    let notice = json!({"room": room, "name": socket.id.to_string(), "ts": 0});
    // A member whose queue is full misses it: fine for a floor of memory.
    let _ = socket.to(room).emit("user_joined", &notice).await;
}

/// Joins the requested room and acks; the room's name.
fn join(socket: &SocketRef, TryData(request): TryData<Value>, ack: AckSender) -> String {
    let request = request.unwrap_or(Value::Null);
    let room = request["room"].as_str().unwrap_or("general").to_owned();
    socket.join(room.clone());
    // A client gone before its ack has nobody to tell.
    let _ = ack.send(&json!({"ok": true, "room": room, "members": [], "history": []}));
    room
}
