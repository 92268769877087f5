//! The connection limits of the real binary hold for WebSockets, which live
//! for hours after their upgrade: each holds its place in `MAX_CONNECTIONS`
//! and `MAX_CONNECTIONS_PER_IP` until it closes, and gives it back then;
//! and the probes answer under a flood from their own address.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{http_get, metric};
use testkit::TestServer;
use testkit::limits::{loopback, upgrade_from, when_a_place_is_free};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-chat");

type Socket = WebSocketStream<TcpStream>;

/// `GET /ws` upgraded from `127.0.0.<last>`, or the status it was refused with.
async fn upgrade(server: &TestServer, last: u8) -> Result<Socket, u16> {
    upgrade_from(server.addr, "/ws", loopback(last)).await
}

/// `count` upgrades from `127.0.0.<last>`, one after the other.
async fn upgrades(server: &TestServer, last: u8, count: usize) -> Vec<Result<Socket, u16>> {
    let mut outcomes = Vec::new();
    for _ in 0..count {
        outcomes.push(upgrade(server, last).await);
    }
    outcomes
}

fn statuses(outcomes: &[Result<Socket, u16>]) -> Vec<u16> {
    outcomes
        .iter()
        .map(|outcome| outcome.as_ref().map_or_else(|status| *status, |_| 101))
        .collect()
}

#[tokio::test]
async fn websockets_hold_their_place_under_the_cap_until_they_close() {
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
    let mut held = upgrades(&server, 1, 20).await;
    let expected: Vec<u16> = [[101; 10], [503; 10]].concat();
    assert_eq!(statuses(&held), expected, "the cap holds after the upgrade");

    let (status, metrics) = http_get(&server, "/metrics").await;
    assert_eq!(status, 200);
    // The ten sockets, the scrape itself, and refused upgrades whose
    // answer may still linger.
    let open = metric(&metrics, "tcp_connections");
    assert!((11.0..=21.0).contains(&open), "{open} connections counted");

    // Five sockets close: five places come back, and no more.
    held.truncate(5);
    let mut back = Vec::new();
    for _ in 0..5 {
        back.push(when_a_place_is_free(|| upgrade(&server, 1)).await);
    }
    assert_eq!(upgrade(&server, 1).await.err(), Some(503));
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_websockets() {
    let server = TestServer::start(
        BINARY,
        &[("MAX_CONNECTIONS_PER_IP", "5"), ("HANDSHAKE_RATE", "0")],
    )
    .await
    .unwrap();
    let mut held = upgrades(&server, 1, 6).await;
    assert_eq!(statuses(&held), [101, 101, 101, 101, 101, 429]);
    let other = upgrade(&server, 2).await;
    assert!(other.is_ok(), "another address has its own share");

    held.truncate(4);
    let _back = when_a_place_is_free(|| upgrade(&server, 1)).await;
    assert_eq!(upgrade(&server, 1).await.err(), Some(429));
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
