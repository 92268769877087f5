//! The rooms with members on this instance (each a [`LocalRoom`]): joins
//! and leaves of local members, and arriving events handed to the room's
//! line, whose released events go to the members (see `outgoing`).
//!
//! The join ack is sent while the room is locked, before any live event
//! can reach the new member; events the line released between the store's
//! answer and the attach are replayed to it right after the ack, so ack
//! plus live events hold every event once. The sweeps over every room (gap
//! repair, resync, restore) are in `upkeep`.

use crate::metrics::Metrics;
use crate::recipient::Recipient;
use crate::room::event::RoomEvent;
use crate::room::local::{Attached, LocalMember, LocalRoom, send_to};
use crate::room::outgoing::Outgoing;
use parking_lot::Mutex;
use protocol::validate::name_key;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The offsets a recovery can look up per room: more events than this
/// lost on the way mean a re-join with `since` instead.
const MARKS_KEPT: usize = 64;

/// What a member of a room had, as its offsets tell it: everything up to
/// `start`, and each event of `sent` (offset count, position) whose
/// offset it acknowledged by handing back a later one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomMarks {
    /// The position it had everything up to when it joined.
    pub start: u64,
    /// (offset count, position) of the room's events sent to it since, in order.
    pub sent: Vec<(u64, u64)>,
    /// `sent` holds every event sent after `start`.
    pub complete: bool,
}

impl RoomMarks {
    /// The position the member had everything up to, given the offset
    /// count of the last event it received; `None` if the marks cannot tell.
    pub fn had(&self, offset: u64) -> Option<u64> {
        let acknowledged = self.sent.iter().filter(|(seq, _)| *seq <= offset);
        match acknowledged.map(|(_, pos)| *pos).max() {
            Some(pos) => Some(pos),
            None if self.complete => Some(self.start),
            None => None,
        }
    }
}

/// Why a join must fetch the room's events before it can be attached.
#[derive(Debug, PartialEq, Eq)]
pub struct NeedEventsAfter(pub u64);

pub(super) type SharedRoom<R> = Arc<Mutex<LocalRoom<R>>>;

pub struct Delivery<R: Recipient> {
    rooms: Mutex<HashMap<String, SharedRoom<R>>>,
    pub(crate) outgoing: Outgoing,
    pub(super) metrics: Metrics,
}

impl<R: Recipient> Delivery<R> {
    pub fn new(outgoing: Outgoing, metrics: Metrics) -> Delivery<R> {
        Delivery {
            rooms: Mutex::new(HashMap::new()),
            outgoing,
            metrics,
        }
    }

    pub(super) fn room(&self, room: &str) -> Option<SharedRoom<R>> {
        self.rooms.lock().get(room).cloned()
    }

