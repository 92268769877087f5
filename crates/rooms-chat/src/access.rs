//! Token authentication in rooms-chat (on with `AUTH_JWT_*`; the checking
//! itself is the `auth` crate's): the token of the Socket.IO `auth`
//! payload checked at connect, a join under the token's name and only
//! into the rooms it allows, the `refresh` event that hands in a fresh
//! token, and the end of a socket whose token expired.

use crate::app::App;
use crate::handlers;
use crate::recipient::Client;
use crate::session::Session;
use auth::{Identity, Refusal, Verifier};
use protocol::rooms::{ErrorAck, JoinRequest};
use protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use serde_json::Value;
use socketio::Cx;
use std::fmt;

/// Client → server: `refresh {"token"}`, acked `{"ok":true,"expiresAt":ms}`.
pub(crate) const REFRESH_EVENT: &str = "refresh";

/// Server → client before it disconnects a socket whose token expired:
/// `{"code":"unauthorized","message":…}`.
pub(crate) const EXPIRED_EVENT: &str = "auth_expired";

/// A refused connect: its text is the `connect_error`'s `message`, which
/// starts with the code (`unauthorized: …`); its `data` has the code alone.
#[derive(Debug)]
pub(crate) struct ConnectRefused(Refusal);

impl fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", ErrorCode::Unauthorized, self.0)
    }
}

/// The token of the `auth` payload (`{"token":"…"}`) checked.
pub(crate) fn check_connect(
    verifier: &Verifier,
    auth: Option<&Value>,
) -> Result<Identity, ConnectRefused> {
    let token = auth
        .and_then(|auth| auth.get("token"))
        .and_then(Value::as_str);
    verifier.verify(token).map_err(ConnectRefused)
}

/// A join payload under the token's name, whatever name it asked for.
pub(crate) fn named_join(identity: &Identity, mut payload: Value) -> Value {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("name".into(), Value::from(identity.name.as_str()));
    }
    payload
}

/// The join as the token allows it: a room its `rooms` claim covers, and
/// no `clientId` takeover (the sockets of one `sub` share its name).
pub(crate) fn authorize_join(
    identity: &Identity,
    request: JoinRequest,
) -> Result<JoinRequest, ErrorBody> {
    if !identity.may_join(&request.room) {
        return Err(ErrorBody::new(
            ErrorCode::Forbidden,
            format!("your token does not allow the room {:?}", request.room),
        ));
    }
    Ok(JoinRequest {
        client_id: None,
        ..request
    })
}

/// Starts ending `socket` when its token expires (see [`on_refresh`]).
pub(crate) fn watch_expiry(socket: &Client) {
    let watched = socket.clone();
    let task = tokio::spawn(async move {
        while let Some(identity) = watched.data().identity() {
            let left = identity.time_left();
            if left.is_zero() {
                expire(&watched);
                return;
            }
            // A refresh meanwhile moves the deadline: looked at again on waking.
            tokio::time::sleep(left).await;
        }
    });
    socket.data().set_expiry_watch(task.abort_handle());
}

fn expire(socket: &Client) {
    tracing::debug!(sid = socket.id(), "token expired, disconnecting");
    let reason = ErrorBody::new(ErrorCode::Unauthorized, Refusal::Expired.to_string());
    if let Err(error) = socket.emit(EXPIRED_EVENT, &reason) {
        tracing::debug!(sid = socket.id(), %error, "expiry notice not sent");
    }
    socket.disconnect();
}

#[derive(Serialize)]
struct RefreshAck {
    ok: bool,
    /// When the socket will be disconnected unless refreshed again (Unix ms).
    #[serde(rename = "expiresAt")]
    expires_at: u64,
}

/// `refresh {"token"}`: a fresh token for the same person and name moves
/// the socket's deadline. Without token authentication: `bad_request`.
pub(crate) async fn on_refresh(cx: Cx<App, Session>, payload: Value) {
    let result = refresh(&cx.socket, &cx.app, Some(&payload));
    match result {
        Ok(reply) => cx.ack.send(&reply),
        Err(error) => {
            cx.app.metrics.core.count_error(error.code);
            cx.ack.send(&ErrorAck::from(error));
        }
    }
}

fn refresh(socket: &Client, app: &App, payload: Option<&Value>) -> Result<RefreshAck, ErrorBody> {
    let Some(verifier) = &app.auth else {
        return Err(ErrorBody::bad_request("this server does not use tokens"));
    };
    // Counted like any other event: checking a signature is not free.
    handlers::admit(socket, app, false)?;
    let session = socket.data();
    let fresh = check_connect(verifier, payload)
        .map_err(|refused| ErrorBody::new(ErrorCode::Unauthorized, refused.0.to_string()))?;
    let same_holder = session
        .identity()
        .is_some_and(|current| current.sub == fresh.sub && current.name == fresh.name);
    if !same_holder {
        return Err(ErrorBody::new(
            ErrorCode::Unauthorized,
            "a fresh token must name the same person under the same name",
        ));
    }
    let expires_at = fresh
        .expires_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    session.set_identity(fresh);
    Ok(RefreshAck {
        ok: true,
        expires_at,
    })
}
