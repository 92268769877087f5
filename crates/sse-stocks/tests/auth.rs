//! Token authentication of `/events` end to end: the binary with
//! `AUTH_JWT_*` set, HTTP clients carrying the token in each place a
//! client may put it (an `Authorization: Bearer` header, the
//! `access_token` query parameter, the `access_token` cookie). Every bad
//! token is refused with a `401` JSON error on each; a good one streams the
//! symbols its claim allows; a token that expires ends its stream with an
//! `expired` event.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BINARY, Sse, get_json, open_with, server, symbols_of};
use protocol::sse::Quote;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::TestServer;
use testkit::tokens::{self, claims, signed, with};

async fn guarded() -> TestServer {
    let auth = tokens::public_key_env();
    let env: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    server(&env).await
}

/// The three places a client may put its token.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    Bearer,
    Query,
    Cookie,
}

const CARRIERS: [Carrier; 3] = [Carrier::Bearer, Carrier::Query, Carrier::Cookie];

/// The URL of `/events?<query>` and the headers of a request carrying
/// `token` where `carrier` puts it.
fn carried(
    server: &TestServer,
    query: &str,
    carrier: Carrier,
    token: Option<&str>,
) -> (String, Vec<(&'static str, String)>) {
    let mut url = server.url(&format!("/events?{query}"));
    let mut headers = Vec::new();
    if let Some(token) = token {
        match carrier {
            Carrier::Bearer => headers.push(("Authorization", format!("Bearer {token}"))),
            Carrier::Cookie => {
                headers.push(("Cookie", format!("theme=dark; access_token={token}")))
            }
            Carrier::Query => url.push_str(&format!("&access_token={token}")),
        }
    }
    (url, headers)
}

/// `GET /events?<query>` with `token` where `carrier` puts it, as a plain
/// HTTP request: what a refused stream answers.
async fn events(
    server: &TestServer,
    query: &str,
    carrier: Carrier,
    token: Option<&str>,
) -> reqwest::Response {
    let (url, headers) = carried(server, query, carrier, token);
    let mut request = reqwest::Client::new().get(&url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// The stream `GET /events?<query>` opens with `token` where `carrier`
/// puts it; panics unless it opens.
async fn stream(server: &TestServer, query: &str, carrier: Carrier, token: Option<&str>) -> Sse {
    let (url, headers) = carried(server, query, carrier, token);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    open_with(&url, &headers).await
}

/// The first event of a stream that must open: the snapshot's symbols.
async fn snapshot_symbols(mut stream: Sse) -> Vec<String> {
    let (_, quotes): (String, Vec<Quote>) = stream.quotes("snapshot").await;
    symbols_of(&quotes).into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401_wherever_it_travels() {
    let server = guarded().await;
    for carrier in CARRIERS {
        for (what, token) in tokens::refused("42", "Ada") {
            let response = events(&server, "symbols=AAPL", carrier, token.as_deref()).await;
            assert_eq!(response.status(), 401, "{what} by {carrier:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body["code"], "unauthorized",
                "{what} by {carrier:?}: {body}"
            );
        }
    }
    let expired = with(
        claims("42", "Ada"),
        json!({"exp": tokens::now_secs() - 120}),
    );
    let response = events(&server, "", Carrier::Bearer, Some(&signed(&expired))).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "the token has expired");
}

#[tokio::test]
async fn a_good_token_streams_wherever_it_travels() {
    let server = guarded().await;
    let (status, health) = get_json(&server.url("/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(health["auth"], "token", "the page learns a token is needed");
    let token = signed(&claims("42", "Ada"));
    for carrier in CARRIERS {
        let opened = stream(&server, "symbols=AAPL,MSFT", carrier, Some(&token)).await;
        assert_eq!(
            snapshot_symbols(opened).await,
            vec!["AAPL", "MSFT"],
            "{carrier:?}"
        );
    }
}

#[tokio::test]
async fn the_symbols_claim_bounds_the_stream() {
    let server = guarded().await;
    let token = signed(&with(
        claims("42", "Ada"),
        json!({"symbols": ["AAPL", "NVDA"]}),
    ));
    let all = stream(&server, "", Carrier::Bearer, Some(&token)).await;
    assert_eq!(
        snapshot_symbols(all).await,
        vec!["AAPL", "NVDA"],
        "no request: the claim's"
    );
    let one = stream(&server, "symbols=NVDA", Carrier::Bearer, Some(&token)).await;
    assert_eq!(snapshot_symbols(one).await, vec!["NVDA"]);
    let outside = events(&server, "symbols=AAPL,MSFT", Carrier::Bearer, Some(&token)).await;
    assert_eq!(outside.status(), 403);
    let body: Value = outside.json().await.unwrap();
    assert_eq!(body["code"], "forbidden", "{body}");
}

#[tokio::test]
async fn an_expiring_token_ends_its_stream_with_an_expired_event() {
    let server = guarded().await;
    // Past `exp` plus the server's leeway of 5 s, the stream ends.
    let soon = signed(&with(
        claims("9", "Brief"),
        json!({"exp": tokens::now_secs() + 1}),
    ));
    let mut events = stream(&server, "symbols=AAPL", Carrier::Query, Some(&soon)).await;
    let last = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let event = events
                .try_next()
                .await
                .unwrap()
                .expect("the stream ended silently");
            if event.event != "tick" && event.event != "snapshot" {
                return event;
            }
        }
    })
    .await
    .expect("ended in time");
    assert_eq!(last.event, "expired");
    let body: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(body["message"], "the token has expired");
    let after = tokio::time::timeout(Duration::from_secs(5), events.try_next()).await;
    assert!(
        matches!(after, Ok(Ok(None))),
        "the stream ends after it: {after:?}"
    );
}

#[tokio::test]
async fn the_token_subcommand_mints_what_the_server_accepts() {
    let secret = "a development secret for the subcommand test";
    let output = std::process::Command::new(BINARY)
        .args(["token", "--sub", "42", "--symbols", "MSFT", "--ttl", "5m"])
        .env("AUTH_JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let server = server(&[("AUTH_JWT_SECRET", secret)]).await;
    let opened = stream(&server, "", Carrier::Cookie, Some(&token)).await;
    assert_eq!(snapshot_symbols(opened).await, vec!["MSFT"]);
}

#[tokio::test]
async fn without_auth_settings_no_token_is_asked() {
    let server = server(&[]).await;
    let (_, health) = get_json(&server.url("/healthz")).await;
    assert!(health.get("auth").is_none(), "{health}");
    let opened = stream(&server, "symbols=AAPL", Carrier::Bearer, Some("ignored")).await;
    assert_eq!(snapshot_symbols(opened).await, vec!["AAPL"]);
}
