//! End-to-end checks of cluster mode: several instances of the binary on a
//! private redis-server, over real sockets, including the faults (kill -9
//! of an instance, a Redis restart, a burst past every buffer).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testkit::{RedisServer, TestServer};

const BINARY: &str = env!("CARGO_BIN_EXE_rooms-chat");

async fn instance(redis: &RedisServer, extra: &[(&str, &str)]) -> TestServer {
    let url = redis.url();
    let mut env = vec![
        ("REDIS_URL", url.as_str()),
        ("MSG_RATE", "0"),
        ("HEARTBEAT_MS", "200"),
        ("INSTANCE_TTL_MS", "1000"),
    ];
    env.extend_from_slice(extra);
    TestServer::start(BINARY, &env).await.unwrap()
}

/// Collects `count` room messages and returns their ids in arrival order.
async fn message_ids(client: &mut Client, count: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        ids.push(client.next("message").await["id"].as_u64().unwrap());
    }
    ids
}

async fn metric(server: &TestServer, name: &str) -> u64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn instances_behave_as_one_server() {
    let redis = RedisServer::start().await.unwrap();
    let one = instance(&redis, &[]).await;
    let two = instance(&redis, &[]).await;
    let mut alice = Client::connect(one.addr).await;
    let mut bob = Client::connect(two.addr).await;
    alice.join("general", "alice").await;
    let ack = bob.join("general", "bob").await;
    assert_eq!(ack["members"].as_array().unwrap().len(), 2);
    assert_eq!(alice.next("user_joined").await["name"], "bob");

    let taken = bob
        .request("join", json!({"room":"other","name":"x"}))
        .await;
    assert_eq!(taken["ok"], true);
    let refused = alice
        .request("join", json!({"room":"other","name":"X"}))
        .await;
    assert_eq!(refused["error"]["code"], "name_taken");

    let rooms = alice.request("rooms", Value::Null).await;
    assert_eq!(
        rooms["rooms"],
        json!([{"name":"general","members":2},{"name":"other","members":1}])
    );

    // Senders on both instances at full speed: everyone sees 1..=N in order.
    const EACH: usize = 300;
    for n in 0..EACH {
        alice
            .emit("message", json!({"room":"general","text":format!("a{n}")}))
            .await;
        bob.emit("message", json!({"room":"general","text":format!("b{n}")}))
            .await;
    }
    let expected: Vec<u64> = (1..=2 * EACH as u64).collect();
    assert_eq!(message_ids(&mut alice, 2 * EACH).await, expected);
    assert_eq!(message_ids(&mut bob, 2 * EACH).await, expected);

    bob.request("typing", json!({"room":"general"})).await;
    assert_eq!(alice.next("typing").await["name"], "bob");
    bob.close().await;
    let left = alice.next("user_left").await;
    assert_eq!(
        (left["name"].clone(), left["reason"].clone()),
        (json!("bob"), json!("disconnected"))
    );
}

#[tokio::test]
async fn a_burst_past_every_buffer_loses_nothing() {
    let redis = RedisServer::start().await.unwrap();
    // A Pub/Sub buffer of 2 makes fred's receivers lag at once: what they
    // skip must come back from the history (kept long enough here). The
    // test clients read only after sending, so their socket buffers must
    // hold the whole burst.
    let tiny = [
        ("PUBSUB_CAPACITY", "2"),
        ("GAP_REPAIR_MS", "50"),
        ("HISTORY_KEEP", "10000"),
        ("MAX_BUFFER", "8192"),
    ];
    let one = instance(&redis, &tiny).await;
    let two = instance(&redis, &tiny).await;
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for (n, server) in [&one, &two, &one, &two].into_iter().enumerate() {
        let mut client = Client::connect(server.addr).await;
        client.join("burst", &format!("user{n}")).await;
        if n < 2 {
            senders.push(client);
        } else {
            readers.push(client);
        }
    }
    const EACH: usize = 1500;
    for n in 0..EACH {
        for sender in &mut senders {
            sender
                .emit("message", json!({"room":"burst","text":format!("{n}")}))
                .await;
        }
    }
    let expected: Vec<u64> = (1..=2 * EACH as u64).collect();
    for client in senders.iter_mut().chain(readers.iter_mut()) {
        assert_eq!(message_ids(client, 2 * EACH).await, expected);
    }
    let repaired = metric(&one, "rooms_gap_repairs_total").await
        + metric(&two, "rooms_gap_repairs_total").await;
    assert!(
        repaired > 0,
        "the tiny buffer never lagged: the test proved nothing"
    );
}

