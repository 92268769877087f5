//! The HTTP accept loop every app runs: hyper 1 over TCP, HTTP/1.1 with
//! upgrades (WebSocket), and a graceful stop that lets in-flight requests
//! finish while refusing new connections.
//!
//! Each app builds one [`Server`] from its tower service (warp routes,
//! possibly wrapped by the WebSocket upgrade in ws-chat or by our
//! Socket.IO runtime in rooms-chat) and its limits; sse-stocks adds its stream route, served
//! outside hyper (see [`RawRoute`]).
//!
//! Every connection passes [`crate::admission`] first, and a request head
//! larger than [`raw_route::MAX_HEAD_BYTES`] gets `431`.

use crate::admission::{Admission, AdmissionConfig, Reason, Verdict};
use crate::connection::serve_admitted;
use crate::continuation::continues_session;
use crate::peek::{self, PEEK_PATIENCE};
use crate::raw_route::{self, RawRoute};
use crate::refusal::serve_probe_or_refuse;
use crate::serving::{HEAD_TIMEOUT, HttpService, ResponseBody, Serving};
use crate::shutdown::Shutdown;
use crate::spare::SpareDescriptor;
use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::task::TaskTracker;

/// How long the accept loop, out of descriptors, waits for the connection
/// it answered on the spare descriptor to be done with it (a refusal takes
/// microseconds, a probe served there a little more).
const STARVED_WAIT: Duration = Duration::from_millis(200);

/// How long a connection accepted on the spare descriptor gets to show it
/// is a probe: it connected before it was accepted, so its request is there.
const STARVED_PATIENCE: Duration = Duration::from_millis(100);

/// How long open HTTP connections get to finish once shutdown starts.
pub const GRACE_PERIOD: Duration = Duration::from_secs(4);

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

/// One app's HTTP server: its service, the limits its connections are
/// admitted under, and the route it serves outside hyper, if any.
pub struct Server<S, R = NoRawRoute> {
    service: S,
    limits: AdmissionConfig,
    route: Option<R>,
}

impl<S> Server<S> {
    /// A server answering every request with `service`, under `limits`.
    pub fn new(service: S, limits: AdmissionConfig) -> Server<S> {
        Server {
            service,
            limits,
            route: None,
        }
    }
}

impl<S, R> Server<S, R> {
    /// The same server, but a new connection whose first request is `GET
    /// R2::PATH` goes to `route` instead of hyper. hyper then closes each
    /// connection after one response (no keep-alive), so that every
    /// request for the route opens a connection of its own and never
    /// reaches hyper.
    pub fn with_raw_route<R2: RawRoute>(self, route: R2) -> Server<S, R2> {
        Server {
            service: self.service,
            limits: self.limits,
            route: Some(route),
        }
    }

    /// Serves `listener` until `shutdown`, then drains connections for at
    /// most [`GRACE_PERIOD`].
    pub async fn serve<B>(self, listener: TcpListener, shutdown: Shutdown)
    where
        S: HttpService<B>,
        B: ResponseBody,
        R: RawRoute,
    {
        let serving = self.serving(shutdown.clone());
        let connections = serving.connections.clone();
        accept_until(&listener, serving, shutdown.wait()).await;
        // New connections are refused by the kernel from here on.
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
    }

    /// Serves `listener` until `until` completes, and leaves the listener
    /// to the caller (the connections accepted meanwhile go on by
    /// themselves): how an app answers while it is starting.
    pub async fn serve_until<B>(
        self,
        listener: &TcpListener,
        until: impl Future<Output = ()>,
        shutdown: Shutdown,
    ) where
        S: HttpService<B>,
        B: ResponseBody,
        R: RawRoute,
    {
        let mut serving = self.serving(shutdown);
        // One request per connection, so that no client stays on a
        // connection that the server after `until` does not serve.
        serving.http.keep_alive(false);
        accept_until(listener, serving, until).await;
    }

    fn serving(self, shutdown: Shutdown) -> Serving<S, R> {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_header_size(raw_route::MAX_HEAD_BYTES)
            .keep_alive(self.route.is_none());
        Serving {
            http,
            service: self.service,
            route: self.route,
            admission: Admission::new(self.limits),
            shutdown,
            connections: TaskTracker::new(),
        }
    }
}

/// Accepts connections until `stop`, each served in a task of its own.
async fn accept_until<S, B, R>(
    listener: &TcpListener,
    serving: Serving<S, R>,
    stop: impl Future<Output = ()>,
) where
    S: HttpService<B>,
    B: ResponseBody,
    R: RawRoute,
{
    let connections = serving.connections.clone();
    let mut spare = SpareDescriptor::open();
    tokio::pin!(stop);
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
                    if let Some(accepted) = spare.accept_with_spare(listener).await {
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
            () = &mut stop => return,
        };
        connections.spawn(serve_connection(serving.clone(), stream, peer));
    }
}

/// Admits one new connection, then serves it; a refused one gets its 503 or
/// 429, unless it asks for a probe path.
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
    match verdict {
        Verdict::Admit(ticket) => serve_admitted(serving, stream, peer, ticket).await,
        Verdict::Refuse(reason) => {
            tracing::debug!(%peer, %client, reason = reason.as_str(), "connection refused");
            serve_probe_or_refuse(serving, stream, peer, reason, PEEK_PATIENCE).await;
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
    serve_probe_or_refuse(
        serving,
        stream,
        peer,
        Reason::OutOfDescriptors,
        STARVED_PATIENCE,
    )
    .await;
}

/// The client address of a connection from a trusted proxy, from the
/// `X-Forwarded-For` of its first request head; the proxy's own address
/// when the head does not arrive in time or does not parse.
async fn forwarded_client(stream: &TcpStream, peer: SocketAddr, admission: &Admission) -> IpAddr {
    let client = peek::peek_until(stream, raw_route::MAX_HEAD_BYTES, PEEK_PATIENCE, |seen| {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(seen) {
            Ok(httparse::Status::Complete(_)) => {
                let forwarded_for = request
                    .headers
                    .iter()
                    .filter(|header| header.name.eq_ignore_ascii_case("x-forwarded-for"))
                    .map(|header| header.value);
                Some(
                    admission
                        .config()
                        .trusted_proxies
                        .client_address(peer.ip(), forwarded_for),
                )
            }
            Ok(httparse::Status::Partial) => None,
            Err(_) => Some(peer.ip()),
        }
    });
    client.await.unwrap_or(peer.ip())
}

/// The raw route of a server that has none.
#[derive(Clone)]
pub enum NoRawRoute {}

impl RawRoute for NoRawRoute {
    const PATH: &'static str = "";

    async fn serve(&self, _request: http::Request<()>, _socket: TcpStream) {
        match *self {}
    }
}
