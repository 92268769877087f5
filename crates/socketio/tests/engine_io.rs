//! Engine.IO v4 as the spec and the official server have it, tested with
//! raw requests and frames against the echo server: the handshake's
//! fields, refused requests, long-polling payloads, the heartbeat, the
//! upgrade probe, maxPayload, and the close from either side.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_handshake_over_polling_announces_every_setting() {
    let server = echo_server(&[
        ("PING_INTERVAL_MS", "1234"),
        ("PING_TIMEOUT_MS", "567"),
        ("MAX_PAYLOAD", "8910"),
    ])
    .await;
    let (_, open) = Polling::open(&server).await;
    assert!(open["sid"].as_str().unwrap().len() >= 16, "{open}");
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], 1234);
    assert_eq!(open["pingTimeout"], 567);
    assert_eq!(open["maxPayload"], 8910);
}

#[tokio::test]
async fn the_handshake_over_websocket_offers_no_upgrade() {
    let server = echo_server(&[]).await;
    let mut ws = websocket(&engine_url(&server, "transport=websocket")).await;
    let open = next_text(&mut ws).await;
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
    assert_eq!(open["maxPayload"], 1_000_000);
}

#[tokio::test]
async fn a_bad_version_transport_sid_or_method_is_refused_with_400() {
    let server = echo_server(&[]).await;
    let base = server.url("/socket.io/");
    let cases = [
        (Method::GET, "?EIO=3&transport=polling", 5),
        (Method::GET, "?transport=polling", 5),
        (Method::GET, "?EIO=4&transport=flash", 0),
        (Method::GET, "?EIO=4", 0),
        (Method::GET, "?EIO=4&transport=polling&sid=nope", 1),
        (Method::POST, "?EIO=4&transport=polling", 2),
    ];
    for (method, query, code) in cases {
        let (status, body) = request(method.clone(), &format!("{base}{query}"), "").await;
        assert_eq!(status, 400, "{method} {query}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], code, "{method} {query}");
    }
    // A WebSocket request without the upgrade.
    let (status, _) = request(Method::GET, &engine_url(&server, "transport=websocket"), "").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn long_polling_batches_packets_with_the_record_separator() {
    let server = echo_server(&[]).await;
    let polling = Polling::connected(&server).await;
    // Two events in one POST, a noop between them: both answered, in order,
    // in one payload.
    let posted = polling
        .post("421[\"echo\",\"a\"]\x1e6\x1e422[\"echo\",{\"b\":[1,2]}]")
        .await;
    assert_eq!(posted, (200, "ok".into()));
    let (status, payload) = polling.get().await;
    assert_eq!(status, 200);
    assert_eq!(payload, "431[\"a\"]\x1e432[{\"b\":[1,2]}]");
}

#[tokio::test]
async fn a_binary_record_is_base64_and_bad_base64_ends_the_session() {
    let server = echo_server(&[]).await;
    let polling = Polling::connected(&server).await;
    // An attachment on its own (refused with its packet, never alone): taken.
    assert_eq!(polling.post("bAQID").await, (200, "ok".into()));
    assert_eq!(polling.post("421[\"echo\",1]").await, (200, "ok".into()));
    assert_eq!(polling.get().await.1, "431[1]");
    let (status, _) = polling.post("b!!not base64").await;
    assert_eq!(status, 400);
    polling.assert_over().await;
}

#[tokio::test]
async fn a_second_concurrent_get_closes_the_session() {
    let server = echo_server(&[]).await;
    let polling = Polling::connected(&server).await;
    let first = tokio::spawn({
        let polling = polling.clone();
        async move { polling.get().await }
    });
    // The first GET is in flight once the server holds it: give it a
    // moment's head start, then check it was not answered yet.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!first.is_finished(), "a GET with nothing to fetch waits");
    let (status, body) = polling.get().await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        within("the first GET", first).await.unwrap(),
        (200, "1".into())
    );
    assert_eq!(polling.get().await.0, 400, "the session is gone");
}

#[tokio::test]
async fn a_second_concurrent_post_closes_the_session() {
    let server = echo_server(&[]).await;
    let polling = Polling::connected(&server).await;
    // The POST of a slow event is answered once the event was handled.
    let slow = tokio::spawn({
        let polling = polling.clone();
        async move { polling.post("421[\"slow\",1000]").await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!slow.is_finished(), "the slow event is being handled");
    let (status, _) = polling.post("422[\"echo\",2]").await;
    assert_eq!(status, 400);
    within("the slow POST", slow).await.unwrap();
    polling.assert_over().await;
}

#[tokio::test]
async fn the_server_pings_and_a_client_that_answers_stays() {
    let server = echo_server(&[("PING_INTERVAL_MS", "100"), ("PING_TIMEOUT_MS", "300")]).await;
    let polling = Polling::connected(&server).await;
    for _ in 0..3 {
        assert_eq!(polling.get().await, (200, "2".into()));
        assert_eq!(polling.post("3").await, (200, "ok".into()));
    }
    let (mut ws, _) = ws_connected(&server).await;
    for _ in 0..3 {
        assert_eq!(next_text(&mut ws).await, "2");
        send_text(&mut ws, "3").await;
    }
    send_text(&mut ws, "421[\"echo\",\"alive\"]").await;
    assert_eq!(next_packet(&mut ws).await, "431[\"alive\"]");
}

#[tokio::test]
async fn a_client_that_misses_a_pong_times_out() {
    let server = echo_server(&[("PING_INTERVAL_MS", "100"), ("PING_TIMEOUT_MS", "200")]).await;
    let polling = Polling::connected(&server).await;
    assert_eq!(polling.get().await, (200, "2".into()));
    // No pong: the next GET learns the session closed.
    polling.assert_over().await;
    let (mut ws, _) = ws_connected(&server).await;
    assert_eq!(next_text(&mut ws).await, "2");
    assert_eq!(close_code(&mut ws).await, Some(1000));
}

#[tokio::test]
async fn payloads_past_max_payload_end_the_session() {
    let server = echo_server(&[("MAX_PAYLOAD", "1000")]).await;
    let polling = Polling::connected(&server).await;
    let big = format!("42[\"echo\",\"{}\"]", "x".repeat(1000));
    let (status, _) = polling.post(&big).await;
    assert_eq!(status, 413);
    polling.assert_over().await;
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, &big).await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
    // Just under the bound is fine.
    let (mut ws, _) = ws_connected(&server).await;
    let fits = format!("421[\"echo\",\"{}\"]", "x".repeat(900));
    send_text(&mut ws, &fits).await;
    assert!(next_packet(&mut ws).await.starts_with("431[\"xxx"));
}

#[tokio::test]
async fn the_upgrade_probe_moves_the_session_to_websocket_in_order() {
    let server = echo_server(&[]).await;
    let polling = Polling::connected(&server).await;
    let pending = tokio::spawn({
        let polling = polling.clone();
        async move { polling.get().await }
    });
    let mut ws = websocket(
        polling
            .url()
            .replace("transport=polling", "transport=websocket")
            .as_str(),
    )
    .await;
    send_text(&mut ws, "2probe").await;
    assert_eq!(next_text(&mut ws).await, "3probe");
    // The probe ends the pending GET with a noop.
    assert_eq!(
        within("the pending GET", pending).await.unwrap(),
        (200, "6".into())
    );
    // An answer queued for the poller before the upgrade completes…
    assert_eq!(
        polling.post("421[\"echo\",\"before\"]").await,
        (200, "ok".into())
    );
    send_text(&mut ws, "5").await;
    // …comes first over the WebSocket, then what follows.
    send_text(&mut ws, "422[\"echo\",\"after\"]").await;
    assert_eq!(next_packet(&mut ws).await, "431[\"before\"]");
    assert_eq!(next_packet(&mut ws).await, "432[\"after\"]");
    // No more long-polling on an upgraded session, no second upgrade.
    assert_eq!(polling.get().await.0, 400);
    assert_eq!(polling.post("3").await.0, 400);
    let again = tokio_tungstenite::connect_async(
        polling
            .url()
            .replace("http://", "ws://")
            .replace("transport=polling", "transport=websocket"),
    )
    .await;
    assert!(again.is_err(), "a second upgrade is refused");
    send_text(&mut ws, "423[\"echo\",\"still\"]").await;
    assert_eq!(next_packet(&mut ws).await, "433[\"still\"]");
}

#[tokio::test]
async fn a_failed_probe_leaves_the_session_polling() {
    let server = echo_server(&[]).await;
    let polling = Polling::connected(&server).await;
    let mut ws = websocket(
        polling
            .url()
            .replace("transport=polling", "transport=websocket")
            .as_str(),
    )
    .await;
    send_text(&mut ws, "not a probe").await;
    drop(ws);
    assert_eq!(polling.post("421[\"echo\",1]").await, (200, "ok".into()));
    assert_eq!(polling.get().await, (200, "431[1]".into()));
}

#[tokio::test]
async fn the_client_closes_with_a_close_packet() {
    let server = echo_server(&[]).await;
    let polling = Polling::connected(&server).await;
    assert_eq!(polling.post("1").await, (200, "ok".into()));
    polling.assert_over().await;
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, "1").await;
    // The peer asked to go: the server just hangs up.
    assert!(matches!(
        next_message(&mut ws).await,
        None | Some(Message::Close(_))
    ));
}

#[tokio::test]
async fn a_packet_that_does_not_decode_ends_the_session() {
    let server = echo_server(&[]).await;
    for bad in ["9", "", "0{}", "4garbage", "42{\"not\":\"an array\"}"] {
        let (mut ws, _) = ws_connected(&server).await;
        send_text(&mut ws, bad).await;
        assert_eq!(close_code(&mut ws).await, Some(1002), "{bad:?}");
    }
    // A healthy neighbour is untouched.
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, "421[\"echo\",\"fine\"]").await;
    assert_eq!(next_packet(&mut ws).await, "431[\"fine\"]");
}

