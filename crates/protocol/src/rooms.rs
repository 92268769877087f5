//! rooms-chat events and acknowledgements (contract section 3, Socket.IO).
//!
//! Client payloads arrive as arbitrary JSON (`null`, numbers, arrays, 100 KB
//! strings…); `parse` turns them into validated requests or a contract error
//! that goes back in the ack.

use crate::error::{ErrorBody, ErrorCode};
use crate::validate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Client event names.
pub mod client_event {
    pub const JOIN: &str = "join";
    pub const LEAVE: &str = "leave";
    pub const MESSAGE: &str = "message";
    pub const TYPING: &str = "typing";
    pub const ROOMS: &str = "rooms";
}

/// Server event names.
pub mod server_event {
    pub const MESSAGE: &str = "message";
    pub const USER_JOINED: &str = "user_joined";
    pub const USER_LEFT: &str = "user_left";
    pub const TYPING: &str = "typing";
    pub const ROOMS: &str = "rooms";
}

/// `join {"room","name","since"?,"clientId"?}`
///
/// `Serialize` is for clients (the load generator); absent options are left
/// out of the JSON rather than sent as `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub room: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    #[serde(rename = "clientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `leave {"room"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveRequest {
    pub room: String,
}

/// `message {"room","text"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRequest {
    pub room: String,
    pub text: String,
}

/// `typing {"room","typing"}`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TypingRequest {
    pub room: String,
    #[serde(default = "default_typing")]
    pub typing: bool,
}

fn default_typing() -> bool {
    true
}

/// A request type whose fields must also meet the contract's limits.
pub trait Validate: Sized {
    fn validate(self) -> Result<Self, ErrorBody>;
}

impl Validate for JoinRequest {
    fn validate(self) -> Result<Self, ErrorBody> {
        Ok(JoinRequest {
            room: validate::room(&self.room)?,
            name: validate::name(&self.name)?,
            since: self.since,
            client_id: validate::client_id(self.client_id.as_deref())?,
        })
    }
}

impl Validate for LeaveRequest {
    fn validate(self) -> Result<Self, ErrorBody> {
        Ok(LeaveRequest {
            room: validate::room(&self.room)?,
        })
    }
}

impl Validate for MessageRequest {
    fn validate(self) -> Result<Self, ErrorBody> {
        Ok(MessageRequest {
            room: validate::room(&self.room)?,
            text: validate::text(&self.text)?,
        })
    }
}

impl Validate for TypingRequest {
    fn validate(self) -> Result<Self, ErrorBody> {
        Ok(TypingRequest {
            room: validate::room(&self.room)?,
            typing: self.typing,
        })
    }
}

/// Turns an event's JSON payload into a validated request.
pub fn parse<T: DeserializeOwned + Validate>(payload: Value) -> Result<T, ErrorBody> {
    if !payload.is_object() {
        return Err(ErrorBody::bad_request("payload must be a JSON object"));
    }
    let request: T = serde_json::from_value(payload)
        .map_err(|error| ErrorBody::bad_request(format!("invalid payload: {error}")))?;
    request.validate()
}

/// A room message, as broadcast and as kept in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMessage {
    pub id: u64,
    pub room: String,
    pub from: String,
    pub text: String,
    pub ts: i64,
}

/// A message's JSON without its id: everything after `{"id":N`, so that
/// whoever assigns the id (the Redis script of cluster mode) can finish
/// the JSON with [`splice_message_json`] without parsing or re-encoding it.
pub fn message_json_tail(room: &str, from: &str, text: &str, ts: i64) -> String {
    #[derive(Serialize)]
    struct Tail<'a> {
        room: &'a str,
        from: &'a str,
        text: &'a str,
        ts: i64,
    }
    let tail = serde_json::to_string(&Tail {
        room,
        from,
        text,
        ts,
    })
    .unwrap_or_else(|_| String::from("{}"));
    // `{"room":…}` becomes `,"room":…}`, to follow `{"id":N`.
    format!(",{}", &tail[1..])
}

/// The message JSON from its id and its [`message_json_tail`]: exactly
/// what serializing the [`RoomMessage`] gives (the Lua of cluster mode
/// does the same concatenation).
pub fn splice_message_json(id: u64, tail: &str) -> String {
    format!("{{\"id\":{id}{tail}")
}

/// `user_joined`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserJoined {
    pub room: String,
    pub name: String,
    pub ts: i64,
}

/// Why a member is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    Disconnected,
}

