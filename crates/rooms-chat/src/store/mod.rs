//! The room state behind one interface: members (with name uniqueness and
//! the `clientId` takeover), each room's order of events with the message
//! sequence inside it, the history of recent messages and the room list
//! with counts.
//!
//! Two backends implement [`Store`]: [`memory::MemoryStore`] for embedded
//! mode and `cluster::RedisStore` for cluster mode. Whatever changes a
//! room fixes the event's place in the room's order and publishes it in
//! the same step (in process, or inside one Lua script), so every
//! instance's one subscriber receives each room's events in that order as
//! [`StoreEvent`]s, and local delivery reads the same in both modes.

pub mod memory;

use crate::room::event::RoomEvent;
use anyhow::Result;
use futures::future::BoxFuture;
use protocol::rooms::{LeaveReason, RoomCount, RoomMessage};
use std::sync::Arc;
use std::time::Duration;

/// A socket asking to be a member of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joiner {
    /// The name as the user typed it (already validated).
    pub name: String,
    /// The socket (Socket.IO session id) that holds the name.
    pub sid: String,
    /// The browser session, for the reconnect takeover.
    pub client_id: Option<String>,
    /// The person, when a token proved it: every socket of one `sub`
    /// shares one name in a room, which it leaves with its last socket.
    pub sub: Option<String>,
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
    /// The join's place in the room's order (its `user_joined`, or the
    /// last event before it for a silent join): later events are live.
    pub position: u64,
    /// The name was already held by this socket or by an older socket of the
    /// same `clientId`: the others must not hear of a join.
    pub silent: bool,
}

/// The answer to a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The socket is a member now.
    Joined(Joined),
    /// Another person holds the name in this room.
    NameTaken,
}

/// What happens to the shared state, as every instance must learn it.
#[derive(Debug)]
pub enum StoreEvent {
    /// A room event, in the room's order (gaps are possible in cluster
    /// mode and are repaired from the room's log).
    Room(Arc<RoomEvent>),
    /// The room list or a member count changed.
    RoomsChanged,
    /// `sid` lost its place in `room` to a newer socket of the same client.
    Evicted {
        /// The room.
        room: String,
        /// The socket that lost its place.
        sid: String,
    },
    /// Events may have been lost (the link to Redis lagged or reconnected):
    /// every room must be checked against the store.
    Resync,
}

/// The room state. Every method may fail when the backing store is
/// unreachable; handlers then answer `unavailable`.
pub trait Store: Send + Sync + 'static {
    /// Adds `member` to `room` unless another socket holds the name
    /// (case-insensitive); a socket of the holder's own `sub` joins it
    /// silently, as one more socket of the same member. With `since`, the history holds every message
    /// after that id still kept; without, the last [`protocol::HISTORY_LEN`].
    fn join<'a>(
        &'a self,
        room: &'a str,
        member: &'a Joiner,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<JoinOutcome>>;

    /// Removes socket `sid` from the holders of `name` in `room`; when it
    /// was the last, removes the name and publishes its `user_left`: true
    /// if it did.
    fn leave<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        sid: &'a str,
        reason: LeaveReason,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Gives the message the room's next id and position, keeps it in the
    /// history and publishes it, as one atomic step.
    fn append<'a>(
        &'a self,
        room: &'a str,
        from: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<RoomMessage>>;

    /// Publishes a volatile `typing` notice after the room's last event.
    fn typing<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        typing: bool,
    ) -> BoxFuture<'a, Result<()>>;

    /// Every kept event of `room` after position `after`, oldest first
    /// (to fill a gap).
    fn events_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RoomEvent>>>>;

    /// Every kept message of `room` with an id above `after`, oldest first.
    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<RoomMessage>>>;

    /// Rooms that have members, with their member counts, sorted by name.
    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomCount>>>;

    /// Keeps what a dropped socket needs to be recovered (see `recovery`)
    /// under its private id `pid`, for `ttl`.
    fn hold<'a>(&'a self, pid: &'a str, state: &'a str, ttl: Duration)
    -> BoxFuture<'a, Result<()>>;

    /// Takes what [`Store::hold`] kept under `pid`, if it is still there:
    /// once, whoever asks (the recovering instance, or the one whose
    /// window ran out).
    fn take_held<'a>(&'a self, pid: &'a str) -> BoxFuture<'a, Result<Option<String>>>;
}
