//! Token authentication end to end: the binary with `AUTH_JWT_*` set,
//! clients over real sockets. Every bad token is refused at connect with
//! `unauthorized`; a good one is served under its `name`, only in the
//! rooms its claim allows; one person's tabs (on one instance or two,
//! through a private redis-server) are one member; a token that expires
//! ends its socket unless a fresh one was handed in.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::Client;
use serde_json::{Value, json};
use std::net::SocketAddr;
use testkit::tokens::{self, claims, signed, with};
use testkit::{SharedRedis, TestServer};

const BINARY: &str = env!("CARGO_BIN_EXE_rooms-chat");

async fn server(extra: &[(&str, &str)]) -> TestServer {
    let auth = tokens::public_key_env();
    let mut env: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("MSG_RATE", "0"));
    env.extend_from_slice(extra);
    TestServer::start(BINARY, &env).await.unwrap()
}

async fn connect(addr: SocketAddr, token: &str) -> Client {
    Client::connect_with(addr, Some(json!({ "token": token })))
        .await
        .unwrap_or_else(|refused| panic!("refused: {refused}"))
}

/// A socket of person `sub` shown as `name`.
async fn person(addr: SocketAddr, sub: &str, name: &str) -> Client {
    connect(addr, &signed(&claims(sub, name))).await
}

#[tokio::test]
async fn every_bad_token_is_refused_as_unauthorized() {
    let server = server(&[]).await;
    for (what, token) in tokens::refused("42", "Ada") {
        let auth = token.map(|token| json!({ "token": token }));
        let refused = Client::connect_with(server.addr, auth).await;
        let Err(refused) = refused else {
            panic!("{what} was let in");
        };
        let message = refused["message"].as_str().unwrap();
        assert!(message.starts_with("unauthorized: "), "{what}: {refused}");
    }
    // The reason is told.
    let expired = with(
        claims("42", "Ada"),
        json!({"exp": tokens::now_secs() - 120}),
    );
    let refused = Client::connect_with(server.addr, Some(json!({"token": signed(&expired)})))
        .await
        .err()
        .unwrap();
    assert_eq!(refused["message"], "unauthorized: the token has expired");
    // A payload that is no object, or a token that is no string.
    for auth in [json!("just a string"), json!({"token": 42})] {
        assert!(Client::connect_with(server.addr, Some(auth)).await.is_err());
    }
}

