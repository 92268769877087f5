//! Token authentication in ws-chat (on with `AUTH_JWT_*`; the checking
//! itself is the `auth` crate's): the `token` query parameter of `/ws`
//! checked before the upgrade (browsers cannot set headers on a
//! WebSocket), answered `401` with the contract's error JSON when it is
//! missing or not valid; and the close of a socket whose token expired.

use auth::{Identity, Refusal, Verifier};
use fanout::Outbox;
use http::StatusCode;
use http::header::{self, HeaderValue};
use protocol::{ErrorBody, ErrorCode};
use std::sync::{Arc, Weak};
use tokio::task::AbortHandle;
use warp::reply::Response;

/// The query parameter of `/ws` that carries the token.
pub const TOKEN_PARAM: &str = "token";

/// Close code of a socket whose token expired (4000 + HTTP's 401); the
/// page shows the reason and asks for a fresh token.
pub const CLOSE_EXPIRED: u16 = 4401;

/// The identity the request's `token` proves.
pub fn check_upgrade(verifier: &Verifier, query: Option<&str>) -> Result<Identity, Refusal> {
    let token = query.and_then(|query| auth::carry::query_param(query, TOKEN_PARAM));
    verifier.verify(token.as_deref())
}

/// The `401` of a refused token: the contract's error JSON, with the reason.
pub fn unauthorized(refusal: Refusal) -> Response {
    let body = ErrorBody::new(ErrorCode::Unauthorized, refusal.to_string());
    let json = serde_json::to_string(&body).unwrap_or_default();
    let mut response = Response::new(json.into());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Closes the socket of `outbox` with [`CLOSE_EXPIRED`] when `identity`'s
/// token expires; abort the returned task when the socket ends first.
/// Holds the outbox weakly: the session alone owns it.
pub fn close_at_expiry(outbox: &Arc<Outbox>, identity: &Identity) -> AbortHandle {
    let outbox: Weak<Outbox> = Arc::downgrade(outbox);
    let left = identity.time_left();
    let task = tokio::spawn(async move {
        tokio::time::sleep(left).await;
        if let Some(outbox) = outbox.upgrade() {
            tracing::debug!("token expired, closing the socket");
            outbox.end(CLOSE_EXPIRED, "the token has expired");
        }
    });
    task.abort_handle()
}
