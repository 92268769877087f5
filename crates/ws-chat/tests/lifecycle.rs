//! The life of sockets and of the process: dead peers and slow readers are
//! dropped without hurting the others, SIGTERM closes every socket with
//! 1001, and the HTTP side (page, health, metrics) answers.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, http_get, metric, start};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let server = start(&[("PING_MS", "200")]).await;
    let (mut watcher, _) = Client::join(&server, "watcher").await;
    // Never read again, so tungstenite never answers the server's pings.
    let (silent, silent_welcome) = Client::join(&server, "silent").await;
    watcher.next_of("joined").await;

    // The watcher keeps reading (and so answering pings) while it waits.
    let left = watcher.next_of("left").await;
    assert_eq!(left["user"], silent_welcome["you"]);
    drop(silent);

    // The watcher, answering its pings, is still there.
    watcher.say("still here").await;
    assert_eq!(watcher.next_of("message").await["text"], "still here");
}

#[tokio::test]
async fn a_reader_that_never_reads_is_cut_off_without_delaying_the_others() {
    // The fast client sends one message per round trip, so each coalescing
    // window would hold a single frame and only add its delay: publish at once.
    let server = start(&[
        ("MSG_RATE", "0"),
        ("QUEUE_LEN", "16"),
        ("WRITE_DELAY_MS", "0"),
    ])
    .await;
    let (mut fast, _) = Client::join(&server, "fast").await;
    let (_slow, _) = Client::join(&server, "slow").await;
    fast.next_of("joined").await;

    // Large messages fill the slow reader's socket buffers quickly; the fast
    // client waits for each of its messages before sending the next, so it
    // never falls behind itself. Nothing guesses how much the kernel
    // buffers: it goes on until the slow reader is reported gone.
    let text = "ü".repeat(2000);
    let mut last_id = 0;
    let mut slow_left = false;
    for _ in 0..5000 {
        fast.say(&text).await;
        loop {
            let frame = fast.next().await;
            match frame["type"].as_str().unwrap() {
                "message" => {
                    let id = frame["id"].as_u64().unwrap();
                    assert!(id > last_id);
                    last_id = id;
                    break;
                }
                "left" => {
                    assert_eq!(frame["user"]["name"], "slow");
                    slow_left = true;
                }
                other => panic!("unexpected {other}"),
            }
        }
        if slow_left {
            break;
        }
    }
    assert!(slow_left, "the slow reader was never cut off");

    let (_, metrics) = http_get(&server, "/metrics").await;
    assert_eq!(metric(&metrics, "chat_slow_disconnects_total"), 1.0);
    assert_eq!(metric(&metrics, "chat_users"), 1.0);
}

#[tokio::test]
async fn sigterm_closes_every_socket_with_1001_and_exits_quickly() {
    let mut server = start(&[]).await;
    let (mut joined, _) = Client::join(&server, "alice").await;
    let mut lurker = Client::connect(&server).await;
    // A reader that never reads must not hold the exit up either.
    let (_stuck, _) = Client::join(&server, "stuck").await;
    joined.next_of("joined").await;

    server.terminate().unwrap();
    assert_eq!(joined.closed().await, Some(CloseCode::Away));
    assert_eq!(lurker.closed().await, Some(CloseCode::Away));
    let status = server.wait_exit(Duration::from_secs(5)).await.unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_page_health_and_metrics_answer() {
    let server = start(&[]).await;
    let (status, page) = http_get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<html"), "{page}");
    assert!(page.contains("app.js"));
    for asset in ["/app.js", "/style.css"] {
        assert_eq!(http_get(&server, asset).await.0, 200, "{asset}");
    }
    assert_eq!(http_get(&server, "/nope").await.0, 404);

    let (status, health) = http_get(&server, "/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");

    let (mut alice, _) = Client::join(&server, "alice").await;
    alice.say("counted").await;
    alice.next().await;
    let (status, metrics) = http_get(&server, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(metric(&metrics, "connections_open"), 1.0);
    assert_eq!(metric(&metrics, "chat_users"), 1.0);
    assert_eq!(metric(&metrics, "chat_broadcasts_total"), 1.0);
    assert!(metric(&metrics, "messages_in_total") >= 2.0);
    assert!(metric(&metrics, "messages_out_total") >= 2.0);
}
