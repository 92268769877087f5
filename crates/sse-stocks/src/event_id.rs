//! The `id:` of a tick. It has the shape of a Redis stream id, `<ms>-<seq>`,
//! in both modes: in cluster mode it *is* the stream id of the tick, so every
//! instance gives a tick the same id; in embedded mode `<ms>` is the time the
//! process started and `<seq>` counts ticks, so an id from before a restart
//! is recognised as unknown (and answered with a reset) rather than mistaken
//! for a recent one.

use std::fmt;
use std::str::FromStr;

/// The id of one tick, `<ms>-<seq>`; ids order as the ticks were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// Milliseconds: the stream entry's time (cluster) or the process's start (embedded).
    pub ms: u64,
    /// The tick's sequence number within that millisecond (or since the start).
    pub seq: u64,
}

impl EventId {
    /// The id `<ms>-<seq>`.
    pub fn new(ms: u64, seq: u64) -> EventId {
        EventId { ms, seq }
    }

    /// Reads a `Last-Event-ID` sent by a client; anything that is not
    /// exactly `<digits>-<digits>` is `None` (and the client gets a reset).
    pub fn parse(raw: &str) -> Option<EventId> {
        raw.trim().parse().ok()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A text that is not `<digits>-<digits>`.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidEventId;

impl FromStr for EventId {
    type Err = InvalidEventId;

    fn from_str(raw: &str) -> Result<EventId, InvalidEventId> {
        let (ms, seq) = raw.split_once('-').ok_or(InvalidEventId)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(InvalidEventId);
            }
            part.parse::<u64>().map_err(|_| InvalidEventId)
        };
        Ok(EventId {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders_like_redis_stream_ids() {
        let id = EventId::new(1732730000000, 7);
        assert_eq!(id.to_string(), "1732730000000-7");
        assert_eq!(EventId::parse("1732730000000-7"), Some(id));
        assert_eq!(EventId::parse(" 1-2 "), Some(EventId::new(1, 2)));
        assert!(EventId::new(1, 10) > EventId::new(1, 9));
        assert!(EventId::new(2, 0) > EventId::new(1, 99));
    }

    #[test]
    fn anything_else_is_not_an_id() {
        for garbage in [
            "",
            "-",
            "1-",
            "-1",
            "12",
            "a-1",
            "1-b",
            "1-2-3",
            "+1-2",
            "1- 2",
            "99999999999999999999999-1",
        ] {
            assert_eq!(EventId::parse(garbage), None, "{garbage:?}");
        }
    }
}
