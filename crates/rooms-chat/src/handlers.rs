//! The Socket.IO events of the contract (section 3) as a table of small
//! typed handlers: each parses with `protocol::rooms::parse`, admits (rate
//! limit), calls the room rules (`room`) and acknowledges with the
//! contract's exact shapes. The runtime (crates/socketio) runs one socket's
//! events one at a time, in the order they arrived.

use crate::access;
use crate::app::App;
use crate::recipient::{Client, Recipient};
use crate::recovery;
use crate::session::{RateVerdict, Session};
use protocol::rooms::{
    self, ErrorAck, JoinAck, JoinRequest, LeaveRequest, MessageAck, MessageRequest, OkAck,
    RoomsAck, TypingRequest, client_event,
};
use protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use socketio::{Accepted, Ack, Connect, Cx, Handlers, Reason, Refusal};
use std::sync::Arc;

/// What every event handler gets: the app, the socket, the ack.
type EventCx = Cx<App, Session>;

/// The table the runtime serves.
pub(crate) fn table() -> Handlers<App, Session> {
    Handlers::new(on_connect)
        .refusal(refusal)
        .on_connected(on_connected)
        .on(client_event::JOIN, on_join)
        .on(client_event::LEAVE, on_leave)
        .on(client_event::MESSAGE, on_message)
        .on(client_event::TYPING, on_typing)
        .on(client_event::ROOMS, on_rooms)
        .on(access::REFRESH_EVENT, access::on_refresh)
        .on_disconnect(on_disconnect)
}

/// A new socket: its token checked (with token authentication), then its
/// session, new or recovered from a connection that dropped.
async fn on_connect(request: Connect<App>) -> Result<Accepted<Session>, Refusal> {
    let app = &request.app;
    let identity = match &app.auth {
        None => None,
        Some(verifier) => match access::check_connect(verifier, Some(&request.auth)) {
            Ok(identity) => Some(identity),
            Err(refusal) => {
                app.metrics.core.count_error(ErrorCode::Unauthorized);
                return Err(Refusal {
                    message: refusal.to_string(),
                    data: Some(json!({"code": ErrorCode::Unauthorized})),
                });
            }
        },
    };
    let session = Session::new(app.msg_rate);
    if let Some(identity) = identity {
        session.set_identity(identity);
    }
    if let Some(resume) = request.resume
        && let Some(restored) = recovery::claim(app, &resume, &session).await
    {
        return Ok(Accepted::recovered(
            session.with_recovery(restored.rooms, restored.rejoins),
            &restored.sid,
            &resume.pid,
        ));
    }
    Ok(Accepted::new(session))
}

/// A connected socket: counted, its expiry watched, and a recovered one
/// given what it missed.
async fn on_connected(app: Arc<App>, socket: Client) {
    app.metrics.core.connections.inc();
    app.metrics.core.connections_total.inc();
    if app.auth.is_some() {
        access::watch_expiry(&socket);
    }
    recovery::resume(&app, &socket).await;
}

async fn on_join(cx: EventCx, payload: Value) {
    let mut ack = Some(cx.ack);
    let result = join(&cx.socket, &cx.app, payload, &mut ack).await;
    // A successful join sent its ack from inside the room (see `Rooms::join`).
    if let (Err(error), Some(ack)) = (result, ack) {
        reply(&cx.app, ack, Err::<JoinAck, _>(error));
    }
}

async fn join(
    socket: &Client,
    app: &App,
    payload: Value,
    ack: &mut Option<Ack>,
) -> Result<(), ErrorBody> {
    admit(socket, app, false)?;
    let request: JoinRequest = match socket.data().identity() {
        Some(identity) => {
            let request = rooms::parse(access::named_join(&identity, payload))?;
            access::authorize_join(&identity, request)?
        }
        None => rooms::parse(payload)?,
    };
    app.rooms
        .join(socket, request, |payload| {
            if let Some(ack) = ack.take() {
                reply(app, ack, Ok(payload));
            }
        })
        .await
}

async fn on_leave(cx: EventCx, payload: Value) {
    let socket = &cx.socket;
    let result = async {
        admit(socket, &cx.app, false)?;
        let request: LeaveRequest = rooms::parse(payload)?;
        cx.app.rooms.leave(socket, &request.room).await?;
        Ok(OkAck::OK)
    }
    .await;
    reply(&cx.app, cx.ack, result);
}

async fn on_message(cx: EventCx, payload: Value) {
    let socket = &cx.socket;
    let result: Result<MessageAck, ErrorBody> = async {
        admit(socket, &cx.app, true)?;
        let request: MessageRequest = rooms::parse(payload)?;
        cx.app.rooms.post(socket.data(), request).await
    }
    .await;
    reply(&cx.app, cx.ack, result);
}

async fn on_typing(cx: EventCx, payload: Value) {
    let socket = &cx.socket;
    let result = (|| {
        admit(socket, &cx.app, false)?;
        let request: TypingRequest = rooms::parse(payload)?;
        cx.app.rooms.typing(socket.data(), request)?;
        Ok(OkAck::OK)
    })();
    reply(&cx.app, cx.ack, result);
}

async fn on_rooms(cx: EventCx, _: IgnoredAny) {
    let socket = &cx.socket;
    let result = async {
        admit(socket, &cx.app, false)?;
        let rooms = cx.app.rooms.list().await?;
        Ok(RoomsAck { ok: true, rooms })
    }
    .await;
    reply(&cx.app, cx.ack, result);
}

/// A closed socket leaves every room it was in, as `disconnected`; one
/// whose connection dropped is held for its client to recover it.
async fn on_disconnect(app: Arc<App>, socket: Client, reason: Reason) {
    app.metrics.core.connections.dec();
    let session = socket.data();
    session.stop_expiry_watch();
    tracing::debug!(sid = socket.id(), ?reason, "socket closed");
    if recovery::hold(&app, &socket, reason).await {
        return;
    }
    app.rooms.disconnected(socket.id(), session).await;
}

/// The answer to an event the runtime refuses (unknown, or its data does
/// not fit): the contract's `bad_request`.
fn refusal(message: &str) -> Value {
    let error = ErrorAck::from(ErrorBody::bad_request(message));
    serde_json::to_value(error).unwrap_or(Value::Null)
}

/// The rate limit: an event over it is refused, and a socket far over it
/// for long is cut off.
pub(crate) fn admit(socket: &Client, app: &App, is_message: bool) -> Result<(), ErrorBody> {
    match socket.data().admit(is_message) {
        RateVerdict::Allowed => Ok(()),
        RateVerdict::Refused => Err(rate_limited()),
        RateVerdict::Abusive => {
            tracing::info!(
                sid = socket.id(),
                "flooding far past the rate limit, disconnecting"
            );
            app.metrics.core.disconnects_forced.inc();
            socket.cut_off();
            Err(rate_limited())
        }
    }
}

fn rate_limited() -> ErrorBody {
    ErrorBody::new(ErrorCode::RateLimited, "slow down")
}

/// Sends the acknowledgement: the success payload, or `{"ok":false,"error":…}`.
/// An ack that does not fit the socket's queue cuts the socket off in
/// the runtime: never a silent gap.
pub(crate) fn reply<T: Serialize>(app: &App, ack: Ack, result: Result<T, ErrorBody>) {
    app.metrics.core.messages_in.inc();
    match result {
        Ok(payload) => ack.send(&payload),
        Err(error) => {
            app.metrics.core.count_error(error.code);
            ack.send(&ErrorAck::from(error));
        }
    }
}
