//! What a token says about its holder: the claims as signed, and the
//! [`Identity`] an app keeps for a connection once they were checked.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims of a token, as minted and as read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The person: several connections with one `sub` are one member.
    pub(crate) sub: String,
    /// The name shown; replaces the one a client asks for (default: `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<u64>,
    /// Checked by the library against the settings, not read here: a
    /// token's `aud` may be a list.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<String>,
    /// rooms-chat: room names or `prefix*` patterns the holder may join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rooms: Option<Vec<String>>,
    /// sse-stocks: the symbols the holder may watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) symbols: Option<Vec<String>>,
}

/// Who holds a connection, from a checked token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The person: an app counts connections with one `sub` as one member.
    pub sub: String,
    /// The name shown. Already a valid name by the contract's rules.
    pub name: String,
    /// The rooms the holder may join, as the `rooms` claim lists them;
    /// `None` when the token does not limit them.
    pub rooms: Option<Vec<String>>,
    /// The symbols the holder may watch, as the `symbols` claim lists
    /// them; `None` when the token does not limit them.
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

    /// How long until the connection must end (zero when past).
    pub fn time_left(&self) -> Duration {
        self.expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}

/// Seconds since the Unix epoch, as the claims count time.
pub(crate) fn now_secs() -> u64 {
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
}
