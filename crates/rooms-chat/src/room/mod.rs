//! The room rules: join (names, the `clientId` takeover, `since`), leave,
//! post, typing, and what a closed socket leaves behind.
//!
//! Each rule asks the store, which fixes the event's place in the room's
//! order and publishes it; what a member sees then comes back the one road
//! every event takes: bus → `line` → `delivery` → `outgoing`. A rule
//! never waits on a store that is known down: it answers `unavailable`.

pub(crate) mod delivery;
pub mod event;
pub(crate) mod line;
pub(crate) mod local;
pub(crate) mod outgoing;
pub(crate) mod repair;
pub(crate) mod upkeep;

use crate::health::{Link, unavailable};
use crate::metrics::Metrics;
use crate::recipient::{Client, Recipient};
use crate::session::Session;
use crate::store::{JoinOutcome, Joiner, Store};
use delivery::{Delivery, NeedEventsAfter};
use local::LocalMember;
use parking_lot::Mutex;
use protocol::rooms::{
    JoinAck, JoinRequest, LeaveReason, MessageAck, MessageRequest, RoomCount, TypingRequest,
};
use protocol::validate::name_key;
use protocol::{ErrorBody, ErrorCode};
use std::future::Future;
use std::sync::Arc;

/// How many times a join behind this instance's line fetches the events
/// it missed before it gives up.
const CATCH_UP_ATTEMPTS: usize = 4;

/// A disconnection the store could not record yet (Redis was down).
pub(crate) struct PendingLeave {
    pub room: String,
    pub name: String,
    pub sid: String,
}

/// The room rules of this instance: what they ask the store, and the
/// delivery of what comes back.
pub(crate) struct Rooms {
    pub store: Arc<dyn Store>,
    pub delivery: Delivery<Client>,
    pub link: Arc<Link>,
    pub metrics: Metrics,
    /// Retried once the store is back, so that a name never stays taken
    /// by a socket that is gone.
    pub pending_leaves: Mutex<Vec<PendingLeave>>,
    /// `ROOMS_LIST_MAX`: rooms in a `rooms` ack or push (see [`busiest`]).
    pub list_max: usize,
}

impl Rooms {
    /// Asks the store, unless it is known down; its failure is `unavailable`.
    async fn ask<T>(
        &self,
        what: &str,
        call: impl Future<Output = anyhow::Result<T>>,
    ) -> Result<T, ErrorBody> {
        if let Err(error) = self.link.require_up() {
            self.metrics.redis_unavailable.inc();
            return Err(error);
        }
        call.await.map_err(|error| {
            tracing::warn!(error = format!("{error:#}"), what, "store call failed");
            self.metrics.redis_unavailable.inc();
            unavailable()
        })
    }

