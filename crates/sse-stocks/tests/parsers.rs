//! Property tests over arbitrary input for what sse-stocks reads from a
//! client: the `Last-Event-ID` (header or `lastEventId` parameter) and the
//! `symbols` query. Never a panic, and the verdict of the contract's rules,
//! written out here a second time: an id is exactly `<digits>-<digits>`
//! (blanks around it ignored), anything else resets; symbols are a comma
//! list, case and blanks ignored, empty meaning all, any unknown one a 400.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default, as in
//! `cargo test`; `scripts/fuzz.sh` runs many more).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sse_stocks::event_id::EventId;
use sse_stocks::symbols::{DEFAULT_SYMBOLS, SymbolTable};

fn id_rule(raw: &str) -> Option<(u64, u64)> {
    let (ms, seq) = raw.trim().split_once('-')?;
    let digits = |part: &str| {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u64>().ok())
            .flatten()
    };
    Some((digits(ms)?, digits(seq)?))
}

proptest! {
    #[test]
    fn a_last_event_id_is_exactly_two_numbers(
        raw in prop_oneof![
            "\\PC{0,30}",
            "[ \\t]{0,2}[0-9+-]{0,25}[ \\t]{0,2}",
            (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| format!("{ms}-{seq}")),
            "[0-9]{19,22}-[0-9]{1,22}",
        ]
    ) {
        let parsed = EventId::parse(&raw).map(|id| (id.ms, id.seq));
        prop_assert_eq!(parsed, id_rule(&raw));
        if let Some(id) = EventId::parse(&raw) {
            prop_assert_eq!(EventId::parse(&id.to_string()), Some(id));
        }
    }

    #[test]
    fn ids_order_as_their_numbers(a in any::<(u64, u64)>(), b in any::<(u64, u64)>()) {
        let (x, y) = (EventId::new(a.0, a.1), EventId::new(b.0, b.1));
        prop_assert_eq!(x.cmp(&y), a.cmp(&b));
    }

    #[test]
    fn a_symbols_query_names_known_symbols_or_is_refused(
        parts in prop::collection::vec(prop_oneof![
            prop::sample::select(DEFAULT_SYMBOLS.iter().map(|(s, ..)| s.to_string()).collect::<Vec<_>>()),
            prop::sample::select(DEFAULT_SYMBOLS.iter().map(|(s, ..)| s.to_lowercase()).collect::<Vec<_>>()),
            "[ ]{0,2}",
            "\\PC{0,8}",
        ], 0..8),
    ) {
        let raw = parts.join(",");
        let table = SymbolTable::defaults();
        let wanted: Vec<String> = raw
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        let unknown = wanted.iter().find(|s| !DEFAULT_SYMBOLS.iter().any(|(known, ..)| known == *s));
        match (table.parse_set(&raw), unknown) {
            (Err(symbol), Some(first_unknown)) => prop_assert_eq!(&symbol, first_unknown),
            (Ok(set), None) => {
                for (index, (symbol, ..)) in DEFAULT_SYMBOLS.iter().enumerate() {
                    let asked = wanted.is_empty() || wanted.iter().any(|w| w == symbol);
                    prop_assert_eq!(set.contains(index), asked, "{} in {:?}", symbol, raw);
                }
            }
            (verdict, unknown) => prop_assert!(false, "{raw:?}: {verdict:?} but unknown {unknown:?}"),
        }
    }
}