#[tokio::test]
async fn a_client_that_never_connects_to_a_namespace_is_closed() {
    let server = echo_server(&[
        ("PING_INTERVAL_MS", "100"),
        ("PING_TIMEOUT_MS", "1000"),
        ("CONNECT_TIMEOUT_MS", "250"),
    ])
    .await;
    let mut ws = websocket(&engine_url(&server, "transport=websocket")).await;
    next_text(&mut ws).await;
    // It answers every ping, but never sends `40`.
    let mut pings = 0;
    let code = loop {
        match next_message(&mut ws).await {
            Some(Message::Text(text)) if text.as_str() == "2" => {
                pings += 1;
                send_text(&mut ws, "3").await;
            }
            Some(Message::Close(frame)) => break frame.map(|frame| u16::from(frame.code)),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, Some(1000));
    assert!(
        pings >= 2,
        "closed at a ping past the connect timeout, not before"
    );
}

#[tokio::test]
async fn a_shutdown_closes_every_session_so_that_clients_reconnect_elsewhere() {
    let mut server = echo_server(&[]).await;
    let (mut ws, _) = ws_connected(&server).await;
    let polling = Polling::connected(&server).await;
    let pending = tokio::spawn({
        let polling = polling.clone();
        async move { polling.get().await }
    });
    // The GET is held by the server once it got there.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!pending.is_finished(), "a GET with nothing to fetch waits");
    server.terminate().unwrap();
    // No `41`: the official client would not reconnect after one.
    assert_eq!(close_code(&mut ws).await, Some(1001));
    let (status, payload) = within("the pending GET", pending).await.unwrap();
    assert_eq!((status, payload.as_str()), (200, "1"));
    let exited = server.wait_exit(std::time::Duration::from_secs(5)).await;
    assert!(exited.unwrap().success());
}
