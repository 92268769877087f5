//! Property tests over arbitrary input for the parsers and checks `ops`
//! runs on every connection before an app sees it: the raw route's request
//! head, the peek at a request line, the Origin check, `TRUSTED_PROXIES`
//! and `X-Forwarded-For`. Never a panic, nothing kept beyond the input's
//! bound, and the verdict the rules give, written out here a second time.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default, as in
//! `cargo test`; `scripts/fuzz.sh` runs many more).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use http::{HeaderMap, HeaderValue};
use ops::forwarded::{Network, TrustedProxies};
use ops::origin::OriginPolicy;
use ops::peek::request_line_asks_for;
use ops::raw_route::{HeadError, MAX_HEAD_BYTES, parse_head};
use proptest::prelude::*;
use std::net::IpAddr;

/// Bytes that look like a request head more often than random bytes do.
fn head_like() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"GET ".to_vec()),
        Just(b"/events".to_vec()),
        Just(b"?symbols=AAPL".to_vec()),
        Just(b" HTTP/1.1".to_vec()),
        Just(b" HTTP/1.0".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"Host: x".to_vec()),
        Just(b"Last-Event-ID: 1-2".to_vec()),
        Just(b": ".to_vec()),
        prop::collection::vec(any::<u8>(), 0..16),
        (1usize..3000).prop_map(|len| vec![b'a'; len]),
    ];
    prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

/// A well-formed head: request line, headers, blank line.
fn valid_head() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    (
        "/[a-z0-9/?=&,.-]{0,40}",
        prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,20}", "[ -~]{0,60}"), 0..20),
    )
}

fn render(path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The rule for a peeked request line, independent of `ops`.
fn asks_for_rule(seen: &[u8], path: &str) -> Option<bool> {
    let wanted = format!("GET {path}");
    let wanted = wanted.as_bytes();
    if seen.len() > wanted.len() {
        Some(seen.starts_with(wanted) && matches!(seen[wanted.len()], b' ' | b'?'))
    } else if wanted.starts_with(seen) {
        None
    } else {
        Some(false)
    }
}

/// The Origin rule of the contract, independent of `ops`: no Origin passes
/// (not a browser); a browser origin must name the request's host, or be
/// listed (`*` lists every origin). Comparison ignores case, surrounding
/// blanks and a trailing slash.
fn origin_rule(allowed: &[String], origin: Option<&[u8]>, host: Option<&[u8]>) -> bool {
    let Some(origin) = origin else { return true };
    let Ok(origin) = std::str::from_utf8(origin) else {
        return false;
    };
    if !origin
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return false;
    }
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if allowed
        .iter()
        .any(|allowed| allowed == "*" || allowed.to_ascii_lowercase() == origin)
    {
        return true;
    }
    let host = host
        .and_then(|host| std::str::from_utf8(host).ok())
        .filter(|host| {
            host.bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        })
        .map(|host| host.trim().to_ascii_lowercase());
    match (host, origin.split_once("://")) {
        (Some(host), Some((_, origin_host))) => origin_host == host,
        _ => false,
    }
}

fn ip_strategy() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        (0u8..4).prop_map(|last| IpAddr::from([10, 0, 0, last])),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

