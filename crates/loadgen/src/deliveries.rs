//! Exact accounting of stamped messages: each receiver keeps a bitset of the
//! `(sender, seq)` pairs it saw, each sender a bitset of the messages the
//! server accepted; at the end, every receiver is checked against every
//! sender of its room. Loss, duplicates and order come out exactly, even
//! across reconnections.

use crate::codec::stamp::Stamp;
use serde::{Deserialize, Serialize};

/// A growable bitset indexed by sequence number.
#[derive(Debug, Default, Clone)]
pub struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    /// Sets `seq`; returns whether it was new.
    pub fn insert(&mut self, seq: u32) -> bool {
        let (word, bit) = (seq as usize / 64, seq % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let was_set = self.words[word] & (1 << bit) != 0;
        self.words[word] |= 1 << bit;
        !was_set
    }

    pub fn len(&self) -> u64 {
        self.words.iter().map(|word| word.count_ones() as u64).sum()
    }

    /// How many members both sets share.
    pub fn common(&self, other: &SeqSet) -> u64 {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(one, two)| (one & two).count_ones() as u64)
            .sum()
    }
}

/// What one receiver saw.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    seen: Vec<SeqSet>,
    highest_seq: Vec<Option<u32>>,
    highest_id: Option<u64>,
    pub duplicates: u64,
    /// A sender's message arriving after a later one of the same sender.
    pub out_of_order: u64,
    /// A server id not above the previous one (ids must increase strictly).
    pub id_regressions: u64,
}

impl DeliveryLog {
    /// Records a delivery; returns whether it was new to this receiver.
    pub fn record(&mut self, stamp: Stamp, server_id: Option<u64>) -> bool {
        let sender = stamp.sender as usize;
        if sender >= self.seen.len() {
            self.seen.resize_with(sender + 1, SeqSet::default);
            self.highest_seq.resize(sender + 1, None);
        }
        let new = self.seen[sender].insert(stamp.seq);
        if !new {
            self.duplicates += 1;
            return false;
        }
        match self.highest_seq[sender] {
            Some(highest) if stamp.seq < highest => self.out_of_order += 1,
            _ => self.highest_seq[sender] = Some(stamp.seq),
        }
        if let Some(id) = server_id {
            match self.highest_id {
                Some(highest) if id <= highest => self.id_regressions += 1,
                _ => self.highest_id = Some(id),
            }
        }
        true
    }

    /// The highest server id seen (what a re-join asks `since`).
    pub fn highest_id(&self) -> Option<u64> {
        self.highest_id
    }

    fn seen_from(&self, sender: u32) -> Option<&SeqSet> {
        self.seen.get(sender as usize)
    }

    /// How many distinct messages arrived, whatever the duplicates.
    #[cfg(test)]
    pub fn unique(&self) -> u64 {
        self.seen.iter().map(SeqSet::len).sum()
    }
}

/// What one sender sent, and which messages the server accepted.
#[derive(Debug, Default)]
pub struct SendLog {
    pub sent: u64,
    pub accepted: SeqSet,
    pub rejected: u64,
}

/// The totals of a run.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tally {
    pub sent: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// Deliveries of messages the server never acknowledged (lost acks).
    pub unacknowledged_received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub id_regressions: u64,
}

/// Checks every receiver against every sender of its room.
pub fn tally(receivers: &[(usize, &DeliveryLog)], senders: &[(u32, usize, &SendLog)]) -> Tally {
    let mut tally = Tally::default();
    for &(_, _, log) in senders {
        tally.sent += log.sent;
        tally.accepted += log.accepted.len();
        tally.rejected += log.rejected;
    }
    for &(room, receiver) in receivers {
        tally.duplicates += receiver.duplicates;
        tally.out_of_order += receiver.out_of_order;
        tally.id_regressions += receiver.id_regressions;
        for &(sender, sender_room, log) in senders {
            if sender_room != room {
                continue;
            }
            tally.expected += log.accepted.len();
            if let Some(seen) = receiver.seen_from(sender) {
                let delivered = seen.common(&log.accepted);
                tally.received += delivered;
                tally.unacknowledged_received += seen.len() - delivered;
            }
        }
    }
    tally.lost = tally.expected - tally.received;
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(sender: u32, seq: u32) -> Stamp {
        Stamp {
            sender,
            seq,
            sent_micros: 0,
        }
    }

    #[test]
    fn seq_sets_count_and_intersect() {
        let (mut one, mut two) = (SeqSet::default(), SeqSet::default());
        assert!(one.insert(3));
        assert!(!one.insert(3));
        one.insert(200);
        two.insert(200);
        two.insert(5);
        assert_eq!((one.len(), two.len(), one.common(&two)), (2, 2, 1));
    }

    #[test]
    fn receivers_count_duplicates_and_disorder() {
        let mut log = DeliveryLog::default();
        assert!(log.record(stamp(0, 1), Some(10)));
        assert!(log.record(stamp(0, 0), Some(11)));
        assert!(!log.record(stamp(0, 1), Some(10)));
        assert!(log.record(stamp(1, 0), Some(9)));
        assert_eq!(
            (log.duplicates, log.out_of_order, log.id_regressions),
            (1, 1, 1)
        );
        assert_eq!(log.unique(), 3);
        assert_eq!(log.highest_id(), Some(11));
    }

    #[test]
    fn tally_counts_loss_per_room() {
        // Sender 0 in room 0 had seqs 0..3 accepted; sender 1 in room 1 had seq 0.
        let mut sender_zero = SendLog {
            sent: 4,
            ..SendLog::default()
        };
        for seq in 0..3 {
            sender_zero.accepted.insert(seq);
        }
        sender_zero.rejected = 1;
        let mut sender_one = SendLog {
            sent: 1,
            ..SendLog::default()
        };
        sender_one.accepted.insert(0);
        let mut full = DeliveryLog::default();
        for seq in 0..3 {
            full.record(stamp(0, seq), None);
        }
        let mut partial = DeliveryLog::default();
        partial.record(stamp(0, 0), None);
        partial.record(stamp(0, 3), None); // never accepted: not counted as received
        let other_room = DeliveryLog::default();
        let tally = tally(
            &[(0, &full), (0, &partial), (1, &other_room)],
            &[(0, 0, &sender_zero), (1, 1, &sender_one)],
        );
        assert_eq!(tally.sent, 5);
        assert_eq!(tally.accepted, 4);
        assert_eq!(tally.rejected, 1);
        assert_eq!(tally.expected, 3 + 3 + 1);
        assert_eq!(tally.received, 3 + 1);
        assert_eq!(tally.lost, 3);
        assert_eq!(tally.unacknowledged_received, 1);
    }
}
