//! What the integration tests share: the server binary, and an SSE client:
//! `wire_clients::sse`, the same code the load generator reads streams
//! with, parsing the body as the `EventSource` specification says.
#![allow(dead_code)]

use futures::StreamExt;
use protocol::sse::Quote;
use std::time::Duration;
use testkit::TestServer;
use tokio::net::TcpStream;
pub use wire_clients::sse::Event;
use wire_clients::sse::EventStream;

pub const BINARY: &str = env!("CARGO_BIN_EXE_sse-stocks");

/// Longest wait for one event; far above any TICK_MS the tests use.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// An embedded-mode server with a fast, seeded feed plus `extra` settings.
pub async fn server(extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![("TICK_MS", "50"), ("SEED", "1")];
    env.extend_from_slice(extra);
    TestServer::start(BINARY, &env)
        .await
        .expect("server starts")
}

/// One open `/events` stream.
pub struct Sse(EventStream);

/// A tick as a test sees it: its id and its quote.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub id: String,
    pub quote: Quote,
}

/// `GET url` with an optional `Last-Event-ID` header; panics unless the
/// answer is a 200 event stream.
pub async fn open(url: &str, last_event_id: Option<&str>) -> Sse {
    let headers: Vec<(&str, &str)> = last_event_id
        .map(|id| ("Last-Event-ID", id))
        .into_iter()
        .collect();
    open_with(url, &headers).await
}

/// `GET url` with `headers`; panics unless the answer is a 200 event
/// stream.
pub async fn open_with(url: &str, headers: &[(&str, &str)]) -> Sse {
    let (host, path) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|slash| rest.split_at(slash)))
        .unwrap_or_else(|| panic!("not an http:// URL with a path: {url}"));
    let socket = TcpStream::connect(host).await.expect("connected");
    let stream = EventStream::open(socket, host, path, headers)
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error:#}"));
    Sse(stream)
}

pub async fn request(url: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.expect("request sent")
}

impl Sse {
    /// The next event, however long it takes; `Ok(None)` when the stream
    /// ended.
    pub async fn try_next(&mut self) -> anyhow::Result<Option<Event>> {
        self.0.next_event().await
    }

    /// The next event; panics if the stream ends or stays silent.
    pub async fn next(&mut self) -> Event {
        match tokio::time::timeout(EVENT_TIMEOUT, self.try_next()).await {
            Ok(Ok(Some(event))) => event,
            Ok(Err(error)) => panic!("stream failed: {error:#}"),
            Ok(Ok(None)) => panic!("stream ended"),
            Err(_) => panic!("no event within {EVENT_TIMEOUT:?}"),
        }
    }

    /// The next event, or None if the stream ended.
    pub async fn next_or_end(&mut self, timeout: Duration) -> Option<Event> {
        match tokio::time::timeout(timeout, self.try_next()).await {
            Ok(Ok(event)) => event,
            Ok(Err(_)) => None,
            Err(_) => panic!("stream neither ended nor sent an event within {timeout:?}"),
        }
    }

    /// The next event, which must be a tick.
    pub async fn tick(&mut self) -> Tick {
        let event = self.next().await;
        assert_eq!(event.event, "tick", "{event:?}");
        assert!(!event.id.is_empty(), "a tick without id: {event:?}");
        Tick {
            id: event.id,
            quote: serde_json::from_str(&event.data).expect("a tick is a quote"),
        }
    }

    pub async fn ticks(&mut self, count: usize) -> Vec<Tick> {
        let mut ticks = Vec::with_capacity(count);
        for _ in 0..count {
            ticks.push(self.tick().await);
        }
        ticks
    }

    /// The next event, which must be `kind` with a list of quotes.
    pub async fn quotes(&mut self, kind: &str) -> (String, Vec<Quote>) {
        let event = self.next().await;
        assert_eq!(event.event, kind, "{event:?}");
        (
            event.id,
            serde_json::from_str(&event.data).expect("a list of quotes"),
        )
    }
}

/// The raw body of `url` as text, read until it contains `needle`.
pub async fn raw_until(url: &str, needle: &str) -> String {
    let response = request(url, None).await;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    while !text.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("{needle:?} not seen in {text:?}"))
            .expect("stream ended")
            .expect("stream failed");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text
}

/// Ids compare as `<ms>-<seq>`; the tests check order with this.
pub fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("an id <ms>-<seq>");
    (ms.parse().unwrap(), seq.parse().unwrap())
}

pub fn symbols_of(quotes: &[Quote]) -> Vec<&str> {
    quotes.iter().map(|quote| quote.symbol.as_str()).collect()
}

pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

pub async fn get_text(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}
