//! Socket.IO v5 over the runtime, tested with raw frames against the echo
//! server: connect with auth and every connect_error, events and acks,
//! binary attachments refused, disconnects from either side, and a
//! client that stops reading during a flood.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::*;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[tokio::test]
async fn a_connect_carries_its_auth_to_the_app() {
    let server = echo_server(&[]).await;
    let mut ws = websocket(&engine_url(&server, "transport=websocket")).await;
    next_text(&mut ws).await;
    send_text(&mut ws, r#"40{"token":"t0k"}"#).await;
    let reply = next_packet(&mut ws).await;
    let sid: Value = serde_json::from_str(reply.strip_prefix("40").unwrap()).unwrap();
    send_text(&mut ws, r#"427["whoami"]"#).await;
    let answer = next_packet(&mut ws).await;
    let answer: Value = serde_json::from_str(answer.strip_prefix("437").unwrap()).unwrap();
    assert_eq!(
        answer,
        json!([{"id": sid["sid"], "auth": {"token": "t0k"}}])
    );
}

#[tokio::test]
async fn connect_errors_for_an_unknown_namespace_a_bad_auth_and_a_refusal() {
    let server = echo_server(&[]).await;
    let mut ws = websocket(&engine_url(&server, "transport=websocket")).await;
    next_text(&mut ws).await;
    send_text(&mut ws, "40/admin,").await;
    assert_eq!(
        next_packet(&mut ws).await,
        r#"44/admin,{"message":"Invalid namespace"}"#
    );
    send_text(&mut ws, r#"40"not an object""#).await;
    assert_eq!(
        next_packet(&mut ws).await,
        r#"44{"message":"the auth payload must be an object"}"#
    );
    send_text(&mut ws, r#"40{"deny":true}"#).await;
    assert_eq!(
        next_packet(&mut ws).await,
        r#"44{"data":{"code":"denied"},"message":"denied by the app"}"#
    );
    // Events before a successful connect are ignored; the connect works.
    send_text(&mut ws, r#"421["echo",1]"#).await;
    send_text(&mut ws, "40").await;
    assert!(next_packet(&mut ws).await.starts_with("40{\"sid\":"));
    send_text(&mut ws, r#"422["echo",2]"#).await;
    assert_eq!(next_packet(&mut ws).await, "432[2]");
}

#[tokio::test]
async fn events_are_answered_in_order_with_their_ack_ids() {
    let server = echo_server(&[]).await;
    let (mut ws, _) = ws_connected(&server).await;
    // A slow event holds the ones behind it.
    send_text(&mut ws, r#"4212["slow",150]"#).await;
    send_text(&mut ws, r#"4213["echo","second"]"#).await;
    // No ack asked: no answer, and nothing else changes.
    send_text(&mut ws, r#"42["echo","quiet"]"#).await;
    send_text(&mut ws, r#"42987654321["echo",{"deep":[null,true]}]"#).await;
    assert_eq!(
        next_packet(&mut ws).await,
        r#"4312[{"ok":true,"slept":150}]"#
    );
    assert_eq!(next_packet(&mut ws).await, r#"4313["second"]"#);
    assert_eq!(
        next_packet(&mut ws).await,
        r#"43987654321[{"deep":[null,true]}]"#
    );
}

#[tokio::test]
async fn unknown_events_and_data_of_the_wrong_shape_are_refused_in_the_ack() {
    let server = echo_server(&[]).await;
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, r#"421["nope",{}]"#).await;
    let refused = next_packet(&mut ws).await;
    let refused: Value = serde_json::from_str(refused.strip_prefix("431").unwrap()).unwrap();
    assert_eq!(refused[0]["ok"], false);
    assert_eq!(refused[0]["error"]["code"], "bad_request");
    assert!(
        refused[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown event")
    );
    send_text(&mut ws, r#"422["join",{"room":5}]"#).await;
    let refused = next_packet(&mut ws).await;
    assert!(refused.starts_with("432[{\"error\""), "{refused}");
    assert!(refused.contains("invalid payload"), "{refused}");
}

#[tokio::test]
async fn binary_attachments_get_a_clear_error_and_the_socket_goes_on() {
    let server = echo_server(&[]).await;
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, r#"451-4["echo",{"_placeholder":true,"num":0}]"#).await;
    within(
        "the attachment",
        futures::SinkExt::send(&mut ws, Message::binary(vec![1, 2, 3])),
    )
    .await
    .unwrap();
    let refused = next_packet(&mut ws).await;
    let refused: Value = serde_json::from_str(refused.strip_prefix("434").unwrap()).unwrap();
    assert_eq!(refused[0]["ok"], false);
    assert_eq!(
        refused[0]["error"]["message"],
        "binary attachments are not supported: send JSON"
    );
    send_text(&mut ws, r#"425["echo","after"]"#).await;
    assert_eq!(next_packet(&mut ws).await, r#"435["after"]"#);
}

#[tokio::test]
async fn a_client_disconnect_ends_the_session_and_a_server_disconnect_says_41() {
    let server = echo_server(&[]).await;
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, "41").await;
    assert_eq!(close_code(&mut ws).await, Some(1000));
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, r#"42["kick"]"#).await;
    assert_eq!(next_packet(&mut ws).await, "41");
    assert_eq!(close_code(&mut ws).await, Some(1000));
    let polling = Polling::connected(&server).await;
    assert_eq!(polling.post(r#"42["kick"]"#).await, (200, "ok".into()));
    let (status, payload) = polling.get().await;
    assert_eq!(status, 200);
    // The disconnect, then the close (in this payload or the next).
    assert!(payload.starts_with("41"), "{payload}");
    if payload == "41" {
        polling.assert_over().await;
    } else {
        assert_eq!(payload, "41\x1e1");
    }
}

#[tokio::test]
async fn a_cut_off_closes_the_transport_without_disconnecting_the_socket() {
    let server = echo_server(&[]).await;
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, r#"425["echo","before"]"#).await;
    send_text(&mut ws, r#"42["cut"]"#).await;
    assert_eq!(next_packet(&mut ws).await, r#"435["before"]"#);
    // No `41`: the official client reconnects after a transport close.
    assert_eq!(close_code(&mut ws).await, Some(1013));
    let polling = Polling::connected(&server).await;
    assert_eq!(polling.post(r#"42["cut"]"#).await, (200, "ok".into()));
    // With no GET waiting, the session is simply gone, as in socket.io:
    // either way the client sees its transport close and reconnects.
    let (status, payload) = polling.get().await;
    let closed = (status, payload.as_str()) == (200, "1") || payload.contains("Session ID unknown");
    assert!(closed, "{status} {payload}");
}

#[tokio::test]
async fn a_room_event_reaches_every_member_on_either_transport_once() {
    let server = echo_server(&[]).await;
    let (mut alice, _) = ws_connected(&server).await;
    let bob = Polling::connected(&server).await;
    send_text(&mut alice, r#"421["join",{"room":"r"}]"#).await;
    assert_eq!(next_packet(&mut alice).await, r#"431[{"ok":true}]"#);
    bob.post(r#"421["join",{"room":"r"}]"#).await;
    assert_eq!(bob.get().await.1, r#"431[{"ok":true}]"#);
    send_text(&mut alice, r#"422["say",{"room":"r","text":"hi"}]"#).await;
    let said = next_packet(&mut alice).await;
    assert!(said.starts_with(r#"42["said",{"#), "{said}");
    assert_eq!(next_packet(&mut alice).await, r#"432[{"ok":true}]"#);
    let (_, payload) = bob.get().await;
    assert_eq!(payload, said, "the same packet, once");
}

/// The flood's events, numbered, as the client got them: a gap-free
/// prefix, then the close 1013. Strict: the socket must be cut off, and
/// what it got must start at 0 and skip nothing.
#[tokio::test]
async fn a_client_that_stops_reading_gets_a_gap_free_prefix_then_the_close() {
    let server = echo_server(&[("MAX_QUEUED", "64")]).await;
    let url = engine_url(&server, "transport=websocket").replacen("http://", "ws://", 1);
    // A small receive buffer, fixed (no autotuning): the flood cannot
    // hide in the kernel.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let config = WebSocketConfig::default().max_message_size(None);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(
        url,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .unwrap();
    next_text(&mut ws).await;
    send_text(&mut ws, "40").await;
    next_packet(&mut ws).await;
    // Far more than the socket buffers hold, while the client reads nothing.
    send_text(&mut ws, r#"421["flood",{"count":20000,"size":2000}]"#).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut next = 0u64;
    let code = loop {
        match next_message(&mut ws).await {
            Some(Message::Text(text)) if text.starts_with(r#"42["flood","#) => {
                let event: Value = serde_json::from_str(&text[2..]).unwrap();
                assert_eq!(event[1]["n"], next, "no gap");
                next += 1;
            }
            Some(Message::Text(text)) if text.as_str() == "2" => {}
            Some(Message::Text(text)) => panic!("unexpected {text} after {next} events"),
            Some(Message::Close(frame)) => break frame.map(|frame| u16::from(frame.code)),
            Some(_) => {}
            None => panic!("the connection ended without a close frame after {next} events"),
        }
    };
    assert_eq!(code, Some(1013));
    assert!(
        next < 20_000,
        "cut off before the end of the flood: got {next}"
    );
}

#[tokio::test]
async fn a_handler_that_panics_ends_its_own_session_only() {
    let server = echo_server(&[]).await;
    let (mut bystander, _) = ws_connected(&server).await;
    let (mut ws, _) = ws_connected(&server).await;
    send_text(&mut ws, r#"42["crash"]"#).await;
    assert!(matches!(
        next_message(&mut ws).await,
        None | Some(Message::Close(_))
    ));
    let polling = Polling::connected(&server).await;
    // The POST is answered, and the session is gone, not stuck.
    assert_eq!(polling.post(r#"42["crash"]"#).await, (200, "ok".into()));
    polling.assert_over().await;
    send_text(&mut bystander, r#"421["echo","still here"]"#).await;
    assert_eq!(next_packet(&mut bystander).await, r#"431["still here"]"#);
}
