//! ws-chat frames (contract section 1): every frame is one JSON text frame
//! whose `type` field says what it is.

use crate::error::ErrorBody;
use crate::validate;
use serde::{Deserialize, Serialize};

/// A frame from a browser or any other client, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// `hello`: join the chat under a name; must be the first frame.
    Hello {
        /// The wanted name, trimmed.
        name: String,
        /// Lets a reconnecting client take its own name over (contract: `clientId`).
        client_id: Option<String>,
    },
    /// `message`: post a text to everyone.
    Message {
        /// The text, trimmed.
        text: String,
    },
    /// `typing`: tell the others one is typing.
    Typing,
}

/// The frame exactly as a client may send it, before the contract's limits.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RawClientFrame {
    Hello {
        name: String,
        #[serde(rename = "clientId", default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    Message {
        text: String,
    },
    Typing {},
}

impl ClientFrame {
    /// Parses and validates one text frame; any failure is a contract error
    /// the session can send straight back.
    pub fn parse(text: &str) -> Result<ClientFrame, ErrorBody> {
        let raw: RawClientFrame = serde_json::from_str(text)
            .map_err(|error| ErrorBody::bad_request(format!("invalid frame: {error}")))?;
        Ok(match raw {
            RawClientFrame::Hello { name, client_id } => ClientFrame::Hello {
                name: validate::name(&name)?,
                client_id: validate::client_id(client_id.as_deref())?,
            },
            RawClientFrame::Message { text } => ClientFrame::Message {
                text: validate::text(&text)?,
            },
            RawClientFrame::Typing {} => ClientFrame::Typing,
        })
    }

    /// The frame as a client puts it on the wire (used by the load generator).
    pub fn to_json(&self) -> String {
        let raw = match self.clone() {
            ClientFrame::Hello { name, client_id } => RawClientFrame::Hello { name, client_id },
            ClientFrame::Message { text } => RawClientFrame::Message { text },
            ClientFrame::Typing => RawClientFrame::Typing {},
        };
        serde_json::to_string(&raw).expect("client frames always serialize")
    }
}

/// A user as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The server's id for this connection's user.
    pub id: String,
    /// The name, as the user wrote it.
    pub name: String,
}

/// One chat message, as broadcast and as kept in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Increases strictly, from 1.
    pub id: u64,
    /// Who sent it.
    pub from: User,
    /// The text, trimmed.
    pub text: String,
    /// When the server accepted it, Unix milliseconds.
    pub ts: i64,
}

/// A history entry as it goes on the wire: the very object of the live
/// `message` frame, `"type":"message"` included, so that a client can render
/// history with the handler it uses for live messages.
#[derive(Serialize)]
#[serde(tag = "type", rename = "message")]
struct MessageFrame<'a> {
    id: u64,
    from: &'a User,
    text: &'a str,
    ts: i64,
}

impl<'a> From<&'a ChatMessage> for MessageFrame<'a> {
    fn from(message: &'a ChatMessage) -> Self {
        MessageFrame {
            id: message.id,
            from: &message.from,
            text: &message.text,
            ts: message.ts,
        }
    }
}

/// Serializes a history as an array of `message` frames.
fn serialize_history<S: serde::Serializer>(
    history: &[ChatMessage],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(history.iter().map(MessageFrame::from))
}

/// Everything the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// The answer to a successful `hello`.
    Welcome {
        /// The user this connection joined as.
        you: User,
        /// Everyone in the chat, this user included.
        users: Vec<User>,
        /// Up to the last 50 messages, each exactly as its `message` frame.
        #[serde(serialize_with = "serialize_history")]
        history: Vec<ChatMessage>,
    },
    /// A chat message, to every joined client, the sender included.
    Message(ChatMessage),
    /// Someone joined (sent to the others).
    Joined {
        /// Who joined.
        user: User,
        /// When, Unix milliseconds.
        ts: i64,
    },
    /// Someone left (sent to the others).
    Left {
        /// Who left.
        user: User,
        /// When, Unix milliseconds.
        ts: i64,
    },
    /// Someone is typing (sent to the others).
    Typing {
        /// Who is typing.
        user: User,
    },
    /// A bad frame's error; the connection stays open.
    Error(ErrorBody),
}

impl ServerFrame {
    /// The frame as the JSON text that goes on the wire.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

/// Writes the same JSON as [`ServerFrame::Welcome`] from borrowed users and
/// history, so a server with thousands of users need not clone them all into
/// one large vector for every newcomer.
pub fn write_welcome<'a, W, U, H>(
    writer: W,
    you: &User,
    users: U,
    history: H,
) -> serde_json::Result<()>
where
    W: std::io::Write,
    U: Iterator<Item = &'a User> + Clone,
    H: Iterator<Item = &'a ChatMessage> + Clone,
{
    #[derive(Serialize)]
    #[serde(
        tag = "type",
        rename = "welcome",
        bound(serialize = "SeqOf<U>: Serialize, SeqOf<H>: Serialize")
    )]
    struct WelcomeRef<'a, U, H> {
        you: &'a User,
        users: SeqOf<U>,
        history: SeqOf<H>,
    }

    /// Serializes an iterator as a JSON array.
    struct SeqOf<I>(I);

    impl<I> Serialize for SeqOf<I>
    where
        I: Iterator + Clone,
        I::Item: Serialize,
    {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.clone())
        }
    }

    let welcome = WelcomeRef {
        you,
        users: SeqOf(users),
        history: SeqOf(history.map(MessageFrame::from)),
    };
    serde_json::to_writer(writer, &welcome)
}

