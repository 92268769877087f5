//! sse-stocks payloads (contract section 2): quotes, symbols, and the names
//! of the events on the stream.

use serde::{Deserialize, Serialize};

/// `event:` name of the first event of a fresh stream.
pub const EVENT_SNAPSHOT: &str = "snapshot";
/// `event:` name of one price change.
pub const EVENT_TICK: &str = "tick";
/// `event:` name sent instead of a replay the server can no longer give.
pub const EVENT_RESET: &str = "reset";
/// The comment line sent after a stretch of silence.
pub const KEEPALIVE_COMMENT: &str = "keep-alive";

/// The latest price of one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// The ticker, e.g. `AAPL`.
    pub symbol: String,
    /// The latest price.
    pub price: f64,
    /// Change since the session's opening price.
    pub change: f64,
    /// That change in percent of the opening price.
    #[serde(rename = "changePct")]
    pub change_pct: f64,
    /// When the price was made, Unix milliseconds.
    pub ts: i64,
}

/// The JSON of a quote, or of a list of quotes, as the contract writes it.
/// A struct of strings and numbers always serializes (serde_json writes a
/// non-finite number as `null`), so this returns the text, not a Result.
pub fn quote_json<T: Serialize + ?Sized>(quote: &T) -> String {
    serde_json::to_string(quote).unwrap_or_default()
}

/// An entry of `GET /api/symbols`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolInfo {
    /// The ticker, e.g. `AAPL`.
    pub symbol: String,
    /// The company's name.
    pub name: String,
    /// The price when the server started.
    pub price: f64,
}

/// Splits a `symbols=AAPL,MSFT` query value into symbols (upper-cased,
/// blanks dropped). An empty result means "all symbols".
pub fn parse_symbol_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|symbol| symbol.trim().to_ascii_uppercase())
        .filter(|symbol| !symbol.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quote_uses_contract_field_names() {
        let quote = Quote {
            symbol: "AAPL".into(),
            price: 189.12,
            change: 0.34,
            change_pct: 0.18,
            ts: 1732730000000,
        };
        assert_eq!(
            serde_json::to_value(&quote).unwrap(),
            json!({"symbol":"AAPL","price":189.12,"change":0.34,"changePct":0.18,"ts":1732730000000i64})
        );
    }

    #[test]
    fn symbol_lists_are_normalised() {
        assert_eq!(parse_symbol_list("aapl, MSFT,,"), vec!["AAPL", "MSFT"]);
        assert!(parse_symbol_list(" , ").is_empty());
    }
}
