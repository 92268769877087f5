//! `/events` in embedded mode, over real HTTP against the real binary: the
//! stream's shape, the symbol filter, resume without gap or duplicate,
//! resets, keep-alives and the end of streams at shutdown.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn a_stream_starts_with_retry_then_a_snapshot_then_ticks_with_increasing_ids() {
    let server = server(&[]).await;
    let raw = raw_until(&server.url("/events"), "event: tick").await;
    let retry = raw
        .strip_prefix("retry: ")
        .and_then(|rest| rest.split_once("\n\n"))
        .map(|(ms, _)| ms.parse::<u64>().expect("retry is a number of ms"));
    assert!(retry.is_some_and(|ms| ms >= 500), "{raw:?}");

    let mut stream = open(&server.url("/events"), None).await;
    let (_, snapshot) = stream.quotes("snapshot").await;
    assert_eq!(
        symbols_of(&snapshot),
        [
            "AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "NFLX", "JPM", "V"
        ]
    );
    let ticks = stream.ticks(40).await;
    for pair in ticks.windows(2) {
        assert!(id_key(&pair[0].id) < id_key(&pair[1].id), "{pair:?}");
    }
    // Every symbol moves on every step.
    let moved: HashSet<&str> = ticks
        .iter()
        .map(|tick| tick.quote.symbol.as_str())
        .collect();
    assert_eq!(moved.len(), 10);
    for tick in &ticks {
        let quote = &tick.quote;
        assert!(quote.price > 0.0 && quote.ts > 1_600_000_000_000);
        let open = quote.price - quote.change;
        assert!(
            (quote.change_pct - quote.change / open * 100.0).abs() < 0.011,
            "{quote:?}"
        );
    }
}

#[tokio::test]
async fn a_comment_keeps_a_silent_stream_alive() {
    let server = server(&[("TICK_MS", "60000"), ("KEEPALIVE_MS", "100")]).await;
    let raw = raw_until(&server.url("/events"), ": keep-alive\n\n: keep-alive\n\n").await;
    assert!(!raw.contains("event: tick"), "{raw:?}");
}

#[tokio::test]
async fn a_stream_carries_only_the_symbols_asked_for() {
    let server = server(&[]).await;
    let mut stream = open(&server.url("/events?symbols=nvda,%20MSFT"), None).await;
    let (_, snapshot) = stream.quotes("snapshot").await;
    assert_eq!(symbols_of(&snapshot), ["MSFT", "NVDA"]);
    let ticks = stream.ticks(20).await;
    let symbols: HashSet<&str> = ticks
        .iter()
        .map(|tick| tick.quote.symbol.as_str())
        .collect();
    assert_eq!(symbols, HashSet::from(["MSFT", "NVDA"]));
}

#[tokio::test]
async fn an_unknown_symbol_is_a_400_with_a_json_error() {
    let server = server(&[]).await;
    let response = request(&server.url("/events?symbols=AAPL,NOPE"), None).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unknown_symbol");
    assert!(body["message"].as_str().unwrap().contains("NOPE"));

    let long = "X".repeat(5000);
    let response = request(&server.url(&format!("/events?symbols={long}")), None).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unknown_symbol");
    assert!(body["message"].as_str().unwrap().len() < 100);
}

/// Resumes a filtered stream after a pause and checks that it receives
/// exactly the ticks a stream that never left saw for those symbols.
async fn resume_without_gap_or_duplicate(use_query: bool) {
    let server = server(&[]).await;
    let mut witness = open(&server.url("/events"), None).await;
    witness.quotes("snapshot").await;

    let filtered = "/events?symbols=AAPL,TSLA";
    let mut first = open(&server.url(filtered), None).await;
    first.quotes("snapshot").await;
    let before = first.ticks(6).await;
    let last_id = before.last().unwrap().id.clone();
    drop(first);
    // Ten steps go by while the client is away.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut resumed = if use_query {
        open(
            &server.url(&format!("{filtered}&lastEventId={last_id}")),
            None,
        )
        .await
    } else {
        open(&server.url(filtered), Some(&last_id)).await
    };
    let after = resumed.ticks(40).await;

    let wanted_last = id_key(&after.last().unwrap().id);
    let mut expected = Vec::new();
    loop {
        let tick = witness.tick().await;
        let key = id_key(&tick.id);
        if key > id_key(&last_id) && ["AAPL", "TSLA"].contains(&tick.quote.symbol.as_str()) {
            expected.push(tick.clone());
        }
        if key >= wanted_last {
            break;
        }
    }
    assert_eq!(after, expected);
}

