//! Bad input and abuse: each gets the contract's error code or close code,
//! never reaches the other clients, and never takes the server down.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, start, upgrade_status};
use futures::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn malformed_frames_get_bad_request_and_the_socket_stays_open() {
    let server = start(&[("MSG_RATE", "0")]).await;
    let (mut watcher, _) = Client::join(&server, "watcher").await;
    let (mut alice, _) = Client::join(&server, "alice").await;
    watcher.next_of("joined").await;

    for bad in [
        "not json",
        "{\"type\":\"message\"",
        "[]",
        "null",
        r#"{"type":"shout","text":"hi"}"#,
        r#"{"text":"no type"}"#,
        r#"{"type":"message","text":42}"#,
        r#"{"type":"message","text":["a"]}"#,
        r#"{"type":"hello","name":"bob"}"#,
    ] {
        alice.send_raw(Message::text(bad)).await;
        alice.expect_error("bad_request").await;
    }
    alice
        .send_raw(Message::binary(
            b"{\"type\":\"message\",\"text\":\"hi\"}".to_vec(),
        ))
        .await;
    let error = alice.expect_error("bad_request").await;
    assert!(error["message"].as_str().unwrap().contains("binary"));

    // Still open, still joined, and the others saw none of it.
    alice.say("still here").await;
    assert_eq!(alice.next().await["text"], "still here");
    let next = watcher.next().await;
    assert_eq!(next["text"], "still here", "{next}");
}

#[tokio::test]
async fn names_and_texts_outside_the_limits_are_refused() {
    let server = start(&[("MSG_RATE", "0")]).await;
    let mut client = Client::connect(&server).await;
    for bad_name in ["", "   ", &"n".repeat(33), "tab\there", "bell\u{7}"] {
        client
            .send(json!({"type": "hello", "name": bad_name}))
            .await;
        client.expect_error("bad_request").await;
    }
    client
        .send(json!({"type": "hello", "name": "ok", "clientId": "c".repeat(65)}))
        .await;
    client.expect_error("bad_request").await;

    client
        .send(json!({"type": "hello", "name": &"é".repeat(32)}))
        .await;
    assert_eq!(
        client.next().await["type"],
        "welcome",
        "32 characters is fine"
    );
    client.say("").await;
    client.expect_error("bad_request").await;
    client.say(" \n\t ").await;
    client.expect_error("bad_request").await;
    client.say(&"x".repeat(2001)).await;
    client.expect_error("too_large").await;
    // 2000 characters of 2 bytes each: the limit counts characters.
    let longest = "é".repeat(2000);
    client.say(&longest).await;
    assert_eq!(client.next().await["text"], longest);
}

#[tokio::test]
async fn messages_before_hello_are_not_joined() {
    let server = start(&[]).await;
    let mut client = Client::connect(&server).await;
    client.say("hi").await;
    client.expect_error("not_joined").await;
    client.send(json!({"type": "typing"})).await;
    client.expect_error("not_joined").await;
    client.send(json!({"type": "hello", "name": "late"})).await;
    assert_eq!(client.next().await["type"], "welcome");
    client.send(json!({"type": "hello", "name": "again"})).await;
    client.expect_error("bad_request").await;
}

#[tokio::test]
async fn a_frame_over_16_kib_closes_with_1009_and_the_server_lives_on() {
    let server = start(&[]).await;
    let (mut watcher, _) = Client::join(&server, "watcher").await;
    let (mut big, _) = Client::join(&server, "big").await;
    watcher.next_of("joined").await;

    let text = json!({"type": "message", "text": "x".repeat(17 * 1024)}).to_string();
    big.send_raw(Message::text(text)).await;
    assert_eq!(big.closed().await, Some(CloseCode::Size));
    assert_eq!(
        watcher.next().await["type"],
        "left",
        "nothing but its departure"
    );

    let (mut after, _) = Client::join(&server, "after").await;
    after.say("alive").await;
    assert_eq!(after.next().await["text"], "alive");
}

#[tokio::test]
async fn a_fast_sender_is_rate_limited_and_a_flood_is_cut_off() {
    let server = start(&[("MSG_RATE", "2")]).await;
    let (mut watcher, _) = Client::join(&server, "watcher").await;
    // The hello took one token of the burst of four.
    let (mut fast, _) = Client::join(&server, "fast").await;
    watcher.next_of("joined").await;
    for n in 0..6 {
        fast.say(&format!("burst {n}")).await;
    }
    let mut delivered = 0;
    let mut refused = 0;
    for _ in 0..6 {
        let frame = fast.next().await;
        match frame["type"].as_str().unwrap() {
            "message" => delivered += 1,
            "error" => {
                assert_eq!(frame["code"], "rate_limited");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!((2..=4).contains(&delivered), "{delivered} delivered");
    assert_eq!(delivered + refused, 6);

    // Flooding far past the limit ends with 1008.
    for _ in 0..200 {
        if fast
            .ws
            .send(Message::text(r#"{"type":"typing"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(fast.closed().await, Some(CloseCode::Policy));
    let left = watcher.next_of("left").await;
    assert_eq!(left["user"]["name"], "fast");
}

#[tokio::test]
async fn browser_origins_must_be_the_server_itself_or_allowed() {
    let server = start(&[(
        "ALLOWED_ORIGINS",
        "https://chat.example.com, http://localhost:3000",
    )])
    .await;
    let own = format!("http://{}", server.addr);
    assert_eq!(
        upgrade_status(&server, None).await,
        101,
        "non-browser clients"
    );
    assert_eq!(
        upgrade_status(&server, Some(&own)).await,
        101,
        "the page itself"
    );
    assert_eq!(
        upgrade_status(&server, Some("https://chat.example.com")).await,
        101
    );
    assert_eq!(
        upgrade_status(&server, Some("http://localhost:3000")).await,
        101
    );
    assert_eq!(
        upgrade_status(&server, Some("https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(&server, Some("null")).await, 403);
    let other_port = format!("http://127.0.0.1:{}", server.addr.port() + 1);
    assert_eq!(upgrade_status(&server, Some(&other_port)).await, 403);

    let default_server = start(&[]).await;
    assert_eq!(
        upgrade_status(&default_server, Some("https://chat.example.com")).await,
        403
    );
}

#[tokio::test]
async fn plain_requests_to_the_socket_path_are_refused() {
    let server = start(&[]).await;
    let (status, body) = common::http_get(&server, "/ws").await;
    assert_eq!(status, 400);
    assert!(body.contains("WebSocket"), "{body}");
    // And the server is no worse for it.
    let (mut client, _) = Client::join(&server, "fine").await;
    client.expect_silence(Duration::from_millis(50)).await;
}
