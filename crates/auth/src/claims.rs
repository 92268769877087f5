//! What a token says about its holder: the claims as signed, and the
//! [`Identity`] an app keeps for a connection once they were checked.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims of a token, as minted and as read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The person: several connections with one `sub` are one member.
    pub sub: String,
    /// The name shown; replaces the one a client asks for (default: `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Checked by the library against the settings, not read here: a
    /// token's `aud` may be a list.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// rooms-chat: room names or `prefix*` patterns the holder may join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// sse-stocks: the symbols the holder may watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Vec<String>>,
}

/// Who holds a connection, from a checked token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: String,
    /// Already a valid name by the contract's rules.
    pub name: String,
    pub rooms: Option<Vec<String>>,
    pub symbols: Option<Vec<String>>,
    /// When a connection opened with this token must end.
    pub expires_at: SystemTime,
}

impl Identity {
    /// Whether the `rooms` claim lets the holder into `room` (no claim: any).
    pub fn may_join(&self, room: &str) -> bool {
        let Some(patterns) = &self.rooms else {
            return true;
        };
        patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => room.starts_with(prefix),
                None => pattern == room,
            })
    }

    /// Whether the `symbols` claim lets the holder watch `symbol` (no claim: any).
    pub fn may_watch(&self, symbol: &str) -> bool {
        match &self.symbols {
            None => true,
            Some(symbols) => symbols
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(symbol)),
        }
    }

    /// How long until the connection must end (zero when past).
    pub fn time_left(&self) -> Duration {
        self.expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}

/// Seconds since the Unix epoch, as the claims count time.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(rooms: Option<&[&str]>) -> Identity {
        Identity {
            sub: "42".into(),
            name: "Ada".into(),
            rooms: rooms.map(|rooms| rooms.iter().map(|room| room.to_string()).collect()),
            symbols: Some(vec!["AAPL".into()]),
            expires_at: SystemTime::now(),
        }
    }

    #[test]
    fn rooms_match_by_name_or_prefix() {
        let ada = holder(Some(&["general", "team-*"]));
        assert!(ada.may_join("general"));
        assert!(ada.may_join("team-a"));
        assert!(ada.may_join("team-"));
        assert!(!ada.may_join("generals"));
        assert!(!ada.may_join("team"));
        assert!(holder(None).may_join("anything"));
        assert!(!holder(Some(&[])).may_join("general"));
    }

    #[test]
    fn symbols_match_whatever_the_case() {
        let ada = holder(None);
        assert!(ada.may_watch("aapl"));
        assert!(!ada.may_watch("MSFT"));
    }
}
