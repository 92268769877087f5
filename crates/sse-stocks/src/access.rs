//! Token authentication in sse-stocks (on with `AUTH_JWT_*`; the checking
//! itself is the `auth` crate's): where `/events` finds the token (an
//! `Authorization: Bearer` header; else the `access_token` query
//! parameter or cookie, since an EventSource cannot set headers), the
//! symbols its `symbols` claim allows, and the last event of a stream
//! whose token expired.

use crate::symbols::{SymbolSet, SymbolTable};
use auth::{Identity, Refusal, Verifier};
use bytes::Bytes;
use http::{HeaderMap, header};
use protocol::{ErrorBody, ErrorCode};

/// The query parameter and the cookie that may carry the token.
pub const TOKEN_PARAM: &str = "access_token";

/// The event that ends a stream whose token expired; its data is the
/// contract's error JSON. The page shows it and stops reconnecting.
pub const EXPIRED_EVENT: &str = "expired";

/// The identity the request's token proves: the header first, then the
/// query parameter, then the cookie.
pub fn check(
    verifier: &Verifier,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Identity, Refusal> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(auth::carry::bearer);
    let param = query
        .iter()
        .find(|(key, _)| key == TOKEN_PARAM)
        .map(|(_, value)| value.as_str());
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| auth::carry::cookie(value, TOKEN_PARAM));
    verifier.verify(header.or(param).or(cookie))
}

/// The symbols to stream under `identity`'s `symbols` claim: without a
/// claim, `requested`; with one, `requested` if the claim covers it, and
/// the claim's own symbols when nothing in particular was requested.
pub fn symbols(
    table: &SymbolTable,
    identity: &Identity,
    requested: SymbolSet,
    asked_for_some: bool,
) -> Result<SymbolSet, ErrorBody> {
    let Some(claimed) = &identity.symbols else {
        return Ok(requested);
    };
    let mut allowed = SymbolSet::EMPTY;
    for index in claimed
        .iter()
        .filter_map(|symbol| table.index_of(&symbol.to_ascii_uppercase()))
    {
        allowed.insert(index);
    }
    if !asked_for_some {
        return Ok(allowed);
    }
    if allowed.is_superset_of(requested) {
        Ok(requested)
    } else {
        Err(ErrorBody::new(
            ErrorCode::Forbidden,
            "your token does not allow some of these symbols",
        ))
    }
}

/// The stream's last event when the token expires.
pub fn expired_event() -> Bytes {
    let body = ErrorBody::new(ErrorCode::Unauthorized, Refusal::Expired.to_string());
    let json = serde_json::to_string(&body).unwrap_or_default();
    Bytes::from(format!("event: {EXPIRED_EVENT}\ndata: {json}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn holder(symbols: Option<&[&str]>) -> Identity {
        Identity {
            sub: "1".into(),
            name: "Ada".into(),
            rooms: None,
            symbols: symbols.map(|list| list.iter().map(|s| s.to_string()).collect()),
            expires_at: SystemTime::now(),
        }
    }

    #[test]
    fn the_claim_bounds_the_symbols() {
        let table = SymbolTable::defaults();
        let aapl = table.parse_set("AAPL").unwrap();
        let both = table.parse_set("AAPL,MSFT").unwrap();
        let limited = holder(Some(&["aapl", "NOPE"]));
        assert_eq!(symbols(&table, &limited, aapl, true).unwrap(), aapl);
        assert_eq!(symbols(&table, &limited, table.all(), false).unwrap(), aapl);
        let refused = symbols(&table, &limited, both, true).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Forbidden);
        assert_eq!(symbols(&table, &holder(None), both, true).unwrap(), both);
    }

    #[test]
    fn the_token_is_found_in_header_query_or_cookie() {
        let verifier = Verifier::new(auth::AuthConfig::from_secret(b"s"));
        let mut headers = HeaderMap::new();
        assert_eq!(check(&verifier, &headers, &[]), Err(Refusal::Missing));
        let query = vec![(TOKEN_PARAM.to_owned(), "x".to_owned())];
        assert_eq!(check(&verifier, &headers, &query), Err(Refusal::Invalid));
        headers.insert(header::COOKIE, "a=b; access_token=y".parse().unwrap());
        assert_eq!(check(&verifier, &headers, &[]), Err(Refusal::Invalid));
    }
}
