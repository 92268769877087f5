//! Throwaway measurement client: holds N `/events` streams open against a
//! running server, reads and discards, and prints bytes read per second.
//! Usage: hold_streams <addr> <streams> <seconds>

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args[1].clone();
    let streams: usize = args[2].parse().unwrap();
    let seconds: u64 = args[3].parse().unwrap();
    let bytes = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    for index in 0..streams {
        let addr = addr.clone();
        let bytes = bytes.clone();
        let open = open.clone();
        tokio::spawn(async move {
            // Several loopback source addresses: one has too few ports.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            let source: std::net::SocketAddr = format!("127.0.0.{}:0", 2 + index % 16).parse().unwrap();
            socket.bind(source).unwrap();
            let mut socket = match socket.connect(addr.parse().unwrap()).await {
                Ok(socket) => socket,
                Err(error) => {
                    eprintln!("connect {index}: {error}");
                    return;
                }
            };
            let request = format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            socket.write_all(request.as_bytes()).await.unwrap();
            open.fetch_add(1, Ordering::Relaxed);
            let mut buffer = vec![0u8; 4096];
            loop {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        bytes.fetch_add(read as u64, Ordering::Relaxed);
                    }
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
        if index % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let read = bytes.swap(0, Ordering::Relaxed);
        println!(
            "open {} read {} KB/s",
            open.load(Ordering::Relaxed),
            read / 1024
        );
    }
}
