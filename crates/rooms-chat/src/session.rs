//! What the server remembers about one socket: the rooms it joined under
//! which name, its rate limits, its outlet, its chain of turns and, with
//! token authentication, who holds it. Kept in the socket's extensions,
//! where a handler's [`Turn`] is taken from.

use crate::room::outlet::Outlet;
use crate::turn::{Turn, TurnChain};
use auth::Identity;
use ops::rate::{AbuseCounter, TokenBucket};
use parking_lot::Mutex;
use protocol::{ErrorBody, ErrorCode};
use socketioxide::adapter::LocalAdapter;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use std::convert::Infallible;
use std::sync::Arc;

pub struct Session {
    /// Events are handled one at a time, in order.
    pub turns: TurnChain,
    /// Frames on their way to the socket (see `room::outlet`).
    pub outlet: Arc<Outlet>,
    /// (room, the name this socket holds in it). A list, not a map: a
    /// socket is in one room or a few, and a map's table costs every idle
    /// socket more than the entries.
    rooms: Mutex<Vec<(String, String)>>,
    limits: Mutex<Limits>,
    /// Who holds the socket, from its token (token authentication only;
    /// boxed, so that a socket without one pays a pointer).
    identity: Mutex<Option<Box<Identity>>>,
}

struct Limits {
    /// `message` events.
    messages: TokenBucket,
    /// Every other event (join, leave, typing, rooms).
    others: TokenBucket,
    abuse: AbuseCounter,
}

/// Whether an event may go on, and if not, whether to cut the socket off.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Refused,
    Abusive,
}

impl Session {
    pub fn new(msg_rate: u32) -> Session {
        Session {
            turns: TurnChain::default(),
            outlet: Arc::default(),
            rooms: Mutex::new(Vec::new()),
            limits: Mutex::new(Limits {
                messages: TokenBucket::new(msg_rate),
                others: TokenBucket::new(msg_rate),
                abuse: AbuseCounter::default(),
            }),
            identity: Mutex::new(None),
        }
    }

    /// Who holds the socket (`None` without token authentication).
    pub fn identity(&self) -> Option<Identity> {
        self.identity.lock().as_deref().cloned()
    }

    /// Sets who holds the socket: at connect, and with each fresh token.
    pub fn set_identity(&self, identity: Identity) {
        *self.identity.lock() = Some(Box::new(identity));
    }

    pub fn admit(&self, is_message: bool) -> Admission {
        let mut limits = self.limits.lock();
        let accepted = if is_message {
            limits.messages.try_take()
        } else {
            limits.others.try_take()
        };
        match (accepted, limits.abuse.record(accepted)) {
            (true, _) => Admission::Allowed,
            (false, false) => Admission::Refused,
            (false, true) => Admission::Abusive,
        }
    }

    /// The name this socket holds in `room`.
    pub fn name_in(&self, room: &str) -> Option<String> {
        let rooms = self.rooms.lock();
        rooms
            .iter()
            .find(|(joined, _)| joined == room)
            .map(|(_, name)| name.clone())
    }

    /// The name in `room`, or the contract's `not_in_room`.
    pub fn require_room(&self, room: &str) -> Result<String, ErrorBody> {
        self.name_in(room).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::NotInRoom,
                format!("you have not joined {room:?}"),
            )
        })
    }

    pub fn enter(&self, room: &str, name: &str) {
        let mut rooms = self.rooms.lock();
        match rooms.iter_mut().find(|(joined, _)| joined == room) {
            Some((_, held)) => *held = name.to_owned(),
            None => rooms.push((room.to_owned(), name.to_owned())),
        }
    }

    pub fn exit(&self, room: &str) -> Option<String> {
        let mut rooms = self.rooms.lock();
        let index = rooms.iter().position(|(joined, _)| joined == room)?;
        Some(rooms.swap_remove(index).1)
    }

    /// Every (room, name) this socket holds, emptying the list.
    pub fn exit_all(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.rooms.lock())
    }
}

/// A handler's turn, taken from its socket's session when the packet is read.
impl FromMessageParts<LocalAdapter> for Turn {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<LocalAdapter>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Turn, Infallible> {
        Ok(match socket.extensions.get::<Arc<Session>>() {
            Some(session) => session.turns.take(),
            // No session (cannot happen after set-up): nothing to wait for.
            None => TurnChain::default().take(),
        })
    }
}