/// `user_left`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLeft {
    pub room: String,
    pub name: String,
    pub ts: i64,
    pub reason: LeaveReason,
}

/// `typing` as relayed to the other members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    pub room: String,
    pub name: String,
    pub typing: bool,
}

/// One entry of the room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    pub name: String,
    pub members: u64,
}

/// The `rooms` push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomCount>,
}

/// Ack of a successful `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinAck {
    pub ok: bool,
    pub room: String,
    pub members: Vec<String>,
    pub history: Vec<RoomMessage>,
}

/// Ack of a successful `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAck {
    pub ok: bool,
    pub id: u64,
    pub ts: i64,
}

/// Ack of a successful `rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsAck {
    pub ok: bool,
    pub rooms: Vec<RoomCount>,
}

/// `{"ok":true}` (leave, typing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkAck {
    pub ok: bool,
}

impl OkAck {
    pub const OK: OkAck = OkAck { ok: true };
}

/// `{"ok":false,"error":{...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAck {
    pub ok: bool,
    pub error: ErrorBody,
}

impl From<ErrorBody> for ErrorAck {
    fn from(error: ErrorBody) -> Self {
        ErrorAck { ok: false, error }
    }
}

impl ErrorAck {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody::new(code, message).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_spliced_message_json_is_what_serde_writes() {
        for text in [
            "hi",
            "quote \" and \\ back",
            "emoji 😀 \u{7f}",
            "tab\tnew\nline",
        ] {
            let message = RoomMessage {
                id: 18,
                room: "général \"r\"".into(),
                from: "bob</script>".into(),
                text: text.into(),
                ts: 1_732_730_000_000,
            };
            let tail = message_json_tail(&message.room, &message.from, &message.text, message.ts);
            assert_eq!(
                splice_message_json(message.id, &tail),
                serde_json::to_string(&message).unwrap()
            );
        }
    }

    #[test]
    fn join_parses_and_validates() {
        let join: JoinRequest =
            parse(json!({"room":" general ","name":"alice","since":17,"clientId":"k3j4"})).unwrap();
        assert_eq!(join.room, "general");
        assert_eq!(join.since, Some(17));
        assert_eq!(join.client_id.as_deref(), Some("k3j4"));
        let minimal: JoinRequest = parse(json!({"room":"r","name":"n"})).unwrap();
        assert_eq!(minimal.since, None);
    }

    #[test]
    fn client_requests_serialize_for_clients() {
        let join = JoinRequest {
            room: "general".into(),
            name: "alice".into(),
            since: None,
            client_id: Some("k3".into()),
        };
        assert_eq!(
            serde_json::to_value(&join).unwrap(),
            json!({"room":"general","name":"alice","clientId":"k3"})
        );
        let round_trip: JoinRequest = parse(serde_json::to_value(&join).unwrap()).unwrap();
        assert_eq!(round_trip, join);
        let message = MessageRequest {
            room: "general".into(),
            text: "hi".into(),
        };
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            json!({"room":"general","text":"hi"})
        );
    }

    #[test]
    fn bad_payloads_are_bad_requests() {
        for bad in [
            Value::Null,
            json!(42),
            json!([1, 2]),
            json!("general"),
            json!({}),
            json!({"room": 5, "name": "a"}),
            json!({"room": "r", "name": ""}),
            json!({"room": "r", "name": "a", "since": -1}),
            json!({"room": "r", "name": "a", "since": "x"}),
            json!({"room": "r".repeat(41), "name": "a"}),
        ] {
            let error = parse::<JoinRequest>(bad.clone()).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{bad}");
        }
        let huge = parse::<MessageRequest>(json!({"room":"r","text":"x".repeat(100_000)}));
        assert_eq!(huge.unwrap_err().code, ErrorCode::TooLarge);
    }

    #[test]
    fn acks_match_the_contract() {
        assert_eq!(serde_json::to_value(OkAck::OK).unwrap(), json!({"ok":true}));
        assert_eq!(
            serde_json::to_value(ErrorAck::new(ErrorCode::NotInRoom, "join first")).unwrap(),
            json!({"ok":false,"error":{"code":"not_in_room","message":"join first"}})
        );
        assert_eq!(
            serde_json::to_value(UserLeft {
                room: "g".into(),
                name: "bob".into(),
                ts: 1,
                reason: LeaveReason::Disconnected
            })
            .unwrap(),
            json!({"room":"g","name":"bob","ts":1,"reason":"disconnected"})
        );
    }
}
