//! The symbols a server quotes: the default list of well-known tickers, the
//! table that maps a symbol to its index, and the set of symbols one stream
//! subscribed to.

use anyhow::{Result, bail};
use protocol::sse::SymbolInfo;
use std::collections::HashMap;

/// The tickers served when `SYMBOLS` is not set: name and a plausible start price.
pub const DEFAULT_SYMBOLS: &[(&str, &str, f64)] = &[
    ("AAPL", "Apple Inc.", 189.12),
    ("MSFT", "Microsoft Corporation", 415.50),
    ("GOOGL", "Alphabet Inc.", 172.35),
    ("AMZN", "Amazon.com, Inc.", 186.40),
    ("NVDA", "NVIDIA Corporation", 124.80),
    ("META", "Meta Platforms, Inc.", 505.75),
    ("TSLA", "Tesla, Inc.", 248.20),
    ("NFLX", "Netflix, Inc.", 688.90),
    ("JPM", "JPMorgan Chase & Co.", 201.60),
    ("V", "Visa Inc.", 276.30),
];

/// A set of symbols is a bit mask over the table's indexes, so the filter
/// every stream applies to every tick is one AND.
pub const MAX_SYMBOLS: usize = 128;

/// Longest symbol accepted in `SYMBOLS`.
const MAX_SYMBOL_LEN: usize = 12;

/// The symbols served, in a fixed order; a symbol's index is its position.
#[derive(Debug, Clone)]
pub struct SymbolTable {
    infos: Vec<SymbolInfo>,
    index: HashMap<String, usize>,
}

impl SymbolTable {
    /// The default tickers.
    pub fn defaults() -> SymbolTable {
        let infos = DEFAULT_SYMBOLS
            .iter()
            .map(|(symbol, name, price)| SymbolInfo {
                symbol: (*symbol).to_owned(),
                name: (*name).to_owned(),
                price: *price,
            })
            .collect();
        SymbolTable::new(infos).expect("the default symbols are valid")
    }

    /// The symbols of a `SYMBOLS` list: known tickers keep their name and
    /// price, others get their symbol as name and a start price of their own.
    pub fn from_list(symbols: &[String]) -> Result<SymbolTable> {
        let infos = symbols
            .iter()
            .map(
                |symbol| match DEFAULT_SYMBOLS.iter().find(|(known, ..)| known == symbol) {
                    Some((_, name, price)) => SymbolInfo {
                        symbol: symbol.clone(),
                        name: (*name).to_owned(),
                        price: *price,
                    },
                    None => SymbolInfo {
                        symbol: symbol.clone(),
                        name: symbol.clone(),
                        price: invented_start_price(symbol),
                    },
                },
            )
            .collect();
        SymbolTable::new(infos)
    }

    fn new(infos: Vec<SymbolInfo>) -> Result<SymbolTable> {
        if infos.is_empty() {
            bail!("no symbols to serve");
        }
        if infos.len() > MAX_SYMBOLS {
            bail!(
                "at most {MAX_SYMBOLS} symbols can be served, not {}",
                infos.len()
            );
        }
        let mut index = HashMap::new();
        for (position, info) in infos.iter().enumerate() {
            if !is_valid_symbol(&info.symbol) {
                bail!(
                    "symbol {:?} is invalid: 1 to {MAX_SYMBOL_LEN} of A-Z 0-9 . -",
                    info.symbol
                );
            }
            if index.insert(info.symbol.clone(), position).is_some() {
                bail!("symbol {} is listed twice", info.symbol);
            }
        }
        Ok(SymbolTable { infos, index })
    }

    /// How many symbols are served.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// Whether no symbol is served.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// Every symbol's entry, in table order (the order of `SYMBOLS`).
    pub fn infos(&self) -> &[SymbolInfo] {
        &self.infos
    }

    /// The table index of `symbol` (upper-case), if it is served.
    pub fn index_of(&self, symbol: &str) -> Option<usize> {
        self.index.get(symbol).copied()
    }

    /// Every symbol.
    pub fn all(&self) -> SymbolSet {
        SymbolSet::first(self.len())
    }

