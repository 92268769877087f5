//! Property tests over arbitrary input for every parser and validator of
//! the contract's client messages: ws-chat frames and rooms-chat payloads.
//! Each must never panic, must keep nothing larger than its input, and must
//! give the verdict the contract's rules give, written out here a second
//! time (`rules`) so that a change to either shows up.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default, as in
//! `cargo test`; `scripts/fuzz.sh` runs many more).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use protocol::rooms::{self, JoinRequest, LeaveRequest, MessageRequest, TypingRequest};
use protocol::ws::ClientFrame;
use protocol::{ErrorBody, ErrorCode};
use serde_json::{Value, json};

/// The contract's rules ("Conventions"), independent of `protocol::validate`.
mod rules {
    fn controls(text: &str, allowed: &[char]) -> bool {
        text.chars()
            .any(|c| c.is_control() && !allowed.contains(&c))
    }

    /// Trimmed, 1 to `max` characters, no control characters.
    pub fn line(raw: &str, max: usize) -> Option<String> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        ((1..=max).contains(&len) && !controls(trimmed, &[])).then(|| trimmed.to_owned())
    }

    pub fn name(raw: &str) -> Option<String> {
        line(raw, 32)
    }

    pub fn room(raw: &str) -> Option<String> {
        line(raw, 40)
    }

    /// Trimmed, 1 to 2000 characters; newlines and tabs allowed.
    pub fn text(raw: &str) -> Option<String> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        ((1..=2000).contains(&len) && !controls(trimmed, &['\n', '\t'])).then(|| trimmed.to_owned())
    }

    /// Optional, empty counts as absent, up to 64 characters, no controls.
    pub fn client_id(raw: Option<&str>) -> Result<Option<String>, ()> {
        match raw {
            None | Some("") => Ok(None),
            Some(id) if id.chars().count() <= 64 && !controls(id, &[]) => Ok(Some(id.to_owned())),
            Some(_) => Err(()),
        }
    }
}

/// Strings near the rules' edges: spaces, controls, multi-byte characters,
/// lengths around every bound.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,70}",
        "[ \\t\\n\\r\\x00-\\x1f\\x7f\\u{85}\\u{a0}\\u{2028}a-zé日😀]{0,70}",
        (1usize..2100, "[a-z日😀]").prop_map(|(len, c)| c.repeat(len)),
        (" {0,3}", "[a-z]{30,42}", " {0,3}").prop_map(|(a, b, c)| format!("{a}{b}{c}")),
    ]
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        tricky_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("room".to_owned()),
                    Just("name".to_owned()),
                    Just("text".to_owned()),
                    Just("since".to_owned()),
                    Just("clientId".to_owned()),
                    Just("typing".to_owned()),
                    Just("type".to_owned()),
                    "\\PC{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A string field as a client may send it: usually a string, sometimes not.
fn field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => tricky_string().prop_map(|s| Some(Value::from(s))),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ]
}

fn object(fields: &[(&str, Option<Value>)]) -> Value {
    Value::Object(
        fields
            .iter()
            .filter_map(|(key, value)| value.clone().map(|value| ((*key).to_owned(), value)))
            .collect(),
    )
}

fn as_str(value: &Option<Value>) -> Option<&str> {
    value.as_ref().and_then(Value::as_str)
}

/// An error must carry a contract code and a short message.
fn well_formed(error: &ErrorBody) -> bool {
    matches!(error.code, ErrorCode::BadRequest | ErrorCode::TooLarge)
        && error.message.chars().count() <= ErrorBody::MAX_MESSAGE_CHARS + 1
}

