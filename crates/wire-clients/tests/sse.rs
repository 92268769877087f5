//! The SSE client against a canned server on a real socket: a chunked
//! event stream split at awkward places parses into its events, and what
//! `EventSource` would refuse (another status, another content type) is an
//! error.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wire_clients::codec::sse::SseItem;
use wire_clients::sse::EventStream;

/// Serves one connection: reads the request head, then writes `pieces`
/// one write at a time and closes. Gives its address, and the task that
/// ends with the request head it read.
async fn serve_once(pieces: Vec<&'static [u8]>) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        for piece in pieces {
            socket.write_all(piece).await.unwrap();
            socket.flush().await.unwrap();
        }
        String::from_utf8(head).unwrap()
    });
    (host, server)
}

async fn open(host: &str, headers: &[(&str, &str)]) -> anyhow::Result<EventStream> {
    let socket = TcpStream::connect(host).await.unwrap();
    EventStream::open(socket, host, "/events", headers).await
}

/// A chunked stream cut mid-field, mid-chunk and between chunks.
fn chunked_stream() -> Vec<&'static [u8]> {
    vec![
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n1c\r\nretry: 1000\n\nid: 7\nevent: ti",
        b"\r\n19\r\nck\ndata: {\"a\":1}\n\n: ping\n\r\n",
        b"f\r\nid: 8\ndata: x\n\n\r\n0\r\n\r\n",
    ]
}

#[tokio::test]
async fn a_chunked_stream_split_mid_field_gives_its_items() {
    let (host, server) = serve_once(chunked_stream()).await;
    let mut stream = open(&host, &[("Last-Event-ID", "6")]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        stream
            .parse(|item| {
                seen.push(match item {
                    SseItem::Event { event, data, id } => format!("{event}|{data}|{id}"),
                    SseItem::Comment(text) => format!(":{text}"),
                    SseItem::Retry(millis) => format!("retry {millis}"),
                })
            })
            .unwrap();
        if !stream.read().await.unwrap() {
            break;
        }
    }
    assert_eq!(
        seen,
        ["retry 1000", "tick|{\"a\":1}|7", ":ping", "message|x|8"]
    );
    assert_eq!(stream.last_event_id(), "8");
    let request = server.await.unwrap();
    assert!(request.starts_with("GET /events HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains("Accept: text/event-stream\r\n"),
        "{request}"
    );
    assert!(request.contains("Last-Event-ID: 6\r\n"), "{request}");
}

#[tokio::test]
async fn events_one_at_a_time_skip_comments_and_retry_then_end() {
    let (host, _server) = serve_once(chunked_stream()).await;
    let mut stream = open(&host, &[]).await.unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.next_event().await.unwrap() {
        events.push(format!("{}|{}|{}", event.event, event.data, event.id));
    }
    assert_eq!(events, ["tick|{\"a\":1}|7", "message|x|8"]);
}

#[tokio::test]
async fn another_status_is_an_error() {
    let (host, _server) = serve_once(vec![
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n{}",
    ])
    .await;
    let error = open(&host, &[]).await.unwrap_err();
    assert!(format!("{error:#}").contains("answered 401"), "{error:#}");
}

#[tokio::test]
async fn another_content_type_is_an_error() {
    let (host, _server) = serve_once(vec![
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>",
    ])
    .await;
    let error = open(&host, &[]).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("not an event stream"),
        "{error:#}"
    );
}
