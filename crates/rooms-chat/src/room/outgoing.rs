//! How a room event leaves this instance: its frame built once for every
//! local member, with the event's offset, and each member's copy written at
//! once in a quiet room or queued for the clock in a busy one.
//!
//! A room is busy when its events come more often than three per
//! `WRITE_DELAY_MS` on average (`ops::pace`): holding them then batches
//! several per write, and the clock (`crate::clock`) flushes every member
//! of a busy room once per delay. A quiet room's event leaves at once, so
//! light load waits for nothing. A member whose outbox outgrows its bound
//! is cut off by the runtime after a gap-free prefix, never skipped.
//!
//! The offset (`<epoch>.<seq>`, the last argument of every event frame) is
//! this instance's count of the room events it sent, under a name drawn
//! at start: the official client hands the last one back when it
//! reconnects, and the offset says which events it had (see
//! `crate::recovery`).

use crate::metrics::Metrics;
use crate::recipient::Recipient;
use crate::room::event::RoomEvent;
use ops::pace::Pace;
use socketio::Frame;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The frames this instance sends for room events.
pub(crate) struct Outgoing {
    write_delay: Duration,
    /// Names this instance's offsets: a count from another process means
    /// nothing here.
    epoch: Box<str>,
    next_seq: AtomicU64,
    metrics: Metrics,
}

/// A room event as this instance sends it.
#[derive(Debug)]
pub(crate) struct Sent {
    /// Its place among the events this instance sent (the offset's count).
    pub(crate) seq: u64,
    pub(crate) frame: Frame,
}

impl Outgoing {
    /// Sends with `write_delay` telling a busy room from a quiet one (zero:
    /// never busy).
    pub(crate) fn new(write_delay: Duration, metrics: Metrics) -> Outgoing {
        Outgoing {
            write_delay,
            epoch: format!("{:08x}", rand::random::<u32>()).into(),
            next_seq: AtomicU64::new(1),
            metrics,
        }
    }

    /// The event's frame and place, fixed the first time this instance
    /// sends it.
    pub(crate) fn sent<'e>(&self, event: &'e RoomEvent) -> &'e Sent {
        event.sent.get_or_init(|| {
            let name = event.kind.event_name();
            let json = event.json.get();
            if event.kind.is_volatile() {
                // Never replayed: it needs no offset.
                let text = format!(r#"42["{name}",{json}]"#);
                return Sent {
                    seq: 0,
                    frame: Frame::new(text.as_bytes()),
                };
            }
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let text = format!(r#"42["{name}",{json},"{}.{seq}"]"#, self.epoch);
            Sent {
                seq,
                frame: Frame::new(text.as_bytes()),
            }
        })
    }

    /// The name of this instance's offsets.
    pub(crate) fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Counts one event of the room whose pace is `pace`: whether its
    /// frames leave at once (a quiet room) or wait for the clock. They wait
    /// too when more events wait behind this one (`backlog`): the pace
    /// counts events as they are delivered, so a delivery that fell behind
    /// would otherwise keep writing one frame per write, too slowly to ever
    /// see its rooms busy, and never catch up.
    pub(crate) fn leaves_at_once(&self, pace: &mut Pace, backlog: bool) -> bool {
        if self.write_delay.is_zero() {
            return true;
        }
        pace.frame(Instant::now(), self.write_delay);
        !backlog && !pace.is_busy(self.write_delay)
    }

    /// Sends `event` to one member: at once, queued, or (volatile) only if
    /// nothing waits for it.
    pub(crate) fn send<R: Recipient>(&self, to: &R, event: &RoomEvent, at_once: bool) {
        let frame = &self.sent(event).frame;
        if event.kind.is_volatile() {
            if !to.send_volatile(frame) {
                self.metrics.volatile_dropped.inc();
            }
        } else if at_once {
            to.send(frame);
        } else {
            to.queue(frame);
        }
        self.metrics.core.messages_out.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::event::Kind;

    #[test]
    fn an_event_frame_carries_this_instances_offset_last() {
        let outgoing = Outgoing::new(Duration::from_millis(20), Metrics::default());
        let event =
            RoomEvent::new("r", 4, Kind::Message { id: 2 }, "a", r#"{"id":2}"#.into()).unwrap();
        let sent = outgoing.sent(&event);
        let packet = String::from_utf8(sent.frame.packet().to_vec()).unwrap();
        let offset = format!("{}.{}", outgoing.epoch, sent.seq);
        assert_eq!(packet, format!(r#"42["message",{{"id":2}},"{offset}"]"#));
        assert_eq!(outgoing.sent(&event).seq, sent.seq, "built once");
    }

    #[test]
    fn a_room_turns_busy_only_past_three_events_per_delay() {
        let outgoing = Outgoing::new(Duration::from_secs(3600), Metrics::default());
        let mut pace = Pace::default();
        assert!(
            outgoing.leaves_at_once(&mut pace, false),
            "one event is no load"
        );
        let busy = (0..10).any(|_| !outgoing.leaves_at_once(&mut pace, false));
        assert!(busy, "a burst within one delay is");
        let never = Outgoing::new(Duration::ZERO, Metrics::default());
        assert!((0..10).all(|_| never.leaves_at_once(&mut pace, true)));
    }

    #[test]
    fn an_event_with_others_waiting_behind_it_waits_for_the_clock() {
        let outgoing = Outgoing::new(Duration::from_secs(3600), Metrics::default());
        let mut pace = Pace::default();
        assert!(
            !outgoing.leaves_at_once(&mut pace, true),
            "a backlog batches"
        );
        let quiet = Outgoing::new(Duration::from_secs(3600), Metrics::default());
        assert!(quiet.leaves_at_once(&mut Pace::default(), false));
    }
}