#[tokio::test]
async fn a_filtered_stream_resumes_from_the_last_event_id_header() {
    resume_without_gap_or_duplicate(false).await;
}

#[tokio::test]
async fn a_filtered_stream_resumes_from_the_last_event_id_query_parameter() {
    resume_without_gap_or_duplicate(true).await;
}

#[tokio::test]
async fn resuming_from_a_snapshot_id_skips_the_snapshot() {
    let server = server(&[]).await;
    // Right after start there may be no tick yet, and then no id to give.
    let mut first = open(&server.url("/events"), None).await;
    first.quotes("snapshot").await;
    first.tick().await;
    let mut stream = open(&server.url("/events?symbols=MSFT"), None).await;
    let (snapshot_id, _) = stream.quotes("snapshot").await;
    assert!(!snapshot_id.is_empty());
    let live = stream.tick().await;
    drop(stream);
    let mut resumed = open(&server.url("/events?symbols=MSFT"), Some(&snapshot_id)).await;
    assert_eq!(resumed.tick().await, live);
}

#[tokio::test]
async fn an_id_older_than_the_replay_buffer_gets_a_reset_with_a_fresh_snapshot() {
    let server = server(&[("REPLAY_TICKS", "20")]).await;
    let mut stream = open(&server.url("/events?symbols=AAPL"), None).await;
    stream.quotes("snapshot").await;
    let old = stream.tick().await;
    drop(stream);
    // 20 ticks are two steps; ten steps go by.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut resumed = open(&server.url("/events?symbols=AAPL"), Some(&old.id)).await;
    let (reset_id, quotes) = resumed.quotes("reset").await;
    assert_eq!(symbols_of(&quotes), ["AAPL"]);
    assert!(id_key(&reset_id) > id_key(&old.id));
    let next = resumed.tick().await;
    assert!(id_key(&next.id) > id_key(&reset_id));
}

#[tokio::test]
async fn an_unreadable_or_unknown_id_gets_a_reset_never_an_error() {
    let server = server(&[]).await;
    for id in ["not-an-id", "12", "1-1", "99999999999999-5", "-", "ü-1"] {
        let mut stream = open(&server.url("/events?symbols=V"), Some(id)).await;
        let (_, quotes) = stream.quotes("reset").await;
        assert_eq!(symbols_of(&quotes), ["V"], "id {id:?}");
        stream.tick().await;
    }
    let mut stream = open(&server.url("/events?lastEventId=%0D%0Aevent:%20x"), None).await;
    stream.quotes("reset").await;
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_the_server_exits_promptly() {
    let mut server = server(&[]).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = open(&server.url("/events"), None).await;
        stream.quotes("snapshot").await;
        streams.push(stream);
    }
    server.terminate().unwrap();
    for stream in &mut streams {
        // Ticks already on their way may arrive; then the stream ends.
        let mut events = 0;
        while stream.next_or_end(Duration::from_secs(3)).await.is_some() {
            events += 1;
            assert!(events < 50, "the stream did not end");
        }
    }
    let status = server.wait_exit(Duration::from_secs(3)).await.unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn stream_max_age_ends_streams_so_clients_reconnect_and_resume() {
    let server = server(&[("STREAM_MAX_MS", "300")]).await;
    let mut stream = open(&server.url("/events?symbols=JPM"), None).await;
    stream.quotes("snapshot").await;
    let mut last = None;
    while let Some(event) = stream.next_or_end(Duration::from_secs(3)).await {
        last = Some(event.id);
    }
    let mut resumed = open(&server.url("/events?symbols=JPM"), last.as_deref()).await;
    let next = resumed.tick().await;
    assert!(id_key(&next.id) > id_key(&last.unwrap()));
}

#[tokio::test]
async fn only_the_own_host_and_listed_origins_may_open_a_stream() {
    let server = server(&[("ALLOWED_ORIGINS", "https://quotes.example.com")]).await;
    let stream_from = |origin: &str| {
        reqwest::Client::new()
            .get(server.url("/events"))
            .header("Origin", origin)
            .send()
    };
    let foreign = stream_from("http://evil.example").await.unwrap();
    assert_eq!(foreign.status(), 403);
    let body: serde_json::Value = foreign.json().await.unwrap();
    assert_eq!(body["code"], "bad_request");

    let listed = stream_from("https://quotes.example.com").await.unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://quotes.example.com"
    );
    let own = stream_from(&format!("http://{}", server.addr))
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn the_api_health_metrics_and_page_answer() {
    let server = server(&[("SYMBOLS", "msft,ACME")]).await;
    let (status, symbols) = get_json(&server.url("/api/symbols")).await;
    assert_eq!(status, 200);
    assert_eq!(symbols[0]["symbol"], "MSFT");
    assert_eq!(symbols[0]["name"], "Microsoft Corporation");
    assert_eq!(symbols[1]["symbol"], "ACME");
    assert!(symbols[1]["price"].as_f64().unwrap() > 0.0);
    assert_eq!(symbols.as_array().unwrap().len(), 2);

    let (status, quotes) = get_json(&server.url("/api/quotes")).await;
    assert_eq!(status, 200);
    let quotes: Vec<protocol::sse::Quote> = serde_json::from_value(quotes).unwrap();
    assert_eq!(symbols_of(&quotes), ["MSFT", "ACME"]);

    let (status, health) = get_json(&server.url("/healthz")).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let mut stream = open(&server.url("/events"), None).await;
    stream.quotes("snapshot").await;
    stream.ticks(4).await;
    let (status, metrics) = get_text(&server.url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("sse_streams_open 1"), "{metrics}");
    assert!(metrics.contains("sse_ticks_produced_total"), "{metrics}");
    assert!(metrics.contains("sse_events_written_total"), "{metrics}");

    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("app.js"));
}

