//! The Socket.IO events of the contract (section 3), thin: each parses
//! with `protocol::rooms::parse`, admits (session, rate limit), calls the
//! room rules (`room`) and acknowledges with the contract's exact shapes.

use crate::access::{self, ConnectRefused};
use crate::app::App;
use crate::health::unavailable;
use crate::recipient::Recipient;
use crate::session::{Admission, Session};
use crate::turn::Turn;
use protocol::rooms::{
    self, ErrorAck, JoinAck, JoinRequest, LeaveRequest, MessageAck, MessageRequest, OkAck,
    RoomsAck, TypingRequest, client_event,
};
use protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;
use socketioxide::{SendError, SocketError};
use std::sync::Arc;

type Shared = State<Arc<App>>;

/// Sets a new socket up: its token checked (with token authentication), a
/// session and a handler for every event. Run as a connect middleware on
/// purpose: socketioxide awaits middlewares before it tells the client it
/// is connected (or refuses it), while it runs the connect handler in a
/// task of its own afterwards, so handlers registered there could miss a
/// client's first event.
pub async fn set_up(
    socket: SocketRef,
    State(app): Shared,
    TryData(auth): TryData<Value>,
) -> Result<(), ConnectRefused> {
    let session = Arc::new(Session::new(app.msg_rate));
    if let Some(verifier) = &app.auth {
        let identity = access::check_connect(verifier, auth.ok().as_ref()).inspect_err(|_| {
            app.metrics.core.count_error(ErrorCode::Unauthorized);
        })?;
        session.set_identity(identity);
        access::watch_expiry(&socket, session.clone());
        socket.on(access::REFRESH_EVENT, access::on_refresh);
    }
    socket.extensions.insert(session);
    socket.on(client_event::JOIN, on_join);
    socket.on(client_event::LEAVE, on_leave);
    socket.on(client_event::MESSAGE, on_message);
    socket.on(client_event::TYPING, on_typing);
    socket.on(client_event::ROOMS, on_rooms);
    socket.on_fallback(on_unknown);
    socket.on_disconnect(on_disconnect);
    Ok(())
}

/// A socket is connected (after [`set_up`]).
pub async fn on_connect(State(app): Shared) {
    app.metrics.core.connections.inc();
    app.metrics.core.connections_total.inc();
}

async fn on_join(
    mut turn: Turn,
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    State(app): Shared,
) {
    turn.wait().await;
    let mut ack = Some(ack);
    let result = join(&socket, &app, payload.unwrap_or(Value::Null), &mut ack).await;
    // A successful join sent its ack from inside the room (see `Rooms::join`).
    if let (Err(error), Some(ack)) = (result, ack) {
        reply(&socket, &app, ack, Err::<JoinAck, _>(error));
    }
}

async fn join(
    socket: &SocketRef,
    app: &App,
    payload: Value,
    ack: &mut Option<AckSender>,
) -> Result<(), ErrorBody> {
    let session = admit(socket, app)?;
    let request: JoinRequest = match session.identity() {
        Some(identity) => {
            let request = rooms::parse(access::named_join(&identity, payload))?;
            access::authorize_join(&identity, request)?
        }
        None => rooms::parse(payload)?,
    };
    let member = app.member(socket);
    app.rooms
        .join(&member, &session, request, |payload| {
            if let Some(ack) = ack.take() {
                reply(socket, app, ack, Ok(payload));
            }
        })
        .await
}

async fn on_leave(
    mut turn: Turn,
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    State(app): Shared,
) {
    turn.wait().await;
    let result = async {
        let session = admit(&socket, &app)?;
        let request: LeaveRequest = rooms::parse(payload.unwrap_or(Value::Null))?;
        app.rooms.leave(socket.id, &session, &request.room).await?;
        Ok(OkAck::OK)
    }
    .await;
    reply(&socket, &app, ack, result);
}

