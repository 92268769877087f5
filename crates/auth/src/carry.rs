//! Where a token rides on an HTTP request, read without any HTTP library:
//! a query parameter (browsers cannot set headers on a WebSocket or an
//! EventSource), an `Authorization: Bearer` header, or a cookie.

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
}