    /// Joins the room; on success `welcome` sends the ack, before any live
    /// event of the room can reach the socket.
    pub async fn join(
        &self,
        socket: &Client,
        request: JoinRequest,
        welcome: impl FnOnce(JoinAck) + Send,
    ) -> Result<(), ErrorBody> {
        let session = socket.data();
        let room = request.room;
        let sid = socket.id();
        if let Some(held) = session.name_in(&room) {
            if name_key(&held) != name_key(&request.name) {
                return Err(ErrorBody::bad_request(format!(
                    "you are already in {room:?} as {held:?}; leave first"
                )));
            }
            // The same join again: answer it afresh, without notices.
            self.delivery.detach(&room, sid);
            session.exit(&room);
        }
        let member = Joiner {
            name: request.name,
            sid: sid.to_string(),
            client_id: request.client_id,
            sub: session.identity().map(|identity| identity.sub),
        };
        self.delivery.prepare(&room);
        let joined = match self
            .ask("join", self.store.join(&room, &member, request.since))
            .await
        {
            Ok(JoinOutcome::Joined(joined)) => joined,
            Ok(JoinOutcome::NameTaken) => {
                self.delivery.abandon(&room);
                return Err(ErrorBody::new(
                    ErrorCode::NameTaken,
                    format!("{:?} is already in {room:?}", member.name),
                ));
            }
            Err(error) => {
                self.delivery.abandon(&room);
                return Err(error);
            }
        };
        let local = LocalMember {
            socket: socket.clone(),
            name: member.name.clone(),
            client_id: member.client_id.clone(),
            sub: member.sub.clone(),
        };
        let ack = JoinAck {
            ok: true,
            room: room.clone(),
            members: joined.members,
            history: joined.history,
        };
        let mut welcome = Some(welcome);
        let mut ack = Some(ack);
        let mut send_ack = || {
            if let (Some(welcome), Some(ack)) = (welcome.take(), ack.take()) {
                welcome(ack);
            }
        };
        let attached = self
            .attach_caught_up(
                &room,
                local,
                joined.position,
                joined.position,
                &mut send_ack,
            )
            .await;
        if let Err(error) = attached {
            // The store holds a member that never got its ack; a failure
            // here leaves it to the disconnect or the retry.
            if let Err(leave_error) = self
                .store
                .leave(&room, &member.name, &member.sid, LeaveReason::Left)
                .await
            {
                tracing::warn!(%leave_error, "cannot undo a join");
            }
            return Err(error);
        }
        session.enter(&room, &member.name);
        Ok(())
    }

    /// Attaches `local` to `room` (after `prepare` and the store's join at
    /// `join_pos`), with every event after `had`; `welcome` sends the ack
    /// first. When this instance ran ahead of the store's answer by more
    /// than it remembers (a room new here, a busy one), it fetches the
    /// difference and tries again; a line that keeps outrunning the fetch
    /// gives up with `unavailable` rather than keep the socket waiting.
    /// On failure the room is abandoned.
    pub(crate) async fn attach_caught_up(
        &self,
        room: &str,
        local: LocalMember<Client>,
        join_pos: u64,
        had: u64,
        welcome: &mut (dyn FnMut() + Send),
    ) -> Result<(), ErrorBody> {
        let mut fetched = None;
        let mut catch_ups = 0;
        loop {
            let attached = self.delivery.attach_from(
                room,
                local.clone(),
                join_pos,
                had,
                fetched.as_deref(),
                welcome,
            );
            let Err(NeedEventsAfter(after)) = attached else {
                return Ok(());
            };
            catch_ups += 1;
            let fetch = if catch_ups > CATCH_UP_ATTEMPTS {
                Err(unavailable())
            } else {
                self.ask("catch up", self.store.events_after(room, after))
                    .await
            };
            match fetch {
                Ok(events) => fetched = Some(events),
                Err(error) => {
                    self.delivery.abandon(room);
                    return Err(error);
                }
            }
        }
    }

    /// Leaves `room` for good: the others see `user_left`.
    pub async fn leave(&self, socket: &Client, room: &str) -> Result<(), ErrorBody> {
        let sid = socket.id();
        let name = socket.data().require_room(room)?;
        self.ask(
            "leave",
            self.store.leave(room, &name, sid, LeaveReason::Left),
        )
        .await?;
        let session = socket.data();
        session.exit(room);
        self.delivery.detach(room, sid);
        Ok(())
    }

    /// Posts a message to a room the session joined.
    pub async fn post(
        &self,
        session: &Session,
        request: MessageRequest,
    ) -> Result<MessageAck, ErrorBody> {
        let name = session.require_room(&request.room)?;
        // Delivery to every member, this socket included, follows from the
        // store's events, in the room's order.
        let message = self
            .ask(
                "message",
                self.store.append(&request.room, &name, &request.text),
            )
            .await?;
        Ok(MessageAck {
            ok: true,
            id: message.id,
            ts: message.ts,
        })
    }

