//! In-order delivery of room messages to this instance's members.
//!
//! Every room with local members has a line: the next id it expects, the
//! messages that arrived ahead of a missing one, the last messages it
//! delivered and its local members. A message is delivered to every local
//! member exactly when all smaller ids have been, so every member sees a
//! room's messages once each, in id order, on every instance. A gap that
//! lasts (a message lost between Redis and this process) is filled from the
//! store's history by [`Sequencer::repair_gaps`].
//!
//! The message JSON is serialized once per message (see
//! [`Envelope`](crate::store::Envelope)); a member whose outgoing buffer is
//! full is disconnected rather than silently skipped, and re-joins with
//! `since`.
//!
//! Released messages wait in the line's outbox until [`Sequencer::flush`]
//! hands them to the members, member by member. Each hand-over wakes that
//! socket's writer and usually costs it one `sendto`, whatever the number
//! of frames waiting; at 200 messages a second per room, delivering every
//! message at once means one system call and one task wake-up per frame.
//! With a write delay of a few milliseconds (`WRITE_DELAY_MS`), every
//! socket instead gets all the frames of that window in one write, like
//! Centrifugo's `write_delay` or Nagle's algorithm. A delay of zero flushes
//! on release. A window also ends early once its outbox holds
//! [`Batching::max_frames`] messages: a burst must not fill a healthy
//! socket's buffer (`MAX_BUFFER`) in one go and get it cut off as too slow.

use crate::metrics::Metrics;
use crate::recipient::{Delivery, Recipient};
use crate::store::{Envelope, Store};
use protocol::rooms::RoomMessage;
use socketioxide::socket::Sid;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages a line remembers after delivering them, so that a join that
/// raced with deliveries can be given the ones it missed.
const RECENT_LEN: usize = 256;

/// A member of a room on this instance.
pub struct LocalMember<R: Recipient> {
    pub socket: R,
    pub name: String,
    pub client_id: Option<String>,
}

impl<R: Recipient> Clone for LocalMember<R> {
    fn clone(&self) -> Self {
        LocalMember {
            socket: self.socket.clone(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
        }
    }
}

/// `Line::next` before the first member's join told where to start.
const UNKNOWN: u64 = 0;

struct Line<R: Recipient> {
    /// The id to deliver next (ids start at 1), or `UNKNOWN`.
    next: u64,
    /// Joins between `prepare` and `attach`/`abandon`.
    joining: usize,
    pending: BTreeMap<u64, Arc<Envelope>>,
    /// When the line started waiting for a missing message.
    waiting_since: Option<Instant>,
    repairing: bool,
    recent: VecDeque<Arc<Envelope>>,
    /// Released in order, not yet handed to the members (see [`Sequencer::flush`]).
    outbox: Vec<Arc<Envelope>>,
    /// Whether the line is in the sequencer's list of outboxes to flush.
    queued: bool,
    members: HashMap<Sid, LocalMember<R>>,
}

impl<R: Recipient> Line<R> {
    fn new() -> Line<R> {
        Line {
            next: UNKNOWN,
            joining: 0,
            pending: BTreeMap::new(),
            waiting_since: None,
            repairing: false,
            recent: VecDeque::new(),
            outbox: Vec::new(),
            queued: false,
            members: HashMap::new(),
        }
    }

    fn is_unused(&self) -> bool {
        self.members.is_empty() && self.joining == 0
    }

    /// Releases `envelope` and every pending message that follows it to
    /// the outbox, in id order.
    fn release_from(&mut self, envelope: Arc<Envelope>) {
        let mut current = Some(envelope);
        while let Some(envelope) = current {
            self.next = envelope.message.id + 1;
            self.outbox.push(envelope.clone());
            self.recent.push_back(envelope);
            if self.recent.len() > RECENT_LEN {
                self.recent.pop_front();
            }
            current = self.pending.remove(&self.next);
        }
        // Whatever is still pending sits behind a new gap.
        self.pending.retain(|id, _| *id > self.next);
        self.waiting_since = if self.pending.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
    }

