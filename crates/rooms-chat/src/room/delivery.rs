//! The rooms with members on this instance: each room's line, its local
//! members and its recent events; released events go to the members'
//! outlets.
//!
//! A member receives every event of its room after its own join, once, in
//! the room's order, except notices about itself (its own join, leave and
//! typing). The join ack is sent while the room is locked, before any
//! live event can reach the new member; events the line released between
//! the store's answer and the attach are replayed to it right after the
//! ack, so ack plus live events hold every event once.

use crate::metrics::Metrics;
use crate::recipient::Recipient;
use crate::room::event::RoomEvent;
use crate::room::line::Line;
use crate::room::outlet::{Frame, Outlet, Writer};
use crate::store::name_key;
use parking_lot::Mutex;
use socketioxide::socket::Sid;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events a room remembers after releasing them, so that a join that raced
/// with deliveries can be given the ones it missed.
const RECENT_LEN: usize = 256;

/// A member of a room on this instance.
pub struct LocalMember<R: Recipient> {
    pub socket: R,
    pub outlet: Arc<Outlet>,
    pub name: String,
    pub client_id: Option<String>,
}

impl<R: Recipient> Clone for LocalMember<R> {
    fn clone(&self) -> Self {
        LocalMember {
            socket: self.socket.clone(),
            outlet: self.outlet.clone(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
        }
    }
}

struct Attached<R: Recipient> {
    member: LocalMember<R>,
    name_key: String,
    /// Its join's position: earlier events are in its ack.
    start: u64,
}

struct LocalRoom<R: Recipient> {
    line: Line,
    /// Joins between `prepare` and `attach`/`abandon`.
    joining: usize,
    recent: VecDeque<Arc<RoomEvent>>,
    /// The id of the last message released.
    last_message_id: u64,
    repairing: bool,
    members: HashMap<Sid, Attached<R>>,
}

impl<R: Recipient> LocalRoom<R> {
    fn new() -> LocalRoom<R> {
        LocalRoom {
            line: Line::default(),
            joining: 0,
            recent: VecDeque::new(),
            last_message_id: 0,
            repairing: false,
            members: HashMap::new(),
        }
    }

    fn is_unused(&self) -> bool {
        self.members.is_empty() && self.joining == 0
    }

    /// Hands released events to the members.
    fn fan_out(&mut self, released: Vec<Arc<RoomEvent>>, writer: &Writer<R>) {
        for event in released {
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
                send_to(attached, &event, about.as_deref(), writer);
            }
        }
    }
}

fn send_to<R: Recipient>(
    attached: &Attached<R>,
    event: &Arc<RoomEvent>,
    about: Option<&str>,
    writer: &Writer<R>,
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
    let member = &attached.member;
    writer.send(
        &member.socket,
        &member.outlet,
        Frame::Room(event.clone()),
        volatile,
    );
}

/// Why a join must fetch the room's events before it can be attached.
#[derive(Debug, PartialEq, Eq)]
pub struct NeedEventsAfter(pub u64);

type SharedRoom<R> = Arc<Mutex<LocalRoom<R>>>;

pub struct Delivery<R: Recipient> {
    rooms: Mutex<HashMap<String, SharedRoom<R>>>,
    writer: Arc<Writer<R>>,
    metrics: Metrics,
}

impl<R: Recipient> Delivery<R> {
    pub fn new(writer: Arc<Writer<R>>, metrics: Metrics) -> Delivery<R> {
        Delivery {
            rooms: Mutex::new(HashMap::new()),
            writer,
            metrics,
        }
    }

    pub fn writer(&self) -> &Arc<Writer<R>> {
        &self.writer
    }

    fn room(&self, room: &str) -> Option<SharedRoom<R>> {
        self.rooms.lock().get(room).cloned()
    }