/// Reads from a raw connection until the server closes it (or 5 s pass).
async fn read_until_closed(socket: &mut tokio::net::TcpStream) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buffer = [0u8; 4096];
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

#[tokio::test]
async fn a_stream_is_a_plain_http_response_that_ends_when_the_client_talks() {
    use tokio::io::AsyncWriteExt;
    let server = server(&[]).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /events?symbols=AAPL HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 512];
    let read = tokio::io::AsyncReadExt::read(&mut socket, &mut head)
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&head[..read]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("content-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("connection: close\r\n"), "{head}");
    // Anything the client sends on an open stream ends it.
    socket
        .write_all(b"garbage that is not a request")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut socket).await;
    assert!(closed, "the stream should end when the client sends bytes");
    // The server goes on serving.
    let (status, _) = get_json(&server.url("/api/symbols")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_malformed_stream_request_gets_400_and_an_oversized_one_431() {
    use tokio::io::AsyncWriteExt;
    let server = server(&[]).await;
    let long_header = |len: usize| {
        [
            b"GET /events HTTP/1.1\r\nX-Long: ".to_vec(),
            vec![b'a'; len],
            b"\r\n\r\n".to_vec(),
        ]
        .concat()
    };
    for (request, status_line) in [
        (
            b"GET /events HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request\r\n",
        ),
        (
            long_header(17 * 1024),
            "HTTP/1.1 431 Request Header Fields Too Large\r\n",
        ),
        (
            long_header(200 * 1024),
            "HTTP/1.1 431 Request Header Fields Too Large\r\n",
        ),
    ] {
        let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        // The server answers before it has read all of a huge head; the
        // rest of the write may then fail, and the answer is read anyway.
        let _ = socket.write_all(&request).await;
        let (response, closed) = read_until_closed(&mut socket).await;
        assert!(response.starts_with(status_line), "{response}");
        assert!(closed);
    }
    // A large head within the bound opens a stream, as through hyper.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket.write_all(&long_header(15 * 1024)).await.unwrap();
    let mut head = vec![0u8; 64];
    let read = tokio::io::AsyncReadExt::read(&mut socket, &mut head)
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&head[..read]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (status, _) = get_json(&server.url("/api/symbols")).await;
    assert_eq!(status, 200);
}