    /// Announces a join about to ask the store: from now on the room's
    /// events are kept, so none published while the store answers is lost.
    /// Every `prepare` is followed by `attach` or `abandon`.
    pub fn prepare(&self, room: &str) {
        let mut rooms = self.rooms.lock();
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(LocalRoom::default())))
            .lock()
            .joining += 1;
        self.metrics.local_rooms.set(rooms.len() as i64);
    }

    /// The join failed: forget the room if nobody else needs it.
    pub fn abandon(&self, room: &str) {
        let mut rooms = self.rooms.lock();
        let Some(shared) = rooms.get(room).cloned() else {
            return;
        };
        let mut local = shared.lock();
        local.joining = local.joining.saturating_sub(1);
        if local.is_unused() {
            rooms.remove(room);
            self.metrics.local_rooms.set(rooms.len() as i64);
        }
    }

    /// Makes `member` receive `room`'s events after `join_pos`, its join's
    /// position (after `prepare`). `welcome` sends the join ack; it runs
    /// once the member is in, before anything live can reach it. When
    /// this instance released events past `join_pos` already and no longer
    /// remembers them all, the caller fetches the room's events after
    /// `join_pos` and tries again with them as `fetched`.
    #[cfg(test)]
    pub fn attach(
        &self,
        room: &str,
        member: LocalMember<R>,
        join_pos: u64,
        fetched: Option<&[Arc<RoomEvent>]>,
        welcome: &mut dyn FnMut(),
    ) -> Result<(), NeedEventsAfter> {
        self.attach_from(room, member, join_pos, join_pos, fetched, welcome)
    }

    /// As [`Delivery::attach`], for a member that already has the room's
    /// events up to `had` (a recovered socket, `had` ≤ `join_pos`): it gets
    /// every event after `had`.
    pub fn attach_from(
        &self,
        room: &str,
        member: LocalMember<R>,
        join_pos: u64,
        had: u64,
        fetched: Option<&[Arc<RoomEvent>]>,
        welcome: &mut dyn FnMut(),
    ) -> Result<(), NeedEventsAfter> {
        let Some(shared) = self.room(room) else {
            // `prepare` keeps the room; without it there is nothing to join.
            return Err(NeedEventsAfter(had));
        };
        let mut local = shared.lock();
        if !local.line.is_started() {
            let released = local.line.start_after(join_pos);
            local.fan_out(released, &self.outgoing, false);
        }
        let delivered = local.line.delivered();
        let Some(missed) = local.released_after(had, fetched) else {
            return Err(NeedEventsAfter(had));
        };
        local.joining = local.joining.saturating_sub(1);
        let attached = Attached {
            name_key: name_key(&member.name),
            start: had,
            caught_up_from_store: fetched.is_some() && !missed.is_empty(),
            member,
        };
        // Frames still queued for the socket (a busy room's) leave before
        // the ack, which is written at once after them.
        welcome();
        for event in &missed {
            let about = event
                .kind
                .is_for_the_others()
                .then(|| name_key(&event.name));
            send_to(&attached, event, about.as_deref(), &self.outgoing, true);
        }
        let attached = Attached {
            start: had.max(delivered),
            ..attached
        };
        let id = attached.member.socket.id().into();
        local.members.insert(id, attached);
        Ok(())
    }

    /// What a recovery needs to know of what member `sid` of `room` had:
    /// its start and the offsets of the room's recent events after it.
    pub fn marks(&self, room: &str, sid: &str) -> Option<RoomMarks> {
        let shared = self.room(room)?;
        let local = shared.lock();
        let attached = local.members.get(sid)?;
        let start = attached.start;
        if attached.caught_up_from_store {
            return Some(RoomMarks {
                start,
                sent: Vec::new(),
                complete: false,
            });
        }
        let mut sent: Vec<(u64, u64)> = local
            .recent
            .iter()
            .filter(|event| event.pos > start)
            .filter_map(|event| event.sent.get().map(|sent| (sent.seq, event.pos)))
            .collect();
        let mut complete = start >= local.line.delivered()
            || local
                .recent
                .front()
                .is_some_and(|first| first.pos <= start + 1);
        if sent.len() > MARKS_KEPT {
            sent.drain(..sent.len() - MARKS_KEPT);
            complete = false;
        }
        Some(RoomMarks {
            start,
            sent,
            complete,
        })
    }

    /// Stops delivering `room` to socket `sid`; the member, if it was one.
    pub fn detach(&self, room: &str, sid: &str) -> Option<LocalMember<R>> {
        let mut rooms = self.rooms.lock();
        let shared = rooms.get(room)?.clone();
        let mut local = shared.lock();
        let attached = local.members.remove(sid)?;
        if local.is_unused() {
            rooms.remove(room);
            self.metrics.local_rooms.set(rooms.len() as i64);
        }
        Some(attached.member)
    }

    /// Whether `room` has local members or joins under way (the rooms an
    /// instance must receive the events of).
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.lock().contains_key(room)
    }

    /// Takes in an event (live, or fetched to fill a gap) and delivers
    /// whatever it releases. True if it was new here.
    pub fn arrive(&self, event: Arc<RoomEvent>) -> bool {
        self.arrive_with_backlog(event, false)
    }

    /// As [`Delivery::arrive`], for a live event with more events waiting
    /// behind it (`backlog`): its frames then wait for the clock's flush,
    /// so that a delivery that fell behind catches up in batches.
    pub fn arrive_with_backlog(&self, event: Arc<RoomEvent>, backlog: bool) -> bool {
        let Some(shared) = self.room(&event.room) else {
            return false;
        };
        let mut local = shared.lock();
        let before = local.line.delivered();
        let released = local.line.accept(event, Instant::now());
        let fresh = !released.is_empty() || local.line.delivered() != before;
        local.fan_out(released, &self.outgoing, backlog);
        fresh
    }

    /// For the clock: the members of every room whose frames wait for a
    /// flush since the last call.
    pub fn take_queued(&self) -> Vec<R> {
        let mut members = Vec::new();
        for (_, shared) in self.rooms_now() {
            let mut local = shared.lock();
            if std::mem::take(&mut local.queued) {
                members.extend(local.members.values().map(|a| a.member.socket.clone()));
            }
        }
        members
    }

    /// The rooms as they are now, copied out of the map's lock so that each
    /// room's own lock is taken without holding the map's.
    pub(super) fn rooms_now(&self) -> Vec<(String, SharedRoom<R>)> {
        self.rooms
            .lock()
            .iter()
            .map(|(room, shared)| (room.clone(), shared.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_tell_what_a_member_had_from_its_last_offset() {
        let marks = RoomMarks {
            start: 10,
            sent: vec![(5, 11), (9, 12), (20, 13)],
            complete: true,
        };
        assert_eq!(marks.had(4), Some(10), "nothing after its join");
        assert_eq!(marks.had(9), Some(12));
        assert_eq!(marks.had(19), Some(12), "another room's offsets between");
        assert_eq!(marks.had(25), Some(13));
        let cut = RoomMarks {
            complete: false,
            ..marks
        };
        assert_eq!(cut.had(4), None, "older than the marks reach");
        assert_eq!(cut.had(9), Some(12));
    }
    use crate::recipient::testing::Probe;
    use crate::room::event::Kind;
    use crate::room::local::RECENT_LEN;
    use std::time::Duration;

    fn delivery() -> Delivery<Probe> {
        let outgoing = Outgoing::new(Duration::ZERO, Metrics::default());
        Delivery::new(outgoing, Metrics::default())
    }

    fn member(probe: &Probe, name: &str) -> LocalMember<Probe> {
        LocalMember {
            socket: probe.clone(),
            name: name.into(),
            client_id: None,
            sub: None,
        }
    }

    fn message(pos: u64, id: u64, from: &str) -> Arc<RoomEvent> {
        let json = format!("{{\"id\":{id}}}");
        RoomEvent::new("r", pos, Kind::Message { id }, from, json).unwrap()
    }

    fn notice(pos: u64, kind: Kind, name: &str) -> Arc<RoomEvent> {
        RoomEvent::new("r", pos, kind, name, format!("{{\"name\":\"{name}\"}}")).unwrap()
    }

    fn join(delivery: &Delivery<Probe>, probe: &Probe, name: &str, pos: u64) -> usize {
        let mut welcomed_after = None;
        delivery.prepare("r");
        delivery
            .attach("r", member(probe, name), pos, None, &mut || {
                welcomed_after = Some(probe.frames().len())
            })
            .unwrap();
        welcomed_after.unwrap()
    }

    fn names(probe: &Probe) -> Vec<String> {
        probe
            .frames()
            .into_iter()
            .map(|(event, json)| format!("{event} {json}"))
            .collect()
    }

    #[test]
    fn notices_about_a_member_go_to_the_others_only() {
        let delivery = delivery();
        let alice = Probe::new();
        let bob = Probe::new();
        join(&delivery, &alice, "alice", 0);
        delivery.arrive(notice(1, Kind::Joined, "Bob"));
        join(&delivery, &bob, "bob", 1);
        delivery.arrive(message(2, 1, "bob"));
        delivery.arrive(notice(2, Kind::Typing, "bob"));
        delivery.arrive(notice(3, Kind::Left, "bob"));
        assert_eq!(
            names(&alice),
            vec![
                "user_joined {\"name\":\"Bob\"}",
                "message {\"id\":1}",
                "typing {\"name\":\"bob\"}",
                "user_left {\"name\":\"bob\"}",
            ]
        );
        assert_eq!(names(&bob), vec!["message {\"id\":1}"]);
    }

    #[test]
    fn a_join_behind_the_line_gets_the_missed_events_after_its_ack() {
        let delivery = delivery();
        let first = Probe::new();
        join(&delivery, &first, "first", 0);
        for pos in 1..=4 {
            delivery.arrive(message(pos, pos, "first"));
        }
        // The store answered this join at position 2; 3 and 4 were
        // released here since.
        let late = Probe::new();
        assert_eq!(join(&delivery, &late, "late", 2), 0, "the ack goes first");
        delivery.arrive(message(5, 5, "first"));
        assert_eq!(late.ids(), vec![3, 4, 5]);
        assert_eq!(first.ids(), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_join_ahead_of_the_line_skips_what_its_ack_holds() {
        let delivery = delivery();
        let first = Probe::new();
        join(&delivery, &first, "first", 0);
        delivery.arrive(message(1, 1, "first"));
        // The store answered at position 3: 2 and 3 are in the ack.
        let ahead = Probe::new();
        join(&delivery, &ahead, "ahead", 3);
        for pos in 2..=4 {
            delivery.arrive(message(pos, pos, "first"));
        }
        assert_eq!(ahead.ids(), vec![4]);
        assert_eq!(first.ids(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn events_released_while_the_store_answered_reach_the_late_joiner() {
        let delivery = delivery();
        let first = Probe::new();
        join(&delivery, &first, "first", 10);
        let late = Probe::new();
        delivery.prepare("r");
        // The late join was placed at 2, before the line started at 10:
        // this instance never had 3..=10, so they are fetched.
        assert_eq!(
            delivery.attach("r", member(&late, "late"), 2, None, &mut || {}),
            Err(NeedEventsAfter(2))
        );
        let fetched: Vec<_> = (3..=11).map(|pos| message(pos, pos, "first")).collect();
        // While the store answered, 11 and 12 arrived here.
        delivery.arrive(message(11, 11, "first"));
        delivery.arrive(message(12, 12, "first"));
        delivery
            .attach("r", member(&late, "late"), 2, Some(&fetched), &mut || {})
            .unwrap();
        delivery.arrive(message(13, 13, "first"));
        assert_eq!(late.ids(), (3..=13).collect::<Vec<_>>());
    }

    #[test]
    fn a_fetch_that_ends_before_the_recent_events_is_made_again() {
        let delivery = delivery();
        let first = Probe::new();
        join(&delivery, &first, "first", 10);
        delivery.arrive(message(12, 12, "first"));
        delivery.arrive(message(11, 11, "first"));
        let late = Probe::new();
        delivery.prepare("r");
        // Fetched up to 9; the line now remembers 11 and 12 but not 10.
        let fetched: Vec<_> = (3..=9).map(|pos| message(pos, pos, "first")).collect();
        assert_eq!(
            delivery.attach("r", member(&late, "late"), 2, Some(&fetched), &mut || {}),
            Err(NeedEventsAfter(2))
        );
        let fetched: Vec<_> = (3..=12).map(|pos| message(pos, pos, "first")).collect();
        delivery
            .attach("r", member(&late, "late"), 2, Some(&fetched), &mut || {})
            .unwrap();
        assert_eq!(late.ids(), (3..=12).collect::<Vec<_>>());
    }

    #[test]
    fn a_join_too_far_behind_asks_for_the_events() {
        let delivery = delivery();
        let first = Probe::new();
        join(&delivery, &first, "first", 0);
        for pos in 1..=(RECENT_LEN as u64 + 10) {
            delivery.arrive(message(pos, pos, "first"));
        }
        let late = Probe::new();
        delivery.prepare("r");
        assert_eq!(
            delivery.attach("r", member(&late, "late"), 2, None, &mut || {}),
            Err(NeedEventsAfter(2))
        );
        let fetched: Vec<_> = (3..=(RECENT_LEN as u64 + 10))
            .map(|pos| message(pos, pos, "first"))
            .collect();
        delivery
            .attach("r", member(&late, "late"), 2, Some(&fetched), &mut || {})
            .unwrap();
        assert_eq!(late.ids().len(), RECENT_LEN + 8);
    }
}