    /// Hands the outbox to every member: all of a member's frames back to
    /// back, so that its writer wakes once and sends them in one write.
    /// Returns the members found too slow or gone.
    fn flush(&mut self, metrics: &Metrics) -> Vec<LocalMember<R>> {
        if self.outbox.is_empty() {
            return Vec::new();
        }
        let outbox = std::mem::take(&mut self.outbox);
        let mut failed = Vec::new();
        for (sid, member) in &self.members {
            for envelope in &outbox {
                match member.socket.deliver(envelope) {
                    Delivery::Sent => {
                        metrics.core.messages_out.inc();
                    }
                    Delivery::TooSlow => {
                        tracing::info!(%sid, room = %envelope.message.room, "member too slow, disconnecting it");
                        failed.push(*sid);
                        break;
                    }
                    Delivery::Gone => {
                        failed.push(*sid);
                        break;
                    }
                }
            }
        }
        // Keep the allocation for the next window.
        self.outbox = outbox;
        self.outbox.clear();
        failed
            .into_iter()
            .filter_map(|sid| self.members.remove(&sid))
            .collect()
    }
}

/// Why a join must fetch more history before it can be attached.
#[derive(Debug, PartialEq, Eq)]
pub struct NeedHistoryAfter(pub u64);

type SharedLine<R> = Arc<Mutex<Line<R>>>;

/// How released messages are gathered before they reach the sockets.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// How long a window lasts; zero: no window, every message at once.
    pub delay: Duration,
    /// A window with this many messages is flushed at once.
    pub max_frames: usize,
}

impl Batching {
    /// Every message goes out as soon as it is released.
    pub const NONE: Batching = Batching {
        delay: Duration::ZERO,
        max_frames: 1,
    };
}

pub struct Sequencer<R: Recipient> {
    lines: Mutex<HashMap<String, SharedLine<R>>>,
    /// Lines with released messages waiting for the next [`Sequencer::flush`].
    to_flush: Mutex<Vec<SharedLine<R>>>,
    batching: Batching,
    gap_repair_delay: Duration,
    metrics: Metrics,
}

impl<R: Recipient> Sequencer<R> {
    pub fn new(batching: Batching, gap_repair_delay: Duration, metrics: Metrics) -> Sequencer<R> {
        Sequencer {
            lines: Mutex::new(HashMap::new()),
            to_flush: Mutex::new(Vec::new()),
            batching,
            gap_repair_delay,
            metrics,
        }
    }

    /// How often [`Sequencer::flush`] must run; zero when it need not.
    pub fn write_delay(&self) -> Duration {
        self.batching.delay
    }

    /// Releases `envelope` (the line's next id) and what follows it; hands
    /// them over now without a write delay or when the window is full, else
    /// at the next flush.
    fn release(
        &self,
        shared: &SharedLine<R>,
        line: &mut Line<R>,
        envelope: Arc<Envelope>,
    ) -> Vec<LocalMember<R>> {
        line.release_from(envelope);
        if self.batching.delay.is_zero() || line.outbox.len() >= self.batching.max_frames {
            return line.flush(&self.metrics);
        }
        if !line.queued {
            line.queued = true;
            self.to_flush.lock().unwrap().push(shared.clone());
        }
        Vec::new()
    }

    /// Hands every line's released messages to its members (with a write
    /// delay, run every `write_delay`).
    pub fn flush(&self) {
        let lines = std::mem::take(&mut *self.to_flush.lock().unwrap());
        for line in lines {
            let dropped = {
                let mut line = line.lock().unwrap();
                line.queued = false;
                line.flush(&self.metrics)
            };
            self.disconnect(dropped);
        }
    }

    fn line(&self, room: &str) -> Option<Arc<Mutex<Line<R>>>> {
        self.lines.lock().unwrap().get(room).cloned()
    }

