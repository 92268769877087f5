//! The browser-origin check that stops cross-site WebSocket hijacking: a page
//! on another site must not open a socket with the user's cookies.

use http::HeaderMap;

/// Which browser origins may open a socket or stream: the server's own host,
/// plus `ALLOWED_ORIGINS`. A request without `Origin` (not a browser) passes.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// `allowed` are full origins such as `https://chat.example.com`.
    pub fn new(allowed: Vec<String>) -> OriginPolicy {
        OriginPolicy {
            allowed: allowed
                .into_iter()
                .map(|origin| origin.to_ascii_lowercase())
                .collect(),
        }
    }

    /// No `Origin` (a non-browser client) is accepted; a browser origin must
    /// name the host the request was sent to, or be listed.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(http::header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self
            .allowed
            .iter()
            .any(|allowed| allowed == "*" || *allowed == origin)
        {
            return true;
        }
        let host = headers
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok())
            .map(|host| host.trim().to_ascii_lowercase());
        match (host, origin.split_once("://")) {
            (Some(host), Some((_scheme, origin_host))) => origin_host == host,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(http::header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn same_host_and_listed_origins_pass() {
        let policy = OriginPolicy::new(vec!["https://chat.example.com".into()]);
        assert!(policy.allows(&headers(None, "127.0.0.1:8080")));
        assert!(policy.allows(&headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080")));
        assert!(policy.allows(&headers(Some("https://chat.example.com"), "10.0.0.1")));
        assert!(!policy.allows(&headers(Some("http://evil.example"), "127.0.0.1:8080")));
        assert!(!policy.allows(&headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080")));
        assert!(!policy.allows(&headers(Some("null"), "127.0.0.1:8080")));
    }
}