async fn on_message(
    mut turn: Turn,
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    State(app): Shared,
) {
    turn.wait().await;
    let result: Result<MessageAck, ErrorBody> = async {
        let session = admit_message(&socket, &app)?;
        let request: MessageRequest = rooms::parse(payload.unwrap_or(Value::Null))?;
        app.rooms.post(&session, request).await
    }
    .await;
    reply(&socket, &app, ack, result);
}

async fn on_typing(
    mut turn: Turn,
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack: AckSender,
    State(app): Shared,
) {
    turn.wait().await;
    let result = (|| {
        let session = admit(&socket, &app)?;
        let request: TypingRequest = rooms::parse(payload.unwrap_or(Value::Null))?;
        app.rooms.typing(&session, request)?;
        Ok(OkAck::OK)
    })();
    reply(&socket, &app, ack, result);
}

async fn on_rooms(mut turn: Turn, socket: SocketRef, ack: AckSender, State(app): Shared) {
    turn.wait().await;
    let result = async {
        admit(&socket, &app)?;
        let rooms = app.rooms.list().await?;
        Ok(RoomsAck { ok: true, rooms })
    }
    .await;
    reply(&socket, &app, ack, result);
}

async fn on_unknown(socket: SocketRef, ack: AckSender, State(app): Shared) {
    let result: Result<OkAck, ErrorBody> = Err(ErrorBody::bad_request("unknown event"));
    reply(&socket, &app, ack, result);
}

/// A closed socket leaves every room it was in, as `disconnected`.
async fn on_disconnect(socket: SocketRef, reason: DisconnectReason, State(app): Shared) {
    app.metrics.core.connections.dec();
    app.hangups.forget(&socket.id.to_string());
    access::stop_watch(&socket);
    tracing::debug!(sid = %socket.id, ?reason, "socket closed");
    let Some(session) = socket.extensions.get::<Arc<Session>>() else {
        return;
    };
    app.rooms.disconnected(socket.id, &session).await;
}

/// The common first steps of an event other than `message`.
pub(crate) fn admit(socket: &SocketRef, app: &App) -> Result<Arc<Session>, ErrorBody> {
    admit_as(socket, app, false)
}

fn admit_message(socket: &SocketRef, app: &App) -> Result<Arc<Session>, ErrorBody> {
    admit_as(socket, app, true)
}

/// A session, and the rate limit.
fn admit_as(socket: &SocketRef, app: &App, is_message: bool) -> Result<Arc<Session>, ErrorBody> {
    let session = socket
        .extensions
        .get::<Arc<Session>>()
        .ok_or_else(unavailable)?;
    match session.admit(is_message) {
        Admission::Allowed => Ok(session),
        Admission::Refused => Err(rate_limited()),
        Admission::Abusive => {
            tracing::info!(sid = %socket.id, "flooding far past the rate limit, disconnecting");
            app.member(socket).cut_off();
            Err(rate_limited())
        }
    }
}

fn rate_limited() -> ErrorBody {
    ErrorBody::new(ErrorCode::RateLimited, "slow down")
}

/// Sends the acknowledgement: the success payload, or `{"ok":false,"error":…}`.
fn reply<T: Serialize>(
    socket: &SocketRef,
    app: &App,
    ack: AckSender,
    result: Result<T, ErrorBody>,
) {
    app.metrics.core.messages_in.inc();
    let sent = match result {
        Ok(payload) => ack.send(&payload),
        Err(error) => {
            app.metrics.core.count_error(error.code);
            ack.send(&ErrorAck::from(error))
        }
    };
    match sent {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            // A client waiting for an ack that will never come is a silent
            // gap: the socket is cut off, and its client re-joins.
            tracing::info!(sid = %socket.id, "ack does not fit the socket's queue, cutting it off");
            app.metrics.core.disconnects_forced.inc();
            app.member(socket).cut_off();
        }
        Err(error) => tracing::debug!(sid = %socket.id, %error, "ack not sent"),
    }
}
