//! The connection limits of the real binary hold for Engine.IO's WebSockets
//! and for its long-polling sessions alike: each connection holds its
//! place in `MAX_CONNECTIONS` and `MAX_CONNECTIONS_PER_IP` until it closes,
//! and gives it back then; and the probes answer under a flood from their
//! own address.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use testkit::TestServer;
use testkit::limits::{connect_from, loopback, upgrade_from, when_a_place_is_free};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

const BINARY: &str = env!("CARGO_BIN_EXE_rooms-chat");

const WEBSOCKET: &str = "/socket.io/?EIO=4&transport=websocket";
const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(5);

/// What a client holds open: a WebSocket, or a long-polling session's
/// pending poll.
#[expect(dead_code, reason = "held only for the connection it keeps open")]
enum Held {
    WebSocket(Box<WebSocketStream<TcpStream>>),
    Poll(TcpStream),
}

/// An Engine.IO WebSocket from `127.0.0.<last>`, or the status the server
/// refused it with.
async fn websocket(server: &TestServer, last: u8) -> Result<Held, u16> {
    let socket = upgrade_from(server.addr, WEBSOCKET, loopback(last)).await?;
    Ok(Held::WebSocket(Box::new(socket)))
}

/// One request on `stream` (kept alive): the status and the body.
async fn request(stream: &mut TcpStream, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let len = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(len > 0, "closed: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&chunk[..len]);
        let text = String::from_utf8_lossy(&response).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if body.len() >= length {
            return (text[9..12].parse().unwrap(), body.to_owned());
        }
    }
}

/// A long-polling session from `from` whose first poll waits on its
/// connection (Engine.IO answers it only at the next ping), or the status
/// the handshake was refused with.
async fn polling_session(server: &TestServer, last: u8) -> Result<Held, u16> {
    let mut stream = connect_from(server.addr, loopback(last)).await;
    let (status, body) = request(&mut stream, POLLING).await;
    if status != 200 {
        return Err(status);
    }
    let sid = body
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no sid in {body}"));
    let poll = format!("GET {POLLING}&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(poll.as_bytes()).await.unwrap();
    Ok(Held::Poll(stream))
}

fn status_of(outcome: &Result<Held, u16>) -> u16 {
    match outcome {
        Ok(Held::WebSocket(_)) => 101,
        Ok(Held::Poll(_)) => 200,
        Err(status) => *status,
    }
}

#[tokio::test]
async fn websockets_and_polling_sessions_hold_their_place_under_the_cap() {
    let server = TestServer::start(
        BINARY,
        &[
            ("MAX_CONNECTIONS", "10"),
            ("MAX_CONNECTIONS_PER_IP", "0"),
            ("HANDSHAKE_RATE", "0"),
        ],
    )
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(websocket(&server, 1).await);
        held.push(polling_session(&server, 1).await);
    }
    assert!(
        held.iter().all(|outcome| outcome.is_ok()),
        "{:?}",
        held.iter().map(status_of).collect::<Vec<_>>()
    );
    let past_cap = [
        websocket(&server, 1).await,
        polling_session(&server, 1).await,
    ];
    assert_eq!(past_cap.each_ref().map(status_of), [503, 503]);

    // Every WebSocket and every pending poll closes: their places come back.
    drop(held);
    let mut back = Vec::new();
    for _ in 0..10 {
        back.push(when_a_place_is_free(|| websocket(&server, 1)).await);
    }
    assert_eq!(status_of(&websocket(&server, 1).await), 503);
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_sessions() {
    let server = TestServer::start(
        BINARY,
        &[("MAX_CONNECTIONS_PER_IP", "4"), ("HANDSHAKE_RATE", "0")],
    )
    .await
    .unwrap();
    let mut held = vec![
        websocket(&server, 1).await,
        websocket(&server, 1).await,
        polling_session(&server, 1).await,
        polling_session(&server, 1).await,
    ];
    assert_eq!(
        held.iter().map(status_of).collect::<Vec<_>>(),
        [101, 101, 200, 200]
    );
    assert_eq!(status_of(&websocket(&server, 1).await), 429);
    assert_eq!(status_of(&polling_session(&server, 1).await), 429);
    let other = websocket(&server, 2).await;
    assert_eq!(status_of(&other), 101, "another address has its own share");

    // The two polling sessions end their connections: two places come back.
    held.truncate(2);
    let _first = when_a_place_is_free(|| websocket(&server, 1)).await;
    let _second = when_a_place_is_free(|| websocket(&server, 1)).await;
    assert_eq!(status_of(&websocket(&server, 1).await), 429);
}

#[tokio::test]
async fn the_probes_answer_under_a_flood_from_their_own_address() {
    // The defaults, under a small open-files limit: 600 silent connections
    // from one address take the address's share, its handshake rate and
    // every reserve the server has for the refused.
    let server = TestServer::start_with_open_files(BINARY, 400, &[])
        .await
        .unwrap();
    testkit::limits::assert_probes_answer_under_a_flood(server.addr, 600).await;
}
