//! The WebSocket upgrade of `GET /ws`, done here rather than by warp so that
//! the server chooses tungstenite's `WebSocketConfig`: warp's `ws()` keeps
//! the default 128 KiB read buffer, allocated eagerly for every socket, and
//! would pull a second version of tokio-tungstenite into the build.
//!
//! [`WithWebSocket`] is a tower service in front of the warp routes: it
//! answers upgrade requests for `/ws` itself (origin check, the token with
//! token authentication, handshake, one session task per socket) and
//! passes every other request to warp.

use crate::access;
use crate::app::App;
use crate::session::Session;
use crate::socket::Socket;
use futures::future::Either;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ops::Shutdown;
use ops::origin::OriginPolicy;
use ops::placed::Placed;
use protocol::ErrorCode;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::reply::Response;

/// The path that upgrades to the chat's WebSocket.
pub const WS_PATH: &str = "/ws";

/// Small buffers are what make ten thousand idle sockets cheap: the read
/// buffer is allocated up front for every socket (client frames are small; a
/// long one just takes a few reads). The server's own frames never go
/// through tungstenite's write buffer (see `socket`).
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(128)
        // tungstenite writes only its replies to pings and closes, straight
        // into the socket's outbox.
        .write_buffer_size(0)
        .max_message_size(Some(protocol::MAX_FRAME_BYTES))
        .max_frame_size(Some(protocol::MAX_FRAME_BYTES))
}

/// Everything an upgrade needs, shared by every clone of the service.
struct Upgrader {
    app: Arc<App>,
    origins: OriginPolicy,
    sessions: TaskTracker,
    shutdown: Shutdown,
}

/// `GET /ws` upgrades to a chat socket; everything else goes to `routes`.
#[derive(Clone)]
pub struct WithWebSocket<S> {
    routes: S,
    upgrader: Arc<Upgrader>,
}

impl<S> WithWebSocket<S> {
    /// Sessions are spawned on `sessions`, so shutdown can wait for their
    /// close frames to go out.
    pub fn new(routes: S, app: Arc<App>, sessions: TaskTracker, shutdown: Shutdown) -> Self {
        let origins = OriginPolicy::new(app.config.server.allowed_origins.clone());
        WithWebSocket {
            routes,
            upgrader: Arc::new(Upgrader {
                app,
                origins,
                sessions,
                shutdown,
            }),
        }
    }
}

impl<S> Service<Request<Incoming>> for WithWebSocket<S>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        if request.uri().path() == WS_PATH {
            Either::Left(ready(Ok(self.upgrader.upgrade(request))))
        } else {
            Either::Right(self.routes.call(request))
        }
    }
}

impl Upgrader {
    /// Checks the request, answers 101 and starts the session once hyper
    /// hands over the connection; or says precisely what was wrong.
    fn upgrade(&self, mut request: Request<Incoming>) -> Response {
        if request.method() != Method::GET {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET to open a WebSocket",
            );
        }
        if !self.origins.allows(request.headers()) {
            tracing::info!(
                origin = ?request.headers().get(header::ORIGIN),
                "refused a WebSocket from a foreign origin"
            );
            return plain(
                StatusCode::FORBIDDEN,
                "this origin may not open the chat socket",
            );
        }
        // Before the handshake is looked at, so that a plain GET with the
        // token tells a page why its socket was refused.
        let identity = match &self.app.auth {
            Some(verifier) => match access::check_upgrade(verifier, request.uri().query()) {
                Ok(identity) => Some(identity),
                Err(refusal) => {
                    self.app.metrics.core.count_error(ErrorCode::Unauthorized);
                    return access::unauthorized(refusal);
                }
            },
            None => None,
        };
        let key = match websocket_key(request.headers()) {
            Ok(key) => key,
            Err(refusal) => return refusal.into_response(),
        };
        if self.shutdown.is_triggered() {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            );
        }
        let on_upgrade = hyper::upgrade::on(&mut request);
        let app = self.app.clone();
        let shutdown = self.shutdown.clone();
        let sessions = self.sessions.clone();
        self.sessions.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => return tracing::debug!(%error, "upgrade failed"),
            };
            // The connection as the accept loop made it: the socket itself,
            // which the session writes to from any task, and the
            // connection's place in the limits, which the session holds.
            let parts = match upgraded.downcast::<TokioIo<Placed<TcpStream>>>() {
                Ok(parts) => parts,
                Err(_) => return tracing::error!("an upgraded connection of an unknown kind"),
            };
            let (stream, place) = parts.io.into_inner().into_parts();
            let queue_len = app.config.queue_len;
            let socket = Socket::new(stream, parts.read_buf, websocket_config(), queue_len);
            // A task of its own, so that an idle socket's task is exactly
            // its session, not also what this one kept across the upgrade.
            let session = Session::new(socket, place, app, identity, &shutdown);
            sessions.spawn(session.run());
        });
        let mut response = Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
                .expect("base64 is a valid header value"),
        );
        response
    }
}

/// Why an upgrade request was refused, before it becomes a response.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    message: &'static str,
}

impl Refusal {
    fn into_response(self) -> Response {
        let mut response = plain(self.status, self.message);
        if self.status == StatusCode::UPGRADE_REQUIRED {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// The `Sec-WebSocket-Key` of a well-formed upgrade request (RFC 6455 §4.2.1),
/// or what is wrong with it.
fn websocket_key(headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            message: "expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
        });
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return Err(Refusal {
            status: StatusCode::UPGRADE_REQUIRED,
            message: "only WebSocket version 13 is supported",
        });
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => Ok(key.clone()),
        _ => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            message: "missing Sec-WebSocket-Key",
        }),
    }
}

/// True when the comma-separated header `name` lists `token` (any case).
fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    let mut response = Response::new(message.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        headers
    }

    #[test]
    fn accepts_what_browsers_send() {
        let key = websocket_key(&upgrade_headers()).unwrap();
        // The example of RFC 6455 §1.3.
        assert_eq!(
            derive_accept_key(key.as_bytes()),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn refuses_malformed_upgrades() {
        let mut no_upgrade = upgrade_headers();
        no_upgrade.remove(header::UPGRADE);
        assert_eq!(
            websocket_key(&no_upgrade).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let mut old_version = upgrade_headers();
        old_version.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(
            websocket_key(&old_version).unwrap_err().status,
            StatusCode::UPGRADE_REQUIRED
        );
        let mut no_key = upgrade_headers();
        no_key.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(
            websocket_key(&no_key).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
