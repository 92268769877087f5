//! The HTTP accept loop every app runs: hyper 1 over TCP, HTTP/1.1 with
//! upgrades (WebSocket), and a graceful stop that lets in-flight requests
//! finish while refusing new connections.
//!
//! Each app hands in one tower service: warp routes, possibly wrapped by the
//! WebSocket upgrade (ws-chat) or by socketioxide (rooms-chat). sse-stocks
//! also hands in its stream route, served outside hyper (see [`RawRoute`]).
//!
//! Every connection passes [`crate::admission`] first (the limits come from
//! the environment), and a request head larger than
//! [`raw_route::MAX_HEAD_BYTES`] gets `431`.

use crate::admission::{Admission, AdmissionConfig, Reason, Verdict};
use crate::connection::serve_admitted;
use crate::continuation::continues_session;
use crate::raw_route::{self, RawRoute};
use crate::refusal::{CROWDED_PATIENCE, PROBE_PATIENCE, serve_probe_or_refuse};
use crate::shutdown::Shutdown;
use crate::spare::SpareDescriptor;
use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::task::TaskTracker;

/// How long the accept loop, out of descriptors, waits for the connection
/// it answered on the spare descriptor to be done with it (a refusal takes
/// microseconds, a probe served there a little more).
const STARVED_WAIT: Duration = Duration::from_millis(200);

/// How long open HTTP connections get to finish once shutdown starts.
pub const GRACE_PERIOD: Duration = Duration::from_secs(4);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service an app hands in: a tower service answering hyper's requests.
pub trait HttpService<B>:
    tower_service::Service<
        http::Request<Incoming>,
        Response = http::Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Future: Send + 'static,
            Error: Into<BoxError>,
        > + Clone
        + Send
        + 'static
{
}

/// The body of the service's responses.
pub trait ResponseBody:
    hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

/// Connections the kernel queues while the accept loop is busy. tokio's
/// default (1024) overflows when thousands of clients (re)connect at once,
/// as after a restart: each dropped SYN costs its client a one-second
/// retry. The kernel caps it at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds `addr`, with a clear error when the port is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .context("cannot create a listening socket")?;
    // As std and tokio do, so a restarted server can bind while old
    // connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?;
    socket
        .listen(ACCEPT_BACKLOG)
        .with_context(|| format!("cannot listen on {addr}"))
}

/// How long a client gets to send a complete request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `service` on `listener` until `shutdown`, then drains connections
/// for at most [`GRACE_PERIOD`]. The connection limits come from the
/// environment ([`AdmissionConfig::from_env`]).
pub async fn serve<S, B>(listener: TcpListener, service: S, shutdown: Shutdown) -> Result<()>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    let admission = Admission::new(AdmissionConfig::from_env()?);
    serve_connections(listener, service, None::<NoRawRoute>, admission, shutdown).await
}

/// As [`serve`], with the limits given.
pub async fn serve_with_admission<S, B>(
    listener: TcpListener,
    service: S,
    admission: Arc<Admission>,
    shutdown: Shutdown,
) -> Result<()>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    serve_connections(listener, service, None::<NoRawRoute>, admission, shutdown).await
}

/// As [`serve`], but a new connection whose first request is `GET
/// R::PATH` goes to `route` instead of hyper. hyper then closes each
/// connection after one response (no keep-alive), so that every request
/// for the route opens a connection of its own and never reaches hyper.
pub async fn serve_with_raw_route<S, B, R>(
    listener: TcpListener,
    service: S,
    route: R,
    shutdown: Shutdown,
) -> Result<()>
where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    let admission = Admission::new(AdmissionConfig::from_env()?);
    serve_connections(listener, service, Some(route), admission, shutdown).await
}

/// What every connection's task needs, cloned from the accept loop.
#[derive(Clone)]
pub(crate) struct Serving<S, R> {
    pub(crate) http: http1::Builder,
    pub(crate) service: S,
    pub(crate) route: Option<R>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) shutdown: Shutdown,
    pub(crate) connections: TaskTracker,
}

