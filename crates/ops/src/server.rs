//! The HTTP accept loop every app runs: hyper 1 over TCP, HTTP/1.1 with
//! upgrades (WebSocket), and a graceful stop that lets in-flight requests
//! finish while refusing new connections.
//!
//! Each app hands in one tower service: warp routes, possibly wrapped by the
//! WebSocket upgrade (ws-chat) or by socketioxide (rooms-chat). sse-stocks
//! also hands in its stream route, served outside hyper (see [`RawRoute`]).

use crate::hangup::{Hangable, Hangup, WithHangup};
use crate::raw_route::{self, HeadError, RawRoute};
use crate::shutdown::Shutdown;
use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::time::Duration;
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
/// for at most [`GRACE_PERIOD`].
pub async fn serve<S, B>(listener: TcpListener, service: S, shutdown: Shutdown) -> Result<()>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    serve_connections(listener, service, None::<NoRawRoute>, shutdown).await
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
    serve_connections(listener, service, Some(route), shutdown).await
}

async fn serve_connections<S, B, R>(
    listener: TcpListener,
    service: S,
    route: Option<R>,
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
        .keep_alive(route.is_none());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or a reset during accept: wait
                    // a little instead of spinning, and keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let http = http.clone();
        let service = service.clone();
        let shutdown = shutdown.clone();
        match route.clone() {
            None => connections.spawn(serve_http(http, service, stream, peer, shutdown)),
            Some(route) => connections.spawn(serve_route_or_http(
                route,
                (http, service),
                stream,
                peer,
                shutdown,
                connections.clone(),
            )),
        };
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
) where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    let asks_for_route = tokio::select! {
        asks = raw_route::asks_for(&stream, R::PATH) => asks.unwrap_or(false),
        _ = shutdown.wait() => return,
    };
    if asks_for_route {
        drop((http, service, shutdown, connections));
        serve_raw(route, stream, peer).await;
    } else {
        connections.spawn(serve_http(http, service, stream, peer, shutdown));
    }
}

/// Reads the request head and hands the connection to the raw route; a bad
/// head gets the 400 hyper would have sent.
async fn serve_raw<R: RawRoute>(route: R, mut stream: TcpStream, peer: SocketAddr) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, raw_route::read_head(&mut stream)).await {
        Ok(head) => head,
        Err(_elapsed) => return,
    };
    match head {
        Ok(request) => route.serve(request, stream).await,
        Err(HeadError::Io(error)) => tracing::debug!(%peer, %error, "no request head"),
        Err(HeadError::Invalid(why)) => {
            tracing::debug!(%peer, why, "bad request head");
            let _ = raw_route::respond(
                &mut stream,
                http::StatusCode::BAD_REQUEST,
                "text/plain",
                why.as_bytes(),
            )
            .await;
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
