//! Connection state recovery, server side of socket.io's (4.6+): a socket
//! whose connection dropped is held for `RECOVERY_MS`, and its client that
//! comes back in time, through this instance or another, gets the same
//! socket back, in its rooms under its names, with exactly the events it
//! missed.
//!
//! - **Hold** (the socket's disconnect, when the connection dropped rather
//!   than being closed on purpose): the socket leaves its rooms here but
//!   stays their member in the store, and the store keeps what a recovery
//!   needs under the socket's private id (`pid`): its id, its rooms and
//!   names, and per room the marks that turn an offset into a position
//!   (`Delivery::marks`). Nobody is told anything.
//! - **Claim** (a connect that hands back `{pid, offset}`): the state is
//!   taken from the store (once: whoever takes it acts on it), the offset
//!   says what the client had in each room, and the socket joins its rooms
//!   again silently under its former id.
//! - **Resume** (right after the connect reply): each room gives the
//!   socket every event after what it had, from the room's recent events
//!   or the store's log, then the live ones: once each, in order.
//! - **Grace**: a socket not claimed within `PRESENCE_GRACE_MS` leaves its
//!   rooms as `disconnected` (the others see `user_left`), but stays
//!   recoverable: claimed later, it joins them again and the others see
//!   `user_joined`. A blip shorter than the grace shows nothing.
//! - **Expiry**: past `RECOVERY_MS` the state is dropped.
//!
//! Whatever cannot be told for sure (another instance's offset, marks that
//! do not reach back, a room whose name was taken meanwhile) is not
//! recovered: the client re-joins with `since` as before, and the rooms it
//! held are left as `disconnected`.

use crate::app::App;
use crate::recipient::{Client, Recipient};
use crate::room::delivery::RoomMarks;
use crate::room::local::LocalMember;
use crate::session::Session;
use crate::store::{JoinOutcome, Joiner};
use serde::{Deserialize, Serialize};
use socketio::{Reason, Resume};
use std::sync::Arc;
use std::time::Duration;

/// How long the store keeps a held state past the window, so that the
/// holder's end of the grace always finds it unless a recovery took it.
const STORE_GRACE: Duration = Duration::from_secs(60);

/// What the store keeps about a held socket.
#[derive(Serialize, Deserialize)]
struct Held {
    /// The socket's id, which names it as a member in the store.
    sid: String,
    /// The name of the offsets of the instance that held it.
    epoch: String,
    /// When the window closes (Unix ms).
    until_ms: i64,
    /// The grace ran out: the socket left its rooms already.
    left: bool,
    rooms: Vec<HeldRoom>,
}

/// One room of a held socket.
#[derive(Serialize, Deserialize)]
struct HeldRoom {
    room: String,
    name: String,
    client_id: Option<String>,
    sub: Option<String>,
    marks: RoomMarks,
}

/// What a recovered socket gets back: its former id and rooms.
pub(crate) struct Restored {
    /// Its former id.
    pub(crate) sid: String,
    /// (room, name) of every room it is back in.
    pub(crate) rooms: Vec<(String, String)>,
    /// What each room still has to give it.
    pub(crate) rejoins: Vec<Rejoin>,
}

/// One room a recovered socket is back in, before its missed events.
pub(crate) struct Rejoin {
    room: String,
    name: String,
    client_id: Option<String>,
    sub: Option<String>,
    /// The store's position of the silent join.
    join_pos: u64,
    /// What the client had already.
    had: u64,
}

/// Whether a socket that ended for `reason` may be recovered: its
/// connection dropped, or the server ended it, while its client meant to
/// stay (socket.io's list).
fn recoverable(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::TransportClose
            | Reason::TransportError
            | Reason::PingTimeout
            | Reason::TooSlow
            | Reason::CutOff
            | Reason::ServerShutdown
    )
}

/// Holds the socket for its client to recover it, when its connection
/// dropped: true if it did (then the socket's rooms are taken care of).
pub(crate) async fn hold(app: &Arc<App>, socket: &Client, reason: Reason) -> bool {
    let Some(pid) = socket.pid() else {
        return false;
    };
    let session = socket.data();
    if app.recovery.is_zero()
        || !recoverable(reason)
        || !session.may_recover()
        || !session.has_rooms()
    {
        return false;
    }
    let rooms = &app.rooms;
    let sid = socket.id();
    let mut held = Held {
        sid: sid.to_owned(),
        epoch: rooms.delivery.outgoing.epoch().to_owned(),
        until_ms: protocol::now_ms().saturating_add(millis(app.recovery)),
        left: false,
        rooms: Vec::new(),
    };
    for (room, name) in session.exit_all() {
        let marks = rooms.delivery.marks(&room, sid);
        match (marks, rooms.delivery.detach(&room, sid)) {
            (Some(marks), Some(member)) => held.rooms.push(HeldRoom {
                room,
                name,
                client_id: member.client_id,
                sub: member.sub,
                marks,
            }),
            // Not attached (its recovery could not catch up): nothing to hold.
            _ => rooms.leave_as_disconnected(room, name, sid).await,
        }
    }
    let kept = match serde_json::to_string(&held) {
        Ok(state) => {
            let ttl = app.recovery + STORE_GRACE;
            rooms.store.hold(pid, &state, ttl).await
        }
        Err(error) => Err(error.into()),
    };
    if let Err(error) = kept {
        tracing::warn!("cannot hold a socket for its recovery: {error:#}");
        leave_all(app, &held).await;
        return true;
    }
    tracing::debug!(sid, "socket held for its recovery");
    let app = app.clone();
    let pid = pid.to_owned();
    tokio::spawn(async move {
        let grace = app.presence_grace.min(app.recovery);
        tokio::time::sleep(grace).await;
        end_grace(&app, &pid).await;
    });
    true
}

