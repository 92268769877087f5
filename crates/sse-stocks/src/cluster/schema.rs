//! What sse-stocks keeps in Redis, written once.
//!
//! | key | type | what |
//! |---|---|---|
//! | `{sse-stocks}:producer` | string, with a TTL | the lease: the producing instance's token |
//! | `{sse-stocks}:ticks` | stream, `MAXLEN ~ REPLAY_TICKS` | one entry per tick: `quote` (JSON), `prev` (the entry before) |
//! | `{sse-stocks}:quotes` | hash | each symbol's latest quote (JSON), for a new producer |
//!
//! The three keys share one hash tag, so on a Redis Cluster they live in
//! one slot, on one shard: the append script touches all three atomically,
//! and the feed is one ordered stream. One feed is small (a few ticks a
//! second); it does not need more than one shard.

use crate::event_id::EventId;
use crate::hub::NewTick;
use std::collections::HashMap;

/// The keys of one feed.
pub struct Keys {
    pub lease: String,
    pub stream: String,
    pub quotes: String,
}

impl Keys {
    pub fn new() -> Keys {
        Keys {
            lease: "{sse-stocks}:producer".into(),
            stream: "{sse-stocks}:ticks".into(),
            quotes: "{sse-stocks}:quotes".into(),
        }
    }

    /// Lease, stream and quotes, in the order the append script takes them.
    pub fn for_append(&self) -> Vec<String> {
        vec![self.lease.clone(), self.stream.clone(), self.quotes.clone()]
    }
}

impl Default for Keys {
    fn default() -> Keys {
        Keys::new()
    }
}

/// The stream field that holds a tick's quote (JSON).
const QUOTE_FIELD: &str = "quote";
/// The stream field that holds the id of the entry before.
const PREV_FIELD: &str = "prev";

/// One entry of the tick stream.
pub struct Entry {
    pub tick: NewTick,
    /// The id of the entry appended before it (`0-0` for the first).
    pub prev: Option<EventId>,
}

/// A stream entry as a tick; entries that are not ours are skipped.
pub fn parse_entry((id, fields): (String, HashMap<String, String>)) -> Option<Entry> {
    let id = EventId::parse(&id)?;
    let quote = serde_json::from_str(fields.get(QUOTE_FIELD)?).ok()?;
    Some(Entry {
        tick: NewTick { id, quote },
        prev: fields.get(PREV_FIELD).and_then(|prev| EventId::parse(prev)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_the_same_hash_tag() {
        let keys = Keys::new();
        for key in keys.for_append() {
            assert!(key.starts_with("{sse-stocks}:"), "{key}");
        }
    }

    #[test]
    fn an_entry_is_read_back_with_its_predecessor() {
        let quote = r#"{"symbol":"AAPL","price":1.5,"change":0.5,"changePct":50.0,"ts":7}"#;
        let fields = HashMap::from([
            (QUOTE_FIELD.to_owned(), quote.to_owned()),
            (PREV_FIELD.to_owned(), "5-1".to_owned()),
        ]);
        let entry = parse_entry(("6-0".into(), fields)).expect("an entry");
        assert_eq!(entry.tick.id, EventId::new(6, 0));
        assert_eq!(entry.prev, Some(EventId::new(5, 1)));
        assert_eq!(entry.tick.quote.symbol, "AAPL");
    }

    #[test]
    fn foreign_entries_are_skipped() {
        let fields = HashMap::from([("other".to_owned(), "x".to_owned())]);
        assert!(parse_entry(("6-0".into(), fields)).is_none());
        assert!(parse_entry(("not-an-id".into(), HashMap::new())).is_none());
    }
}