proptest! {
    #[test]
    fn any_bytes_get_a_head_a_wait_or_a_refusal_never_a_panic(bytes in head_like()) {
        match parse_head(&bytes) {
            Ok(Some(request)) => {
                // What was kept is no larger than what was read.
                let kept: usize = request.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
                prop_assert!(kept + request.uri().to_string().len() <= bytes.len());
                prop_assert!(bytes.len() >= 16);
            }
            Ok(None) => prop_assert!(bytes.len() <= MAX_HEAD_BYTES),
            Err(HeadError::TooLarge) => {}
            Err(HeadError::Invalid(why)) => prop_assert!(why.len() < 100),
            Err(HeadError::Io(error)) => prop_assert!(false, "no I/O here: {error}"),
        }
    }

    #[test]
    fn a_valid_head_is_read_whole_and_its_prefixes_wait((path, headers) in valid_head(), cut in any::<prop::sample::Index>()) {
        let head = render(&path, &headers);
        let verdict = parse_head(&head);
        if head.len() > MAX_HEAD_BYTES {
            prop_assert!(matches!(verdict, Err(HeadError::TooLarge)));
        } else {
            let request = verdict.expect("a valid head parses").expect("and is complete");
            prop_assert_eq!(request.uri().to_string(), path);
            for (name, value) in &headers {
                let values: Vec<_> = request.headers().get_all(name.as_str()).iter().collect();
                prop_assert!(values.iter().any(|v| v.as_bytes() == value.trim().as_bytes()), "{name}: {value:?} in {values:?}");
            }
            let prefix = &head[..cut.index(head.len())];
            prop_assert!(matches!(parse_head(prefix), Ok(None)), "prefix of {} bytes", prefix.len());
        }
    }

    #[test]
    fn a_head_over_the_bound_is_refused_as_too_large(filler in 1usize..40_000) {
        let mut head = b"GET /events HTTP/1.1\r\nX-Filler: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + filler));
        let complete = [head.clone(), b"\r\n\r\n".to_vec()].concat();
        prop_assert!(matches!(parse_head(&head), Err(HeadError::TooLarge)));
        prop_assert!(matches!(parse_head(&complete), Err(HeadError::TooLarge)));
    }

    #[test]
    fn peeking_at_a_request_line_follows_the_rule(
        seen in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "(GET )?/(events|healthz|metrics)?[ ?a-z]{0,3}".prop_map(String::into_bytes),
        ],
        path in prop_oneof![Just("/events"), Just("/healthz"), Just("/metrics"), Just("/")],
    ) {
        prop_assert_eq!(request_line_asks_for(&seen, path), asks_for_rule(&seen, path));
    }

    #[test]
    fn the_origin_check_follows_the_rule(
        allowed in prop::collection::vec(prop_oneof![Just("*".to_owned()), "https?://[a-zA-Z.]{1,12}(:[0-9]{2,4})?"], 0..3),
        origin in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..30),
            "(https?://)?[a-zA-Z0-9.:]{0,20}/? ?".prop_map(String::into_bytes),
        ]),
        host in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..30),
            "[a-zA-Z0-9.:]{0,20}".prop_map(String::into_bytes),
        ]),
    ) {
        let mut headers = HeaderMap::new();
        // Bytes a header value cannot carry never reach the check.
        let origin = origin.filter(|o| HeaderValue::from_bytes(o).is_ok());
        let host = host.filter(|h| HeaderValue::from_bytes(h).is_ok());
        if let Some(origin) = &origin {
            headers.insert(http::header::ORIGIN, HeaderValue::from_bytes(origin).unwrap());
        }
        if let Some(host) = &host {
            headers.insert(http::header::HOST, HeaderValue::from_bytes(host).unwrap());
        }
        let allowed_normalized: Vec<String> = allowed.iter().map(|a| a.trim_end_matches('/').to_owned()).collect();
        let policy = OriginPolicy::new(allowed_normalized.clone());
        prop_assert_eq!(
            policy.allows(&headers),
            origin_rule(&allowed_normalized, origin.as_deref(), host.as_deref())
        );
    }

    #[test]
    fn any_trusted_proxies_text_parses_or_is_refused(text in "[0-9a-f.:/, ]{0,40}|\\PC{0,20}") {
        // Never a panic; a list that parses names networks that contain
        // their own base address.
        if let Ok(list) = text.parse::<TrustedProxies>() {
            for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let network: Network = entry.parse().unwrap();
                let base: IpAddr = entry.split('/').next().unwrap().parse().unwrap();
                prop_assert!(network.contains(base));
                prop_assert!(list.trusts(base));
            }
        }
    }

    #[test]
    fn forwarded_for_never_names_anyone_it_does_not_list(
        peer in ip_strategy(),
        values in prop::collection::vec(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(ip_strategy(), 0..4).prop_map(|ips| {
                ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ").into_bytes()
            }),
        ], 0..3),
    ) {
        let proxies: TrustedProxies = "10.0.0.0/30, ::1".parse().unwrap();
        let client = proxies.client_address(peer, values.iter().map(Vec::as_slice));
        if !proxies.trusts(peer) {
            prop_assert_eq!(client, peer);
        } else if client != peer {
            // Someone the header named, and the last hop we could trust
            // named it: never an address that appears nowhere.
            let listed = values.iter().any(|value| {
                String::from_utf8_lossy(value).split(',').any(|entry| {
                    let entry = entry.trim().trim_start_matches('[');
                    entry.parse::<IpAddr>().ok() == Some(client)
                        || entry.split(']').next().and_then(|e| e.parse::<IpAddr>().ok()) == Some(client)
                        || entry.rsplit_once(':').and_then(|(a, _)| a.parse::<IpAddr>().ok()) == Some(client)
                        || entry.parse::<IpAddr>().ok().map(|ip| match ip { IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4), v4 => v4 }) == Some(client)
                })
            });
            prop_assert!(listed, "{client} from {values:?}");
        }
    }
}
