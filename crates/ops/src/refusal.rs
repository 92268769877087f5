//! What a connection over the limits gets: why it is refused ([`Reason`],
//! as counted in `/metrics`), and its `503` or `429` with `Retry-After`,
//! unless it asks for a probe path ([`PROBE_PATHS`]) and a
//! probe slot is free, in which case it is served beyond the limits.
//!
//! A refused connection holds a refusal slot while its answer lingers and
//! while it shows whether it is a probe. When every refusal slot is taken
//! (or the process is out of descriptors) it holds one of the few probe
//! slots instead, for a shorter patience, and its refusal is what its
//! socket takes at once.

use crate::admission::{PROBE_PATHS, Ticket};
use crate::connection::serve_http;
use crate::raw_route::{self, RawRoute};
use crate::server::{HttpService, ResponseBody, Serving};
use http::{HeaderMap, HeaderValue, StatusCode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long a refused connection gets to show that it asks for a probe
/// path ([`crate::admission::PROBE_PATHS`]).
pub(crate) const PROBE_PATIENCE: Duration = Duration::from_secs(2);

/// How long a refused connection may take to show that it is a probe when
/// every refusal slot is taken: it holds a probe slot meanwhile.
pub(crate) const CROWDED_PATIENCE: Duration = Duration::from_secs(1);

/// How long a refused client may still send after its answer.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Why a connection was refused, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `MAX_CONNECTIONS` reached.
    MaxConnections,
    /// `MAX_CONNECTIONS_PER_IP` reached for this client.
    PerIp,
    /// `HANDSHAKE_RATE` exceeded by this client.
    HandshakeRate,
    /// The process ran out of file descriptors anyway.
    OutOfDescriptors,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MaxConnections => "max_connections",
            Reason::PerIp => "per_ip",
            Reason::HandshakeRate => "handshake_rate",
            Reason::OutOfDescriptors => "out_of_descriptors",
        }
    }

    /// 503 when the server is full, 429 when this client asks too much.
    pub fn status(self) -> StatusCode {
        match self {
            Reason::MaxConnections | Reason::OutOfDescriptors => StatusCode::SERVICE_UNAVAILABLE,
            Reason::PerIp | Reason::HandshakeRate => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A full server frees slots as clients leave, a rate limit refills
    /// within a second.
    pub fn retry_after(self) -> Duration {
        match self {
            Reason::HandshakeRate => Duration::from_secs(1),
            _ => Duration::from_secs(5),
        }
    }
}

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
    let mut response = crate::raw_route::response_head(reason.status(), &headers);
    response.extend_from_slice(body.as_bytes());
    response
}

/// What a refused connection holds while it shows whether it is a probe.
enum Held {
    /// A refusal slot: the refusal lingers until it is read.
    Refusal(Ticket),
    /// A probe slot, for want of a refusal slot: the refusal is what the
    /// socket takes at once, so that the descriptor comes back.
    Probe(Ticket),
}

/// Serves a refused connection as a probe if its request line asks for a
/// probe path within `patience` and a probe slot is free; refuses it
/// otherwise. `refusal_slot` is the refusal slot it got, if any.
pub(crate) async fn serve_probe_or_refuse<S, B, R>(
    serving: Serving<S, R>,
    stream: TcpStream,
    peer: SocketAddr,
    reason: Reason,
    refusal_slot: Option<Ticket>,
    patience: Duration,
) where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    let held = match refusal_slot {
        Some(slot) => Held::Refusal(slot),
        None => match serving.admission.probe_slot() {
            Some(slot) => Held::Probe(slot),
            None => return refuse(stream, reason, None).await,
        },
    };
    let asks_for_probe = tokio::select! {
        asks = tokio::time::timeout(patience, raw_route::asks_for_any(&stream, &PROBE_PATHS, patience)) => {
            matches!(asks, Ok(Ok(true)))
        }
        _ = serving.shutdown.wait() => return,
    };
    let (probe_slot, refusal_slot) = match held {
        Held::Probe(slot) => (asks_for_probe.then_some(slot), None),
        Held::Refusal(slot) if asks_for_probe => (serving.admission.probe_slot(), Some(slot)),
        Held::Refusal(slot) => (None, Some(slot)),
    };
    match probe_slot {
        Some(probe_slot) => {
            drop(refusal_slot);
            serve_probe(serving, stream, peer, probe_slot).await;
        }
        None => {
            // The admission counted its own refusals; running out of
            // descriptors is found out here.
            if reason == Reason::OutOfDescriptors {
                serving.admission.count_refusal(reason);
            }
            refuse(stream, reason, refusal_slot).await;
        }
    }
}

/// Serves a probe (health check or scrape) beyond the limits: one request,
/// no keep-alive, so the reserve slot comes back at once.
async fn serve_probe<S, B, R>(
    serving: Serving<S, R>,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    tracing::debug!(%peer, "probe served beyond the limits");
    let mut http = serving.http.clone();
    http.keep_alive(false);
    serve_http(http, serving.service, stream, peer, serving.shutdown).await;
    drop(ticket);
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
        }
    }
}
