//! One room as this instance holds it: its line, its local members and its
//! recent events, and the rule of who receives which released event.
//!
//! A member receives every event of its room after its own join, once, in
//! the room's order, except notices about itself (its own join, leave and
//! typing).

use crate::recipient::Recipient;
use crate::room::event::RoomEvent;
use crate::room::line::Line;
use crate::room::outgoing::Outgoing;
use ops::pace::Pace;
use protocol::validate::name_key;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Events a room remembers after releasing them, so that a join that raced
/// with deliveries can be given the ones it missed.
pub const RECENT_LEN: usize = 256;

/// A member of a room on this instance.
pub struct LocalMember<R: Recipient> {
    pub socket: R,
    pub name: String,
    pub client_id: Option<String>,
    pub sub: Option<String>,
}

impl<R: Recipient> Clone for LocalMember<R> {
    fn clone(&self) -> Self {
        LocalMember {
            socket: self.socket.clone(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
            sub: self.sub.clone(),
        }
    }
}

/// A member as the room delivers to it.
pub struct Attached<R: Recipient> {
    pub member: LocalMember<R>,
    pub name_key: String,
    /// Its join's position: earlier events are in its ack.
    pub start: u64,
    /// Its join's catch-up sent copies of events fetched from the store,
    /// whose offsets say nothing of the room's order here: a recovery
    /// cannot tell what it had (see `Delivery::marks`).
    pub caught_up_from_store: bool,
}

pub struct LocalRoom<R: Recipient> {
    pub line: Line,
    /// Joins between `prepare` and `attach`/`abandon`.
    pub joining: usize,
    pub recent: VecDeque<Arc<RoomEvent>>,
    /// The id of the last message released.
    pub last_message_id: u64,
    pub repairing: bool,
    /// By socket id.
    pub members: HashMap<Box<str>, Attached<R>>,
    /// How often the room's events come: a busy room's frames wait for
    /// the clock.
    pace: Pace,
    /// Frames of this room wait in its members' outboxes for the clock.
    pub queued: bool,
}

impl<R: Recipient> Default for LocalRoom<R> {
    fn default() -> LocalRoom<R> {
        LocalRoom {
            line: Line::default(),
            joining: 0,
            recent: VecDeque::new(),
            last_message_id: 0,
            repairing: false,
            members: HashMap::new(),
            pace: Pace::default(),
            queued: false,
        }
    }
}

impl<R: Recipient> LocalRoom<R> {
    pub fn is_unused(&self) -> bool {
        self.members.is_empty() && self.joining == 0
    }

    /// Hands released events to the members; with a `backlog` (more events
    /// wait to be delivered) their frames wait for the clock.
    pub fn fan_out(&mut self, released: Vec<Arc<RoomEvent>>, outgoing: &Outgoing, backlog: bool) {
        for event in released {
            let at_once =
                event.kind.is_volatile() || outgoing.leaves_at_once(&mut self.pace, backlog);
            self.queued |= !at_once;
            if !event.kind.is_volatile() {
                if let Some(id) = event.message_id() {
                    self.last_message_id = id;
                }
                self.recent.push_back(event.clone());
                if self.recent.len() > RECENT_LEN {
                    self.recent.pop_front();
                }
            }
            let about = event
                .kind
                .is_for_the_others()
                .then(|| name_key(&event.name));
            for attached in self.members.values() {
                send_to(attached, &event, about.as_deref(), outgoing, at_once);
            }
        }
    }

    /// The events after `join_pos` that this room released already: from
    /// its recent events if they reach back that far, else what was fetched
    /// from the store followed by the recent ones after it. The line goes
    /// on while the store answers, so the fetched events may end before
    /// the recent ones begin: `None` then, as when nothing reaches back, and
    /// the caller fetches (again), never giving out a hole in the middle.
    pub fn released_after(
        &self,
        join_pos: u64,
        fetched: Option<&[Arc<RoomEvent>]>,
    ) -> Option<Vec<Arc<RoomEvent>>> {
        let delivered = self.line.delivered();
        if join_pos >= delivered {
            return Some(Vec::new());
        }
        let reaches_back = |pos: u64| {
            self.recent
                .front()
                .is_some_and(|first| first.pos <= pos + 1)
        };
        let recent_after = |pos: u64| {
            self.recent
                .iter()
                .filter(move |event| event.pos > pos && event.pos <= delivered)
                .cloned()
        };
        if reaches_back(join_pos) {
            return Some(recent_after(join_pos).collect());
        }
        let fetched = fetched?;
        let Some(fetched_to) = fetched.last().map(|event| event.pos) else {
            // The store holds nothing after the join (it lost the room's
            // log): there is nothing to give.
            return Some(Vec::new());
        };
        if fetched_to < delivered && !reaches_back(fetched_to) {
            return None;
        }
        Some(
            fetched
                .iter()
                .filter(|event| event.pos > join_pos && event.pos <= delivered)
                .cloned()
                .chain(recent_after(fetched_to))
                .collect(),
        )
    }
}

/// Hands `event` to one member, unless its ack holds it already or it is
/// about the member itself (`about`: the name key the notice is about).
pub fn send_to<R: Recipient>(
    attached: &Attached<R>,
    event: &Arc<RoomEvent>,
    about: Option<&str>,
    outgoing: &Outgoing,
    at_once: bool,
) {
    let volatile = event.kind.is_volatile();
    // A volatile event carries the position before it.
    let before_join = if volatile {
        event.pos < attached.start
    } else {
        event.pos <= attached.start
    };
    if before_join || about == Some(attached.name_key.as_str()) {
        return;
    }
    outgoing.send(&attached.member.socket, event, at_once);
}
