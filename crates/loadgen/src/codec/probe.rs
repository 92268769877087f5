//! Cheap views of the server frames the loader measures. A receiver sees
//! hundreds of thousands of frames a second, so instead of building the
//! full protocol types it borrows the few fields it needs and skips the
//! rest (serde still checks that the JSON is well-formed).

use serde::Deserialize;
use std::borrow::Cow;

/// A ws-chat server frame: its `type`, and the `text` of a `message`.
#[derive(Debug, Deserialize)]
pub(crate) struct WsChatFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub id: Option<u64>,
}

/// A rooms-chat `message` event's argument.
#[derive(Debug, Deserialize)]
pub struct RoomMessage<'a> {
    /// The message's id in its room.
    pub id: u64,
    /// The room it was posted in.
    #[serde(borrow)]
    pub room: Cow<'a, str>,
    /// Its text, where the sender's stamp is.
    #[serde(borrow)]
    pub text: Cow<'a, str>,
}

/// Parses a `["message", {...}]` Socket.IO payload.
pub fn room_message(payload: &str) -> Option<RoomMessage<'_>> {
    wire_clients::codec::socketio::first_argument(payload)
}

/// A rooms-chat ack, `[{"ok":...}]`, with what the loader uses of it.
#[derive(Debug, Deserialize)]
pub struct Ack<'a> {
    /// Whether the server did what was asked.
    pub ok: bool,
    /// A join's history: what a re-join missed while away.
    #[serde(default, borrow)]
    pub history: Vec<RoomMessage<'a>>,
    /// Why not, when `ok` is false, kept whole for the log.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

/// Parses an ack payload `[{...}]`.
pub fn ack(payload: &str) -> Option<Ack<'_>> {
    let (ack,): (Ack<'_>,) = serde_json::from_str(payload).ok()?;
    Some(ack)
}

/// The value of `"field":` in a flat JSON object, as raw text, without
/// parsing the object: the SSE hot path reads a quote's `ts` and `symbol`
/// this way at hundreds of thousands of events a second.
pub fn raw_field<'a>(json: &'a str, field: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(found) = json[from..].find(field) {
        let start = from + found;
        let end = start + field.len();
        from = end;
        if !(json[..start].ends_with('"') && json[end..].starts_with("\":")) {
            continue;
        }
        let rest = json[end + 2..].trim_start();
        if let Some(string) = rest.strip_prefix('"') {
            return string.find('"').map(|close| &string[..close]);
        }
        let close = rest
            .find(|c: char| c == ',' || c == '}' || c.is_whitespace())
            .unwrap_or(rest.len());
        return Some(&rest[..close]);
    }
    None
}

/// Whether a ws-chat frame is a presence notice (`joined`, `left`,
/// `typing`). With 10,000 clients every join is 10,000 notices; they are
/// recognised by their first bytes (serde writes the tag first) and skipped
/// before any parsing. A frame written otherwise just takes the slow path.
pub fn is_ws_presence_notice(frame: &str) -> bool {
    [
        "{\"type\":\"joined\"",
        "{\"type\":\"left\"",
        "{\"type\":\"typing\"",
    ]
    .iter()
    .any(|prefix| frame.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ws_chat_frames() {
        let frame: WsChatFrame = serde_json::from_str(
            r#"{"type":"message","id":4,"from":{"id":"u","name":"a"},"text":"1:2:3","ts":5}"#,
        )
        .unwrap();
        assert_eq!(frame.kind, "message");
        assert_eq!(frame.text.as_deref(), Some("1:2:3"));
        let joined: WsChatFrame =
            serde_json::from_str(r#"{"type":"joined","user":{"id":"u","name":"a"},"ts":5}"#)
                .unwrap();
        assert_eq!(joined.kind, "joined");
        assert!(joined.text.is_none());
    }

    #[test]
    fn recognises_presence_notices() {
        assert!(is_ws_presence_notice(
            r#"{"type":"joined","user":{"id":"1","name":"a"},"ts":1}"#
        ));
        assert!(is_ws_presence_notice(
            r#"{"type":"left","user":{"id":"1","name":"a"},"ts":1}"#
        ));
        assert!(!is_ws_presence_notice(r#"{"type":"message","id":1}"#));
    }

    #[test]
    fn reads_raw_fields_of_quotes() {
        let quote =
            r#"{"symbol":"AAPL","price":189.12,"change":0.34,"changePct":0.18,"ts":1732730000000}"#;
        assert_eq!(raw_field(quote, "symbol"), Some("AAPL"));
        assert_eq!(raw_field(quote, "ts"), Some("1732730000000"));
        assert_eq!(raw_field(quote, "price"), Some("189.12"));
        assert_eq!(raw_field(r#"{"ts": 5 }"#, "ts"), Some("5"));
        assert_eq!(raw_field(quote, "missing"), None);
        assert_eq!(
            raw_field(r#"{"a":"ts","ts":7}"#, "ts"),
            Some("7"),
            "a value is not a key"
        );
    }

    #[test]
    fn reads_room_messages_and_acks() {
        let message =
            room_message(r#"["message",{"id":18,"room":"r1","from":"a","text":"1:2:3","ts":9}]"#)
                .unwrap();
        assert_eq!((message.id, message.room.as_ref()), (18, "r1"));
        assert_eq!(message.text, "1:2:3");
        let join = ack(
            r#"[{"ok":true,"room":"r1","members":["a"],"history":[{"id":1,"room":"r1","from":"a","text":"t","ts":1}]}]"#,
        )
        .unwrap();
        assert!(join.ok);
        assert_eq!(join.history.len(), 1);
        let error =
            ack(r#"[{"ok":false,"error":{"code":"rate_limited","message":"slow"}}]"#).unwrap();
        assert!(!error.ok);
        assert_eq!(error.error.unwrap()["code"], "rate_limited");
        assert!(ack("not json").is_none());
    }
}
