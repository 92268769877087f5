//! The Socket.IO events of the contract (section 3): every client event is
//! validated with `protocol::rooms::parse`, rate limited, and answered
//! through its acknowledgement with the contract's exact shapes.
//!
//! Room messages reach members through the store and the sequencer (in id
//! order, on every instance); the notices (`user_joined`, `user_left`,
//! `typing`) go through the adapter's room broadcast.

use crate::app::{App, PendingLeave};
use crate::health::unavailable;
use crate::recipient::Recipient;
use crate::sequencer::{LocalMember, NeedHistoryAfter};
use crate::session::{Admission, Session};
use crate::store::{Envelope, JoinOutcome, Member, name_key};
use crate::turn::Turn;
use protocol::rooms::{
    self, ErrorAck, JoinAck, JoinRequest, LeaveReason, LeaveRequest, MessageAck, MessageRequest,
    OkAck, RoomMessage, RoomsAck, Typing, TypingRequest, UserJoined, UserLeft, client_event,
    server_event,
};
use protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;
use std::convert::Infallible;
use std::sync::Arc;

type Shared<A> = State<Arc<App<A>>>;

/// Sets a new socket up: a session and a handler for every event. Run as a
/// connect middleware on purpose: socketioxide awaits middlewares before it
/// tells the client it is connected, while it runs the connect handler in a
/// task of its own afterwards, so handlers registered there could miss a
/// client's first event.
pub async fn set_up<A: Adapter>(
    socket: SocketRef<A>,
    State(app): Shared<A>,
) -> Result<(), Infallible> {
    socket
        .extensions
        .insert(Arc::new(Session::new(app.msg_rate)));
    socket.on(client_event::JOIN, on_join::<A>);
    socket.on(client_event::LEAVE, on_leave::<A>);
    socket.on(client_event::MESSAGE, on_message::<A>);
    socket.on(client_event::TYPING, on_typing::<A>);
    socket.on(client_event::ROOMS, on_rooms::<A>);
    socket.on_fallback(on_unknown::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    Ok(())
}

/// A socket is connected (after [`set_up`]).
pub async fn on_connect<A: Adapter>(State(app): Shared<A>) {
    app.metrics.core.connections.inc();
    app.metrics.core.connections_total.inc();
}

async fn on_join<A: Adapter>(
    mut turn: Turn,
    socket: SocketRef<A>,
    TryData(payload): TryData<Value>,
    ack: AckSender<A>,
    State(app): Shared<A>,
) {
    turn.wait().await;
    // A successful join sends its ack itself (see `join`); a failed one
    // leaves it here.
    let mut ack = Some(ack);
    let result = join(&socket, &app, payload.unwrap_or(Value::Null), &mut ack).await;
    if let (Err(error), Some(ack)) = (result, ack) {
        reply(&socket, &app, ack, Err::<JoinAck, _>(error));
    }
}

async fn on_leave<A: Adapter>(
    mut turn: Turn,
    socket: SocketRef<A>,
    TryData(payload): TryData<Value>,
    ack: AckSender<A>,
    State(app): Shared<A>,
) {
    turn.wait().await;
    let result = leave(&socket, &app, payload.unwrap_or(Value::Null)).await;
    reply(&socket, &app, ack, result);
}

async fn on_message<A: Adapter>(
    mut turn: Turn,
    socket: SocketRef<A>,
    TryData(payload): TryData<Value>,
    ack: AckSender<A>,
    State(app): Shared<A>,
) {
    turn.wait().await;
    let result = message(&socket, &app, payload.unwrap_or(Value::Null)).await;
    reply(&socket, &app, ack, result);
}

async fn on_typing<A: Adapter>(
    mut turn: Turn,
    socket: SocketRef<A>,
    TryData(payload): TryData<Value>,
    ack: AckSender<A>,
    State(app): Shared<A>,
) {
    turn.wait().await;
    let result = typing(&socket, &app, payload.unwrap_or(Value::Null)).await;
    reply(&socket, &app, ack, result);
}

async fn on_rooms<A: Adapter>(
    mut turn: Turn,
    socket: SocketRef<A>,
    ack: AckSender<A>,
    State(app): Shared<A>,
) {
    turn.wait().await;
    let result = list_rooms(&socket, &app).await;
    reply(&socket, &app, ack, result);
}

async fn on_unknown<A: Adapter>(socket: SocketRef<A>, ack: AckSender<A>, State(app): Shared<A>) {
    let result: Result<OkAck, ErrorBody> = Err(ErrorBody::bad_request("unknown event"));
    reply(&socket, &app, ack, result);
}

/// A closed socket leaves every room it was in, as `disconnected`.
async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    reason: DisconnectReason,
    State(app): Shared<A>,
) {
    app.metrics.core.connections.dec();
    tracing::debug!(sid = %socket.id, ?reason, "socket closed");
    let Some(session) = socket.extensions.get::<Arc<Session>>() else {
        return;
    };
    for (room, name) in session.exit_all() {
        app.sequencer.detach(&room, socket.id);
        match app.store.leave(&room, &name, &socket.id.to_string()).await {
            Ok(true) => {
                let notice = UserLeft {
                    room: room.clone(),
                    name,
                    ts: protocol::now_ms(),
                    reason: LeaveReason::Disconnected,
                };
                broadcast(&app, &socket, &room, server_event::USER_LEFT, &notice).await;
            }
            // Replaced by a newer socket of the same client: nothing to tell.
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, room, "cannot record a disconnection yet");
                app.pending_leaves.lock().unwrap().push(PendingLeave {
                    room,
                    name,
                    sid: socket.id.to_string(),
                });
            }
        }
    }
}