async fn serve_connections<S, B, R>(
    listener: TcpListener,
    service: S,
    route: Option<R>,
    admission: Arc<Admission>,
    shutdown: Shutdown,
) -> Result<()>
where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_header_size(raw_route::MAX_HEAD_BYTES)
        .keep_alive(route.is_none());
    let serving = Serving {
        http,
        service,
        route,
        admission,
        shutdown: shutdown.clone(),
        connections: connections.clone(),
    };
    let mut spare = SpareDescriptor::open();
    loop {
        spare.refill();
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if crate::spare::is_out_of_descriptors(&error) => {
                    // The limits leave a reserve, so this means descriptors
                    // went elsewhere: answer the oldest waiting connection
                    // on the spare descriptor (a health check gets served),
                    // then back off a little instead of spinning.
                    if let Some(accepted) = spare.accept_with_spare(&listener).await {
                        let starved = connections.spawn(serve_starved(serving.clone(), accepted));
                        // Its descriptor was the spare's: once the refusal
                        // is written and closed the spare can be refilled,
                        // so the next waiting connection is answered at
                        // once instead of after the back-off below. A slow
                        // probe does not hold the loop longer than this;
                        // the task goes on by itself then.
                        let _finished_in_time =
                            tokio::time::timeout(STARVED_WAIT, starved).await;
                    } else {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
                Err(error) => {
                    // A reset during accept: keep serving.
                    tracing::debug!(%error, "accept failed");
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        connections.spawn(serve_connection(serving.clone(), stream, peer));
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(GRACE_PERIOD, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period"
        );
    }
    Ok(())
}

/// Admits one new connection, then serves it; a refused one gets its 503 or
/// 429, unless it asks for a probe path and a reserve slot is free.
async fn serve_connection<S, B, R>(serving: Serving<S, R>, stream: TcpStream, peer: SocketAddr)
where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    // Latency, not throughput, matters to every app here; failing to set
    // it only costs latency.
    let _ = stream.set_nodelay(true);
    let client = if serving.admission.trusts(peer.ip()) {
        forwarded_client(&stream, peer, &serving.admission).await
    } else {
        peer.ip()
    };
    let verdict = match serving.admission.config().session_path {
        None => serving.admission.admit(client),
        // The limits first, so that connections saying nothing still
        // count; the handshake token once the request line tells.
        Some(path) => match serving.admission.admit_deferring_handshake(client) {
            Verdict::Admit(ticket) if !continues_session(&stream, path).await => {
                serving.admission.take_handshake(client, ticket)
            }
            verdict => verdict,
        },
    };
    let (reason, refusal_slot) = match verdict {
        Verdict::Admit(ticket) => return serve_admitted(serving, stream, peer, ticket).await,
        Verdict::Refuse { reason, reserve } => (reason, reserve),
    };
    tracing::debug!(%peer, %client, reason = reason.as_str(), "connection refused");
    // Too many refusals at once: one of the few probe slots waits for the
    // request line a little, so that a probe is still served.
    let patience = match refusal_slot {
        Some(_) => PROBE_PATIENCE,
        None => CROWDED_PATIENCE,
    };
    serve_probe_or_refuse(serving, stream, peer, reason, refusal_slot, patience).await;
}

/// Serves a connection accepted on the spare descriptor while the process
/// is out of them: a probe that has already sent its request line is
/// served, anything else is answered 503 at once so that its descriptor
/// comes back.
async fn serve_starved<S, B, R>(serving: Serving<S, R>, (stream, peer): (TcpStream, SocketAddr))
where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    /// The probe connected before it was accepted: its request is there.
    const STARVED_PATIENCE: Duration = Duration::from_millis(100);
    serve_probe_or_refuse(
        serving,
        stream,
        peer,
        Reason::OutOfDescriptors,
        None,
        STARVED_PATIENCE,
    )
    .await;
}

/// The client address of a connection from a trusted proxy, from the
/// `X-Forwarded-For` of its first request head; the proxy's own address
/// when the head does not arrive in time or does not parse.
async fn forwarded_client(stream: &TcpStream, peer: SocketAddr, admission: &Admission) -> IpAddr {
    let mut head = vec![0u8; raw_route::MAX_HEAD_BYTES];
    let give_up = tokio::time::Instant::now() + PROBE_PATIENCE;
    loop {
        let len = match tokio::time::timeout_at(give_up, stream.peek(&mut head)).await {
            Ok(Ok(len)) => len,
            Ok(Err(_)) | Err(_) => return peer.ip(),
        };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let forwarded_for = request
                    .headers
                    .iter()
                    .filter(|header| header.name.eq_ignore_ascii_case("x-forwarded-for"))
                    .map(|header| header.value);
                return admission
                    .config()
                    .trusted_proxies
                    .client_address(peer.ip(), forwarded_for);
            }
            Ok(httparse::Status::Partial)
                if len > 0 && len < head.len() && tokio::time::Instant::now() < give_up =>
            {
                // The head has not all arrived: peek again after a moment.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ => return peer.ip(),
        }
    }
}

/// The raw route of an app that has none.
#[derive(Clone)]
enum NoRawRoute {}

impl RawRoute for NoRawRoute {
    const PATH: &'static str = "";

    async fn serve(&self, _request: http::Request<()>, _socket: TcpStream) {
        match *self {}
    }
}
