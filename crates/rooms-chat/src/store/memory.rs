//! Embedded mode: the room state in this process's memory, behind one lock.
//!
//! Ids are taken and events are sent under that lock, so the event stream
//! carries every room's messages in id order.

use super::{JoinOutcome, Joined, Member, Store, StoreEvent, name_key};
use anyhow::Result;
use futures::future::{BoxFuture, FutureExt};
use protocol::rooms::{RoomCount, RoomMessage};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// One room: members by name key, sequence and recent history. A room
/// keeps its sequence and history when it empties, so ids never restart.
#[derive(Default)]
struct Room {
    members: HashMap<String, Member>,
    last_id: u64,
    history: VecDeque<RoomMessage>,
}

pub struct MemoryStore {
    rooms: Mutex<BTreeMap<String, Room>>,
    history_keep: usize,
    events: mpsc::UnboundedSender<StoreEvent>,
}

impl MemoryStore {
    /// The store and the stream of its events.
    pub fn new(history_keep: usize) -> (MemoryStore, mpsc::UnboundedReceiver<StoreEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let store = MemoryStore {
            rooms: Mutex::new(BTreeMap::new()),
            history_keep,
            events,
        };
        (store, receiver)
    }

    fn publish(&self, event: StoreEvent) {
        // The receiver lives as long as the app; after shutdown nobody listens.
        let _ = self.events.send(event);
    }

    fn join_now(&self, room_name: &str, member: &Member, since: Option<u64>) -> JoinOutcome {
        let mut rooms = self.rooms.lock().unwrap();
        let room = rooms.entry(room_name.to_owned()).or_default();
        let key = name_key(&member.name);
        let mut silent = false;
        if let Some(holder) = room.members.get(&key) {
            let same_socket = holder.sid == member.sid;
            let same_client = member.client_id.is_some() && holder.client_id == member.client_id;
            if !same_socket && !same_client {
                return JoinOutcome::NameTaken;
            }
            if !same_socket {
                self.publish(StoreEvent::Evicted {
                    room: room_name.to_owned(),
                    sid: holder.sid.clone(),
                });
            }
            silent = true;
        }
        room.members.insert(key, member.clone());
        if !silent {
            self.publish(StoreEvent::RoomsChanged);
        }
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
        JoinOutcome::Joined(Joined {
            members: room.members.values().map(|m| m.name.clone()).collect(),
            history,
            last_id: room.last_id,
            silent,
        })
    }

    fn leave_now(&self, room_name: &str, name: &str, sid: &str) -> bool {
        let mut rooms = self.rooms.lock().unwrap();
        let Some(room) = rooms.get_mut(room_name) else {
            return false;
        };
        let key = name_key(name);
        if room
            .members
            .get(&key)
            .is_none_or(|holder| holder.sid != sid)
        {
            return false;
        }
        room.members.remove(&key);
        self.publish(StoreEvent::RoomsChanged);
        true
    }

    fn append_now(&self, room_name: &str, from: &str, text: &str) -> Result<RoomMessage> {
        let mut rooms = self.rooms.lock().unwrap();
        let room = rooms.entry(room_name.to_owned()).or_default();
        room.last_id += 1;
        let message = RoomMessage {
            id: room.last_id,
            room: room_name.to_owned(),
            from: from.to_owned(),
            text: text.to_owned(),
            ts: protocol::now_ms(),
        };
        room.history.push_back(message.clone());
        if room.history.len() > self.history_keep {
            room.history.pop_front();
        }
        self.publish(StoreEvent::Message(super::Envelope::new(message.clone())?));
        Ok(message)
    }
}

impl Store for MemoryStore {
    fn join<'a>(
        &'a self,
        room: &'a str,
        member: &'a Member,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<JoinOutcome>> {
        let outcome = self.join_now(room, member, since);
        async move { Ok(outcome) }.boxed()
    }

    fn leave<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        sid: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        let left = self.leave_now(room, name, sid);
        async move { Ok(left) }.boxed()
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

    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<RoomMessage>>> {
        let rooms = self.rooms.lock().unwrap();
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
        let rooms = self.rooms.lock().unwrap();
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
}
