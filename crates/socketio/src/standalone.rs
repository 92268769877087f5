//! The runtime served alone on a listener, with nothing in front of it:
//! for examples and tests (an app serves it through `ops`' accept loop,
//! behind its own routes, with [`crate::WithSocketIo`]).

use crate::server::{SocketIo, WithSocketIo};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tower_service::Service;

/// Serves `io` on `listener` until the task is dropped; `/healthz`
/// answers `200`, every other path `404`.
pub async fn serve<A, C>(listener: TcpListener, io: SocketIo<A, C>)
where
    A: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    let service = TowerToHyperService::new(WithSocketIo::new(Fallback, io));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection failed");
            }
        });
    }
}

/// Every path but the runtime's.
#[derive(Clone, Copy)]
struct Fallback;

impl Service<Request<Incoming>> for Fallback {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let (status, body) = match request.uri().path() {
            "/healthz" => (StatusCode::OK, &b"ok"[..]),
            _ => (StatusCode::NOT_FOUND, &b"not found"[..]),
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body)));
        *response.status_mut() = status;
        ready(Ok(response))
    }
}