    /// Publishes a `typing` notice without waiting for it: volatile, it
    /// must never hold the socket's next event back. Dropped (the ack says
    /// `unavailable`) while the store is known down.
    pub fn typing(
        self: &Arc<Self>,
        session: &Session,
        request: TypingRequest,
    ) -> Result<(), ErrorBody> {
        let name = session.require_room(&request.room)?;
        if let Err(error) = self.link.require_up() {
            self.metrics.redis_unavailable.inc();
            return Err(error);
        }
        let rooms = self.clone();
        tokio::spawn(async move {
            let sent = rooms
                .store
                .typing(&request.room, &name, request.typing)
                .await;
            if let Err(error) = sent {
                // Volatile: nobody misses a lost typing notice for long.
                rooms.metrics.volatile_dropped.inc();
                tracing::debug!(%error, "typing notice dropped");
            }
        });
        Ok(())
    }

    /// The room list of the `rooms` ack and push.
    pub async fn list(&self) -> Result<Vec<RoomCount>, ErrorBody> {
        let rooms = self.ask("rooms", self.store.rooms()).await?;
        Ok(busiest(rooms, self.list_max))
    }

    /// A closed socket leaves every room it was in, as `disconnected`.
    pub async fn disconnected(&self, sid: &str, session: &Session) {
        for (room, name) in session.exit_all() {
            self.delivery.detach(&room, sid);
            self.leave_as_disconnected(room, name, sid).await;
        }
    }

    /// Records that `sid` left `room` with its connection, now or once the
    /// store is back.
    pub async fn leave_as_disconnected(&self, room: String, name: String, sid: &str) {
        let left = self
            .ask(
                "disconnect",
                self.store
                    .leave(&room, &name, sid, LeaveReason::Disconnected),
            )
            .await;
        if left.is_err() {
            self.pending_leaves.lock().push(PendingLeave {
                room,
                name,
                sid: sid.to_owned(),
            });
        }
    }

    /// `sid` lost its name in `room` to a newer socket of the same client:
    /// it leaves the room quietly (the others see no leave and no join).
    pub fn evict(&self, room: &str, sid: &str) {
        if let Some(member) = self.delivery.detach(room, sid) {
            member.socket.data().exit(room);
            tracing::debug!(
                sid,
                room,
                "socket replaced by a newer one of the same client"
            );
        }
    }

    /// Records the disconnections that happened while the store was away.
    pub async fn retry_leaves(&self) {
        let pending = std::mem::take(&mut *self.pending_leaves.lock());
        for leave in pending {
            let reason = LeaveReason::Disconnected;
            if let Err(error) = self
                .store
                .leave(&leave.room, &leave.name, &leave.sid, reason)
                .await
            {
                tracing::debug!(%error, "a disconnection still cannot be recorded");
                self.pending_leaves.lock().push(leave);
            }
        }
    }
}

/// The `max` rooms with the most members (ties: the first names), listed
/// by name. Every socket gets the list, and each socket's write buffer keeps
/// the size of the largest frame it ever wrote: a list of every room would
/// let a client that creates rooms by the thousand inflate every socket.
pub(crate) fn busiest(mut rooms: Vec<RoomCount>, max: usize) -> Vec<RoomCount> {
    if rooms.len() > max {
        rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.name.cmp(&b.name)));
        rooms.truncate(max);
    }
    rooms.sort_by(|a, b| a.name.cmp(&b.name));
    rooms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str, members: u64) -> RoomCount {
        RoomCount {
            name: name.to_owned(),
            members,
        }
    }

    #[test]
    fn the_list_holds_every_room_by_name_when_short() {
        let rooms = vec![room("b", 1), room("a", 5), room("c", 2)];
        assert_eq!(
            busiest(rooms, 3),
            vec![room("a", 5), room("b", 1), room("c", 2)]
        );
    }

    #[test]
    fn a_long_list_keeps_the_busiest_rooms() {
        let rooms = vec![room("d", 1), room("a", 1), room("c", 9), room("b", 3)];
        assert_eq!(busiest(rooms, 2), vec![room("b", 3), room("c", 9)]);
        let tied = vec![room("z", 1), room("y", 1), room("x", 1)];
        assert_eq!(busiest(tied, 2), vec![room("x", 1), room("y", 1)]);
    }
}
