//! One room's order on this instance: pure data, no locks, no I/O.
//!
//! Events arrive from the bus in the store's order, but a lost or late one
//! (a Pub/Sub hiccup, a repair racing the live stream) must not let a later
//! event overtake it. The line releases events strictly by position: one
//! that comes early waits in `pending` until the missing ones arrive (live
//! or fetched by `repair`), duplicates are dropped, and a volatile event
//! (`typing`) goes out only if the line has delivered everything before it,
//! never waiting and never held.

use super::event::RoomEvent;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Line {
    /// The last position delivered; `None` until the first join said where
    /// this instance starts.
    delivered: Option<u64>,
    /// Events that came ahead of a missing one, by position.
    pending: BTreeMap<u64, Arc<RoomEvent>>,
    /// Since when the line waits for a missing event.
    waiting_since: Option<Instant>,
}

impl Line {
    pub fn is_started(&self) -> bool {
        self.delivered.is_some()
    }

    /// The last position delivered (0 before the first event).
    pub fn delivered(&self) -> u64 {
        self.delivered.unwrap_or(0)
    }

    /// Starts an unstarted line after `pos` (what the first local join saw):
    /// events up to it are the joiner's history, later ones are released.
    pub fn start_after(&mut self, pos: u64) -> Vec<Arc<RoomEvent>> {
        if self.delivered.is_some() {
            return Vec::new();
        }
        self.delivered = Some(pos);
        self.pending.retain(|held, _| *held > pos);
        self.release_pending()
    }

    /// Takes an event in; returns what is released by it, in order.
    pub fn accept(&mut self, event: Arc<RoomEvent>, now: Instant) -> Vec<Arc<RoomEvent>> {
        let Some(delivered) = self.delivered else {
            // Nothing delivered yet: keep what may follow the first join.
            if !event.kind.is_volatile() {
                self.pending.insert(event.pos, event);
            }
            return Vec::new();
        };
        if event.kind.is_volatile() {
            // Behind or ahead of it: the moment has passed, drop it.
            return if event.pos == delivered && self.pending.is_empty() {
                vec![event]
            } else {
                Vec::new()
            };
        }
        if event.pos <= delivered || self.pending.contains_key(&event.pos) {
            return Vec::new();
        }
        self.pending.insert(event.pos, event);
        let released = self.release_pending();
        if !self.pending.is_empty() {
            self.waiting_since.get_or_insert(now);
        }
        released
    }

    fn release_pending(&mut self) -> Vec<Arc<RoomEvent>> {
        let mut released = Vec::new();
        let mut delivered = self.delivered();
        while let Some(event) = self.pending.remove(&(delivered + 1)) {
            delivered += 1;
            released.push(event);
        }
        if !released.is_empty() {
            self.delivered = Some(delivered);
            self.waiting_since = None;
        }
        released
    }

    /// The gap the line waits on: the last position delivered and since
    /// when it has waited; `None` when nothing is missing.
    pub fn gap(&self) -> Option<(u64, Instant)> {
        let since = self.waiting_since?;
        self.delivered.map(|delivered| (delivered, since))
    }

    /// The missing events exist nowhere any more (trimmed from the log,
    /// or lost with a Redis that restarted empty): give up on them and
    /// release what waits behind. Returns the number skipped and the
    /// released events.
    pub fn skip_gap(&mut self) -> (u64, Vec<Arc<RoomEvent>>) {
        let Some(first) = self.pending.keys().next().copied() else {
            return (0, Vec::new());
        };
        let skipped = first - self.delivered() - 1;
        self.delivered = Some(first - 1);
        let released = self.release_pending();
        (skipped, released)
    }
    /// After a failover, the room's order goes on from `pos` (past
    /// anything any instance may have delivered before it): the line
    /// jumps there, nothing lost. False if this line had delivered beyond
    /// `pos` already: its members may have seen positions the room reuses.
    pub fn rebase(&mut self, pos: u64) -> bool {
        let Some(delivered) = self.delivered else {
            return true;
        };
        if delivered > pos {
            return false;
        }
        self.delivered = Some(pos);
        self.pending.retain(|held, _| *held > pos);
        self.waiting_since = None;
        true
    }

