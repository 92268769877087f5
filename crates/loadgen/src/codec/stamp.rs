//! The text of every message the load generator sends:
//! `"<sender>:<seq>:<send_unix_micros>"`, optionally followed by a space and
//! padding. Receivers read it back to know who sent what, when: end-to-end
//! latency, loss, duplicates and order need nothing from the server.

use std::time::{SystemTime, UNIX_EPOCH};

/// Who sent a message, which one it was, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sending client's global index.
    pub sender: u32,
    /// The message's number among its sender's messages.
    pub seq: u32,
    /// When it was sent, in microseconds since the Unix epoch.
    pub sent_micros: u64,
}

impl Stamp {
    /// The message text, padded with `x` up to `min_len` bytes.
    pub fn to_text(self, min_len: usize) -> String {
        let mut text = format!("{}:{}:{}", self.sender, self.seq, self.sent_micros);
        if text.len() + 1 < min_len {
            text.push(' ');
            text.extend(std::iter::repeat_n('x', min_len - text.len()));
        }
        text
    }

    /// Reads a stamp back from a message text; `None` for foreign text.
    pub fn parse(text: &str) -> Option<Stamp> {
        let text = text.split(' ').next()?;
        let mut fields = text.split(':');
        let stamp = Stamp {
            sender: fields.next()?.parse().ok()?,
            seq: fields.next()?.parse().ok()?,
            sent_micros: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(stamp)
    }
}

/// Microseconds since the Unix epoch: comparable across processes.
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_padding() {
        let stamp = Stamp {
            sender: 7,
            seq: 123,
            sent_micros: 1_732_730_000_000_001,
        };
        assert_eq!(stamp.to_text(0), "7:123:1732730000000001");
        let padded = stamp.to_text(64);
        assert_eq!(padded.len(), 64);
        assert_eq!(Stamp::parse(&padded), Some(stamp));
        assert_eq!(Stamp::parse(&stamp.to_text(0)), Some(stamp));
    }

    #[test]
    fn ignores_foreign_text() {
        for text in ["hello", "1:2", "1:2:3:4", "a:1:2", ""] {
            assert_eq!(Stamp::parse(text), None, "{text}");
        }
    }
}
