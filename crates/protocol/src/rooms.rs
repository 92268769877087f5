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
    /// `join`: enter a room under a name.
    pub const JOIN: &str = "join";
    /// `leave`: leave a room.
    pub const LEAVE: &str = "leave";
    /// `message`: post a text to a room.
    pub const MESSAGE: &str = "message";
    /// `typing`: say one is typing in a room, or stopped.
    pub const TYPING: &str = "typing";
    /// `rooms`: ask for the room list and counts.
    pub const ROOMS: &str = "rooms";
}

/// Server event names.
pub mod server_event {
    /// `message`: a room message, to every member, the sender included.
    pub const MESSAGE: &str = "message";
    /// `user_joined`: someone entered the room.
    pub const USER_JOINED: &str = "user_joined";
    /// `user_left`: someone left the room or lost the connection.
    pub const USER_LEFT: &str = "user_left";
    /// `typing`: another member is typing (or stopped).
    pub const TYPING: &str = "typing";
    /// `rooms`: the room list changed.
    pub const ROOMS: &str = "rooms";
}

/// `join {"room","name","since"?,"clientId"?}`
///
/// `Serialize` is for clients (the load generator); absent options are left
/// out of the JSON rather than sent as `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The room to join (and so create).
    pub room: String,
    /// The name to use in that room.
    pub name: String,
    /// The id of the last message this client saw: the ack's history then
    /// holds every message after it that the server still has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Lets a reconnecting client take its own name back (contract: `clientId`).
    #[serde(rename = "clientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `leave {"room"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveRequest {
    /// The room to leave.
    pub room: String,
}

/// `message {"room","text"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRequest {
    /// The room to post to.
    pub room: String,
    /// The message text.
    pub text: String,
}

/// `typing {"room","typing"}`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TypingRequest {
    /// The room typed in.
    pub room: String,
    /// `true` while typing, `false` once stopped (absent: `true`).
    #[serde(default = "default_typing")]
    pub typing: bool,
}

fn default_typing() -> bool {
    true
}

/// A request type whose fields must also meet the contract's limits.
pub trait Validate: Sized {
    /// The request with its fields trimmed and checked, or the contract's
    /// error for the first one that fails.
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
    /// Dense per-room sequence, from 1.
    pub id: u64,
    /// The room it was posted to.
    pub room: String,
    /// The sender's name.
    pub from: String,
    /// The text, trimmed.
    pub text: String,
    /// When the server accepted it, Unix milliseconds.
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
    /// The room entered.
    pub room: String,
    /// The newcomer's name.
    pub name: String,
    /// When, Unix milliseconds.
    pub ts: i64,
}

/// Why a member is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The member sent `leave`.
    Left,
    /// The member's connection ended (or its instance died).
    Disconnected,
}

/// `user_left`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLeft {
    /// The room left.
    pub room: String,
    /// The name of who left.
    pub name: String,
    /// When, Unix milliseconds.
    pub ts: i64,
    /// Why.
    pub reason: LeaveReason,
}

/// `typing` as relayed to the other members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// The room.
    pub room: String,
    /// The typist's name.
    pub name: String,
    /// `true` while typing, `false` once stopped.
    pub typing: bool,
}

/// One entry of the room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    /// The room's name.
    pub name: String,
    /// How many members it has now (never 0: empty rooms are not listed).
    pub members: u64,
}

/// The `rooms` push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    /// The busiest rooms, with their counts.
    pub rooms: Vec<RoomCount>,
}

/// Ack of a successful `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinAck {
    /// Always `true` here.
    pub ok: bool,
    /// The room joined.
    pub room: String,
    /// The names in the room, the new member included.
    pub members: Vec<String>,
    /// The last messages, oldest first, or those after `since`.
    pub history: Vec<RoomMessage>,
}

/// Ack of a successful `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAck {
    /// Always `true` here.
    pub ok: bool,
    /// The id the message got.
    pub id: u64,
    /// When the server accepted it, Unix milliseconds.
    pub ts: i64,
}

/// Ack of a successful `rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsAck {
    /// Always `true` here.
    pub ok: bool,
    /// The busiest rooms, with their counts.
    pub rooms: Vec<RoomCount>,
}

/// `{"ok":true}` (leave, typing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkAck {
    /// Always `true` here.
    pub ok: bool,
}

impl OkAck {
    /// The one value there is: `{"ok":true}`.
    pub const OK: OkAck = OkAck { ok: true };
}

/// `{"ok":false,"error":{...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAck {
    /// Always `false` here.
    pub ok: bool,
    /// What was wrong.
    pub error: ErrorBody,
}

impl From<ErrorBody> for ErrorAck {
    fn from(error: ErrorBody) -> Self {
        ErrorAck { ok: false, error }
    }
}

impl ErrorAck {
    /// The error ack for `code`, with a message for people.
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
