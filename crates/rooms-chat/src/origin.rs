//! The browser-origin check in front of Socket.IO: a handshake or upgrade
//! from a page of another site answers 403 (cross-site WebSocket hijacking),
//! and a listed origin (`ALLOWED_ORIGINS`) gets the CORS headers that
//! long-polling from that site needs.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use ops::origin::OriginPolicy;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Any error of a response body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Wraps the whole service; only Socket.IO paths are checked.
#[derive(Clone)]
pub(crate) struct OriginGuard<S> {
    inner: S,
    policy: Arc<OriginPolicy>,
    path: &'static str,
}

impl<S> OriginGuard<S> {
    /// `inner` behind the check of `policy` for requests under `path`.
    pub(crate) fn new(inner: S, policy: OriginPolicy, path: &'static str) -> OriginGuard<S> {
        OriginGuard {
            inner,
            policy: Arc::new(policy),
            path,
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

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}