    /// The set named by a `symbols=` query value (empty: all), or the first
    /// symbol that is not served.
    pub fn parse_set(&self, raw: &str) -> Result<SymbolSet, String> {
        let wanted = protocol::sse::parse_symbol_list(raw);
        if wanted.is_empty() {
            return Ok(self.all());
        }
        let mut set = SymbolSet::EMPTY;
        for symbol in wanted {
            match self.index_of(&symbol) {
                Some(index) => set.insert(index),
                None => return Err(symbol),
            }
        }
        Ok(set)
    }
}

fn is_valid_symbol(symbol: &str) -> bool {
    (1..=MAX_SYMBOL_LEN).contains(&symbol.len())
        && symbol.bytes().all(|byte| {
            byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'.' || byte == b'-'
        })
}

/// A start price between 20 and 520 derived from the symbol's letters, so a
/// custom list gets varied but stable prices.
fn invented_start_price(symbol: &str) -> f64 {
    let hash = symbol.bytes().fold(17u64, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u64::from(byte))
    });
    20.0 + (hash % 50_000) as f64 / 100.0
}

/// Symbols one stream subscribed to, as bits of their table indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolSet(u128);

impl SymbolSet {
    /// No symbol at all.
    pub const EMPTY: SymbolSet = SymbolSet(0);

    /// The symbols with index `0..count`.
    pub fn first(count: usize) -> SymbolSet {
        if count >= MAX_SYMBOLS {
            SymbolSet(u128::MAX)
        } else {
            SymbolSet((1u128 << count) - 1)
        }
    }

    /// Adds the symbol at table index `index`.
    pub fn insert(&mut self, index: usize) {
        self.0 |= 1u128 << index;
    }

    /// Whether the symbol at table index `index` is in the set.
    pub fn contains(self, index: usize) -> bool {
        index < MAX_SYMBOLS && self.0 & (1u128 << index) != 0
    }

    /// Whether every symbol of `other` is in this set too.
    pub fn is_superset_of(self, other: SymbolSet) -> bool {
        self.0 & other.0 == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_about_ten_known_tickers() {
        let table = SymbolTable::defaults();
        assert_eq!(table.len(), 10);
        assert_eq!(table.index_of("AAPL"), Some(0));
        assert_eq!(table.infos()[0].name, "Apple Inc.");
    }

    #[test]
    fn custom_lists_keep_known_names_and_invent_prices() {
        let table = SymbolTable::from_list(&["MSFT".into(), "ACME".into()]).unwrap();
        assert_eq!(table.infos()[0].name, "Microsoft Corporation");
        assert_eq!(table.infos()[1].name, "ACME");
        let price = table.infos()[1].price;
        assert!((20.0..=520.0).contains(&price));
        assert_eq!(
            price,
            SymbolTable::from_list(&["ACME".into()]).unwrap().infos()[0].price
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(SymbolTable::from_list(&[]).is_err());
        assert!(SymbolTable::from_list(&["AAPL".into(), "AAPL".into()]).is_err());
        assert!(SymbolTable::from_list(&["A\nB".into()]).is_err());
        let too_many: Vec<String> = (0..=MAX_SYMBOLS).map(|n| format!("S{n}")).collect();
        assert!(SymbolTable::from_list(&too_many).is_err());
    }

    #[test]
    fn query_values_become_sets() {
        let table = SymbolTable::defaults();
        assert_eq!(table.parse_set(""), Ok(table.all()));
        let set = table.parse_set("msft, aapl").unwrap();
        assert!(set.contains(0) && set.contains(1) && !set.contains(2));
        assert!(table.all().is_superset_of(set));
        assert!(!set.is_superset_of(table.all()));
        assert_eq!(table.parse_set("AAPL,NOPE"), Err("NOPE".to_owned()));
    }

    #[test]
    fn a_full_table_fits_the_mask() {
        let all = SymbolSet::first(MAX_SYMBOLS);
        assert!(all.contains(MAX_SYMBOLS - 1));
        assert!(!all.contains(MAX_SYMBOLS));
    }
}
