//! The room state behind one interface: members (with name uniqueness and
//! the `clientId` takeover), the per-room message sequence, the history of
//! recent messages and the room list with counts.
//!
//! Two backends implement [`Store`]: [`memory::MemoryStore`] for embedded
//! mode and [`redis::RedisStore`] for cluster mode. Handlers only see the
//! trait. Each backend also produces a stream of [`StoreEvent`]s (room
//! messages in id order, room-list changes, evictions), so that local
//! delivery reads the same in both modes.

pub mod memory;
pub mod redis;

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use protocol::rooms::{RoomCount, RoomMessage};
use serde_json::value::RawValue;
use std::sync::Arc;

/// A socket asking to be a member of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The name as the user typed it (already validated).
    pub name: String,
    /// The socket (Socket.IO session id) that holds the name.
    pub sid: String,
    /// The browser session, for the reconnect takeover.
    pub client_id: Option<String>,
}

/// What a successful join returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// Names of every member, the joiner included.
    pub members: Vec<String>,
    /// The history for the ack, oldest first.
    pub history: Vec<RoomMessage>,
    /// The room's last message id when the join happened (0: none yet).
    pub last_id: u64,
    /// The name was already held by this socket or by an older socket of the
    /// same `clientId`: the others must not hear of a join.
    pub silent: bool,
}

/// The answer to a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined(Joined),
    NameTaken,
}

/// A room message with its JSON, serialized once for every member.
#[derive(Debug)]
pub struct Envelope {
    pub message: RoomMessage,
    pub json: Box<RawValue>,
}

impl Envelope {
    pub fn new(message: RoomMessage) -> Result<Arc<Envelope>> {
        let json = serde_json::value::to_raw_value(&message).context("serialize a message")?;
        Ok(Arc::new(Envelope { message, json }))
    }

    /// From the JSON kept in the history or received from another instance.
    pub fn from_json(json: &str) -> Result<Arc<Envelope>> {
        let message: RoomMessage = serde_json::from_str(json).context("parse a message")?;
        let json = RawValue::from_string(json.to_owned()).context("keep a message's JSON")?;
        Ok(Arc::new(Envelope { message, json }))
    }
}

/// What happens to the shared state, as every instance must learn it.
#[derive(Debug)]
pub enum StoreEvent {
    /// A new room message, in id order per room (gaps are possible in
    /// cluster mode and are repaired by the sequencer).
    Message(Arc<Envelope>),
    /// The room list or a member count changed.
    RoomsChanged,
    /// `sid` lost its place in `room` to a newer socket of the same client.
    Evicted { room: String, sid: String },
    /// Events may have been lost (the link to Redis lagged or reconnected):
    /// every room must be checked against the store.
    Resync,
}

/// The room state. Every method may fail when the backing store is
/// unreachable; handlers then answer `unavailable`.
pub trait Store: Send + Sync + 'static {
    /// Adds `member` to `room` unless another socket holds the name
    /// (case-insensitive). With `since`, the history holds every message
    /// after that id still kept; without, the last [`protocol::HISTORY_LEN`].
    fn join<'a>(
        &'a self,
        room: &'a str,
        member: &'a Member,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<JoinOutcome>>;

    /// Removes `name` from `room` if socket `sid` still holds it; true if it did.
    fn leave<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        sid: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Gives the message the room's next id, keeps it in the history and
    /// publishes it, as one atomic step.
    fn append<'a>(
        &'a self,
        room: &'a str,
        from: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<RoomMessage>>;

    /// Every kept message of `room` with an id above `after`, oldest first.
    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<RoomMessage>>>;

    /// Rooms that have members, with their member counts, sorted by name.
    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomCount>>>;
}

/// The key under which names are unique: case-insensitive.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}
