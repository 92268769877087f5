//! Token authentication in rooms-chat (on with `AUTH_JWT_*`; the checking
//! itself is the `auth` crate's): the token of the Socket.IO `auth`
//! payload checked at connect, a join under the token's name and only
//! into the rooms it allows, the `refresh` event that hands in a fresh
//! token, and the end of a socket whose token expired.

use crate::app::App;
use crate::handlers;
use crate::session::Session;
use auth::{Identity, Refusal, Verifier};
use protocol::rooms::{ErrorAck, JoinRequest};
use protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use std::fmt;
use std::sync::Arc;
use tokio::task::AbortHandle;

/// Client → server: `refresh {"token"}`, acked `{"ok":true,"expiresAt":ms}`.
pub const REFRESH_EVENT: &str = "refresh";

/// Server → client before it disconnects a socket whose token expired:
/// `{"code":"unauthorized","message":…}`.
pub const EXPIRED_EVENT: &str = "auth_expired";

/// A refused connect: socketioxide sends its text as the `connect_error`'s
/// `message`, which starts with the code (`unauthorized: …`).
#[derive(Debug)]
pub struct ConnectRefused(Refusal);

impl fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", ErrorCode::Unauthorized, self.0)
    }
}

/// The token of the `auth` payload (`{"token":"…"}`) checked.
pub fn check_connect(
    verifier: &Verifier,
    auth: Option<&Value>,
) -> Result<Identity, ConnectRefused> {
    let token = auth
        .and_then(|auth| auth.get("token"))
        .and_then(Value::as_str);
    verifier.verify(token).map_err(ConnectRefused)
}

/// A join payload under the token's name, whatever name it asked for.
pub fn named_join(identity: &Identity, mut payload: Value) -> Value {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("name".into(), Value::from(identity.name.as_str()));
    }
    payload
}

/// The join as the token allows it: a room its `rooms` claim covers, and
/// no `clientId` takeover (the sockets of one `sub` share its name).
pub fn authorize_join(identity: &Identity, request: JoinRequest) -> Result<JoinRequest, ErrorBody> {
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

/// The expiry watch of a socket, aborted when it disconnects.
#[derive(Clone)]
pub struct ExpiryWatch(AbortHandle);

/// Starts ending `socket` when its token expires (see [`refresh`]).
pub fn watch_expiry(socket: &SocketRef, session: Arc<Session>) {
    let watched = socket.clone();
    let task = tokio::spawn(async move {
        while let Some(identity) = session.identity() {
            let left = identity.time_left();
            if left.is_zero() {
                expire(&watched);
                return;
            }
            // A refresh meanwhile moves the deadline: looked at again on waking.
            tokio::time::sleep(left).await;
        }
    });
    socket.extensions.insert(ExpiryWatch(task.abort_handle()));
}

/// A socket that disconnects needs no watch any more.
pub fn stop_watch(socket: &SocketRef) {
    if let Some(ExpiryWatch(task)) = socket.extensions.get::<ExpiryWatch>() {
        task.abort();
    }
}

fn expire(socket: &SocketRef) {
    tracing::debug!(sid = %socket.id, "token expired, disconnecting");
    let reason = ErrorBody::new(ErrorCode::Unauthorized, Refusal::Expired.to_string());
    if let Err(error) = socket.emit(EXPIRED_EVENT, &reason) {
        tracing::debug!(sid = %socket.id, %error, "expiry notice not sent");
    }
    if let Err(error) = socket.clone().disconnect() {
        tracing::debug!(sid = %socket.id, %error, "cannot disconnect an expired socket");
    }
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
pub async fn on_refresh(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    State(app): State<Arc<App>>,
) {
    let result = refresh(&socket, &app, payload.ok().as_ref());
    let sent = match result {
        Ok(reply) => ack.send(&reply),
        Err(error) => {
            app.metrics.core.count_error(error.code);
            ack.send(&ErrorAck::from(error))
        }
    };
    if let Err(error) = sent {
        tracing::debug!(sid = %socket.id, %error, "refresh ack not sent");
    }
}

fn refresh(
    socket: &SocketRef,
    app: &App,
    payload: Option<&Value>,
) -> Result<RefreshAck, ErrorBody> {
    let Some(verifier) = &app.auth else {
        return Err(ErrorBody::bad_request("this server does not use tokens"));
    };
    // Counted like any other event: checking a signature is not free.
    let session = handlers::admit(socket, app)?;
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
