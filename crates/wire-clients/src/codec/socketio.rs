//! Socket.IO v5 packets inside Engine.IO v4 packets, over the WebSocket
//! transport, where every WebSocket text frame is exactly one Engine.IO
//! packet: `0{...}` open, `2` ping, `3` pong, `4<socket.io packet>` message.
//! The Socket.IO packet is `<type>[<nsp>,][<ack id>]<json>`; the load
//! generator only uses the default namespace `/` and text payloads.

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// An Engine.IO / Socket.IO packet from the server, borrowing the frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Engine.IO open, with its JSON (`sid`, `pingInterval`, …).
    Open(&'a str),
    /// Engine.IO close.
    Close,
    /// Engine.IO ping: answer with `PONG`.
    Ping,
    /// Engine.IO pong (the server does not send one; decoded all the same).
    Pong,
    /// Socket.IO CONNECT reply (`{"sid":...}`).
    Connected(&'a str),
    /// Socket.IO CONNECT_ERROR.
    ConnectError(&'a str),
    /// Socket.IO DISCONNECT: the server ends the socket.
    Disconnect,
    /// Socket.IO EVENT: `payload` is the JSON array `["name", args...]`.
    Event {
        /// The id the server waits for an answer to, if any.
        ack_id: Option<u64>,
        /// The JSON array, as sent.
        payload: &'a str,
    },
    /// Socket.IO ACK: `payload` is the JSON array of the ack arguments.
    Ack {
        /// The id of the client's event this answers.
        id: u64,
        /// The JSON array, as sent.
        payload: &'a str,
    },
    /// Anything else (upgrade, noop, binary packets): ignored by the loader.
    Other(&'a str),
}

/// Engine.IO pong, the answer to a server ping.
pub const PONG: &str = "3";
/// Socket.IO CONNECT to the default namespace, without auth.
pub const CONNECT: &str = "40";

/// The WebSocket path of the Engine.IO v4 handshake.
pub const WEBSOCKET_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Decodes one text frame.
pub fn decode(frame: &str) -> Inbound<'_> {
    let mut chars = frame.chars();
    match chars.next() {
        Some('0') => Inbound::Open(&frame[1..]),
        Some('1') => Inbound::Close,
        Some('2') => Inbound::Ping,
        Some('3') => Inbound::Pong,
        Some('4') => decode_socketio(&frame[1..]),
        _ => Inbound::Other(frame),
    }
}

fn decode_socketio(packet: &str) -> Inbound<'_> {
    let Some(kind) = packet.chars().next() else {
        return Inbound::Other(packet);
    };
    // The packet type may be any character a server sent, not only a digit.
    let mut rest = &packet[kind.len_utf8()..];
    // A namespace other than "/" is written before a comma; we only use "/".
    if rest.starts_with('/') {
        rest = rest.split_once(',').map_or("", |(_, after)| after);
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = rest[..digits].parse::<u64>().ok();
    let json = &rest[digits..];
    match (kind, ack_id) {
        ('0', _) => Inbound::Connected(json),
        ('1', _) => Inbound::Disconnect,
        ('2', ack_id) => Inbound::Event {
            ack_id,
            payload: json,
        },
        ('3', Some(id)) => Inbound::Ack { id, payload: json },
        ('4', _) => Inbound::ConnectError(json),
        _ => Inbound::Other(packet),
    }
}

/// The name of an event from its payload `["name", ...]`, without parsing
/// the arguments (the hot path skips events it does not measure).
pub fn event_name(payload: &str) -> Option<&str> {
    let rest = payload.strip_prefix("[\"")?;
    let end = rest.find('"')?;
    let name = &rest[..end];
    (!name.contains('\\')).then_some(name)
}

/// The first argument of an event from its payload `["name", arg, ...]`,
/// whatever follows it (a server with connection state recovery adds the
/// event's offset as the last argument), borrowed from the payload.
pub fn first_argument<'a, T: Deserialize<'a>>(payload: &'a str) -> Option<T> {
    let FirstArgument(argument) = serde_json::from_str(payload).ok()?;
    Some(argument)
}

/// An event's arguments with everything but the first skipped.
struct FirstArgument<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FirstArgument<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(FirstArgumentVisitor(PhantomData))
    }
}

