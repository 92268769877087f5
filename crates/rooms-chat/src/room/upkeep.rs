//! The sweeps over every room of this instance, outside the path of live
//! events: gaps due for repair (see `repair`), the rooms to re-check after
//! a resync, and the snapshot that gives Redis back its state after it
//! lost it (see `cluster::liveness`).

use crate::recipient::Recipient;
use crate::room::delivery::Delivery;
use crate::room::local::LocalMember;
use std::time::{Duration, Instant};

impl<R: Recipient> Delivery<R> {
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
            "room events lost for good; members who missed them re-join"
        );
        self.metrics.messages_lost.inc_by(lost);
        // A live socket must not go on past a hole: a member that should
        // have had the lost events is cut off, and its client re-joins
        // with `since`, getting whatever the store still holds.
        for attached in local.members.values() {
            if attached.start <= after {
                attached.member.socket.cut_off();
            }
        }
        local.fan_out(released, &self.outgoing, false);
    }

    /// After a failover, `room`'s order goes on after `pos`, past what any
    /// instance delivered before (see `cluster::liveness`). If this
    /// instance had delivered beyond it, its members may have seen
    /// positions and ids the room hands out again: they are cut off and
    /// re-join, and the room starts again at `pos`.
    pub fn rebase(&self, room: &str, pos: u64) {
        let Some(shared) = self.room(room) else {
            return;
        };
        let mut local = shared.lock();
        if !local.line.rebase(pos) {
            tracing::warn!(room, pos, "a room's order went back; its members re-join");
            for attached in local.members.values() {
                attached.member.socket.cut_off();
            }
            local.line = Default::default();
            local.line.start_after(pos);
            local.recent.clear();
        }
        let released = local.line.release(Instant::now());
        local.fan_out(released, &self.outgoing, false);
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

/// What this instance knows of one room.
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
    use crate::metrics::Metrics;
    use crate::recipient::testing::Probe;
    use crate::room::event::{Kind, RoomEvent};
    use crate::room::outgoing::Outgoing;
    use std::sync::Arc;

    fn message(pos: u64) -> Arc<RoomEvent> {
        let json = format!("{{\"id\":{pos}}}");
        RoomEvent::new("r", pos, Kind::Message { id: pos }, "p", json).unwrap()
    }

    /// A delivery with room `r` and one member in it, from the start.
    fn one_member() -> (Delivery<Probe>, Probe) {
        let outgoing = Outgoing::new(Duration::ZERO, Metrics::default());
        let delivery = Delivery::new(outgoing, Metrics::default());
        let probe = Probe::new();
        let member = LocalMember {
            socket: probe.clone(),
            name: "p".into(),
            client_id: None,
            sub: None,
        };
        delivery.prepare("r");
        delivery.attach("r", member, 0, None, &mut || {}).unwrap();
        (delivery, probe)
    }

    #[test]
    fn a_lasting_gap_is_reported_and_can_be_skipped() {
        let (delivery, probe) = one_member();
        delivery.arrive(message(1));
        delivery.arrive(message(3));
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            delivery.due_gaps(later, Duration::from_millis(1)),
            vec![("r".to_owned(), 1)]
        );
        delivery.skip_if_stuck("r", 1);
        delivery.repaired("r");
        assert_eq!(probe.ids(), vec![1, 3]);
        assert!(probe.is_cut(), "a member with a hole re-joins with since");
    }

    #[test]
    fn a_rebase_releases_what_came_after_the_jump() {
        let (delivery, probe) = one_member();
        delivery.arrive(message(1));
        // Another instance resumed the room after 1001 and posted at once.
        delivery.arrive(message(1002));
        delivery.rebase("r", 1001);
        assert_eq!(probe.ids(), vec![1, 1002]);
        assert!(!probe.is_cut());
        // A jump behind what was delivered: the member re-joins.
        delivery.rebase("r", 10);
        assert!(probe.is_cut());
    }
}