    /// Announces a join about to ask the store: from now on the room's
    /// messages are kept, so none published while the store answers is
    /// lost. Every `prepare` is followed by `attach` or `abandon`.
    pub fn prepare(&self, room: &str) {
        let mut lines = self.lines.lock().unwrap();
        let line = lines
            .entry(room.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(Line::new())));
        line.lock().unwrap().joining += 1;
        self.metrics.local_rooms.set(lines.len() as i64);
    }

    /// The join failed: forget the line if nobody else needs it.
    pub fn abandon(&self, room: &str) {
        let mut lines = self.lines.lock().unwrap();
        let Some(line) = lines.get(room).cloned() else {
            return;
        };
        let mut line = line.lock().unwrap();
        line.joining = line.joining.saturating_sub(1);
        if line.is_unused() {
            lines.remove(room);
            self.metrics.local_rooms.set(lines.len() as i64);
        }
    }

    /// Makes `member` receive `room`'s messages from now on (after
    /// `prepare`). `history` is what its join ack will carry, up to
    /// `last_id`; it comes back adjusted so that ack plus live messages hold
    /// every message once: cut when this line will deliver the rest,
    /// extended from the recent messages when it already delivered more.
    /// When the recent messages do not reach back far enough, the caller
    /// fetches the history after the returned id and tries again (the
    /// preparation still holds).
    ///
    /// `welcome` runs once the member is in, with its final history, before
    /// the room can deliver anything to it: the join ack sent there reaches
    /// the client ahead of every live message, so ids never go backwards.
    pub fn attach(
        &self,
        room: &str,
        member: LocalMember<R>,
        last_id: u64,
        history: &mut Vec<RoomMessage>,
        welcome: &mut dyn FnMut(&[RoomMessage]),
    ) -> Result<(), NeedHistoryAfter> {
        let lines = self.lines.lock().unwrap();
        let shared = lines
            .get(room)
            .expect("attach follows prepare, which keeps the line")
            .clone();
        let mut guard = shared.lock().unwrap();
        let line = &mut *guard;
        // Released messages go to the members that were there: the new
        // member's ack covers them.
        let mut dropped = line.flush(&self.metrics);
        let attached = 'attach: {
            if line.next == UNKNOWN {
                // First member here: live delivery starts after the ack's history.
                line.next = last_id + 1;
                line.pending.retain(|id, _| *id > last_id);
            }
            let delivered = line.next - 1;
            if last_id >= delivered {
                // The line will deliver everything after `delivered` live.
                history.retain(|message| message.id <= delivered);
            } else {
                let first_recent = line.recent.front().map(|envelope| envelope.message.id);
                if first_recent.is_none_or(|first| first > last_id + 1) {
                    break 'attach Err(NeedHistoryAfter(last_id));
                }
                history.extend(
                    line.recent
                        .iter()
                        .filter(|envelope| envelope.message.id > last_id)
                        .map(|envelope| envelope.message.clone()),
                );
            }
            line.joining = line.joining.saturating_sub(1);
            member.socket.enter_room(room);
            line.members.insert(member.socket.sid(), member);
            // Deliveries to the line need its lock, which is held here.
            welcome(history);
            let next = line.next;
            if let Some(envelope) = line.pending.remove(&next) {
                dropped.extend(self.release(&shared, line, envelope));
            }
            Ok(())
        };
        drop(guard);
        drop(lines);
        self.disconnect(dropped);
        attached
    }

    /// Stops delivering `room` to socket `sid`; the member, if it was one.
    pub fn detach(&self, room: &str, sid: Sid) -> Option<LocalMember<R>> {
        let mut lines = self.lines.lock().unwrap();
        let line = lines.get(room)?.clone();
        let mut line = line.lock().unwrap();
        let member = line.members.remove(&sid)?;
        if line.is_unused() {
            lines.remove(room);
            self.metrics.local_rooms.set(lines.len() as i64);
        }
        member.socket.exit_room(room);
        Some(member)
    }

    /// Whether `sid` is a member of `room` here.
    pub fn is_member(&self, room: &str, sid: Sid) -> bool {
        self.line(room)
            .is_some_and(|line| line.lock().unwrap().members.contains_key(&sid))
    }

    /// Takes in a message (live, or fetched to fill a gap): delivers it in
    /// order, keeps it for later if it came early, drops it if it is a
    /// duplicate. True if it was new.
    pub fn arrive(&self, envelope: Arc<Envelope>) -> bool {
        let Some(line) = self.line(&envelope.message.room) else {
            return false;
        };
        let (fresh, dropped) = {
            let mut guard = line.lock().unwrap();
            let line_state = &mut *guard;
            let id = envelope.message.id;
            if line_state.next == UNKNOWN {
                line_state.pending.insert(id, envelope);
                (true, Vec::new())
            } else if id < line_state.next || line_state.pending.contains_key(&id) {
                (false, Vec::new())
            } else if id == line_state.next {
                (true, self.release(&line, line_state, envelope))
            } else {
                line_state.pending.insert(id, envelope);
                line_state.waiting_since.get_or_insert_with(Instant::now);
                (true, Vec::new())
            }
        };
        self.disconnect(dropped);
        fresh
    }

    /// Members that could not take a message lose their socket: the client
    /// reconnects and re-joins with `since`, so it misses nothing, and the
    /// server does not queue without bound.
    fn disconnect(&self, dropped: Vec<LocalMember<R>>) {
        for member in dropped {
            self.metrics.core.disconnects_forced.inc();
            // Disconnecting runs our disconnect handler, which takes the
            // line locks again: never do it while holding them.
            member.socket.cut_off();
        }
    }

    /// Rooms whose gap has waited long enough, with the last id delivered.
    fn due_gaps(&self, now: Instant) -> Vec<(String, u64)> {
        let lines: Vec<_> = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|(room, line)| (room.clone(), line.clone()))
            .collect();
        lines
            .into_iter()
            .filter_map(|(room, line)| {
                let mut line = line.lock().unwrap();
                let waiting = line.waiting_since?;
                if line.next == UNKNOWN {
                    return None;
                }
                if line.repairing || now.duration_since(waiting) < self.gap_repair_delay {
                    return None;
                }
                line.repairing = true;
                Some((room, line.next - 1))
            })
            .collect()
    }

    fn repaired(&self, room: &str) {
        if let Some(line) = self.line(room) {
            line.lock().unwrap().repairing = false;
        }
    }

    /// Fills lasting gaps from the store's history.
    pub async fn repair_gaps(&self, store: &dyn Store) {
        for (room, after) in self.due_gaps(Instant::now()) {
            if self.catch_up(store, &room, after).await {
                self.skip_if_stuck(&room, after);
            }
            self.repaired(&room);
        }
    }

    /// The store answered but does not hold the missing messages (trimmed
    /// from the history, or lost with a Redis that restarted empty): nobody
    /// will ever have them, so delivery goes on after them instead of
    /// holding the room back forever.
    fn skip_if_stuck(&self, room: &str, after: u64) {
        let Some(shared) = self.line(room) else {
            return;
        };
        let dropped = {
            let mut guard = shared.lock().unwrap();
            let line = &mut *guard;
            let Some(first_pending) = line.pending.keys().next().copied() else {
                return;
            };
            if line.next != after + 1 {
                return;
            }
            let lost = first_pending - line.next;
            tracing::warn!(
                room,
                from = line.next,
                lost,
                "messages lost for good; skipping them"
            );
            self.metrics.messages_lost.inc_by(lost);
            let envelope = line.pending.remove(&first_pending).expect("first pending");
            self.release(&shared, line, envelope)
        };
        self.disconnect(dropped);
    }

    /// Re-checks every room against the store, after events may have been lost.
    pub async fn resync(&self, store: &dyn Store) {
        self.metrics.resyncs.inc();
        let rooms: Vec<(String, u64)> = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(room, line)| {
                let next = line.lock().unwrap().next;
                (next != UNKNOWN).then(|| (room.clone(), next - 1))
            })
            .collect();
        for (room, after) in rooms {
            self.catch_up(store, &room, after).await;
        }
    }

    /// Feeds every message the store holds after `after`; false if the
    /// store could not answer.
    async fn catch_up(&self, store: &dyn Store, room: &str, after: u64) -> bool {
        match store.history_after(room, after).await {
            Ok(messages) => {
                for message in messages {
                    let Ok(envelope) = Envelope::new(message) else {
                        continue;
                    };
                    if self.arrive(envelope) {
                        self.metrics.gap_repairs.inc();
                    }
                }
                true
            }
            Err(error) => {
                tracing::warn!(%error, room, "cannot fill a gap yet");
                false
            }
        }
    }

    /// What this instance knows of each room, to give Redis back its state
    /// after it lost it: the last id delivered, the recent messages' JSON
    /// and the local members.
    pub fn snapshot(&self) -> Vec<RoomSnapshot<R>> {
        let lines: Vec<_> = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|(room, line)| (room.clone(), line.clone()))
            .collect();
        lines
            .into_iter()
            .filter_map(|(room, line)| {
                let line = line.lock().unwrap();
                if line.next == UNKNOWN {
                    return None;
                }
                Some(RoomSnapshot {
                    room,
                    last_id: line.next - 1,
                    recent: line
                        .recent
                        .iter()
                        .map(|envelope| envelope.json.get().to_owned())
                        .collect(),
                    members: line.members.values().cloned().collect(),
                })
            })
            .collect()
    }
}