proptest! {
    #[test]
    fn ws_frames_from_arbitrary_text_never_panic_and_stay_bounded(raw in "\\PC{0,300}|.{0,300}") {
        match ClientFrame::parse(&raw) {
            Ok(ClientFrame::Hello { name, client_id }) => {
                prop_assert!(name.len() <= raw.len());
                prop_assert!(client_id.map_or(0, |id| id.len()) <= raw.len());
            }
            Ok(ClientFrame::Message { text }) => prop_assert!(text.len() <= raw.len()),
            Ok(ClientFrame::Typing) => {}
            Err(error) => prop_assert!(well_formed(&error), "{:?}", error),
        }
    }

    #[test]
    fn ws_frames_get_the_contract_verdict(
        kind in prop_oneof![Just("hello"), Just("message"), Just("typing"), Just("other")],
        name in field(),
        client_id in field(),
        text in field(),
    ) {
        let frame = object(&[
            ("type", Some(Value::from(kind))),
            ("name", name.clone()),
            ("clientId", client_id.clone()),
            ("text", text.clone()),
        ]);
        let verdict = ClientFrame::parse(&frame.to_string());
        let string_or_absent = |v: &Option<Value>| v.as_ref().is_none_or(|v| v.is_string() || v.is_null());
        let expected = match kind {
            "hello" if name.as_ref().is_some_and(Value::is_string) && string_or_absent(&client_id) => {
                match (rules::name(as_str(&name).unwrap_or_default()), rules::client_id(as_str(&client_id))) {
                    (Some(name), Ok(client_id)) => Some(ClientFrame::Hello { name, client_id }),
                    _ => None,
                }
            }
            "message" if text.as_ref().is_some_and(Value::is_string) => {
                rules::text(as_str(&text).unwrap_or_default()).map(|text| ClientFrame::Message { text })
            }
            "typing" => Some(ClientFrame::Typing),
            _ => None,
        };
        match (verdict, expected) {
            (Ok(got), Some(expected)) => prop_assert_eq!(got, expected),
            (Err(error), None) => prop_assert!(well_formed(&error), "{:?}", error),
            (got, expected) => prop_assert!(false, "{frame}: got {got:?}, the rules say {expected:?}"),
        }
    }

    #[test]
    fn rooms_payloads_of_any_shape_never_panic(payload in any_json()) {
        for verdict in [
            rooms::parse::<JoinRequest>(payload.clone()).err(),
            rooms::parse::<LeaveRequest>(payload.clone()).err(),
            rooms::parse::<MessageRequest>(payload.clone()).err(),
            rooms::parse::<TypingRequest>(payload.clone()).err(),
        ].into_iter().flatten() {
            prop_assert!(well_formed(&verdict), "{:?}", verdict);
        }
        if !payload.is_object() {
            prop_assert!(rooms::parse::<LeaveRequest>(payload).is_err());
        }
    }

    #[test]
    fn a_join_gets_the_contract_verdict(
        room in field(),
        name in field(),
        since in prop_oneof![Just(None), any::<u64>().prop_map(|n| Some(json!(n))), any_json().prop_map(Some)],
        client_id in field(),
    ) {
        let payload = object(&[("room", room.clone()), ("name", name.clone()), ("since", since.clone()), ("clientId", client_id.clone())]);
        let verdict = rooms::parse::<JoinRequest>(payload.clone());
        let since_ok = since.as_ref().is_none_or(|s| s.is_null() || s.is_u64());
        let client_id_ok = client_id.as_ref().is_none_or(|c| c.is_null() || c.is_string());
        let expected = match (as_str(&room).and_then(rules::room), as_str(&name).and_then(rules::name)) {
            (Some(room), Some(name)) if since_ok && client_id_ok => {
                rules::client_id(as_str(&client_id)).ok().map(|client_id| (room, name, since.as_ref().and_then(Value::as_u64), client_id))
            }
            _ => None,
        };
        match (verdict, expected) {
            (Ok(join), Some((room, name, since, client_id))) => {
                prop_assert_eq!(join.room, room);
                prop_assert_eq!(join.name, name);
                prop_assert_eq!(join.since, since);
                prop_assert_eq!(join.client_id, client_id);
            }
            (Err(error), None) => prop_assert!(well_formed(&error), "{:?}", error),
            (got, expected) => prop_assert!(false, "{payload}: got {got:?}, the rules say {expected:?}"),
        }
    }

    #[test]
    fn a_message_gets_the_contract_verdict(room in field(), text in field()) {
        let payload = object(&[("room", room.clone()), ("text", text.clone())]);
        let verdict = rooms::parse::<MessageRequest>(payload.clone());
        let expected = as_str(&room).and_then(rules::room).zip(as_str(&text).and_then(rules::text));
        match (verdict, expected) {
            (Ok(message), Some((room, text))) => {
                prop_assert_eq!(message.room, room);
                prop_assert_eq!(message.text, text);
            }
            (Err(error), None) => {
                prop_assert!(well_formed(&error), "{:?}", error);
                // Too long is the one refusal with its own code.
                let too_long = as_str(&room).is_some_and(|r| rules::room(r).is_some())
                    && as_str(&text).is_some_and(|t| t.trim().chars().count() > 2000);
                if too_long {
                    prop_assert_eq!(error.code, ErrorCode::TooLarge);
                }
            }
            (got, expected) => prop_assert!(false, "{payload}: got {got:?}, the rules say {expected:?}"),
        }
    }

    #[test]
    fn leave_and_typing_get_the_contract_verdict(room in field(), typing in prop_oneof![Just(None), any::<bool>().prop_map(|b| Some(json!(b))), any_json().prop_map(Some)]) {
        let leave = rooms::parse::<LeaveRequest>(object(&[("room", room.clone())]));
        let expected_room = as_str(&room).and_then(rules::room);
        prop_assert_eq!(leave.ok().map(|leave| leave.room), expected_room.clone());

        let payload = object(&[("room", room.clone()), ("typing", typing.clone())]);
        let verdict = rooms::parse::<TypingRequest>(payload.clone());
        let typing_value = match &typing {
            None => Some(true),
            Some(value) => value.as_bool(),
        };
        let expected = expected_room.zip(typing_value);
        prop_assert_eq!(verdict.ok().map(|t| (t.room, t.typing)), expected, "{}", payload);
    }
}
