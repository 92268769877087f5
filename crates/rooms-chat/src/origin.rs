//! The browser-origin check in front of Socket.IO: a handshake or upgrade
//! from a page of another site answers 403 (cross-site WebSocket hijacking),
//! and a listed origin (`ALLOWED_ORIGINS`) gets the CORS headers that
//! long-polling from that site needs.
//!
//! It notes the connection of every WebSocket upgrade of a polling socket
//! (see `hangups`), so a socket that cannot keep up can be hung up.
//!
//! It also gives Socket.IO requests a head of their own: hyper parses the
//! URI and header values as slices of its 8 KiB connection read buffer,
//! and socketioxide keeps each socket's request head for its whole life,
//! which would pin one such buffer per idle socket.

use crate::hangups::Hangups;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::HeaderName;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use ops::hangup::Hangup;
use ops::origin::OriginPolicy;
use std::sync::Arc;
use std::task::{Context, Poll};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Wraps the whole service; only Socket.IO paths are checked.
#[derive(Clone)]
pub struct OriginGuard<S> {
    inner: S,
    policy: Arc<OriginPolicy>,
    path: &'static str,
    hangups: Arc<Hangups>,
}

impl<S> OriginGuard<S> {
    pub fn new(
        inner: S,
        policy: OriginPolicy,
        path: &'static str,
        hangups: Arc<Hangups>,
    ) -> OriginGuard<S> {
        OriginGuard {
            inner,
            policy: Arc::new(policy),
            path,
            hangups,
        }
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for OriginGuard<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if !request.uri().path().starts_with(self.path) {
            return boxed(self.inner.call(request), None);
        }
        if !self.policy.allows(request.headers()) {
            return Box::pin(async { Ok(empty(StatusCode::FORBIDDEN)) });
        }
        let origin = request.headers().get(header::ORIGIN).cloned();
        self.note_upgrade(&request);
        let request = with_owned_head(request);
        if request.method() == Method::OPTIONS {
            let mut response = empty(StatusCode::NO_CONTENT);
            add_cors(&mut response, origin);
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type"),
            );
            return Box::pin(async { Ok(response) });
        }
        boxed(self.inner.call(request), origin)
    }
}

impl<S> OriginGuard<S> {
    /// A WebSocket upgrade of an existing (polling) socket: its connection
    /// is the one to hang up from now on.
    fn note_upgrade<B>(&self, request: &Request<B>) {
        let Some(query) = request.uri().query() else {
            return;
        };
        let mut sid = None;
        let mut websocket = false;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sid", value)) => sid = Some(value),
                Some(("transport", "websocket")) => websocket = true,
                _ => {}
            }
        }
        if let (Some(sid), true, Some(hangup)) =
            (sid, websocket, request.extensions().get::<Hangup>())
        {
            self.hangups.upgrading(sid, hangup.clone());
        }
    }
}

fn boxed<F, ResBody, E>(
    future: F,
    origin: Option<HeaderValue>,
) -> BoxFuture<'static, Result<Response<Body>, E>>
where
    F: Future<Output = Result<Response<ResBody>, E>> + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    Box::pin(async move {
        let response = future.await?;
        let mut response = response.map(|body| body.map_err(Into::into).boxed_unsync());
        add_cors(&mut response, origin);
        Ok(response)
    })
}

/// An allowed browser origin may read the answers (long-polling across sites).
fn add_cors(response: &mut Response<Body>, origin: Option<HeaderValue>) {
    let Some(origin) = origin else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The request with its URI and headers copied out of hyper's read buffer.
fn with_owned_head<B>(request: Request<B>) -> Request<B> {
    let (mut head, body) = request.into_parts();
    head.headers = head
        .headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or(name.clone());
            let value = HeaderValue::from_bytes(value.as_bytes()).unwrap_or(value.clone());
            (name, value)
        })
        .collect();
    if let Ok(uri) = Uri::try_from(head.uri.to_string()) {
        head.uri = uri;
    }
    Request::from_parts(head, body)
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}