pub struct RoomSnapshot<R: Recipient> {
    pub room: String,
    pub last_id: u64,
    pub recent: Vec<String>,
    pub members: Vec<LocalMember<R>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A member that records the ids it receives.
    #[derive(Clone)]
    struct Probe {
        sid: Sid,
        got: Arc<Mutex<Vec<u64>>>,
        full: Arc<AtomicBool>,
        cut: Arc<AtomicBool>,
    }

    impl Probe {
        fn new() -> Probe {
            Probe {
                sid: Sid::new(),
                got: Arc::default(),
                full: Arc::default(),
                cut: Arc::default(),
            }
        }

        fn ids(&self) -> Vec<u64> {
            self.got.lock().unwrap().clone()
        }

        fn member(&self) -> LocalMember<Probe> {
            LocalMember {
                socket: self.clone(),
                name: "probe".into(),
                client_id: None,
            }
        }
    }

    impl Recipient for Probe {
        fn sid(&self) -> Sid {
            self.sid
        }
        fn deliver(&self, envelope: &Envelope) -> Delivery {
            if self.full.load(Ordering::SeqCst) {
                return Delivery::TooSlow;
            }
            self.got.lock().unwrap().push(envelope.message.id);
            Delivery::Sent
        }
        fn enter_room(&self, _room: &str) {}
        fn exit_room(&self, _room: &str) {}
        fn cut_off(&self) {
            self.cut.store(true, Ordering::SeqCst);
        }
    }

