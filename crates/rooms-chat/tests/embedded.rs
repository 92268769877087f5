//! End-to-end checks of the binary in embedded mode, over real sockets: the
//! HTTP routes, the Engine.IO handshake on both transports, the origin
//! check, and the chat events.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::Client;
use serde_json::json;
use testkit::TestServer;

const BINARY: &str = env!("CARGO_BIN_EXE_rooms-chat");

#[tokio::test]
async fn serves_health_metrics_and_the_page() {
    let server = TestServer::start(BINARY, &[]).await.unwrap();
    let health: serde_json::Value = reqwest::get(server.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["mode"], "embedded");
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("rooms_redis_up 1"), "{metrics}");
    assert!(metrics.contains("connections_open"), "{metrics}");
    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().to_lowercase().contains("<html"));
    let missing = reqwest::get(server.url("/no-such-file")).await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn long_polling_handshake_answers_an_open_packet() {
    let server = TestServer::start(BINARY, &[]).await.unwrap();
    let response = reqwest::get(server.url("/socket.io/?EIO=4&transport=polling"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let open: serde_json::Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    assert!(open["sid"].as_str().is_some_and(|sid| !sid.is_empty()));
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert!(open["maxPayload"].as_u64().unwrap() >= 16 * 1024);
}

#[tokio::test]
async fn foreign_browser_origins_are_refused() {
    let server = TestServer::start(BINARY, &[("ALLOWED_ORIGINS", "https://chat.example.com")])
        .await
        .unwrap();
    let handshake = server.url("/socket.io/?EIO=4&transport=polling");
    let http = reqwest::Client::new();
    let status = |origin: &'static str| {
        let request = http.get(&handshake).header("Origin", origin);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(status("http://evil.example").await.status(), 403);
    let own = format!("http://{}", server.addr);
    let own = http
        .get(&handshake)
        .header("Origin", own)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let listed = status("https://chat.example.com").await;
    assert_eq!(listed.status(), 200);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://chat.example.com"
    );
    // The WebSocket upgrade is checked too.
    let request = tokio_tungstenite::tungstenite::http::Request::builder()
        .uri(server.ws_url("/socket.io/?EIO=4&transport=websocket"))
        .header("Host", server.addr.to_string())
        .header("Origin", "http://evil.example")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
    // Pages are not cross-origin sensitive.
    assert_eq!(status("http://evil.example").await.status(), 403);
    let page = http
        .get(server.url("/healthz"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn members_chat_in_a_room() {
    let server = TestServer::start(BINARY, &[]).await.unwrap();
    let mut alice = Client::connect(server.addr).await;
    let mut bob = Client::connect(server.addr).await;
    let ack = alice.join("general", "alice").await;
    assert_eq!(
        ack,
        json!({"ok":true,"room":"general","members":["alice"],"history":[]})
    );
    bob.join("general", "bob").await;
    let joined = alice.next("user_joined").await;
    assert_eq!(
        (joined["room"].clone(), joined["name"].clone()),
        (json!("general"), json!("bob"))
    );

    // A socket not yet in the room: bob, already in it, would be refused
    // for that reason before the name is even looked at.
    let mut carol = Client::connect(server.addr).await;
    let taken = carol
        .request("join", json!({"room":"general","name":"ALICE"}))
        .await;
    assert_eq!(taken["ok"], false);
    assert_eq!(taken["error"]["code"], "name_taken", "{taken}");

    let sent = alice
        .request("message", json!({"room":"general","text":"  hi  "}))
        .await;
    assert_eq!(sent["ok"], true);
    assert_eq!(sent["id"], 1);
    for client in [&mut alice, &mut bob] {
        let message = client.next("message").await;
        assert_eq!(message["id"], 1);
        assert_eq!(message["from"], "alice");
        assert_eq!(message["text"], "hi");
        assert_eq!(message["ts"], sent["ts"]);
    }

    let outside = bob
        .request("message", json!({"room":"elsewhere","text":"x"}))
        .await;
    assert_eq!(outside["error"]["code"], "not_in_room");
    for (bad, code) in [
        (json!(null), "bad_request"),
        (json!(42), "bad_request"),
        (json!([1]), "bad_request"),
        (json!({"room":"general"}), "bad_request"),
        (
            json!({"room":"general","text":"x".repeat(2001)}),
            "too_large",
        ),
    ] {
        let refused = bob.request("message", bad.clone()).await;
        assert_eq!(refused["ok"], false, "{bad}");
        assert_eq!(refused["error"]["code"], code, "{bad}: {refused}");
        assert!(refused["error"]["message"].is_string());
    }

    bob.request("typing", json!({"room":"general","typing":true}))
        .await;
    assert_eq!(
        alice.next("typing").await,
        json!({"room":"general","name":"bob","typing":true})
    );

    let rooms = alice.request("rooms", json!(null)).await;
    assert_eq!(
        rooms,
        json!({"ok":true,"rooms":[{"name":"general","members":2}]})
    );

    bob.close().await;
    let left = alice.next("user_left").await;
    assert_eq!(
        (left["name"].clone(), left["reason"].clone()),
        (json!("bob"), json!("disconnected"))
    );

    // A newcomer with `since` gets what it missed.
    let mut carol = Client::connect(server.addr).await;
    let ack = carol
        .request("join", json!({"room":"general","name":"carol","since":0}))
        .await;
    assert_eq!(ack["history"][0]["id"], 1);
}

#[tokio::test]
async fn floods_are_rate_limited() {
    let server = TestServer::start(BINARY, &[("MSG_RATE", "5")])
        .await
        .unwrap();
    let mut client = Client::connect(server.addr).await;
    client.join("r", "flood").await;
    let mut limited = 0;
    for n in 0..15 {
        let ack = client
            .request("message", json!({"room":"r","text":format!("{n}")}))
            .await;
        if ack["error"]["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(limited >= 4, "only {limited} refused");
}

#[tokio::test]
async fn one_socket_is_answered_in_the_order_it_spoke() {
    let server = TestServer::start(BINARY, &[("MSG_RATE", "0")])
        .await
        .unwrap();
    let mut client = Client::connect(server.addr).await;
    // A message right behind its join, without waiting: the join comes first.
    let join = client
        .send_request("join", json!({"room":"order","name":"quick"}))
        .await;
    let mut sent = Vec::new();
    for n in 0..100 {
        sent.push(
            client
                .send_request("message", json!({"room":"order","text":format!("{n}")}))
                .await,
        );
    }
    assert_eq!(client.ack(join).await["ok"], true);
    let mut previous = 0;
    for request in sent {
        let ack = client.ack(request).await;
        let id = ack["id"].as_u64().unwrap_or_else(|| panic!("{ack}"));
        assert!(id > previous, "ids must follow the sending order");
        previous = id;
    }
}

#[tokio::test]
async fn the_room_list_holds_the_busiest_rooms_up_to_its_bound() {
    let server = TestServer::start(BINARY, &[("ROOMS_LIST_MAX", "2")])
        .await
        .unwrap();
    let mut clients = Vec::new();
    for (room, members) in [("quiet", 1), ("busy", 3), ("middle", 2)] {
        for n in 0..members {
            let mut client = Client::connect(server.addr).await;
            client.join(room, &format!("{room}{n}")).await;
            clients.push(client);
        }
    }
    let rooms = clients[0].request("rooms", json!(null)).await;
    assert_eq!(
        rooms,
        json!({"ok":true,"rooms":[{"name":"busy","members":3},{"name":"middle","members":2}]})
    );
    // The push carries the same bounded list.
    let mut pushed = clients[0].next("rooms").await;
    while pushed["rooms"].as_array().map(Vec::len) != Some(2) || pushed["rooms"][1]["members"] != 2
    {
        pushed = clients[0].next("rooms").await;
    }
    assert_eq!(pushed, json!({"rooms":rooms["rooms"]}));
}
