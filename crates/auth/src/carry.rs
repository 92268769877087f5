//! Where a token rides on an HTTP request, read without any HTTP library:
//! a query parameter (browsers cannot set headers on a WebSocket or an
//! EventSource), an `Authorization: Bearer` header, or a cookie. And the
//! request target with those parameters blanked, for anything that logs it.

use std::borrow::Cow;

/// Query parameters that may carry a token, blanked by [`redact_target`].
pub const TOKEN_PARAMS: [&str; 2] = ["token", "access_token"];

/// The value of `name` in a query string (`a=1&b=2`, without `?`).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The value of cookie `name` in a `Cookie` header value.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// A request target (`/ws?token=…`) fit for a log line: the value of every
/// parameter in [`TOKEN_PARAMS`] is replaced. Borrowed when there is none.
pub fn redact_target(target: &str) -> Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    let carries_token = query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or_default();
        TOKEN_PARAMS.contains(&key)
    });
    if !carries_token {
        return Cow::Borrowed(target);
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            if TOKEN_PARAMS.contains(&key) {
                format!("{key}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    Cow::Owned(format!("{path}?{}", pairs.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_where_each_app_looks() {
        assert_eq!(
            query_param("a=1&token=x%2Ey", "token").as_deref(),
            Some("x.y")
        );
        assert_eq!(query_param("a=1", "token"), None);
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(
            cookie("a=1; access_token=t.k; b=2", "access_token"),
            Some("t.k")
        );
        assert_eq!(cookie("a=1", "access_token"), None);
    }

    #[test]
    fn logged_targets_carry_no_token() {
        assert_eq!(redact_target("/ws"), "/ws");
        assert_eq!(redact_target("/events?symbols=A"), "/events?symbols=A");
        assert_eq!(
            redact_target("/events?symbols=A&access_token=secret"),
            "/events?symbols=A&access_token=[redacted]"
        );
        assert_eq!(redact_target("/ws?token=secret"), "/ws?token=[redacted]");
    }
}