    fn message(id: u64) -> RoomMessage {
        RoomMessage {
            id,
            room: "r".into(),
            from: "a".into(),
            text: format!("m{id}"),
            ts: 1,
        }
    }

    fn envelope(id: u64) -> Arc<Envelope> {
        Envelope::new(message(id)).unwrap()
    }

    fn sequencer() -> Sequencer<Probe> {
        Sequencer::new(Batching::NONE, Duration::from_millis(1), Metrics::default())
    }

    fn join(sequencer: &Sequencer<Probe>, probe: &Probe, last_id: u64) -> Vec<u64> {
        let mut history: Vec<RoomMessage> = (1..=last_id).map(message).collect();
        sequencer.prepare("r");
        sequencer
            .attach("r", probe.member(), last_id, &mut history, &mut |_| {})
            .unwrap();
        history.iter().map(|message| message.id).collect()
    }

    #[test]
    fn early_messages_wait_for_the_missing_ones() {
        let sequencer = sequencer();
        let probe = Probe::new();
        join(&sequencer, &probe, 0);
        assert!(sequencer.arrive(envelope(3)));
        assert!(sequencer.arrive(envelope(2)));
        assert!(probe.ids().is_empty());
        assert!(sequencer.arrive(envelope(1)));
        assert_eq!(probe.ids(), vec![1, 2, 3]);
    }

    #[test]
    fn duplicates_are_dropped() {
        let sequencer = sequencer();
        let probe = Probe::new();
        join(&sequencer, &probe, 0);
        assert!(sequencer.arrive(envelope(1)));
        assert!(!sequencer.arrive(envelope(1)));
        assert!(sequencer.arrive(envelope(3)));
        assert!(!sequencer.arrive(envelope(3)));
        assert!(sequencer.arrive(envelope(2)));
        assert!(!sequencer.arrive(envelope(2)));
        assert_eq!(probe.ids(), vec![1, 2, 3]);
    }

