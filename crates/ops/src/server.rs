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

use crate::admission::{self, Admission, AdmissionConfig, Ticket};
use crate::admission::{PROBE_PATHS, Reason, Verdict};
use crate::hangup::{Hangable, Hangup, WithHangup};
use crate::raw_route::{self, HeadError, RawRoute};
use crate::shutdown::Shutdown;
use crate::spare::SpareDescriptor;
use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::task::TaskTracker;

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
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

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
struct Serving<S, R> {
    http: http1::Builder,
    service: S,
    route: Option<R>,
    admission: Arc<Admission>,
    shutdown: Shutdown,
    connections: TaskTracker,
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
                        connections.spawn(serve_starved(serving.clone(), accepted));
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

/// How long a refused connection gets to show that it asks for a probe
/// path ([`crate::admission::PROBE_PATHS`]).
const PROBE_PATIENCE: Duration = Duration::from_secs(2);

/// How long a refused connection may take to show that it is a probe when
/// every refusal slot is taken: it holds a probe slot meanwhile.
const CROWDED_PATIENCE: Duration = Duration::from_secs(1);

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
    let (reason, refusal_slot) = match serving.admission.admit(client) {
        Verdict::Admit(ticket) => return serve_admitted(serving, stream, peer, ticket).await,
        Verdict::Refuse { reason, reserve } => (reason, reserve),
    };
    tracing::debug!(%peer, %client, reason = reason.as_str(), "connection refused");
    let Some(refusal_slot) = refusal_slot else {
        // Too many refusals at once: one of the few probe slots waits for
        // the request line a little, so that a probe is still served;
        // anyone else gets what the socket takes now.
        return serve_probe_or_refuse(serving, stream, peer, reason, CROWDED_PATIENCE).await;
    };
    let probe = tokio::select! {
        asks = raw_route::asks_for_any(&stream, &PROBE_PATHS, PROBE_PATIENCE) => asks.unwrap_or(false),
        _ = serving.shutdown.wait() => return,
    };
    let probe_slot = if probe {
        serving.admission.probe_slot()
    } else {
        None
    };
    match probe_slot {
        Some(probe_slot) => {
            drop(refusal_slot);
            serve_probe(serving, stream, peer, probe_slot).await;
        }
        None => {
            refuse(stream, reason, Patience::Linger).await;
            drop(refusal_slot);
        }
    }
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
        STARVED_PATIENCE,
    )
    .await;
}

/// Serves a probe whose request line arrives within `patience`, if a probe
/// slot is free; refuses anything else without lingering.
async fn serve_probe_or_refuse<S, B, R>(
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
    let Some(probe_slot) = serving.admission.probe_slot() else {
        return refuse(stream, reason, Patience::None).await;
    };
    let probe = tokio::time::timeout(
        patience,
        raw_route::asks_for_any(&stream, &PROBE_PATHS, patience),
    )
    .await;
    if matches!(probe, Ok(Ok(true))) {
        serve_probe(serving, stream, peer, probe_slot).await;
    } else {
        if reason == Reason::OutOfDescriptors {
            serving.admission.count_refusal(reason);
        }
        refuse(stream, reason, Patience::None).await;
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

/// Serves an admitted connection; its slot is given back when it ends.
async fn serve_admitted<S, B, R>(
    serving: Serving<S, R>,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
) where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    let Serving {
        http,
        service,
        route,
        shutdown,
        connections,
        ..
    } = serving;
    match route {
        None => serve_http(http, service, stream, peer, shutdown).await,
        Some(route) => {
            serve_route_or_http(
                route,
                (http, service),
                stream,
                peer,
                shutdown,
                connections,
                ticket,
            )
            .await;
            return;
        }
    }
    drop(ticket);
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

/// Whether a refusal waits for its answer to be read.
enum Patience {
    /// Linger as [`raw_route::respond`] does: the answer arrives.
    Linger,
    /// Write what the socket takes now and close: no reserve slot is free,
    /// and the descriptor is needed back at once.
    None,
}

/// Answers a refused connection with its status and `Retry-After`.
async fn refuse(mut stream: TcpStream, reason: Reason, patience: Patience) {
    let response = admission::refusal_response(reason);
    match patience {
        Patience::Linger => {
            if stream.write_all(&response).await.is_ok() {
                crate::close::linger(&mut stream, REFUSAL_LINGER).await;
            }
        }
        Patience::None => {
            // Best effort by design: a refusal that does not fit in the
            // socket's buffer at once is not waited for.
            let _ = stream.try_write(&response);
        }
    }
}

/// How long a refused client may still send after its answer.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Serves one connection with hyper until it closes, or until shutdown and
/// the end of its requests in flight.
async fn serve_http<S, B>(
    http: http1::Builder,
    service: S,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: Shutdown,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    // The app may end this connection from outside (see `hangup`).
    let hangup = Hangup::default();
    let connection = http
        .serve_connection(
            TokioIo::new(Hangable::new(stream, hangup.clone())),
            TowerToHyperService::new(WithHangup::new(service, hangup)),
        )
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Looks at a new connection's first request: the raw route's is served
/// right here; any other goes to hyper in a task of its own, so that
/// neither kind of connection carries the other's state for its lifetime.
async fn serve_route_or_http<S, B, R>(
    route: R,
    (http, service): (http1::Builder, S),
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: Shutdown,
    connections: TaskTracker,
    ticket: Ticket,
) where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    // A client that connects and says nothing must not hold its slot for
    // ever: after the head timeout hyper takes it, and closes it.
    let asks_for_route = tokio::select! {
        asks = tokio::time::timeout(HEAD_TIMEOUT, raw_route::asks_for(&stream, R::PATH)) => {
            matches!(asks, Ok(Ok(true)))
        }
        _ = shutdown.wait() => return,
    };
    if asks_for_route {
        drop((http, service, shutdown, connections));
        serve_raw(route, stream, peer).await;
        drop(ticket);
    } else {
        connections.spawn(async move {
            serve_http(http, service, stream, peer, shutdown).await;
            drop(ticket);
        });
    }
}

/// Reads the request head and hands the connection to the raw route; a bad
/// head gets the 400 hyper would have sent, a large one 431.
async fn serve_raw<R: RawRoute>(route: R, mut stream: TcpStream, peer: SocketAddr) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, raw_route::read_head(&mut stream)).await {
        Ok(head) => head,
        Err(_elapsed) => return,
    };
    let (status, why) = match head {
        Ok(request) => return route.serve(request, stream).await,
        Err(HeadError::Io(error)) => {
            tracing::debug!(%peer, %error, "no request head");
            return;
        }
        Err(HeadError::Invalid(why)) => (http::StatusCode::BAD_REQUEST, why),
        Err(HeadError::TooLarge) => (
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head too large",
        ),
    };
    tracing::debug!(%peer, why, "bad request head");
    // The client may be gone already; nothing more to do for it then.
    let _ = raw_route::respond(&mut stream, status, "text/plain", why.as_bytes()).await;
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