/// The payload's common first steps: a session, the rate limit, parsing.
fn admit<A: Adapter>(socket: &SocketRef<A>, is_message: bool) -> Result<Arc<Session>, ErrorBody> {
    let session = socket
        .extensions
        .get::<Arc<Session>>()
        .ok_or_else(unavailable)?;
    match session.admit(is_message) {
        Admission::Allowed => Ok(session),
        Admission::Refused => Err(rate_limited()),
        Admission::Abusive => {
            tracing::info!(sid = %socket.id, "flooding far past the rate limit, disconnecting");
            socket.cut_off();
            Err(rate_limited())
        }
    }
}

fn rate_limited() -> ErrorBody {
    ErrorBody::new(ErrorCode::RateLimited, "slow down")
}

/// Joins the room. On success the ack goes out from inside the sequencer's
/// `attach`, before any live message of the room can reach the socket.
async fn join<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App<A>,
    payload: Value,
    ack: &mut Option<AckSender<A>>,
) -> Result<(), ErrorBody> {
    let session = admit(socket, false)?;
    let request: JoinRequest = rooms::parse(payload)?;
    let room = request.room;
    if let Some(held) = session.name_in(&room) {
        if name_key(&held) != name_key(&request.name) {
            return Err(ErrorBody::bad_request(format!(
                "you are already in {room:?} as {held:?}; leave first"
            )));
        }
        // The same join again: answer it afresh, without notices.
        app.sequencer.detach(&room, socket.id);
        session.exit(&room);
    }
    app.link.require_up()?;
    let member = Member {
        name: request.name,
        sid: socket.id.to_string(),
        client_id: request.client_id,
    };
    app.sequencer.prepare(&room);
    let joined = match app.store.join(&room, &member, request.since).await {
        Ok(JoinOutcome::Joined(joined)) => joined,
        Ok(JoinOutcome::NameTaken) => {
            app.sequencer.abandon(&room);
            return Err(ErrorBody::new(
                ErrorCode::NameTaken,
                format!("{:?} is already in {room:?}", member.name),
            ));
        }
        Err(error) => {
            app.sequencer.abandon(&room);
            tracing::warn!(%error, "join failed");
            return Err(unavailable());
        }
    };
    let local = LocalMember {
        socket: socket.clone(),
        name: member.name.clone(),
        client_id: member.client_id.clone(),
    };
    let mut history = joined.history;
    let mut last_id = joined.last_id;
    let mut welcome = |history: &[RoomMessage]| {
        if let Some(ack) = ack.take() {
            let payload = JoinAck {
                ok: true,
                room: room.clone(),
                members: joined.members.clone(),
                history: history.to_vec(),
            };
            reply(socket, app, ack, Ok(payload));
        }
    };
    // Rare: deliveries here ran ahead of the store's answer by more than the
    // recent messages hold; fetch the difference and try again.
    while let Err(NeedHistoryAfter(after)) =
        app.sequencer
            .attach(&room, local.clone(), last_id, &mut history, &mut welcome)
    {
        match app.store.history_after(&room, after).await {
            Ok(more) => {
                last_id = more.last().map_or(after, |message| message.id);
                history.extend(more);
            }
            Err(error) => {
                tracing::warn!(%error, "join could not catch up");
                app.sequencer.abandon(&room);
                let _ = app.store.leave(&room, &member.name, &member.sid).await;
                return Err(unavailable());
            }
        }
    }
    session.enter(&room, &member.name);
    if !joined.silent {
        let notice = UserJoined {
            room: room.clone(),
            name: member.name.clone(),
            ts: protocol::now_ms(),
        };
        broadcast(app, socket, &room, server_event::USER_JOINED, &notice).await;
    }
    Ok(())
}

