//! The life of one admitted connection: hyper until it closes (or until
//! shutdown and the end of its requests in flight), or, for an app with a
//! raw route, the route when the first request asks for it. Its place in
//! the limits goes with it all the way: into the stream hyper hands to an
//! upgrade, or held here until the raw route is done.

use crate::admission::Ticket;
use crate::placed::Placed;
use crate::raw_route::{self, HeadError, RawRoute};
use crate::serving::{HEAD_TIMEOUT, HttpService, ResponseBody, Serving};
use crate::shutdown::Shutdown;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;

/// Serves an admitted connection; its slot is given back when it ends.
pub(crate) async fn serve_admitted<S, B, R>(
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
        None => serve_http(http, service, stream, peer, shutdown, ticket).await,
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
        }
    }
}

/// Serves one connection with hyper until it closes, or until shutdown and
/// the end of its requests in flight. `place` is given back when the
/// stream is dropped: here, or when an upgraded socket built on it ends.
pub(crate) async fn serve_http<S, B>(
    http: http1::Builder,
    service: S,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: Shutdown,
    place: Ticket,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    let connection = http
        .serve_connection(
            TokioIo::new(Placed::new(stream, Some(place))),
            TowerToHyperService::new(service),
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
    // ever: past the peek's patience hyper takes it, and its head timeout
    // closes it.
    let asks_for_route = tokio::select! {
        asks = raw_route::asks_for(&stream, R::PATH) => asks,
        _ = shutdown.wait() => return,
    };
    if asks_for_route {
        drop((http, service, shutdown, connections));
        serve_raw(route, stream, peer).await;
        drop(ticket);
    } else {
        connections.spawn(serve_http(http, service, stream, peer, shutdown, ticket));
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
