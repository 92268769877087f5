//! The contract's limits on user-supplied strings, in one place.
//!
//! Lengths count characters (Unicode scalar values), not bytes, after trimming,
//! so "é" counts as one and surrounding spaces never count.

use crate::error::{ErrorBody, ErrorCode};

/// Longest nickname, in characters.
pub const NAME_MAX_CHARS: usize = 32;
/// Longest room name, in characters.
pub const ROOM_MAX_CHARS: usize = 40;
/// Longest message text, in characters.
pub const TEXT_MAX_CHARS: usize = 2000;
/// Longest `clientId`, in characters.
pub const CLIENT_ID_MAX_CHARS: usize = 64;

/// A nickname: trimmed, 1 to 32 characters, no control characters.
pub fn name(raw: &str) -> Result<String, ErrorBody> {
    bounded_line("name", raw, NAME_MAX_CHARS, ErrorCode::BadRequest)
}

/// A room name: trimmed, 1 to 40 characters, no control characters.
pub fn room(raw: &str) -> Result<String, ErrorBody> {
    bounded_line("room", raw, ROOM_MAX_CHARS, ErrorCode::BadRequest)
}

/// Message text: trimmed, 1 to 2000 characters. Newlines and tabs are allowed
/// (people paste multi-line text); other control characters are not, since they
/// only serve to confuse terminals and logs.
pub fn text(raw: &str) -> Result<String, ErrorBody> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ErrorBody::bad_request("text must not be empty"));
    }
    if trimmed.chars().count() > TEXT_MAX_CHARS {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("text must be at most {TEXT_MAX_CHARS} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ErrorBody::bad_request(
            "text must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// The optional opaque `clientId`: up to 64 characters, no control characters.
/// An empty one is treated as absent.
pub fn client_id(raw: Option<&str>) -> Result<Option<String>, ErrorBody> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().count() > CLIENT_ID_MAX_CHARS {
        return Err(ErrorBody::bad_request(format!(
            "clientId must be at most {CLIENT_ID_MAX_CHARS} characters"
        )));
    }
    if raw.chars().any(char::is_control) {
        return Err(ErrorBody::bad_request(
            "clientId must not contain control characters",
        ));
    }
    Ok(Some(raw.to_owned()))
}

/// The case-insensitive key under which a name is unique.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn bounded_line(
    field: &str,
    raw: &str,
    max_chars: usize,
    too_long: ErrorCode,
) -> Result<String, ErrorBody> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ErrorBody::bad_request(format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > max_chars {
        return Err(ErrorBody::new(
            too_long,
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ErrorBody::bad_request(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  alice ").unwrap(), "alice");
        assert_eq!(name("   ").unwrap_err().code, ErrorCode::BadRequest);
        assert!(name(&"a".repeat(32)).is_ok());
        assert_eq!(
            name(&"a".repeat(33)).unwrap_err().code,
            ErrorCode::BadRequest
        );
        assert!(name("al\u{7}ice").is_err());
        assert!(name("ali\nce").is_err());
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert!(name(&"é".repeat(32)).is_ok());
        assert!(room(&"日".repeat(40)).is_ok());
        assert!(room(&"日".repeat(41)).is_err());
        assert!(text(&"😀".repeat(2000)).is_ok());
        assert_eq!(
            text(&"😀".repeat(2001)).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn text_allows_newlines_but_not_other_controls() {
        assert_eq!(text(" line one\nline two ").unwrap(), "line one\nline two");
        assert!(text("bell\u{7}").is_err());
        assert_eq!(text(" \n ").unwrap_err().code, ErrorCode::BadRequest);
    }

    #[test]
    fn client_ids_are_optional_and_bounded() {
        assert_eq!(client_id(None).unwrap(), None);
        assert_eq!(client_id(Some("")).unwrap(), None);
        assert_eq!(client_id(Some("k3j4")).unwrap().as_deref(), Some("k3j4"));
        assert!(client_id(Some(&"x".repeat(65))).is_err());
    }

    proptest! {
        #[test]
        fn accepted_names_satisfy_every_rule(raw in "\\PC{0,40}|[ \\t\\x00-\\x1f]{0,5}") {
            if let Ok(valid) = name(&raw) {
                prop_assert_eq!(valid.trim(), valid.as_str());
                let chars = valid.chars().count();
                prop_assert!((1..=NAME_MAX_CHARS).contains(&chars));
                prop_assert!(!valid.chars().any(char::is_control));
            }
        }

        #[test]
        fn accepted_text_satisfies_every_rule(raw in "(\\PC|\\n|\\x07){0,2100}") {
            match text(&raw) {
                Ok(valid) => {
                    prop_assert_eq!(valid.trim(), valid.as_str());
                    prop_assert!((1..=TEXT_MAX_CHARS).contains(&valid.chars().count()));
                }
                Err(error) => {
                    let trimmed = raw.trim();
                    let reason_is_real = trimmed.is_empty()
                        || trimmed.chars().count() > TEXT_MAX_CHARS
                        || trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
                    prop_assert!(reason_is_real, "rejected valid text: {error}");
                }
            }
        }
    }
}
