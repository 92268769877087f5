//! The connection limits of the real binary, over real sockets: at its cap,
//! out of file descriptors and under a flood from their own address,
//! `/healthz` and `/metrics` still answer and everybody else gets a quick
//! `503` or `429`, not a hang. The server runs under a
//! small open-files limit (`ulimit -n`, hard and soft, so that it cannot
//! raise it) while the test process keeps its own.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::BINARY;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's open-files limit in these tests.
const OPEN_FILES: u32 = 256;

/// sse-stocks under `ulimit -n OPEN_FILES` with `env`; killed when dropped.
async fn start(env: &[(&str, &str)]) -> TestServer {
    let mut env = env.to_vec();
    env.push(("TICK_MS", "200"));
    TestServer::start_with_open_files(BINARY, OPEN_FILES, &env)
        .await
        .expect("sse-stocks starts")
}

/// Opens an `/events` stream; returns the status the server answered (0
/// when it closed without one) and the connection, held open.
async fn open_stream(addr: SocketAddr) -> (u16, TcpStream) {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(b"GET /events?symbols=AAPL HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    let status =
        match tokio::time::timeout(Duration::from_secs(30), socket.read_exact(&mut head)).await {
            Ok(Ok(_)) => std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap(),
            Ok(Err(_)) => 0,
            Err(_) => panic!("no answer within 30 s: a client was left hanging"),
        };
    (status, socket)
}

/// Opens `count` streams at once.
async fn open_streams(addr: SocketAddr, count: usize) -> Vec<(u16, TcpStream)> {
    let tasks: Vec<_> = (0..count)
        .map(|_| tokio::spawn(open_stream(addr)))
        .collect();
    let mut streams = Vec::new();
    for task in tasks {
        streams.push(task.await.unwrap());
    }
    streams
}

async fn body_of(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut response))
        .await
        .expect("an answer within 20 s")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    (response[9..12].parse().unwrap(), response)
}

fn count(streams: &[(u16, TcpStream)], status: u16) -> usize {
    streams.iter().filter(|(got, _)| *got == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_default_cap_streams_get_503_and_the_probes_still_answer() {
    let server = start(&[("MAX_CONNECTIONS_PER_IP", "0"), ("HANDSHAKE_RATE", "0")]).await;
    // The default cap: 256 less a reserve of 64.
    let cap = ops::admission::default_max_connections(OPEN_FILES.into());
    let mut streams = open_streams(server.addr, cap).await;
    assert_eq!(
        count(&streams, 200),
        cap,
        "the first {cap} streams are served"
    );
    // Every one past the cap is refused before its stream starts (by the
    // limit, or with 60 more at once possibly for want of a descriptor).
    let past_cap = open_streams(server.addr, 60).await;
    assert_eq!(count(&past_cap, 503), past_cap.len(), "past the cap: 503");
    streams.extend(past_cap);

    let (status, body) = body_of(server.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, metrics) = body_of(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("connections_refused_total{reason=\"max_connections\"}"),
        "{metrics}"
    );
    drop(streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_probes_still_answer_and_the_rest_get_503() {
    // A cap above what the process may open: it runs out of descriptors.
    let server = start(&[
        ("MAX_CONNECTIONS", "100000"),
        ("MAX_CONNECTIONS_PER_IP", "0"),
        ("HANDSHAKE_RATE", "0"),
    ])
    .await;
    let streams = open_streams(server.addr, OPEN_FILES as usize + 40).await;
    let (admitted, refused) = (count(&streams, 200), count(&streams, 503));
    assert!(admitted > 0 && admitted < OPEN_FILES as usize, "{admitted}");
    assert_eq!(admitted + refused, streams.len(), "only 200 or 503");

    // Every descriptor is held by a stream, yet the probes are served.
    let (status, body) = body_of(server.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, metrics) = body_of(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("connections_refused_total{reason=\"out_of_descriptors\"}"),
        "{metrics}"
    );
    drop(streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_answer_under_a_flood_from_their_own_address() {
    // The defaults, under a small open-files limit: silent connections
    // from one address take the address's share, its handshake rate and
    // every reserve the server has for the refused.
    let server = start(&[]).await;
    testkit::limits::assert_probes_answer_under_a_flood(server.addr, 400).await;
}
