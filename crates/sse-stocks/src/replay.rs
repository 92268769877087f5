//! The recent ticks an instance keeps so that a client that reconnects with
//! `Last-Event-ID` gets exactly what it missed: a ring of the last
//! `REPLAY_TICKS` ticks, oldest first, ids strictly increasing.

use crate::event_id::EventId;
use bytes::Bytes;
use std::collections::VecDeque;

/// One published tick: its id, its symbol's index and its complete frame.
#[derive(Debug, Clone)]
pub struct Tick {
    pub id: EventId,
    pub symbol: usize,
    pub frame: Bytes,
}

#[derive(Debug)]
pub struct ReplayBuffer {
    ticks: VecDeque<Tick>,
    capacity: usize,
}

impl ReplayBuffer {
    pub fn new(capacity: usize) -> ReplayBuffer {
        ReplayBuffer {
            // Grows as ticks come, so a large REPLAY_TICKS costs nothing up front.
            ticks: VecDeque::new(),
            capacity,
        }
    }

    /// Appends a tick whose id is above every id held; drops the oldest when full.
    pub fn push(&mut self, tick: Tick) {
        debug_assert!(self.ticks.back().is_none_or(|last| last.id < tick.id));
        if self.capacity == 0 {
            return;
        }
        if self.ticks.len() == self.capacity {
            self.ticks.pop_front();
        }
        self.ticks.push_back(tick);
    }

    /// Forgets everything (the ticks before were lost upstream).
    pub fn clear(&mut self) {
        self.ticks.clear();
    }

    /// The ticks after `id`, if `id` itself is still held: only then is it
    /// certain that nothing between `id` and the first tick returned is missing.
    pub fn after(&self, id: EventId) -> Option<impl Iterator<Item = &Tick>> {
        let position = self.ticks.binary_search_by(|tick| tick.id.cmp(&id)).ok()?;
        Some(self.ticks.range(position + 1..))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(seq: u64) -> Tick {
        Tick {
            id: EventId::new(1, seq),
            symbol: 0,
            frame: Bytes::new(),
        }
    }

    fn ids_after(buffer: &ReplayBuffer, seq: u64) -> Option<Vec<u64>> {
        buffer
            .after(EventId::new(1, seq))
            .map(|ticks| ticks.map(|tick| tick.id.seq).collect())
    }

    #[test]
    fn replays_what_came_after_a_held_id() {
        let mut buffer = ReplayBuffer::new(5);
        for seq in 1..=8 {
            buffer.push(tick(seq));
        }
        assert_eq!(buffer.len(), 5);
        assert_eq!(ids_after(&buffer, 4), Some(vec![5, 6, 7, 8]));
        assert_eq!(ids_after(&buffer, 8), Some(vec![]));
        // 3 fell out: 4 might be missing between it and the oldest held.
        assert_eq!(ids_after(&buffer, 3), None);
        // Never seen (from the future, or another process).
        assert_eq!(ids_after(&buffer, 9), None);
        assert!(buffer.after(EventId::new(2, 5)).is_none());
    }

    #[test]
    fn zero_capacity_holds_nothing_and_clear_forgets() {
        let mut buffer = ReplayBuffer::new(0);
        buffer.push(tick(1));
        assert!(buffer.is_empty());
        let mut buffer = ReplayBuffer::new(3);
        buffer.push(tick(1));
        buffer.clear();
        assert_eq!(ids_after(&buffer, 1), None);
    }
}