    #[test]
    fn messages_published_during_a_join_are_kept_and_follow_its_welcome() {
        let sequencer = sequencer();
        let probe = Probe::new();
        sequencer.prepare("r");
        // Published after the store answered the join (last id 3), but
        // received before the join attached.
        sequencer.arrive(envelope(3));
        sequencer.arrive(envelope(4));
        let mut history: Vec<RoomMessage> = (1..=3).map(message).collect();
        let mut seen_at_welcome = None;
        sequencer
            .attach("r", probe.member(), 3, &mut history, &mut |history| {
                seen_at_welcome = Some((history.len(), probe.ids()));
            })
            .unwrap();
        // The ack (3 messages) went out while the member had received
        // nothing; message 4 came live right after it.
        assert_eq!(seen_at_welcome, Some((3, vec![])));
        assert_eq!(probe.ids(), vec![4]);
    }

    #[test]
    fn joins_racing_deliveries_get_every_message_once() {
        let sequencer = sequencer();
        let first = Probe::new();
        join(&sequencer, &first, 0);
        for id in 1..=5 {
            sequencer.arrive(envelope(id));
        }
        // The store answered before 4 and 5 were delivered here: the ack is extended.
        let behind = Probe::new();
        assert_eq!(join(&sequencer, &behind, 3), vec![1, 2, 3, 4, 5]);
        // The store answered after 6 and 7 were taken but before they arrived
        // here: the ack is cut, and they come live.
        let ahead = Probe::new();
        assert_eq!(join(&sequencer, &ahead, 7), vec![1, 2, 3, 4, 5]);
        sequencer.arrive(envelope(6));
        sequencer.arrive(envelope(7));
        assert_eq!(first.ids(), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(behind.ids(), vec![6, 7]);
        assert_eq!(ahead.ids(), vec![6, 7]);
    }

    #[test]
    fn a_join_too_far_behind_asks_for_more_history() {
        let sequencer = sequencer();
        let first = Probe::new();
        join(&sequencer, &first, 0);
        for id in 1..=(RECENT_LEN as u64 + 10) {
            sequencer.arrive(envelope(id));
        }
        let late = Probe::new();
        sequencer.prepare("r");
        let mut history = Vec::new();
        assert_eq!(
            sequencer.attach("r", late.member(), 2, &mut history, &mut |_| {}),
            Err(NeedHistoryAfter(2))
        );
    }

    const BATCHES_OF_4: Batching = Batching {
        delay: Duration::from_millis(10),
        max_frames: 4,
    };

    #[test]
    fn with_a_write_delay_messages_wait_for_the_flush() {
        let sequencer: Sequencer<Probe> =
            Sequencer::new(BATCHES_OF_4, Duration::from_millis(1), Metrics::default());
        let first = Probe::new();
        join(&sequencer, &first, 0);
        sequencer.arrive(envelope(1));
        sequencer.arrive(envelope(2));
        assert!(first.ids().is_empty(), "held until the flush");
        // A join now: its ack carries 1 and 2, so it must not get them
        // again from the outbox; the member that was there does.
        let late = Probe::new();
        assert_eq!(join(&sequencer, &late, 2), vec![1, 2]);
        assert_eq!(first.ids(), vec![1, 2]);
        sequencer.arrive(envelope(3));
        sequencer.flush();
        assert_eq!(first.ids(), vec![1, 2, 3]);
        assert_eq!(late.ids(), vec![3]);
    }

    #[test]
    fn a_full_window_is_flushed_without_waiting() {
        let sequencer: Sequencer<Probe> =
            Sequencer::new(BATCHES_OF_4, Duration::from_millis(1), Metrics::default());
        let probe = Probe::new();
        join(&sequencer, &probe, 0);
        for id in 1..=5 {
            sequencer.arrive(envelope(id));
        }
        assert_eq!(
            probe.ids(),
            vec![1, 2, 3, 4],
            "the fifth waits for the timer"
        );
        sequencer.flush();
        assert_eq!(probe.ids(), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_slow_member_is_cut_off_at_the_flush_not_skipped() {
        let sequencer: Sequencer<Probe> =
            Sequencer::new(BATCHES_OF_4, Duration::from_millis(1), Metrics::default());
        let slow = Probe::new();
        let fine = Probe::new();
        join(&sequencer, &slow, 0);
        join(&sequencer, &fine, 0);
        sequencer.arrive(envelope(1));
        sequencer.flush();
        slow.full.store(true, Ordering::SeqCst);
        sequencer.arrive(envelope(2));
        sequencer.arrive(envelope(3));
        sequencer.flush();
        slow.full.store(false, Ordering::SeqCst);
        sequencer.arrive(envelope(4));
        sequencer.flush();
        assert!(slow.cut.load(Ordering::SeqCst));
        assert_eq!(slow.ids(), vec![1], "no gap on a live socket");
        assert_eq!(fine.ids(), vec![1, 2, 3, 4]);
        assert!(!sequencer.is_member("r", slow.sid));
    }

    #[test]
    fn a_slow_member_is_cut_off_not_skipped() {
        let sequencer = sequencer();
        let slow = Probe::new();
        let fine = Probe::new();
        join(&sequencer, &slow, 0);
        join(&sequencer, &fine, 0);
        sequencer.arrive(envelope(1));
        slow.full.store(true, Ordering::SeqCst);
        sequencer.arrive(envelope(2));
        slow.full.store(false, Ordering::SeqCst);
        sequencer.arrive(envelope(3));
        assert!(slow.cut.load(Ordering::SeqCst));
        assert_eq!(slow.ids(), vec![1], "no gap on a live socket");
        assert_eq!(fine.ids(), vec![1, 2, 3]);
        assert!(!sequencer.is_member("r", slow.sid));
    }

    #[tokio::test]
    async fn a_lasting_gap_is_repaired_from_the_history() {
        let (store, _events) = MemoryStore::new(100);
        for _ in 0..4 {
            store.append("r", "a", "hi").await.unwrap();
        }
        let metrics = Metrics::default();
        let sequencer = Sequencer::new(Batching::NONE, Duration::from_millis(1), metrics.clone());
        let probe = Probe::new();
        join(&sequencer, &probe, 0);
        // 1 and 2 were lost on the way; 3 arrived.
        sequencer
            .arrive(Envelope::new(store.history_after("r", 2).await.unwrap()[0].clone()).unwrap());
        assert!(probe.ids().is_empty());
        tokio::time::sleep(Duration::from_millis(5)).await;
        sequencer.repair_gaps(&store).await;
        assert_eq!(probe.ids(), vec![1, 2, 3, 4]);
        assert_eq!(metrics.gap_repairs.get(), 3);
    }

    #[tokio::test]
    async fn messages_the_store_lost_are_skipped_not_awaited_forever() {
        let (store, _events) = MemoryStore::new(100);
        let metrics = Metrics::default();
        let sequencer = Sequencer::new(Batching::NONE, Duration::from_millis(1), metrics.clone());
        let probe = Probe::new();
        join(&sequencer, &probe, 0);
        // 1 and 2 exist nowhere any more; 3 and 4 arrived.
        sequencer.arrive(envelope(3));
        sequencer.arrive(envelope(4));
        tokio::time::sleep(Duration::from_millis(5)).await;
        sequencer.repair_gaps(&store).await;
        assert_eq!(probe.ids(), vec![3, 4]);
        assert_eq!(metrics.messages_lost.get(), 2);
        sequencer.arrive(envelope(5));
        assert_eq!(probe.ids(), vec![3, 4, 5]);
    }

    #[tokio::test]
    async fn a_resync_fetches_what_never_arrived() {
        let (store, _events) = MemoryStore::new(100);
        let sequencer = sequencer();
        let probe = Probe::new();
        join(&sequencer, &probe, 0);
        for _ in 0..3 {
            store.append("r", "a", "hi").await.unwrap();
        }
        sequencer.resync(&store).await;
        assert_eq!(probe.ids(), vec![1, 2, 3]);
    }
}
