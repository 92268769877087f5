//! Embedded mode: the room state in this process's memory, behind one lock.
//!
//! Positions and ids are taken and events are sent under that lock, so the
//! event stream carries every room's events in the room's order.

use super::{JoinOutcome, Joined, Joiner, Store, StoreEvent};
use crate::room::event::{Kind, RoomEvent};
use anyhow::{Context, Result};
use futures::future::{BoxFuture, FutureExt};
use parking_lot::Mutex;
use protocol::rooms::{LeaveReason, RoomCount, RoomMessage, Typing, UserJoined, UserLeft};
use protocol::validate::name_key;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One room: members by name key, its order, sequence and recent history.
/// A room keeps them when it empties, so ids never restart.
#[derive(Default)]
struct Room {
    members: HashMap<String, Held>,
    last_id: u64,
    last_pos: u64,
    history: VecDeque<RoomMessage>,
    /// Recent positioned events, to fill gaps (none occur in process, but
    /// the interface is the same as Redis's).
    log: VecDeque<Arc<RoomEvent>>,
}

/// A name in a room: the member that took it, and the further sockets of
/// the same `sub` that share it.
struct Held {
    member: Joiner,
    others: Vec<String>,
}

impl Held {
    fn holds(&self, sid: &str) -> bool {
        self.member.sid == sid || self.others.iter().any(|other| other == sid)
    }

    /// Lets socket `sid` go; true when no socket holds the name any more.
    fn release(&mut self, sid: &str) -> bool {
        if self.member.sid == sid {
            match self.others.pop() {
                Some(next) => self.member.sid = next,
                None => return true,
            }
        } else {
            self.others.retain(|other| other != sid);
        }
        false
    }
}

/// The room state in process memory: the embedded-mode [`Store`].
pub struct MemoryStore {
    rooms: Mutex<BTreeMap<String, Room>>,
    history_keep: usize,
    events: mpsc::UnboundedSender<StoreEvent>,
    /// What dropped sockets need to be recovered, by pid, until when.
    held: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryStore {
    /// The store and the stream of its events.
    pub fn new(history_keep: usize) -> (MemoryStore, mpsc::UnboundedReceiver<StoreEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let store = MemoryStore {
            rooms: Mutex::new(BTreeMap::new()),
            history_keep,
            events,
            held: Mutex::new(HashMap::new()),
        };
        (store, receiver)
    }

    fn publish(&self, event: StoreEvent) {
        // The receiver lives as long as the app; after shutdown nobody listens.
        let _ = self.events.send(event);
    }

    /// Gives a notice the room's next position and publishes it.
    fn place(
        &self,
        room: &mut Room,
        room_name: &str,
        name: &str,
        kind: Kind,
        json: String,
    ) -> Result<u64> {
        room.last_pos += 1;
        let event = RoomEvent::new(room_name, room.last_pos, kind, name, json)?;
        self.keep_and_publish(room, event);
        Ok(room.last_pos)
    }

    fn keep_and_publish(&self, room: &mut Room, event: Arc<RoomEvent>) {
        room.log.push_back(event.clone());
        if room.log.len() > self.history_keep {
            room.log.pop_front();
        }
        self.publish(StoreEvent::Room(event));
    }

    fn join_now(
        &self,
        room_name: &str,
        member: &Joiner,
        since: Option<u64>,
    ) -> Result<JoinOutcome> {
        let mut rooms = self.rooms.lock();
        let room = rooms.entry(room_name.to_owned()).or_default();
        let key = name_key(&member.name);
        let mut silent = false;
        let mut shared = false;
        if let Some(held) = room.members.get_mut(&key) {
            let holder = &held.member;
            let same_socket = held.holds(&member.sid);
            let same_person = member.sub.is_some() && holder.sub == member.sub;
            let same_client = member.client_id.is_some() && holder.client_id == member.client_id;
            if same_person {
                if !same_socket {
                    held.others.push(member.sid.clone());
                }
                shared = true;
            } else if !same_socket && !same_client {
                return Ok(JoinOutcome::NameTaken);
            } else if !same_socket {
                self.publish(StoreEvent::Evicted {
                    room: room_name.to_owned(),
                    sid: holder.sid.clone(),
                });
            }
            silent = true;
        }
        if !shared {
            let held = Held {
                member: member.clone(),
                others: Vec::new(),
            };
            room.members.insert(key, held);
        }
        let position = if silent {
            room.last_pos
        } else {
            let notice = UserJoined {
                room: room_name.to_owned(),
                name: member.name.clone(),
                ts: protocol::now_ms(),
            };
            let json = serde_json::to_string(&notice).context("encode user_joined")?;
            let position = self.place(room, room_name, &member.name, Kind::Joined, json)?;
            self.publish(StoreEvent::RoomsChanged);
            position
        };
        let history = match since {
            Some(since) => room
                .history
                .iter()
                .filter(|message| message.id > since)
                .cloned()
                .collect(),
            None => {
                let skip = room.history.len().saturating_sub(protocol::HISTORY_LEN);
                room.history.iter().skip(skip).cloned().collect()
            }
        };
        Ok(JoinOutcome::Joined(Joined {
            members: room
                .members
                .values()
                .map(|held| held.member.name.clone())
                .collect(),
            history,
            last_id: room.last_id,
            position,
            silent,
        }))
    }

    fn leave_now(
        &self,
        room_name: &str,
        name: &str,
        sid: &str,
        reason: LeaveReason,
    ) -> Result<bool> {
        let mut rooms = self.rooms.lock();
        let Some(room) = rooms.get_mut(room_name) else {
            return Ok(false);
        };
        let key = name_key(name);
        let Some(held) = room.members.get_mut(&key) else {
            return Ok(false);
        };
        if !held.holds(sid) || !held.release(sid) {
            return Ok(false);
        }
        let name = held.member.name.clone();
        room.members.remove(&key);
        let notice = UserLeft {
            room: room_name.to_owned(),
            name: name.clone(),
            ts: protocol::now_ms(),
            reason,
        };
        let json = serde_json::to_string(&notice).context("encode user_left")?;
        self.place(room, room_name, &name, Kind::Left, json)?;
        self.publish(StoreEvent::RoomsChanged);
        Ok(true)
    }

    fn append_now(&self, room_name: &str, from: &str, text: &str) -> Result<RoomMessage> {
        let mut rooms = self.rooms.lock();
        let room = rooms.entry(room_name.to_owned()).or_default();
        room.last_id += 1;
        room.last_pos += 1;
        let message = RoomMessage {
            id: room.last_id,
            room: room_name.to_owned(),
            from: from.to_owned(),
            text: text.to_owned(),
            ts: protocol::now_ms(),
        };
        let json = serde_json::to_string(&message).context("encode a message")?;
        let kind = Kind::Message { id: message.id };
        let event = RoomEvent::new(room_name, room.last_pos, kind, from, json)?;
        room.history.push_back(message.clone());
        if room.history.len() > self.history_keep {
            room.history.pop_front();
        }
        self.keep_and_publish(room, event);
        Ok(message)
    }

    fn typing_now(&self, room_name: &str, name: &str, typing: bool) -> Result<()> {
        let rooms = self.rooms.lock();
        let Some(room) = rooms.get(room_name) else {
            return Ok(());
        };
        let notice = Typing {
            room: room_name.to_owned(),
            name: name.to_owned(),
            typing,
        };
        let json = serde_json::to_string(&notice).context("encode typing")?;
        let event = RoomEvent::new(room_name, room.last_pos, Kind::Typing, name, json)?;
        self.publish(StoreEvent::Room(event));
        Ok(())
    }
}

impl Store for MemoryStore {
    fn join<'a>(
        &'a self,
        room: &'a str,
        member: &'a Joiner,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<JoinOutcome>> {
        let outcome = self.join_now(room, member, since);
        async move { outcome }.boxed()
    }

