//! Engine.IO v4 packets as the client sends them, and the packets and
//! long-polling payloads the server sends (protocol v4: one type digit,
//! then the data; a polling payload joins packets with the record
//! separator `\x1e`, a binary packet in it is `b` followed by base64).
//!
//! The server never sends binary packets, so only decoding handles them.

pub use crate::packet_error::PacketError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};

/// Joins the packets of one long-polling payload.
const RECORD_SEPARATOR: char = '\x1e';

/// One packet from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// `1`: the client closes the session.
    Close,
    /// `2`, with its data: `2probe` tests a WebSocket during an upgrade.
    Ping(&'a str),
    /// `3`: the answer to the server's ping.
    Pong,
    /// `4`: a message, here a Socket.IO packet.
    Message(&'a str),
    /// `5`: the upgrade to WebSocket is complete.
    Upgrade,
    /// `6`: nothing.
    Noop,
    /// A binary message (a WebSocket binary frame, or `b`+base64 in a
    /// polling payload): a Socket.IO attachment, which the runtime refuses.
    Binary,
}

/// Decodes one text packet (a WebSocket text frame, or one record of a
/// polling payload).
pub fn decode(text: &str) -> Result<Incoming<'_>, PacketError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(PacketError("empty packet"))?;
    let data = chars.as_str();
    match kind {
        '1' => Ok(Incoming::Close),
        '2' => Ok(Incoming::Ping(data)),
        '3' => Ok(Incoming::Pong),
        '4' => Ok(Incoming::Message(data)),
        '5' => Ok(Incoming::Upgrade),
        '6' => Ok(Incoming::Noop),
        'b' => match BASE64.decode(data) {
            Ok(_) => Ok(Incoming::Binary),
            Err(_) => Err(PacketError("binary packet with invalid base64")),
        },
        // `0` (open) is the server's alone.
        _ => Err(PacketError("unknown packet type")),
    }
}

/// Checks a whole long-polling payload, as the POST that carries it is
/// answered: every record must decode.
pub fn check_payload(payload: &str) -> Result<(), PacketError> {
    payload_records(payload).try_for_each(|record| decode(record).map(drop))
}

/// The records of a long-polling payload, in order.
pub(crate) fn payload_records(payload: &str) -> impl Iterator<Item = &str> {
    payload.split(RECORD_SEPARATOR)
}

/// The packets a server sends that carry no data of the app's.
pub(crate) mod outgoing {
    /// Ends a long poll without saying anything (during an upgrade).
    pub const NOOP: &[u8] = b"6";
    /// The server's heartbeat.
    pub const PING: &[u8] = b"2";
    /// The answer to an upgrade's `2probe`.
    pub const PROBE_ANSWER: &[u8] = b"3probe";
    /// The server closes the session (long-polling only: a WebSocket just
    /// closes).
    pub const CLOSE: &[u8] = b"1";
}

/// The handshake packet, `0` and its JSON.
pub(crate) fn open(
    sid: &str,
    upgrades: bool,
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: u64,
) -> Bytes {
    let upgrades = if upgrades { r#"["websocket"]"# } else { "[]" };
    Bytes::from(format!(
        r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":{ping_interval},"pingTimeout":{ping_timeout},"maxPayload":{max_payload}}}"#
    ))
}

/// A long-polling payload: the packets joined by the record separator.
pub(crate) fn payload<'a>(packets: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut body = BytesMut::new();
    for (index, packet) in packets.into_iter().enumerate() {
        if index > 0 {
            body.put_u8(RECORD_SEPARATOR as u8);
        }
        body.put_slice(packet);
    }
    body.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_client_packet() {
        assert_eq!(decode("1"), Ok(Incoming::Close));
        assert_eq!(decode("2probe"), Ok(Incoming::Ping("probe")));
        assert_eq!(decode("3"), Ok(Incoming::Pong));
        assert_eq!(decode("42[\"a\"]"), Ok(Incoming::Message("2[\"a\"]")));
        assert_eq!(decode("5"), Ok(Incoming::Upgrade));
        assert_eq!(decode("6"), Ok(Incoming::Noop));
        assert_eq!(decode("bAQID"), Ok(Incoming::Binary));
        assert!(decode("b!!").is_err());
        assert!(decode("").is_err());
        assert!(decode("0{}").is_err());
        assert!(decode("9").is_err());
    }

    #[test]
    fn payloads_split_and_join_on_the_record_separator() {
        let records: Vec<&str> = payload_records("40\x1e42[\"a\"]\x1ebAQID").collect();
        assert_eq!(records, ["40", "42[\"a\"]", "bAQID"]);
        assert!(check_payload("40\x1e3").is_ok());
        assert!(check_payload("40\x1e\x1e3").is_err(), "an empty record");
        let joined = payload([&b"2"[..], b"42[1]"]);
        assert_eq!(&joined[..], b"2\x1e42[1]");
    }

    #[test]
    fn the_handshake_has_every_field() {
        let open = open("abc", true, 25_000, 20_000, 1_000_000);
        let json: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
        assert_eq!(open[0], b'0');
        assert_eq!(
            json,
            serde_json::json!({"sid":"abc","upgrades":["websocket"],
                "pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})
        );
    }
}