struct FirstArgumentVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstArgumentVisitor<T> {
    type Value = FirstArgument<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event: its name, then its arguments")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        items
            .next_element::<IgnoredAny>()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let argument = items
            .next_element::<T>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        while items.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FirstArgument(argument))
    }
}

/// Encodes `42[<ack id>]["event", data]`.
pub fn encode_event(ack_id: Option<u64>, event: &str, data: &impl Serialize) -> String {
    let body = serde_json::to_string(&(event, data)).expect("event payloads serialize");
    match ack_id {
        Some(id) => format!("42{id}{body}"),
        None => format!("42{body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_engineio_packets() {
        assert_eq!(
            decode(r#"0{"sid":"a","pingInterval":25000}"#),
            Inbound::Open(r#"{"sid":"a","pingInterval":25000}"#)
        );
        assert_eq!(decode("2"), Inbound::Ping);
        assert_eq!(decode("3"), Inbound::Pong);
        assert_eq!(decode("1"), Inbound::Close);
        assert_eq!(decode("6"), Inbound::Other("6"));
        assert_eq!(decode(""), Inbound::Other(""));
    }

    #[test]
    fn decodes_socketio_packets() {
        assert_eq!(
            decode(r#"40{"sid":"x"}"#),
            Inbound::Connected(r#"{"sid":"x"}"#)
        );
        assert_eq!(
            decode(r#"42["message",{"id":1}]"#),
            Inbound::Event {
                ack_id: None,
                payload: r#"["message",{"id":1}]"#
            }
        );
        assert_eq!(
            decode(r#"4217["ask",1]"#),
            Inbound::Event {
                ack_id: Some(17),
                payload: r#"["ask",1]"#
            }
        );
        assert_eq!(
            decode(r#"4312[{"ok":true}]"#),
            Inbound::Ack {
                id: 12,
                payload: r#"[{"ok":true}]"#
            }
        );
        assert_eq!(
            decode(r#"42/admin,3["x"]"#),
            Inbound::Event {
                ack_id: Some(3),
                payload: r#"["x"]"#
            }
        );
        assert_eq!(
            decode(r#"44{"message":"no"}"#),
            Inbound::ConnectError(r#"{"message":"no"}"#)
        );
        assert_eq!(decode("41"), Inbound::Disconnect);
        assert_eq!(
            decode("43[1]"),
            Inbound::Other("3[1]"),
            "an ack needs an id"
        );
    }

    #[test]
    fn encodes_events_with_and_without_ack() {
        let data = json!({"room":"general","text":"hi"});
        let with_ack = encode_event(Some(5), "message", &data);
        assert_eq!(with_ack, r#"425["message",{"room":"general","text":"hi"}]"#);
        assert_eq!(
            decode(&with_ack),
            Inbound::Event {
                ack_id: Some(5),
                payload: r#"["message",{"room":"general","text":"hi"}]"#
            }
        );
        assert_eq!(encode_event(None, "rooms", &()), r#"42["rooms",null]"#);
    }

    #[test]
    fn reads_event_names_cheaply() {
        assert_eq!(event_name(r#"["message",{"a":1}]"#), Some("message"));
        assert_eq!(event_name(r#"["rooms",{}]"#), Some("rooms"));
        assert_eq!(event_name(r#"{"a":1}"#), None);
        assert_eq!(event_name(r#"["we\"ird"]"#), None);
    }

    #[test]
    fn the_first_argument_is_read_whatever_follows_it() {
        let plain = r#"["message",{"id":1}]"#;
        let with_offset = r#"["message",{"id":1},"a1b2c3d4.7"]"#;
        for payload in [plain, with_offset] {
            let value: serde_json::Value = first_argument(payload).unwrap();
            assert_eq!(value["id"], 1);
        }
        assert!(first_argument::<serde_json::Value>(r#"["message"]"#).is_none());
    }
}