    fn leave<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        sid: &'a str,
        reason: LeaveReason,
    ) -> BoxFuture<'a, Result<bool>> {
        let left = self.leave_now(room, name, sid, reason);
        async move { left }.boxed()
    }

    fn append<'a>(
        &'a self,
        room: &'a str,
        from: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<RoomMessage>> {
        let appended = self.append_now(room, from, text);
        async move { appended }.boxed()
    }

    fn typing<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        typing: bool,
    ) -> BoxFuture<'a, Result<()>> {
        let sent = self.typing_now(room, name, typing);
        async move { sent }.boxed()
    }

    fn events_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RoomEvent>>>> {
        let rooms = self.rooms.lock();
        let events = rooms
            .get(room)
            .map(|room| {
                room.log
                    .iter()
                    .filter(|event| event.pos > after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        async move { Ok(events) }.boxed()
    }

    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<RoomMessage>>> {
        let rooms = self.rooms.lock();
        let history = rooms
            .get(room)
            .map(|room| {
                room.history
                    .iter()
                    .filter(|message| message.id > after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        async move { Ok(history) }.boxed()
    }

    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomCount>>> {
        let rooms = self.rooms.lock();
        let list = rooms
            .iter()
            .filter(|(_, room)| !room.members.is_empty())
            .map(|(name, room)| RoomCount {
                name: name.clone(),
                members: room.members.len() as u64,
            })
            .collect();
        async move { Ok(list) }.boxed()
    }

    fn hold<'a>(
        &'a self,
        pid: &'a str,
        state: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        let now = Instant::now();
        let mut held = self.held.lock();
        // Whoever never came back is forgotten here, as Redis expires it.
        held.retain(|_, (_, until)| *until > now);
        held.insert(pid.to_owned(), (state.to_owned(), now + ttl));
        async { Ok(()) }.boxed()
    }

    fn take_held<'a>(&'a self, pid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let taken = self.held.lock().remove(pid);
        let state = taken
            .filter(|(_, until)| *until > Instant::now())
            .map(|(state, _)| state);
        async move { Ok(state) }.boxed()
    }
}
