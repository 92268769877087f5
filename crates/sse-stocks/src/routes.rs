//! The HTTP routes: `/events` (the stream), `/api/symbols`, `/api/quotes`,
//! `/metrics`, `/healthz`, and the page, mounted last.

use crate::cluster::Cluster;
use crate::hub::{Hub, Resume};
use crate::stream::{EventStream, StreamRequest};
use futures::FutureExt;
use ops::metrics::HealthCheck;
use ops::origin::OriginPolicy;
use prometheus_client::registry::Registry;
use protocol::{ErrorBody, ErrorCode};
use rust_embed::RustEmbed;
use std::sync::Arc;
use std::time::Duration;
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

/// Longest part of an unknown symbol repeated in the error message.
const MAX_SYMBOL_ECHO: usize = 24;

/// The page, embedded in the binary.
#[derive(RustEmbed)]
#[folder = "../../web/sse-stocks"]
struct Assets;

/// What the routes need to answer.
pub struct App {
    pub hub: Arc<Hub>,
    pub cluster: Option<Arc<Cluster>>,
    /// Which browser pages may open a stream (contract: same host or `ALLOWED_ORIGINS`).
    pub origins: OriginPolicy,
    pub retry: Duration,
    pub stream_max_age: Option<Duration>,
}

pub fn routes(
    app: Arc<App>,
    registry: Arc<Registry>,
    health: Arc<dyn HealthCheck>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_app = warp::any().map(move || app.clone());
    let events = warp::path!("events")
        .and(warp::get())
        .and(with_app.clone())
        .and(warp::query::<Vec<(String, String)>>())
        .and(warp::header::headers_cloned())
        // Boxed: hyper keeps the space of a request's future for as long as
        // its connection lives, and opening a stream (a Redis replay in
        // cluster mode) takes kilobytes that a long-lived stream should not.
        .then(|app, query, headers| events(app, query, headers).boxed());
    let symbols = warp::path!("api" / "symbols")
        .and(warp::get())
        .and(with_app.clone())
        .map(|app: Arc<App>| warp::reply::json(&app.hub.symbols().infos()).into_response());
    let quotes = warp::path!("api" / "quotes")
        .and(warp::get())
        .and(with_app)
        .map(|app: Arc<App>| {
            let reply = warp::reply::json(&app.hub.quotes());
            warp::reply::with_header(reply, header::CACHE_CONTROL, "no-cache").into_response()
        });
    events
        .or(symbols)
        .unify()
        .or(quotes)
        .unify()
        .or(ops::metrics::routes(registry, health))
        .unify()
        .or(ops::web::pages::<Assets>())
        .unify()
}

/// `GET /events?symbols=…`: 400 for an unknown symbol; otherwise always a
/// 200 stream, whatever the `Last-Event-ID` (a browser never retries after
/// an error status, so a bad id gets a `reset`, not an error).
async fn events(app: Arc<App>, query: Vec<(String, String)>, headers: HeaderMap) -> Response {
    if !app.origins.allows(&headers) {
        tracing::info!(origin = ?headers.get(header::ORIGIN), "refused a stream to a foreign origin");
        app.hub.metrics().core.count_error(ErrorCode::BadRequest);
        let body = ErrorBody::bad_request("this origin may not open the stream");
        return warp::reply::with_status(warp::reply::json(&body), StatusCode::FORBIDDEN)
            .into_response();
    }
    let requested: Vec<&str> = query
        .iter()
        .filter(|(key, _)| key == "symbols")
        .map(|(_, value)| value.as_str())
        .collect();
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
            return warp::reply::with_status(warp::reply::json(&body), StatusCode::BAD_REQUEST)
                .into_response();
        }
    };
    let request = StreamRequest {
        symbols,
        resume: Resume::parse(last_event_id(&query, &headers).as_deref()),
        retry: app.retry,
        max_age: app.stream_max_age,
    };
    let stream = EventStream::open(app.hub.clone(), app.cluster.as_deref(), request).await;
    let mut response = warp::reply::stream(stream).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-like proxies not to buffer the stream.
    response_headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // A page of a listed origin reads the stream across origins (CORS).
    if let Some(origin) = headers.get(header::ORIGIN) {
        response_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response_headers.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    response
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
}
