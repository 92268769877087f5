//! `GET /events`: who may open a stream, of which symbols, resuming from
//! where; then the stream itself, written straight to the client's socket.
//!
//! This route is served on the bare TCP connection, outside hyper (see
//! [`ops::raw_route`] for why): the response is a status line and headers,
//! then the stream's bytes exactly as the hub serialized them, one write per
//! step of the feed, until the stream ends and the connection closes.
//! Refusals (a foreign origin, an unknown symbol, with token authentication
//! a missing or bad token or a symbol outside its claim) are small JSON
//! responses.

use crate::access;
use crate::app::App;
use crate::hub::Resume;
use crate::stream::{EventStream, StreamRequest};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use ops::raw_route::{self, RawRoute};
use protocol::{ErrorBody, ErrorCode};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Longest part of an unknown symbol repeated in the error message.
const MAX_SYMBOL_ECHO: usize = 24;

/// How long a client may take none of the stream before it is dropped. A
/// slow client falls behind and catches up (see [`crate::stream`]); one
/// that takes nothing at all for this long is gone or stuck.
const WRITE_STALL: Duration = Duration::from_secs(60);

/// The route, as the accept loop calls it.
#[derive(Clone)]
pub struct EventsRoute {
    app: Arc<App>,
}

impl EventsRoute {
    pub fn new(app: Arc<App>) -> EventsRoute {
        EventsRoute { app }
    }
}

impl RawRoute for EventsRoute {
    const PATH: &'static str = "/events";

    async fn serve(&self, request: Request<()>, mut socket: TcpStream) {
        // Boxed: opening (a Redis replay in cluster mode) takes kilobytes of
        // future that the stream, which lives on, should not keep.
        let opened = Box::pin(open(&self.app, &request)).await;
        drop(request);
        match opened {
            Ok((head, stream, expiry)) => write_stream(socket, head, stream, expiry).await,
            Err((status, body)) => {
                let json = serde_json::to_vec(&body).expect("an error body serializes");
                // A client that hung up before reading its refusal needs nothing more.
                let _client_gone =
                    raw_route::respond(&mut socket, status, "application/json", &json).await;
            }
        }
    }
}

/// Checks the request and opens its stream: the response head, and the
/// stream of what follows it. Unknown symbols are a 400; any
/// `Last-Event-ID` opens a stream (a browser never retries after an error
/// status, so a bad id gets a `reset`, not an error).
async fn open(
    app: &App,
    request: &Request<()>,
) -> Result<(Vec<u8>, EventStream, Option<Instant>), (StatusCode, ErrorBody)> {
    let headers = request.headers();
    if !app.origins.allows(headers) {
        tracing::info!(origin = ?headers.get(header::ORIGIN), "refused a stream to a foreign origin");
        app.hub.metrics().core.count_error(ErrorCode::BadRequest);
        let body = ErrorBody::bad_request("this origin may not open the stream");
        return Err((StatusCode::FORBIDDEN, body));
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let requested: Vec<&str> = query
        .iter()
        .filter(|(key, _)| key == "symbols")
        .map(|(_, value)| value.as_str())
        .collect();
    let identity = match &app.auth {
        Some(verifier) => match access::check(verifier, headers, &query) {
            Ok(identity) => Some(identity),
            Err(refusal) => {
                app.hub.metrics().core.count_error(ErrorCode::Unauthorized);
                let body = ErrorBody::new(ErrorCode::Unauthorized, refusal.to_string());
                return Err((StatusCode::UNAUTHORIZED, body));
            }
        },
        None => None,
    };
    let symbols = match app.hub.symbols().parse_set(&requested.join(",")) {
        Ok(symbols) => symbols,
        Err(unknown) => {
            app.hub.metrics().core.count_error(ErrorCode::UnknownSymbol);
            // Echo a bounded part only: the query is the client's to make long.
            let shown: String = unknown.chars().take(MAX_SYMBOL_ECHO).collect();
            let body = ErrorBody::new(
                ErrorCode::UnknownSymbol,
                format!("unknown symbol {shown:?}"),
            );
            return Err((StatusCode::BAD_REQUEST, body));
        }
    };
    let (symbols, expiry) = match &identity {
        Some(identity) => {
            let asked_for_some = requested.iter().any(|list| !list.trim().is_empty());
            let symbols = access::symbols(app.hub.symbols(), identity, symbols, asked_for_some)
                .inspect_err(|error| app.hub.metrics().core.count_error(error.code))
                .map_err(|error| (StatusCode::FORBIDDEN, error))?;
            (symbols, Some(Instant::now() + identity.time_left()))
        }
        None => (symbols, None),
    };
    let stream_request = StreamRequest {
        symbols,
        resume: Resume::parse(last_event_id(&query, headers).as_deref()),
        retry: app.retry,
        max_age: app.stream_max_age,
    };
    let stream = EventStream::open(app.hub.clone(), app.cluster.as_deref(), stream_request).await;
    Ok((response_head(headers), stream, expiry))
}

fn response_head(request_headers: &HeaderMap) -> Vec<u8> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-like proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // A page of a listed origin reads the stream across origins (CORS).
    if let Some(origin) = request_headers.get(header::ORIGIN) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    raw_route::response_head(StatusCode::OK, &headers)
}