#[cfg(test)]
mod welcome_tests {
    use super::*;

    #[test]
    fn write_welcome_matches_the_owned_frame() {
        let alice = User {
            id: "u1".into(),
            name: "alice".into(),
        };
        let bob = User {
            id: "u2".into(),
            name: "b\"ob".into(),
        };
        let message = ChatMessage {
            id: 7,
            from: bob.clone(),
            text: "hi <there>\n".into(),
            ts: 1732730000000,
        };
        let owned = ServerFrame::Welcome {
            you: alice.clone(),
            users: vec![alice.clone(), bob.clone()],
            history: vec![message.clone()],
        }
        .to_json();
        let mut borrowed = Vec::new();
        let users = [alice.clone(), bob];
        let history = [message];
        write_welcome(&mut borrowed, &alice, users.iter(), history.iter()).unwrap();
        assert_eq!(String::from_utf8(borrowed).unwrap(), owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::{Value, json};

    #[test]
    fn parses_every_client_frame() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"hello","name":" alice ","clientId":"k3"}"#).unwrap(),
            ClientFrame::Hello {
                name: "alice".into(),
                client_id: Some("k3".into())
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"hello","name":"bob"}"#).unwrap(),
            ClientFrame::Hello {
                name: "bob".into(),
                client_id: None
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"message","text":"hi"}"#).unwrap(),
            ClientFrame::Message { text: "hi".into() }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"typing"}"#).unwrap(),
            ClientFrame::Typing
        );
    }

    #[test]
    fn client_frames_round_trip_through_json() {
        for frame in [
            ClientFrame::Hello {
                name: "alice".into(),
                client_id: Some("k3".into()),
            },
            ClientFrame::Hello {
                name: "bob".into(),
                client_id: None,
            },
            ClientFrame::Message { text: "hi".into() },
            ClientFrame::Typing,
        ] {
            assert_eq!(ClientFrame::parse(&frame.to_json()).unwrap(), frame);
        }
        assert_eq!(
            ClientFrame::Typing.to_json(),
            r#"{"type":"typing"}"#,
            "the tag alone, as browsers send it"
        );
    }

    #[test]
    fn bad_frames_are_bad_requests() {
        for bad in [
            "not json",
            "null",
            "[]",
            "42",
            r#"{"type":"nope"}"#,
            r#"{"name":"alice"}"#,
            r#"{"type":"hello","name":7}"#,
            r#"{"type":"hello","name":"a","clientId":5}"#,
            r#"{"type":"message","text":null}"#,
            r#"{"type":"message","text":"   "}"#,
        ] {
            let error = ClientFrame::parse(bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{bad}");
        }
        let long = json!({"type":"message","text":"x".repeat(2001)}).to_string();
        assert_eq!(
            ClientFrame::parse(&long).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn server_frames_match_the_contract() {
        let alice = User {
            id: "u1".into(),
            name: "alice".into(),
        };
        let message = ChatMessage {
            id: 42,
            from: alice.clone(),
            text: "hi".into(),
            ts: 1732730000000,
        };
        let frame: Value =
            serde_json::from_str(&ServerFrame::Message(message.clone()).to_json()).unwrap();
        assert_eq!(
            frame,
            json!({"type":"message","id":42,"from":{"id":"u1","name":"alice"},"text":"hi","ts":1732730000000i64})
        );
        let welcome: Value = serde_json::from_str(
            &ServerFrame::Welcome {
                you: alice.clone(),
                users: vec![alice.clone()],
                history: vec![message],
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(welcome["type"], "welcome");
        // A history entry is the live frame itself, "type" included.
        assert_eq!(welcome["history"][0], frame);
        let error: Value = serde_json::from_str(
            &ServerFrame::Error(ErrorBody::new(ErrorCode::RateLimited, "slow down")).to_json(),
        )
        .unwrap();
        assert_eq!(
            error,
            json!({"type":"error","code":"rate_limited","message":"slow down"})
        );
        let joined: Value = serde_json::from_str(
            &ServerFrame::Joined {
                user: alice.clone(),
                ts: 5,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            joined,
            json!({"type":"joined","user":{"id":"u1","name":"alice"},"ts":5})
        );
        let typing: Value =
            serde_json::from_str(&ServerFrame::Typing { user: alice }.to_json()).unwrap();
        assert_eq!(typing["type"], "typing");
    }
}