    /// Releases what waits right after the delivered position (after a
    /// [`Line::rebase`]); a gap left behind is waited on as any other.
    pub fn release(&mut self, now: Instant) -> Vec<Arc<RoomEvent>> {
        let released = self.release_pending();
        if !self.pending.is_empty() {
            self.waiting_since.get_or_insert(now);
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::event::Kind;

    fn event(pos: u64, kind: Kind) -> Arc<RoomEvent> {
        RoomEvent::new("r", pos, kind, "a", "{}".into()).unwrap()
    }

    fn message(pos: u64) -> Arc<RoomEvent> {
        event(pos, Kind::Message { id: pos })
    }

    fn positions(events: &[Arc<RoomEvent>]) -> Vec<u64> {
        events.iter().map(|event| event.pos).collect()
    }

    fn started() -> Line {
        let mut line = Line::default();
        assert!(line.start_after(0).is_empty());
        line
    }

    #[test]
    fn events_in_order_go_out_at_once() {
        let mut line = started();
        let now = Instant::now();
        assert_eq!(positions(&line.accept(message(1), now)), vec![1]);
        assert_eq!(positions(&line.accept(event(2, Kind::Left), now)), vec![2]);
        assert_eq!(line.delivered(), 2);
        assert_eq!(line.gap(), None);
    }

    #[test]
    fn early_events_wait_for_the_missing_ones() {
        let mut line = started();
        let now = Instant::now();
        assert!(line.accept(message(3), now).is_empty());
        assert!(line.accept(event(2, Kind::Joined), now).is_empty());
        assert_eq!(line.gap(), Some((0, now)));
        assert_eq!(positions(&line.accept(message(1), now)), vec![1, 2, 3]);
        assert_eq!(line.gap(), None);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut line = started();
        let now = Instant::now();
        line.accept(message(1), now);
        assert!(line.accept(message(1), now).is_empty());
        line.accept(message(3), now);
        assert!(line.accept(message(3), now).is_empty());
        assert_eq!(positions(&line.accept(message(2), now)), vec![2, 3]);
    }

    #[test]
    fn a_gap_is_noticed_and_can_be_skipped() {
        let mut line = started();
        let now = Instant::now();
        line.accept(message(1), now);
        line.accept(message(4), now);
        line.accept(message(5), now);
        assert_eq!(line.gap(), Some((1, now)));
        let (skipped, released) = line.skip_gap();
        assert_eq!(skipped, 2);
        assert_eq!(positions(&released), vec![4, 5]);
        assert_eq!(line.gap(), None);
    }

    #[test]
    fn the_first_join_sets_the_start_and_keeps_what_followed() {
        let mut line = Line::default();
        let now = Instant::now();
        // Published around the join: 3 is in the joiner's history, 4 is not.
        assert!(line.accept(message(3), now).is_empty());
        assert!(line.accept(message(4), now).is_empty());
        assert_eq!(positions(&line.start_after(3)), vec![4]);
    }

    #[test]
    fn a_rebase_jumps_over_the_positions_a_failover_skipped() {
        let mut line = started();
        let now = Instant::now();
        line.accept(message(1), now);
        // Published after the failover, before this line was told.
        assert!(line.accept(message(1002), now).is_empty());
        assert!(line.rebase(1001));
        assert_eq!(positions(&line.release(now)), vec![1002]);
        assert_eq!(line.gap(), None);
        assert!(!line.rebase(10), "behind what was delivered");
    }

    #[test]
    fn typing_goes_out_only_when_the_line_is_level_with_it() {
        let mut line = started();
        let now = Instant::now();
        line.accept(message(1), now);
        assert_eq!(
            positions(&line.accept(event(1, Kind::Typing), now)),
            vec![1]
        );
        // Behind: typing after 3 while 2 is missing: dropped, never held.
        line.accept(message(3), now);
        assert!(line.accept(event(3, Kind::Typing), now).is_empty());
        assert_eq!(positions(&line.accept(message(2), now)), vec![2, 3]);
        // Stale: typing after 1, the line is at 3 now.
        assert!(line.accept(event(1, Kind::Typing), now).is_empty());
    }
}