#[tokio::test]
async fn members_of_a_killed_instance_are_reported_left() {
    let redis = RedisServer::start().await.unwrap();
    let one = instance(&redis, &[]).await;
    let mut two = instance(&redis, &[]).await;
    let mut alice = Client::connect(one.addr).await;
    let mut bob = Client::connect(two.addr).await;
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    alice
        .request("message", json!({"room":"lobby","text":"before"}))
        .await;
    let killed = Instant::now();
    two.kill().unwrap();
    let left = alice.next("user_left").await;
    assert_eq!(
        (left["name"].clone(), left["reason"].clone()),
        (json!("bob"), json!("disconnected"))
    );
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed.elapsed()
    );
    // Reported once, and the name is free again.
    let rooms = alice.request("rooms", Value::Null).await;
    assert_eq!(rooms["rooms"], json!([{"name":"lobby","members":1}]));
    // Its client reconnects to the survivor and misses nothing.
    alice
        .request("message", json!({"room":"lobby","text":"while away"}))
        .await;
    let mut back = Client::connect(one.addr).await;
    let ack = back
        .request("join", json!({"room":"lobby","name":"bob","since":1}))
        .await;
    assert_eq!(ack["history"][0]["text"], "while away");
}

#[tokio::test]
async fn a_stopping_instance_reports_its_members_left_at_once() {
    let redis = RedisServer::start().await.unwrap();
    // A long silence before death is assumed: only a clean goodbye is quick.
    let patient = [("INSTANCE_TTL_MS", "60000")];
    let one = instance(&redis, &patient).await;
    let mut two = instance(&redis, &patient).await;
    let mut alice = Client::connect(one.addr).await;
    let mut bob = Client::connect(two.addr).await;
    alice.join("hall", "alice").await;
    bob.join("hall", "bob").await;
    let stopped = Instant::now();
    two.terminate().unwrap();
    let left = alice.next("user_left").await;
    assert_eq!(
        (left["name"].clone(), left["reason"].clone()),
        (json!("bob"), json!("disconnected"))
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped.elapsed()
    );
    assert!(
        two.wait_exit(Duration::from_secs(8))
            .await
            .unwrap()
            .success()
    );
    let rooms = alice.request("rooms", Value::Null).await;
    assert_eq!(rooms["rooms"], json!([{"name":"hall","members":1}]));
}

#[tokio::test]
async fn a_redis_outage_is_survived() {
    let mut redis = RedisServer::start().await.unwrap();
    let one = instance(&redis, &[]).await;
    let two = instance(&redis, &[]).await;
    let mut alice = Client::connect(one.addr).await;
    let mut bob = Client::connect(two.addr).await;
    alice.join("ops", "alice").await;
    bob.join("ops", "bob").await;
    assert_eq!(alice.next("user_joined").await["name"], "bob");
    let first = alice
        .request("message", json!({"room":"ops","text":"one"}))
        .await;
    assert_eq!(first["id"], 1);

    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = reqwest::get(one.url("/healthz")).await.unwrap();
        if health.status() == 503 {
            let body: Value = health.json().await.unwrap();
            assert_eq!(body["redis"], "down");
            break;
        }
        assert!(Instant::now() < deadline, "/healthz never said 503");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = alice
        .request("message", json!({"room":"ops","text":"lost?"}))
        .await;
    assert_eq!(refused["error"]["code"], "unavailable");

    redis.restart().await.unwrap();
    let back = Instant::now();
    for server in [&one, &two] {
        server.wait_healthy(Duration::from_secs(5)).await.unwrap();
    }
    let resumed = loop {
        let ack = alice
            .request("message", json!({"room":"ops","text":"two"}))
            .await;
        if ack["ok"] == true {
            break ack;
        }
        assert!(back.elapsed() < Duration::from_secs(5), "{ack}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Redis came back empty, yet ids go on and the other instance gets it.
    assert_eq!(resumed["id"], 2);
    assert_eq!(message_ids(&mut bob, 2).await, vec![1, 2]);
    // Cross-instance notices flow again (the adapter subscribed again).
    let mut carol = Client::connect(two.addr).await;
    carol.join("ops", "carol").await;
    assert_eq!(alice.next("user_joined").await["name"], "carol");
}
