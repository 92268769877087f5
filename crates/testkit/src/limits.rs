//! What the connection-limit tests of every app do: connect from a chosen
//! loopback address (all of 127.0.0.0/8 reaches a server on Linux, each
//! address its own client), upgrade to a WebSocket or be refused, wait for
//! a place to come back, and flood the server the way a misbehaving client
//! does (many connections from one address that never send a byte) to see
//! that the probes still answer from that very address.

use anyhow::{Context, Result};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{WebSocketStream, client_async};

/// How long a closed connection may take to give its place back.
const PLACE_PATIENCE: Duration = Duration::from_secs(5);

/// `127.0.0.<last>`: a client address of its own.
pub fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to `addr` from the local address `from`.
pub async fn connect_from(addr: SocketAddr, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind to a loopback address");
    socket.connect(addr).await.expect("connect")
}

/// A WebSocket upgrade of `GET path` from `from`: the socket, or the
/// status the server refused it with.
pub async fn upgrade_from(
    addr: SocketAddr,
    path: &str,
    from: IpAddr,
) -> Result<WebSocketStream<TcpStream>, u16> {
    let stream = connect_from(addr, from).await;
    let url = format!("ws://{addr}{path}");
    let request = url.into_client_request().expect("a WebSocket URL");
    match client_async(request, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("unexpected upgrade error: {error}"),
    }
}

/// Tries `attempt` until it is admitted: a server sees a closed connection
/// a moment after its client closed it, and gives its place back then.
pub async fn when_a_place_is_free<T, F>(mut attempt: impl FnMut() -> F) -> T
where
    F: Future<Output = Result<T, u16>>,
{
    let deadline = Instant::now() + PLACE_PATIENCE;
    loop {
        match attempt().await {
            Ok(admitted) => return admitted,
            Err(status) => assert!(Instant::now() < deadline, "still refused: {status}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Floods `addr` with `count` silent connections from 127.0.0.1, then
/// checks that `/healthz` and `/metrics`, asked from the same address,
/// answer `200` within a second.
pub async fn assert_probes_answer_under_a_flood(addr: SocketAddr, count: usize) {
    let flood = silent_connections(addr, count)
        .await
        .expect("the flood connects");
    for path in ["/healthz", "/metrics"] {
        let (status, response) = get_within(addr, path, Duration::from_secs(1))
            .await
            .expect("the probe is answered");
        assert_eq!(status, 200, "{path}: {response}");
    }
    drop(flood);
}

/// Opens `count` connections to `addr` from 127.0.0.1 that send nothing;
/// the server may refuse and close some of them, the rest it holds.
pub async fn silent_connections(addr: SocketAddr, count: usize) -> Result<Vec<TcpStream>> {
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        connections.push(TcpStream::connect(addr).await.context("connect")?);
    }
    Ok(connections)
}

/// The status and whole response of `GET path` on a connection of its
/// own; an error unless it is complete within `within`.
pub async fn get_within(addr: SocketAddr, path: &str, within: Duration) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(within, exchange)
        .await
        .with_context(|| format!("GET {path} not answered within {within:?}"))??;
    let status = response
        .get(9..12)
        .and_then(|status| status.parse().ok())
        .with_context(|| format!("GET {path}: not an HTTP response: {response:?}"))?;
    Ok((status, response))
}