    /// Announces a join about to ask the store: from now on the room's
    /// events are kept, so none published while the store answers is lost.
    /// Every `prepare` is followed by `attach` or `abandon`.
    pub fn prepare(&self, room: &str) {
        let mut rooms = self.rooms.lock();
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(LocalRoom::new())))
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
    pub fn attach(
        &self,
        room: &str,
        member: LocalMember<R>,
        join_pos: u64,
        fetched: Option<&[Arc<RoomEvent>]>,
        welcome: &mut dyn FnMut(),
    ) -> Result<(), NeedEventsAfter> {
        let Some(shared) = self.room(room) else {
            // `prepare` keeps the room; without it there is nothing to join.
            return Err(NeedEventsAfter(join_pos));
        };
        let mut local = shared.lock();
        if !local.line.is_started() {
            let released = local.line.start_after(join_pos);
            local.fan_out(released, &self.writer);
        }
        let delivered = local.line.delivered();
        let missed = if join_pos < delivered {
            missed_events(&local.recent, fetched, join_pos, delivered)?
        } else {
            Vec::new()
        };
        local.joining = local.joining.saturating_sub(1);
        let attached = Attached {
            name_key: name_key(&member.name),
            start: join_pos,
            member,
        };
        // Frames still waiting in the outlet (another room's, or this
        // room's from before a re-join) leave before the ack.
        self.writer
            .flush(&attached.member.socket, &attached.member.outlet);
        welcome();
        for event in &missed {
            let about = event
                .kind
                .is_for_the_others()
                .then(|| name_key(&event.name));
            send_to(&attached, event, about.as_deref(), &self.writer);
        }
        let attached = Attached {
            start: join_pos.max(delivered),
            ..attached
        };
        local.members.insert(attached.member.socket.sid(), attached);
        Ok(())
    }

    /// Stops delivering `room` to socket `sid`; the member, if it was one.
    pub fn detach(&self, room: &str, sid: Sid) -> Option<LocalMember<R>> {
        let mut rooms = self.rooms.lock();
        let shared = rooms.get(room)?.clone();
        let mut local = shared.lock();
        let attached = local.members.remove(&sid)?;
        if local.is_unused() {
            rooms.remove(room);
            self.metrics.local_rooms.set(rooms.len() as i64);
        }
        Some(attached.member)
    }

    /// Whether `sid` is a member of `room` here.
    pub fn is_member(&self, room: &str, sid: Sid) -> bool {
        self.room(room)
            .is_some_and(|shared| shared.lock().members.contains_key(&sid))
    }

    /// Takes in an event (live, or fetched to fill a gap) and delivers
    /// whatever it releases. True if it was new here.
    pub fn arrive(&self, event: Arc<RoomEvent>) -> bool {
        let Some(shared) = self.room(&event.room) else {
            return false;
        };
        let mut local = shared.lock();
        let before = local.line.delivered();
        let released = local.line.accept(event, Instant::now());
        let fresh = !released.is_empty() || local.line.delivered() != before;
        local.fan_out(released, &self.writer);
        fresh
    }

    /// The rooms as they are now, copied out of the map's lock so that each
    /// room's own lock is taken without holding the map's.
    fn rooms_now(&self) -> Vec<(String, SharedRoom<R>)> {
        self.rooms
            .lock()
            .iter()
            .map(|(room, shared)| (room.clone(), shared.clone()))
            .collect()
    }

    /// Rooms whose gap has lasted `patience`, with the last position
    /// delivered; each is marked as being repaired until [`Delivery::repaired`].
    pub fn due_gaps(&self, now: Instant, patience: Duration) -> Vec<(String, u64)> {
        self.rooms_now()
            .into_iter()
            .filter_map(|(room, shared)| {
                let mut local = shared.lock();
                let (delivered, since) = local.line.gap()?;
                if local.repairing || now.duration_since(since) < patience {
                    return None;
                }
                local.repairing = true;
                Some((room, delivered))
            })
            .collect()
    }

    pub fn repaired(&self, room: &str) {
        if let Some(shared) = self.room(room) {
            shared.lock().repairing = false;
        }
    }

    /// The store answered but does not hold the events missing after
    /// `after`: nobody will ever have them, so delivery goes on after them
    /// instead of holding the room back forever.
    pub fn skip_if_stuck(&self, room: &str, after: u64) {
        let Some(shared) = self.room(room) else {
            return;
        };
        let mut local = shared.lock();
        if local
            .line
            .gap()
            .is_none_or(|(delivered, _)| delivered != after)
        {
            return;
        }
        let (lost, released) = local.line.skip_gap();
        tracing::warn!(
            room,
            after,
            lost,
            "room events lost for good; skipping them"
        );
        self.metrics.messages_lost.inc_by(lost);
        local.fan_out(released, &self.writer);
    }

    /// Whether `room` has local members or joins under way (the rooms an
    /// instance must receive the events of).
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.lock().contains_key(room)
    }

    /// Every room whose line has started, with its last position delivered.
    pub fn started(&self) -> Vec<(String, u64)> {
        self.rooms_now()
            .into_iter()
            .filter_map(|(room, shared)| {
                let local = shared.lock();
                local
                    .line
                    .is_started()
                    .then(|| (room, local.line.delivered()))
            })
            .collect()
    }

    /// What this instance knows of each room, to give Redis back its state
    /// after it lost it.
    pub fn snapshot(&self) -> Vec<RoomSnapshot<R>> {
        self.rooms_now()
            .into_iter()
            .filter_map(|(room, shared)| {
                let local = shared.lock();
                if !local.line.is_started() {
                    return None;
                }
                Some(RoomSnapshot {
                    room,
                    last_pos: local.line.delivered(),
                    last_message_id: local.last_message_id,
                    recent_messages: local
                        .recent
                        .iter()
                        .filter(|event| event.message_id().is_some())
                        .map(|event| event.json.get().to_owned())
                        .collect(),
                    members: local
                        .members
                        .values()
                        .map(|attached| attached.member.clone())
                        .collect(),
                })
            })
            .collect()
    }
}

