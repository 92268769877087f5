//! The physical reference: a raw tokio TCP fan-out server. Clients send
//! `JOIN <room>\n`, then `<room> <text>\n` lines; every line goes, as one
//! shared `Bytes`, to every member of the room, through a bounded queue per
//! socket and a writer task. It does what a chat server must do at the
//! least: no JSON, no framing, no validation. Delivery costs are compared
//! with it, in two shapes: one write per frame (`--frames-per-write 1`, the
//! floor of a server that does not batch) and as many frames per write as
//! the server under test made (`--frames-per-write N`); 0 writes whatever
//! is waiting.

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Duration, timeout};

/// Lines a slow socket may have waiting before new ones are dropped.
const QUEUE_LINES: usize = 4096;
/// Most bytes one batched write gathers.
const BATCH_BYTES: usize = 64 * 1024;
/// How long a writer gathering N frames waits for the rest of them before
/// it writes what it has (the end of a burst, the end of the run).
const RAW_GATHER: Duration = Duration::from_millis(50);

type Members = HashMap<u64, mpsc::Sender<Bytes>>;

#[derive(Default)]
struct Rooms {
    rooms: Mutex<HashMap<String, Members>>,
    next_id: AtomicU64,
    dropped: AtomicU64,
}

/// Serves until the process is stopped.
pub async fn serve(listener: TcpListener, frames_per_write: usize) -> anyhow::Result<()> {
    let rooms = Arc::new(Rooms::default());
    loop {
        let (stream, _) = listener.accept().await.context("accepting")?;
        // Nagle off, as every server compared with it has: a write is a segment.
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, rooms.clone(), frames_per_write));
    }
}

/// Appends frames from `waiting` to `batch` until it holds `frames` of them
/// (0: until nothing more is waiting), or `BATCH_BYTES`.
async fn gather(waiting: &mut mpsc::Receiver<Bytes>, batch: &mut BytesMut, frames: usize) {
    let mut count = 1;
    while batch.len() < BATCH_BYTES && (frames == 0 || count < frames) {
        let more = if frames == 0 {
            waiting.try_recv().ok()
        } else {
            timeout(RAW_GATHER, waiting.recv()).await.ok().flatten()
        };
        let Some(more) = more else { break };
        batch.extend_from_slice(&more);
        count += 1;
    }
}

async fn connection(stream: TcpStream, rooms: Arc<Rooms>, frames_per_write: usize) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
        return;
    }
    let Some(room) = std::str::from_utf8(&line)
        .ok()
        .and_then(|text| text.trim_end().strip_prefix("JOIN "))
        .map(str::to_owned)
    else {
        return;
    };
    let id = rooms.next_id.fetch_add(1, Ordering::Relaxed);
    let (queue, mut waiting) = mpsc::channel::<Bytes>(QUEUE_LINES);
    rooms
        .rooms
        .lock()
        .entry(room.clone())
        .or_default()
        .insert(id, queue.clone());
    // The queue was just made with room for more than this line.
    let _ = queue.try_send(Bytes::from_static(b"JOINED\n"));
    drop(queue);
    let writer = tokio::spawn(async move {
        let mut batch = BytesMut::new();
        while let Some(first) = waiting.recv().await {
            batch.extend_from_slice(&first);
            gather(&mut waiting, &mut batch, frames_per_write).await;
            if write.write_all(&batch).await.is_err() {
                break;
            }
            batch.clear();
        }
    });
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => broadcast(&rooms, Bytes::copy_from_slice(&line)),
        }
    }
    if let Some(members) = rooms.rooms.lock().get_mut(&room) {
        members.remove(&id);
    }
    writer.abort();
}

fn broadcast(rooms: &Rooms, line: Bytes) {
    let Some(room) = line
        .split(|&byte| byte == b' ')
        .next()
        .and_then(|room| std::str::from_utf8(room).ok())
    else {
        return;
    };
    let rooms_guard = rooms.rooms.lock();
    let Some(members) = rooms_guard.get(room) else {
        return;
    };
    for queue in members.values() {
        if queue.try_send(line.clone()).is_err() {
            rooms.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn fans_lines_out_to_the_room_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, 0));
        let mut clients = Vec::new();
        for room in ["a", "a", "b"] {
            let mut client = TcpStream::connect(address).await.unwrap();
            client
                .write_all(format!("JOIN {room}\n").as_bytes())
                .await
                .unwrap();
            let mut joined = [0; 7];
            client.read_exact(&mut joined).await.unwrap();
            assert_eq!(&joined, b"JOINED\n");
            clients.push(client);
        }
        clients[0].write_all(b"a hello\n").await.unwrap();
        for client in &mut clients[..2] {
            let mut line = [0; 8];
            client.read_exact(&mut line).await.unwrap();
            assert_eq!(&line, b"a hello\n");
        }
        let mut nothing = [0; 1];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            clients[2].read(&mut nothing),
        )
        .await;
        assert!(read.is_err(), "room b must not receive room a's line");
    }
}
