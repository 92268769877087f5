//! What the server remembers about one socket: the rooms it joined under
//! which name, its rate limits and, with token authentication, who holds
//! it and the watch that ends it when the token expires. The runtime keeps
//! it as the socket's data (`socket.data()`).

use crate::recovery::Rejoin;
use auth::Identity;
use ops::rate::{AbuseCounter, TokenBucket};
use parking_lot::Mutex;
use protocol::{ErrorBody, ErrorCode};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::AbortHandle;

/// One socket's state in rooms-chat.
pub(crate) struct Session {
    /// (room, the name this socket holds in it). A list, not a map: a
    /// socket is in one room or a few, and a map's table costs every idle
    /// socket more than the entries.
    rooms: Mutex<Vec<(String, String)>>,
    limits: Mutex<Limits>,
    /// Who holds the socket, from its token (token authentication only;
    /// boxed, so that a socket without one pays a pointer).
    identity: Mutex<Option<Box<Identity>>>,
    /// The task that ends the socket when its token expires.
    expiry: Mutex<Option<AbortHandle>>,
    /// A recovered socket's rooms that still owe it their missed events
    /// (until its connect reply is out; boxed, as rare).
    rejoins: Mutex<Option<Box<[Rejoin]>>>,
    /// A recovery of this socket could not give it what it missed: it must
    /// not be held for another one, which would miss that room silently.
    unrecoverable: AtomicBool,
}

struct Limits {
    /// `message` events.
    messages: TokenBucket,
    /// Every other event (join, leave, typing, rooms).
    others: TokenBucket,
    abuse: AbuseCounter,
}

/// Whether an event may go on under the rate limits, and if not, whether
/// to cut the socket off.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RateVerdict {
    /// Within the limits.
    Allowed,
    /// Over the limits: the event is refused.
    Refused,
    /// Far over them for long: the socket is cut off.
    Abusive,
}

impl Session {
    /// A socket's state, allowed `msg_rate` events of each kind per second.
    pub(crate) fn new(msg_rate: u32) -> Session {
        Session {
            rooms: Mutex::new(Vec::new()),
            limits: Mutex::new(Limits {
                messages: TokenBucket::new(msg_rate),
                others: TokenBucket::new(msg_rate),
                abuse: AbuseCounter::default(),
            }),
            identity: Mutex::new(None),
            expiry: Mutex::new(None),
            rejoins: Mutex::new(None),
            unrecoverable: AtomicBool::new(false),
        }
    }

    /// The session a recovery restored: its rooms and names back, and what
    /// each room still owes it.
    pub(crate) fn with_recovery(
        self,
        rooms: Vec<(String, String)>,
        rejoins: Vec<Rejoin>,
    ) -> Session {
        *self.rooms.lock() = rooms;
        *self.rejoins.lock() = Some(rejoins.into_boxed_slice());
        self
    }

    /// The socket must not be held for a recovery when it ends.
    pub(crate) fn forbid_recovery(&self) {
        self.unrecoverable.store(true, Ordering::Relaxed);
    }

    /// Whether the socket may be held for a recovery when it ends.
    pub(crate) fn may_recover(&self) -> bool {
        !self.unrecoverable.load(Ordering::Relaxed)
    }

    /// What the rooms of a recovered socket still owe it, once.
    pub(crate) fn take_rejoins(&self) -> Vec<Rejoin> {
        self.rejoins.lock().take().map_or_else(Vec::new, Vec::from)
    }

    /// Keeps the watch that ends the socket at its token's expiry.
    pub(crate) fn set_expiry_watch(&self, watch: AbortHandle) {
        *self.expiry.lock() = Some(watch);
    }

    /// The socket is gone: its expiry watch too.
    pub(crate) fn stop_expiry_watch(&self) {
        if let Some(watch) = self.expiry.lock().take() {
            watch.abort();
        }
    }

    /// Whether the socket holds a name in some room.
    pub(crate) fn has_rooms(&self) -> bool {
        !self.rooms.lock().is_empty()
    }

    /// Who holds the socket (`None` without token authentication).
    pub(crate) fn identity(&self) -> Option<Identity> {
        self.identity.lock().as_deref().cloned()
    }

    /// Sets who holds the socket: at connect, and with each fresh token.
    pub(crate) fn set_identity(&self, identity: Identity) {
        *self.identity.lock() = Some(Box::new(identity));
    }

    /// Counts one event against the limits (`message` events have their own).
    pub(crate) fn admit(&self, is_message: bool) -> RateVerdict {
        let mut limits = self.limits.lock();
        let accepted = if is_message {
            limits.messages.try_take()
        } else {
            limits.others.try_take()
        };
        match (accepted, limits.abuse.record(accepted)) {
            (true, _) => RateVerdict::Allowed,
            (false, false) => RateVerdict::Refused,
            (false, true) => RateVerdict::Abusive,
        }
    }

    /// The name this socket holds in `room`.
    pub(crate) fn name_in(&self, room: &str) -> Option<String> {
        let rooms = self.rooms.lock();
        rooms
            .iter()
            .find(|(joined, _)| joined == room)
            .map(|(_, name)| name.clone())
    }

    /// The name in `room`, or the contract's `not_in_room`.
    pub(crate) fn require_room(&self, room: &str) -> Result<String, ErrorBody> {
        self.name_in(room).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::NotInRoom,
                format!("you have not joined {room:?}"),
            )
        })
    }

    /// The socket joined `room` as `name`.
    pub(crate) fn enter(&self, room: &str, name: &str) {
        let mut rooms = self.rooms.lock();
        match rooms.iter_mut().find(|(joined, _)| joined == room) {
            Some((_, held)) => *held = name.to_owned(),
            None => rooms.push((room.to_owned(), name.to_owned())),
        }
    }

    /// The socket left `room`: the name it held there.
    pub(crate) fn exit(&self, room: &str) -> Option<String> {
        let mut rooms = self.rooms.lock();
        let index = rooms.iter().position(|(joined, _)| joined == room)?;
        Some(rooms.swap_remove(index).1)
    }

    /// Every (room, name) this socket holds, emptying the list.
    pub(crate) fn exit_all(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.rooms.lock())
    }
}
