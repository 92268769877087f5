//! The error codes of the contract and the `{"code","message"}` body that
//! carries them to a client, in all three apps.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error code a client may receive; nothing else is ever sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The input does not parse or breaks a limit other than size.
    BadRequest,
    /// Too long: text over 2000 characters, a frame over the size limit.
    TooLarge,
    /// Over the sender's message rate.
    RateLimited,
    /// The name is held by someone else (case-insensitive).
    NameTaken,
    /// ws-chat: a frame other than `hello` before the welcome.
    NotJoined,
    /// rooms-chat: an event for a room the socket has not joined.
    NotInRoom,
    /// sse-stocks: a symbol the server does not serve.
    UnknownSymbol,
    /// The server cannot serve this now (Redis unreachable, shutting down).
    Unavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire, handy for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::UnknownSymbol => "unknown_symbol",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"code": "...", "message": "..."}`: what a client is told when it erred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Which error.
    pub code: ErrorCode,
    /// A sentence for people, at most [`ErrorBody::MAX_MESSAGE_CHARS`] characters.
    pub message: String,
}

impl ErrorBody {
    /// Longest message sent, in characters. A parser's error quotes the
    /// offending value (serde writes `invalid type: string "…"`), and a
    /// client must not get its whole payload, up to the payload limit,
    /// echoed back in an error, nor fill the logs with it.
    pub const MAX_MESSAGE_CHARS: usize = 200;

    /// The body for `code`; a longer `message` is cut to [`Self::MAX_MESSAGE_CHARS`].
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if let Some((cut, _)) = message.char_indices().nth(Self::MAX_MESSAGE_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        ErrorBody { code, message }
    }

    /// A `bad_request` body.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorBody {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_the_contract_shape() {
        let body = ErrorBody::new(ErrorCode::NameTaken, "alice is taken");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"code":"name_taken","message":"alice is taken"}"#
        );
    }

    #[test]
    fn as_str_matches_serde() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::TooLarge,
            ErrorCode::RateLimited,
            ErrorCode::NameTaken,
            ErrorCode::NotJoined,
            ErrorCode::NotInRoom,
            ErrorCode::UnknownSymbol,
            ErrorCode::Unavailable,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
