//! What a connection over the limits gets: its `503` or `429` with
//! `Retry-After`, unless it asks for a probe path ([`PROBE_PATHS`]), in
//! which case it is served beyond the limits.
//!
//! A refused connection waits among the refused
//! ([`crate::admission::WaitingPlace`]) until its request head shows what
//! it asks for. Only a complete head for a probe path takes a probe slot,
//! so a client that sends nothing, or half a probe's head, can hold no
//! reserve for long: the newest refused connection sends the oldest away.
//! The refusal then lingers until it is read while a refusal slot is free;
//! beyond that it is what the socket takes at once.

use crate::admission::{PROBE_PATHS, Reason, Ticket};
use crate::connection::serve_http;
use crate::peek;
use crate::raw_route::{self, RawRoute};
use crate::serving::{HttpService, ResponseBody, Serving};
use http::{HeaderMap, HeaderValue};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long a refused client may still send after its answer.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// The largest probe head served beyond the limits; a monitor's is a few
/// hundred bytes.
const PROBE_HEAD_BYTES: usize = 4096;

/// What a refused client may have sent that is read before closing, so
/// that the close is a FIN (the refusal arrives) rather than a reset.
const DRAIN_BYTES: usize = 64 * 1024;

/// The complete answer to a refused connection: its status, `Retry-After`
/// and a one-line body, then the connection closes.
pub fn refusal_response(reason: Reason) -> Vec<u8> {
    let body = match reason {
        Reason::MaxConnections => "server full: too many connections\n",
        Reason::PerIp => "too many connections from your address\n",
        Reason::HandshakeRate => "too many new connections from your address\n",
        Reason::OutOfDescriptors => "server out of file descriptors\n",
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(reason.retry_after().as_secs()),
    );
    let mut response = raw_route::response_head(reason.status(), &headers);
    response.extend_from_slice(body.as_bytes());
    response
}

/// Serves a refused connection as a probe if it sends a probe's complete
/// request head within `patience` (and before a newer refused connection
/// needs its place) and a probe slot is free; refuses it otherwise.
pub(crate) async fn serve_probe_or_refuse<S, B, R>(
    serving: Serving<S, R>,
    stream: TcpStream,
    peer: SocketAddr,
    reason: Reason,
    patience: Duration,
) where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    let place = serving.admission.wait_as_refused();
    let asks_for_probe = tokio::select! {
        asks = sends_probe_head(&stream, patience) => asks,
        () = place.sent_away() => false,
        () = serving.shutdown.wait() => return,
    };
    drop(place);
    let probe_slot = if asks_for_probe {
        serving.admission.probe_slot()
    } else {
        None
    };
    if let Some(probe_slot) = probe_slot {
        tracing::debug!(%peer, "probe served beyond the limits");
        let mut http = serving.http.clone();
        // One request, so that the probe slot comes back at once.
        http.keep_alive(false);
        serve_http(
            http,
            serving.service,
            stream,
            peer,
            serving.shutdown,
            probe_slot,
        )
        .await;
        return;
    }
    let lingering = match reason {
        // Found out by the accept loop, not counted by the admission; the
        // connection holds the spare descriptor, which must come back at
        // once for the next one waiting.
        Reason::OutOfDescriptors => {
            serving.admission.count_refusal(reason);
            None
        }
        _ => serving.admission.refusal_slot(),
    };
    refuse(stream, reason, lingering).await;
}

/// Whether `stream` sends the complete head of a request for a probe path.
async fn sends_probe_head(stream: &TcpStream, patience: Duration) -> bool {
    let probe = peek::peek_until(stream, PROBE_HEAD_BYTES, patience, |seen| {
        let asks = PROBE_PATHS.map(|path| peek::request_line_asks_for(seen, path));
        if asks.iter().all(|asks| *asks == Some(false)) {
            return Some(false);
        }
        let is_probe = asks.contains(&Some(true));
        let head_complete = seen.windows(4).any(|end| end == b"\r\n\r\n");
        (is_probe && head_complete).then_some(true)
    });
    probe.await == Some(true)
}

/// Answers a refused connection with its status and `Retry-After`. With a
/// refusal slot the answer lingers until it is read; without one it is
/// what the socket takes now.
async fn refuse(mut stream: TcpStream, reason: Reason, refusal_slot: Option<Ticket>) {
    let response = refusal_response(reason);
    match refusal_slot {
        Some(slot) => {
            if stream.write_all(&response).await.is_ok() {
                crate::close::linger(&mut stream, REFUSAL_LINGER).await;
            }
            drop(slot);
        }
        None => {
            // Best effort by design: a refusal that does not fit in the
            // socket's buffer at once is not waited for.
            let _ = stream.try_write(&response);
            drain_received(&stream);
        }
    }
}

/// Reads what the client has sent so far, without waiting: closing a
/// socket with unread bytes resets the connection, and a reset can reach
/// the client before it has read its refusal.
fn drain_received(stream: &TcpStream) {
    let mut buffer = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_BYTES {
        match stream.try_read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(len) => drained += len,
        }
    }
}
