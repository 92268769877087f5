//! Token authentication end to end: the binary with `AUTH_JWT_*` set,
//! WebSocket clients over real sockets carrying the token in `/ws?token=`.
//! Every bad token is refused with `401` on the upgrade; a good one is
//! served under its `name`; one person's tabs are one member; a token that
//! expires closes its socket with 4401.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, http_get, start, upgrade};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::TestServer;
use testkit::tokens::{self, claims, signed, with};

const BINARY: &str = env!("CARGO_BIN_EXE_ws-chat");

async fn server() -> TestServer {
    let auth = tokens::public_key_env();
    let mut env: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("MSG_RATE", "0"));
    start(&env).await
}

/// Opens `/ws` with `token`; a refusal is its status and JSON body.
async fn open(server: &TestServer, token: Option<&str>) -> Result<Client, (u16, Value)> {
    let url = match token {
        Some(token) => server.ws_url(&format!("/ws?token={token}")),
        None => server.ws_url("/ws"),
    };
    match upgrade(server, url).await {
        Ok(ws) => Ok(Client { ws }),
        Err(refusal) => {
            let body = serde_json::from_slice(&refusal.body).unwrap_or(Value::Null);
            Err((refusal.status, body))
        }
    }
}

/// A joined socket of person `sub`; its welcome.
async fn person(server: &TestServer, sub: &str, name: &str) -> (Client, Value) {
    let token = signed(&claims(sub, name));
    let mut client = open(server, Some(&token)).await.unwrap();
    client
        .send(json!({"type": "hello", "name": "whatever I ask"}))
        .await;
    let welcome = client.next_of("welcome").await;
    (client, welcome)
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401() {
    let server = server().await;
    for (what, token) in tokens::refused("42", "Ada") {
        let Err((status, body)) = open(&server, token.as_deref()).await else {
            panic!("{what} was let in");
        };
        assert_eq!(status, 401, "{what}");
        assert_eq!(body["code"], "unauthorized", "{what}: {body}");
    }
    // A plain GET tells a page why.
    let expired = with(
        claims("42", "Ada"),
        json!({"exp": tokens::now_secs() - 120}),
    );
    let (status, body) = http_get(&server, &format!("/ws?token={}", signed(&expired))).await;
    assert_eq!(status, 401);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["message"], "the token has expired");
}

#[tokio::test]
async fn a_good_token_is_served_under_its_name() {
    let server = server().await;
    let (status, health) = http_get(&server, "/healthz").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["auth"], "token", "the page learns a token is needed");
    let (mut ada, welcome) = person(&server, "42", "Ada").await;
    assert_eq!(
        welcome["you"]["name"], "Ada",
        "the token's name, not the asked one"
    );
    ada.say("hi").await;
    let message = ada.next_of("message").await;
    assert_eq!(message["from"]["name"], "Ada");
}

/// The frames `observer` sees until its own marker message comes back:
/// the joins and leaves in between, by name.
async fn notices_until_marker(observer: &mut Client, marker: &str) -> Vec<String> {
    observer.say(marker).await;
    let mut seen = Vec::new();
    loop {
        let frame = observer.next().await;
        match frame["type"].as_str() {
            Some("message") if frame["text"] == marker => return seen,
            Some(kind @ ("joined" | "left")) => {
                seen.push(format!("{kind} {}", frame["user"]["name"]))
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn one_person_in_two_tabs_is_one_member_and_leaves_once() {
    let server = server().await;
    let (mut observer, _) = person(&server, "1", "Observer").await;
    let (mut tab_one, first) = person(&server, "42", "Ada").await;
    let (mut tab_two, second) = person(&server, "42", "Ada").await;
    assert_eq!(first["you"], second["you"], "one user for both tabs");
    let names: Vec<&str> = second["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|name| **name == "Ada").count(),
        1,
        "shown once: {names:?}"
    );
    let seen = notices_until_marker(&mut observer, "after both tabs").await;
    assert_eq!(seen, vec![r#"joined "Ada""#], "one join for two tabs");
    assert_eq!(tab_one.next_of("message").await["text"], "after both tabs");
    assert_eq!(tab_two.next_of("message").await["text"], "after both tabs");

    tab_one.ws.close(None).await.unwrap();
    let seen = notices_until_marker(&mut observer, "one tab closed").await;
    assert!(
        seen.is_empty(),
        "a tab closing is not the member leaving: {seen:?}"
    );
    assert_eq!(tab_two.next_of("message").await["text"], "one tab closed");
    // A message from the remaining tab still comes from Ada.
    tab_two.say("from the second tab").await;
    assert_eq!(observer.next_of("message").await["from"]["name"], "Ada");
    tab_two.ws.close(None).await.unwrap();
    let left = observer.next_of("left").await;
    assert_eq!(left["user"]["name"], "Ada");
}

#[tokio::test]
async fn an_expired_token_closes_its_socket_with_4401() {
    let server = server().await;
    // Past `exp` plus the server's leeway of 5 s, the socket closes.
    let soon = signed(&with(
        claims("9", "Brief"),
        json!({"exp": tokens::now_secs() + 1}),
    ));
    let mut brief = open(&server, Some(&soon)).await.unwrap();
    brief.send(json!({"type": "hello", "name": "x"})).await;
    assert_eq!(brief.next_of("welcome").await["you"]["name"], "Brief");
    let (_observer, _) = person(&server, "1", "Observer").await;
    let close = tokio::time::timeout(Duration::from_secs(15), async {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match brief.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed in time")
    .expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 4401);
    assert_eq!(close.reason.as_str(), "the token has expired");
}

#[tokio::test]
async fn the_token_subcommand_mints_what_the_server_accepts() {
    let secret = "a development secret for the subcommand test";
    let output = std::process::Command::new(BINARY)
        .args(["token", "--sub", "42", "--name", "Ada", "--ttl", "10m"])
        .env("AUTH_JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let server = start(&[("AUTH_JWT_SECRET", secret)]).await;
    let mut ada = open(&server, Some(&token)).await.unwrap();
    ada.send(json!({"type": "hello", "name": "x"})).await;
    assert_eq!(ada.next_of("welcome").await["you"]["name"], "Ada");
}

#[tokio::test]
async fn without_auth_settings_no_token_is_asked() {
    let server = start(&[]).await;
    let (_, health) = http_get(&server, "/healthz").await;
    let health: Value = serde_json::from_str(&health).unwrap();
    assert!(health.get("auth").is_none(), "{health}");
    let mut anyone = open(&server, Some("ignored")).await.unwrap();
    anyone.send(json!({"type": "hello", "name": "bob"})).await;
    assert_eq!(anyone.next_of("welcome").await["you"]["name"], "bob");
}