/// The events after `join_pos` up to `delivered` that a join behind the
/// line missed: from the recent ones if they reach back far enough, else
/// what was fetched from the store followed by the recent ones after it.
/// The line goes on while the store answers, so the fetched events may end
/// before the recent ones begin: then they are fetched again, never given
/// out with a hole in the middle.
fn missed_events(
    recent: &VecDeque<Arc<RoomEvent>>,
    fetched: Option<&[Arc<RoomEvent>]>,
    join_pos: u64,
    delivered: u64,
) -> Result<Vec<Arc<RoomEvent>>, NeedEventsAfter> {
    let reaches_back = |pos: u64| recent.front().is_some_and(|first| first.pos <= pos + 1);
    let recent_after = |pos: u64| {
        recent
            .iter()
            .filter(move |event| event.pos > pos && event.pos <= delivered)
            .cloned()
    };
    if reaches_back(join_pos) {
        return Ok(recent_after(join_pos).collect());
    }
    let Some(fetched) = fetched else {
        return Err(NeedEventsAfter(join_pos));
    };
    let Some(fetched_to) = fetched.last().map(|event| event.pos) else {
        // The store holds nothing after the join (it lost the room's log):
        // there is nothing to give.
        return Ok(Vec::new());
    };
    if fetched_to < delivered && !reaches_back(fetched_to) {
        return Err(NeedEventsAfter(join_pos));
    }
    Ok(fetched
        .iter()
        .filter(|event| event.pos > join_pos && event.pos <= delivered)
        .cloned()
        .chain(recent_after(fetched_to))
        .collect())
}

pub struct RoomSnapshot<R: Recipient> {
    pub room: String,
    pub last_pos: u64,
    pub last_message_id: u64,
    /// The JSON of the recent messages, oldest first.
    pub recent_messages: Vec<String>,
    pub members: Vec<LocalMember<R>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipient::testing::Probe;
    use crate::room::event::Kind;

    fn delivery() -> Delivery<Probe> {
        let writer = Arc::new(Writer::new(Duration::ZERO, 64, Metrics::default()));
        Delivery::new(writer, Metrics::default())
    }

    fn member(probe: &Probe, name: &str) -> LocalMember<Probe> {
        LocalMember {
            socket: probe.clone(),
            outlet: Arc::default(),
            name: name.into(),
            client_id: None,
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
    fn a_lasting_gap_is_reported_and_can_be_skipped() {
        let delivery = delivery();
        let probe = Probe::new();
        join(&delivery, &probe, "p", 0);
        delivery.arrive(message(1, 1, "p"));
        delivery.arrive(message(3, 3, "p"));
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            delivery.due_gaps(later, Duration::from_millis(1)),
            vec![("r".to_owned(), 1)]
        );
        delivery.skip_if_stuck("r", 1);
        delivery.repaired("r");
        assert_eq!(probe.ids(), vec![1, 3]);
    }
}