#[tokio::test]
async fn a_good_token_is_served_under_its_name() {
    let server = server(&[]).await;
    let health: Value = reqwest::get(server.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["auth"], "token", "the page learns a token is needed");
    let mut ada = person(server.addr, "42", "Ada").await;
    let ack = ada
        .request("join", json!({"room": "general", "name": "Mallory"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        ack["members"],
        json!(["Ada"]),
        "the token's name, not the asked one"
    );
    // A join may leave the name out.
    let ack = ada.request("join", json!({"room": "other"})).await;
    assert_eq!(ack["members"], json!(["Ada"]), "{ack}");
    let sent = ada
        .request("message", json!({"room": "general", "text": "hi"}))
        .await;
    assert_eq!(sent["ok"], true);
    assert_eq!(ada.next("message").await["from"], "Ada");
}

#[tokio::test]
async fn a_room_outside_the_claim_is_forbidden() {
    let server = server(&[]).await;
    let token = signed(&with(
        claims("7", "Grace"),
        json!({"rooms": ["team-*", "lobby"]}),
    ));
    let mut grace = connect(server.addr, &token).await;
    let ack = grace
        .request("join", json!({"room": "general", "name": "Grace"}))
        .await;
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["error"]["code"], "forbidden", "{ack}");
    for room in ["team-red", "lobby"] {
        let ack = grace.request("join", json!({"room": room})).await;
        assert_eq!(ack["ok"], true, "{room}: {ack}");
    }
}

/// What `observer` sees of a room until its own marker message comes
/// back: the notices in between, by name.
async fn notices_until_marker(observer: &mut Client, room: &str, marker: &str) -> Vec<String> {
    let sent = observer
        .request("message", json!({"room": room, "text": marker}))
        .await;
    assert_eq!(sent["ok"], true, "{sent}");
    let mut seen = Vec::new();
    loop {
        let (event, payload) = observer.next_any().await;
        match event.as_str() {
            "message" if payload["text"] == marker => return seen,
            "user_joined" | "user_left" => seen.push(format!("{event} {}", payload["name"])),
            _ => {}
        }
    }
}

/// Ada opens `first` and `second` tab (on the same server or two); the
/// observer on `watching` sees one join, no leave when the first closes,
/// and one leave when the last does.
async fn two_tabs_are_one_member(first: SocketAddr, second: SocketAddr, watching: SocketAddr) {
    let mut observer = person(watching, "1", "Observer").await;
    observer.join("desk", "Observer").await;
    let mut tab_one = person(first, "42", "Ada").await;
    tab_one.join("desk", "Ada").await;
    let mut tab_two = person(second, "42", "Ada").await;
    let ack = tab_two.join("desk", "Ada").await;
    let mut members: Vec<String> = serde_json::from_value(ack["members"].clone()).unwrap();
    members.sort();
    assert_eq!(members, vec!["Ada", "Observer"], "shown once");
    let seen = notices_until_marker(&mut observer, "desk", "after both tabs").await;
    assert_eq!(seen, vec![r#"user_joined "Ada""#], "one join for two tabs");
    // Both tabs receive the room.
    assert_eq!(tab_one.next("message").await["text"], "after both tabs");
    assert_eq!(tab_two.next("message").await["text"], "after both tabs");
    let rooms = observer.request("rooms", Value::Null).await;
    assert_eq!(rooms["rooms"], json!([{"name": "desk", "members": 2}]));

    tab_one.close().await;
    let seen = notices_until_marker(&mut observer, "desk", "one tab closed").await;
    assert!(
        seen.is_empty(),
        "a tab closing is not the member leaving: {seen:?}"
    );
    assert_eq!(tab_two.next("message").await["text"], "one tab closed");
    tab_two.close().await;
    let left = observer.next("user_left").await;
    assert_eq!(
        (left["name"].as_str(), left["reason"].as_str()),
        (Some("Ada"), Some("disconnected"))
    );
}

#[tokio::test]
async fn one_person_in_two_tabs_is_one_member_and_leaves_once() {
    let server = server(&[]).await;
    two_tabs_are_one_member(server.addr, server.addr, server.addr).await;
}

#[tokio::test]
async fn one_person_on_two_instances_is_one_member_and_leaves_once() {
    let redis = SharedRedis::single().await.unwrap();
    let url = redis.url();
    let cluster = [
        ("REDIS_URL", url.as_str()),
        ("HEARTBEAT_MS", "200"),
        ("INSTANCE_TTL_MS", "1000"),
    ];
    let one = server(&cluster).await;
    let two = server(&cluster).await;
    two_tabs_are_one_member(one.addr, two.addr, one.addr).await;
}

#[tokio::test]
async fn an_expiring_token_ends_its_socket_unless_refreshed() {
    let server = server(&[]).await;
    // Past `exp` plus the server's leeway of 5 s, the socket ends.
    let soon = |sub: &str, name: &str| {
        signed(&with(
            claims(sub, name),
            json!({"exp": tokens::now_secs() + 1}),
        ))
    };
    let mut lapsing = connect(server.addr, &soon("1", "Lapsing")).await;
    lapsing.join("clock", "Lapsing").await;
    let mut renewed = connect(server.addr, &soon("2", "Renewed")).await;
    renewed.join("clock", "Renewed").await;

    // A fresh token must be the same person under the same name.
    let stranger = signed(&claims("3", "Renewed"));
    let ack = renewed.request("refresh", json!({"token": stranger})).await;
    assert_eq!(ack["error"]["code"], "unauthorized", "{ack}");
    let ack = renewed
        .request("refresh", json!({"token": "not a token"}))
        .await;
    assert_eq!(ack["error"]["code"], "unauthorized", "{ack}");
    let ack = renewed
        .request("refresh", json!({"token": signed(&claims("2", "Renewed"))}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let expires_at = ack["expiresAt"].as_u64().unwrap();
    assert!(expires_at > (tokens::now_secs() + 3000) * 1000, "{ack}");

    let notice = lapsing.next("auth_expired").await;
    assert_eq!(notice["code"], "unauthorized");
    assert_eq!(notice["message"], "the token has expired");
    lapsing.disconnected().await;
    let left = renewed.next("user_left").await;
    assert_eq!(left["name"], "Lapsing");
    // The refreshed socket lives on.
    let ack = renewed
        .request("message", json!({"room": "clock", "text": "still here"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
}

#[tokio::test]
async fn the_token_subcommand_mints_what_the_server_accepts() {
    let secret = "a development secret for the subcommand test";
    let output = std::process::Command::new(BINARY)
        .args([
            "token", "--sub", "42", "--name", "Ada", "--rooms", "team-*", "--ttl", "1h",
        ])
        .env("AUTH_JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let server = TestServer::start(BINARY, &[("AUTH_JWT_SECRET", secret)])
        .await
        .unwrap();
    let mut ada = connect(server.addr, &token).await;
    let ack = ada
        .request("join", json!({"room": "team-a", "name": "x"}))
        .await;
    assert_eq!(ack["members"], json!(["Ada"]), "{ack}");
    let ack = ada
        .request("join", json!({"room": "general", "name": "x"}))
        .await;
    assert_eq!(ack["error"]["code"], "forbidden", "{ack}");
    // Without a secret there is nothing to mint with.
    let output = std::process::Command::new(BINARY)
        .args(["token", "--sub", "42"])
        .env_remove("AUTH_JWT_SECRET")
        .env_remove("AUTH_JWT_PUBLIC_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[tokio::test]
async fn without_auth_settings_no_token_is_asked() {
    let server = TestServer::start(BINARY, &[]).await.unwrap();
    let health: Value = reqwest::get(server.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(health.get("auth").is_none(), "{health}");
    let mut anyone = Client::connect_with(server.addr, Some(json!({"token": "ignored"})))
        .await
        .unwrap();
    let ack = anyone.join("general", "bob").await;
    assert_eq!(ack["members"], json!(["bob"]));
}