/// The id to resume from: the `Last-Event-ID` header a reconnecting
/// EventSource sends, else the `lastEventId` query parameter (a page that
/// opens a new EventSource may carry its last id over that way).
fn last_event_id(query: &[(String, String)], headers: &HeaderMap) -> Option<String> {
    let header = headers
        .get("last-event-id")
        // Not UTF-8 cannot be one of our ids: the stream resets.
        .map(|value| value.to_str().unwrap_or("\u{fffd}").to_owned())
        .filter(|value| !value.trim().is_empty());
    header.or_else(|| {
        query
            .iter()
            .rev()
            .find(|(key, _)| key == "lastEventId")
            .map(|(_, value)| value.clone())
    })
}

/// Writes the head and then the stream until it ends (shutdown,
/// `STREAM_MAX_MS`, the token's `expiry` with a last `expired` event) or
/// the client goes. The stream is only polled when the last write went
/// out, so a slow client falls behind in the hub, never in a buffer here.
async fn write_stream(
    mut socket: TcpStream,
    mut head: Vec<u8>,
    mut stream: EventStream,
    expiry: Option<Instant>,
) {
    // The head and the stream's opening (retry, snapshot) in one write.
    if let Some(opening) = stream.next().await {
        head.extend_from_slice(&opening);
    }
    if send(&mut socket, &head).await.is_err() {
        return;
    }
    drop(head);
    loop {
        let (chunk, last): (Bytes, bool) = tokio::select! {
            chunk = stream.next() => match chunk {
                Some(chunk) => (chunk, false),
                None => break,
            },
            () = client_gone(&socket) => return,
            () = until(expiry) => (access::expired_event(), true),
        };
        if send(&mut socket, &chunk).await.is_err() {
            return;
        }
        if last {
            break;
        }
    }
    // The end of the body: the client reconnects and resumes. A client
    // already gone needs no FIN.
    let _client_gone = socket.shutdown().await;
}

/// Resolves at `deadline`; never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Writes `bytes`; most writes go out whole at once, and only one the
/// socket cannot take arms the stall timer.
async fn send(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    let written = match socket.try_write(bytes) {
        Ok(written) => written,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(error) => return Err(error),
    };
    if written == bytes.len() {
        return Ok(());
    }
    match tokio::time::timeout(WRITE_STALL, socket.write_all(&bytes[written..])).await {
        Ok(result) => result,
        Err(_elapsed) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Resolves when the client closes its side of the connection, or sends
/// anything at all: a client has nothing to say on a stream, so bytes from
/// it (a pipelined request, garbage) end the stream rather than being read
/// and dropped for as long as it cares to send them.
async fn client_gone(socket: &TcpStream) {
    let mut scrap = [0u8; 1];
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        match socket.try_read(&mut scrap) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Ok(_) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_wins_over_the_query() {
        let query = vec![("lastEventId".to_owned(), "1-1".to_owned())];
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&query, &headers).as_deref(), Some("1-1"));
        headers.insert("last-event-id", HeaderValue::from_static("2-2"));
        assert_eq!(last_event_id(&query, &headers).as_deref(), Some("2-2"));
        headers.insert("last-event-id", HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(last_event_id(&[], &headers).as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn the_response_head_allows_the_requesting_origin() {
        let mut request_headers = HeaderMap::new();
        request_headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://a.example"),
        );
        let head = String::from_utf8(response_head(&request_headers)).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"));
        assert!(head.contains("access-control-allow-origin: https://a.example\r\n"));
        assert!(head.ends_with("connection: close\r\n\r\n"));
    }
}
