//! What a server answers between binding its port and being able to serve
//! (an app that waits for Redis, for one): `/healthz` says `503` with
//! `"status":"starting"`, so that a load balancer or an orchestrator waits
//! for it; `/metrics` answers with the process's series; anything else
//! gets `503` with `Retry-After`, so that a client tries again shortly
//! instead of waiting in the listen queue with no word.
//!
//! Except an EventSource: it never reconnects after an error status (the
//! WHATWG "fail the connection"), so a `503` would end it for good and its
//! `Last-Event-ID` with it, which is what a deploy must not do. A request
//! that accepts `text/event-stream` gets instead an empty event stream that
//! sets its reconnection delay to the same wait: the stream ends at once,
//! and the client comes back after it and resumes.

use crate::metrics::{metrics_route, prometheus_client::registry::Registry};
use std::sync::Arc;
use std::time::Duration;
use warp::Filter;
use warp::http::{HeaderMap, StatusCode, header};
use warp::reply::Reply;

/// How long a client is told to wait before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The media type an EventSource asks for.
const EVENT_STREAM: &str = "text/event-stream";

/// The routes served while the app starts.
pub fn routes()
-> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let healthz = warp::path!("healthz").map(|| {
        let body = serde_json::json!({ "status": "starting" });
        warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    });
    let anything_else = warp::header::headers_cloned().map(|headers: HeaderMap| {
        if accepts_event_stream(&headers) {
            come_back_event_stream()
        } else {
            come_back_later()
        }
    });
    metrics_route(Arc::new(Registry::default()))
        .or(healthz)
        .unify()
        .or(anything_else)
        .unify()
}

/// `503` with `Retry-After`.
fn come_back_later() -> warp::reply::Response {
    let reply = warp::reply::with_status(
        "starting: try again shortly\n",
        StatusCode::SERVICE_UNAVAILABLE,
    );
    warp::reply::with_header(
        reply,
        header::RETRY_AFTER,
        RETRY_AFTER.as_secs().to_string(),
    )
    .into_response()
}

/// An event stream that holds only `retry:`, and ends.
fn come_back_event_stream() -> warp::reply::Response {
    let body = format!("retry: {}\n\n", RETRY_AFTER.as_millis());
    let reply = warp::reply::with_header(body, header::CONTENT_TYPE, EVENT_STREAM);
    warp::reply::with_header(reply, header::CACHE_CONTROL, "no-cache").into_response()
}

/// Whether one of the media ranges of `Accept` is `text/event-stream`.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|media_type| media_type.trim().eq_ignore_ascii_case(EVENT_STREAM))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shutdown;
    use crate::admission::AdmissionConfig;
    use crate::server::Server;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Serves the starting routes on a free port until the test ends.
    async fn starting_server() -> (SocketAddr, Shutdown) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = Server::new(
            warp::service(routes()),
            AdmissionConfig::only_max_connections(100),
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            server
                .serve_until(&listener, stop.wait(), stop.clone())
                .await;
        });
        (addr, shutdown)
    }

    /// Sends `request` and reads the whole answer (the server closes the
    /// connection after one response while starting).
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).unwrap().to_lowercase()
    }

    #[tokio::test]
    async fn an_event_source_is_told_when_to_come_back_in_a_way_it_follows() {
        let (addr, shutdown) = starting_server().await;
        // The request line and headers an EventSource sends when it resumes.
        let resuming = "GET /events?symbols=AAPL HTTP/1.1\r\nhost: x\r\n\
                        accept: text/event-stream\r\nlast-event-id: 1-1\r\n\r\n";
        let response = exchange(addr, resuming).await;
        assert!(response.starts_with("http/1.1 200 ok\r\n"), "{response}");
        assert!(
            response.contains("content-type: text/event-stream\r\n"),
            "{response}"
        );
        assert!(response.ends_with("\r\n\r\nretry: 1000\n\n"), "{response}");

        let with_others = "GET /events HTTP/1.1\r\nhost: x\r\n\
                           accept: text/html, Text/Event-Stream;q=0.9\r\n\r\n";
        assert!(
            exchange(addr, with_others)
                .await
                .starts_with("http/1.1 200 ok\r\n")
        );
        shutdown.trigger();
    }

    #[tokio::test]
    async fn anything_else_gets_503_with_retry_after() {
        let (addr, shutdown) = starting_server().await;
        for request in [
            "GET /events HTTP/1.1\r\nhost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\naccept: text/html\r\n\r\n",
        ] {
            let response = exchange(addr, request).await;
            assert!(
                response.starts_with("http/1.1 503 service unavailable\r\n"),
                "{response}"
            );
            assert!(response.contains("retry-after: 1\r\n"), "{response}");
        }
        let health = exchange(
            addr,
            "GET /healthz HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
        )
        .await;
        assert!(health.starts_with("http/1.1 503"), "{health}");
        assert!(health.ends_with("{\"status\":\"starting\"}"), "{health}");
        shutdown.trigger();
    }
}