/// The grace of `pid` ran out: unless a recovery took its state, the
/// socket leaves its rooms as `disconnected` and stays recoverable for the
/// rest of the window.
async fn end_grace(app: &App, pid: &str) {
    let store = &app.rooms.store;
    let state = loop {
        match store.take_held(pid).await {
            Ok(Some(state)) => break state,
            Ok(None) => return,
            // The store is away: its own grace outlasts the retries.
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    let Ok(mut held) = serde_json::from_str::<Held>(&state) else {
        return;
    };
    leave_all(app, &held).await;
    held.left = true;
    let left_for = held.until_ms.saturating_sub(protocol::now_ms());
    let Ok(left_for) = u64::try_from(left_for) else {
        return;
    };
    if let Ok(state) = serde_json::to_string(&held) {
        let ttl = Duration::from_millis(left_for);
        if let Err(error) = store.hold(pid, &state, ttl).await {
            tracing::debug!("a socket past its grace is not recoverable: {error:#}");
        }
    }
}

/// The former socket `resume` names, claimed for `session`'s socket: its
/// rooms joined again (silently: it never left them), unless the state is
/// gone or says too little.
pub(crate) async fn claim(app: &Arc<App>, resume: &Resume, session: &Session) -> Option<Restored> {
    let (epoch, seq) = resume.offset.split_once('.')?;
    let seq: u64 = seq.parse().ok()?;
    let state = match app.rooms.store.take_held(&resume.pid).await {
        Ok(state) => state?,
        Err(error) => {
            tracing::debug!("cannot look up a socket to recover: {error:#}");
            return None;
        }
    };
    let held: Held = serde_json::from_str(&state).ok()?;
    let sub = session.identity().map(|identity| identity.sub);
    let had: Option<Vec<u64>> = held.rooms.iter().map(|room| room.marks.had(seq)).collect();
    let usable = held.epoch == epoch
        && held.until_ms >= protocol::now_ms()
        && held.rooms.iter().all(|room| room.sub == sub);
    let (true, Some(had)) = (usable, had) else {
        tracing::debug!(sid = held.sid, "a socket that cannot be recovered");
        if !held.left {
            leave_all(app, &held).await;
        }
        return None;
    };
    let rooms = &app.rooms;
    let mut rejoins = Vec::new();
    for (held_room, had) in held.rooms.iter().zip(had) {
        let member = Joiner {
            name: held_room.name.clone(),
            sid: held.sid.clone(),
            client_id: held_room.client_id.clone(),
            sub: held_room.sub.clone(),
        };
        rooms.delivery.prepare(&held_room.room);
        match rooms.store.join(&held_room.room, &member, None).await {
            Ok(JoinOutcome::Joined(joined)) => rejoins.push(Rejoin {
                room: held_room.room.clone(),
                name: held_room.name.clone(),
                client_id: held_room.client_id.clone(),
                sub: held_room.sub.clone(),
                join_pos: joined.position,
                had: had.min(joined.position),
            }),
            outcome => {
                tracing::debug!(
                    room = held_room.room,
                    ok = outcome.is_ok(),
                    "a room not joined again"
                );
                rooms.delivery.abandon(&held_room.room);
                for rejoin in &rejoins {
                    rooms.delivery.abandon(&rejoin.room);
                }
                // Past its grace it left already; before, the rooms joined
                // again silently are left as the others last knew it.
                leave_all(app, &held).await;
                return None;
            }
        }
    }
    app.metrics.recoveries.inc();
    Some(Restored {
        rooms: held
            .rooms
            .into_iter()
            .map(|room| (room.room, room.name))
            .collect(),
        sid: held.sid,
        rejoins,
    })
}

/// Gives a recovered socket, right after its connect reply, every event it
/// missed in each of its rooms, then the live ones. A room that cannot
/// (its events are no longer at hand) cuts the socket off, never to be
/// held again: its client reconnects, is not recovered, and re-joins with
/// `since`; its rooms are left as `disconnected`.
pub(crate) async fn resume(app: &App, socket: &Client) {
    let mut rejoins = socket.data().take_rejoins().into_iter();
    while let Some(rejoin) = rejoins.next() {
        let local = LocalMember {
            socket: socket.clone(),
            name: rejoin.name,
            client_id: rejoin.client_id,
            sub: rejoin.sub,
        };
        let attached = app
            .rooms
            .attach_caught_up(&rejoin.room, local, rejoin.join_pos, rejoin.had, &mut || {})
            .await;
        if let Err(error) = attached {
            tracing::info!(sid = socket.id(), %error, "a recovered socket cannot catch up");
            for left in rejoins {
                app.rooms.delivery.abandon(&left.room);
            }
            socket.data().forbid_recovery();
            socket.cut_off();
            return;
        }
    }
}

/// The held socket leaves every room, as `disconnected`.
async fn leave_all(app: &App, held: &Held) {
    for room in &held.rooms {
        app.rooms
            .leave_as_disconnected(room.room.clone(), room.name.clone(), &held.sid)
            .await;
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