async fn leave<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App<A>,
    payload: Value,
) -> Result<OkAck, ErrorBody> {
    let session = admit(socket, false)?;
    let request: LeaveRequest = rooms::parse(payload)?;
    let name = session.require_room(&request.room)?;
    app.link.require_up()?;
    let removed = app
        .store
        .leave(&request.room, &name, &socket.id.to_string())
        .await
        .map_err(|error| {
            tracing::warn!(%error, "leave failed");
            unavailable()
        })?;
    session.exit(&request.room);
    app.sequencer.detach(&request.room, socket.id);
    if removed {
        let notice = UserLeft {
            room: request.room.clone(),
            name,
            ts: protocol::now_ms(),
            reason: LeaveReason::Left,
        };
        broadcast(app, socket, &request.room, server_event::USER_LEFT, &notice).await;
    }
    Ok(OkAck::OK)
}

async fn message<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App<A>,
    payload: Value,
) -> Result<MessageAck, ErrorBody> {
    let session = admit(socket, true)?;
    let request: MessageRequest = rooms::parse(payload)?;
    let name = session.require_room(&request.room)?;
    app.link.require_up()?;
    // Delivery to every member, this socket included, follows from the
    // store's event stream, in id order.
    let message = app
        .store
        .append(&request.room, &name, &request.text)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "message not stored");
            unavailable()
        })?;
    // This instance knows its own message at once: its members need not
    // wait for the round trip through Redis, and the message survives here
    // even if Redis dies before publishing it (the event copy is a duplicate).
    if let Ok(envelope) = Envelope::new(message.clone()) {
        app.sequencer.arrive(envelope);
    }
    Ok(MessageAck {
        ok: true,
        id: message.id,
        ts: message.ts,
    })
}

async fn typing<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App<A>,
    payload: Value,
) -> Result<OkAck, ErrorBody> {
    let session = admit(socket, false)?;
    let request: TypingRequest = rooms::parse(payload)?;
    let name = session.require_room(&request.room)?;
    let notice = Typing {
        room: request.room.clone(),
        name,
        typing: request.typing,
    };
    broadcast(app, socket, &request.room, server_event::TYPING, &notice).await;
    Ok(OkAck::OK)
}

async fn list_rooms<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App<A>,
) -> Result<RoomsAck, ErrorBody> {
    admit(socket, false)?;
    app.link.require_up()?;
    let rooms = app.store.rooms().await.map_err(|error| {
        tracing::warn!(%error, "cannot list rooms");
        unavailable()
    })?;
    Ok(RoomsAck { ok: true, rooms })
}

/// A notice to the other members of `room`, on every instance.
async fn broadcast<A: Adapter, T: Serialize + ?Sized>(
    app: &App<A>,
    socket: &SocketRef<A>,
    room: &str,
    event: &str,
    data: &T,
) {
    if let Err(error) = socket.to(room.to_owned()).emit(event, data).await {
        app.metrics.adapter_errors.inc();
        tracing::warn!(%error, room, event, "notice not delivered everywhere");
    }
}

/// Sends the acknowledgement: the success payload, or `{"ok":false,"error":…}`.
fn reply<A: Adapter, T: Serialize>(
    socket: &SocketRef<A>,
    app: &App<A>,
    ack: AckSender<A>,
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
    if let Err(error) = sent {
        tracing::debug!(sid = %socket.id, %error, "ack not sent");
    }
}
