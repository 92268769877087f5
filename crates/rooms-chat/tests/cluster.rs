//! End-to-end checks of cluster mode: several instances of the binary over
//! real sockets, each test once on a private redis-server and once on a
//! private three-master Redis Cluster, including the faults (kill -9 of an
//! instance, a Redis restart, a burst past every buffer); and on the
//! cluster, a shard master killed with SIGKILL under traffic.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testkit::{RedisCluster, SharedRedis, TestServer};

const BINARY: &str = env!("CARGO_BIN_EXE_rooms-chat");

async fn instance(redis: &SharedRedis, extra: &[(&str, &str)]) -> TestServer {
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

/// Waits until the room list says `expected`: a room's count reaches the
/// list a moment after the room's own events (on a Redis Cluster they
/// live on different shards).
async fn wait_rooms(client: &mut Client, expected: Value) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rooms = client.request("rooms", Value::Null).await;
        if rooms["rooms"] == expected {
            return;
        }
        assert!(Instant::now() < deadline, "rooms stayed {rooms}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `server` says every Redis shard answers again.
async fn wait_redis_up(server: &TestServer) {
    common::wait_redis_up(server, Duration::from_secs(10)).await;
}

async fn instances_behave_as_one_server(redis: SharedRedis) {
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

async fn a_burst_past_every_buffer_loses_nothing(redis: SharedRedis) {
    // A Pub/Sub buffer of 2 makes fred's receivers lag at once: what they
    // skip must come back from the history (kept long enough here). The
    // test clients read only after sending: the burst waits in their
    // outboxes, within the default bound.
    let tiny = [
        ("PUBSUB_CAPACITY", "2"),
        ("GAP_REPAIR_MS", "50"),
        ("HISTORY_KEEP", "10000"),
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

async fn members_of_a_killed_instance_are_reported_left(redis: SharedRedis) {
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
    wait_rooms(&mut alice, json!([{"name":"lobby","members":1}])).await;
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

async fn a_stopping_instance_reports_its_members_left_at_once(redis: SharedRedis) {
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
    wait_rooms(&mut alice, json!([{"name":"hall","members":1}])).await;
}

async fn a_redis_outage_is_survived(mut redis: SharedRedis) {
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
        wait_redis_up(server).await;
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
    // Redis came back empty, yet ids go on (past any the old server may
    // have handed out) and the other instance gets it.
    let resumed = resumed["id"].as_u64().unwrap();
    assert!(resumed > 1, "{resumed}");
    assert_eq!(message_ids(&mut bob, 2).await, vec![1, resumed]);
    // Cross-instance notices flow again (the adapter subscribed again).
    let mut carol = Client::connect(two.addr).await;
    carol.join("ops", "carol").await;
    assert_eq!(alice.next("user_joined").await["name"], "carol");
}

/// `/healthz`'s status and body, or `None` while nothing listens.
async fn health(server: &TestServer) -> Option<(u16, Value)> {
    let response = reqwest::get(server.url("/healthz")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap()))
}

async fn an_instance_starts_while_redis_is_down_and_serves_once_it_is_up(mut redis: SharedRedis) {
    redis.stop();
    let url = redis.url();
    let server = TestServer::spawn(
        BINARY,
        testkit::free_port(),
        &[("REDIS_URL", url.as_str()), ("HEARTBEAT_MS", "200")],
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match health(&server).await {
            Some((503, body)) if body["status"] == "starting" => break,
            other => assert!(Instant::now() < deadline, "not starting: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A client that comes meanwhile is told to come back, not left waiting.
    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));

    redis.restart().await.unwrap();
    server.wait_healthy(Duration::from_secs(15)).await.unwrap();
    let mut alice = Client::connect(server.addr).await;
    let joined = alice.join("late", "alice").await;
    assert_eq!(joined["ok"], true, "{joined}");
}

testkit::on_one_redis_and_on_a_cluster!(
    instances_behave_as_one_server,
    a_burst_past_every_buffer_loses_nothing,
    members_of_a_killed_instance_are_reported_left,
    a_stopping_instance_reports_its_members_left_at_once,
    a_redis_outage_is_survived,
    an_instance_starts_while_redis_is_down_and_serves_once_it_is_up,
);

#[tokio::test]
async fn a_starting_instance_is_ready_only_once_every_shard_serves() {
    let cluster = RedisCluster::start(3).await.unwrap();
    let url = cluster.url();
    let server = TestServer::spawn(
        BINARY,
        testkit::free_port(),
        &[("REDIS_URL", url.as_str()), ("HEARTBEAT_MS", "200")],
    )
    .unwrap();
    // Every answer until the first 200 says `starting`; from the first 200
    // on, over several heartbeats, every shard is up.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut ready_since = None;
    let mut answers = Vec::new();
    while ready_since.is_none_or(|since: Instant| since.elapsed() < Duration::from_secs(2)) {
        assert!(Instant::now() < deadline, "never ready: {answers:?}");
        if let Some((status, body)) = health(&server).await {
            let answer = (status, body["status"].clone(), body["redis"].clone());
            if status == 200 {
                ready_since.get_or_insert_with(Instant::now);
                assert_eq!(answer.2, "up", "ready before every shard serves");
            } else {
                assert!(ready_since.is_none(), "not ready again: {answer:?}");
                assert_eq!(answer.1, "starting", "{answer:?}");
            }
            answers.push(answer);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The shard that holds `room` (its index in the cluster's masters).
fn shard_of(cluster: &RedisCluster, room: &str) -> usize {
    cluster
        .owner_of(&format!("rooms-chat:{{{room}}}:pos"))
        .unwrap()
}

/// A shard outage: the master of one room is killed with SIGKILL while two
/// rooms on different shards carry traffic from members on two instances,
/// then comes back empty with its slots.
#[tokio::test]
async fn a_killed_shard_stops_only_its_rooms_and_loses_nothing_acked() {
    let cluster = RedisCluster::start(3).await.unwrap();
    let control = cluster.owner_of("{rooms-chat}").unwrap();
    // The killed room's shard is not the control shard (room list,
    // heartbeats): its loss stops joins everywhere, a case of its own.
    let rooms: Vec<String> = (0..100).map(|n| format!("room-{n}")).collect();
    let doomed = rooms
        .iter()
        .find(|room| shard_of(&cluster, room) != control)
        .unwrap()
        .clone();
    let killed = shard_of(&cluster, &doomed);
    let spared = rooms
        .iter()
        .find(|room| shard_of(&cluster, room) != killed)
        .unwrap()
        .clone();
    let redis = SharedRedis::Cluster(cluster);
    let one = instance(&redis, &[]).await;
    let two = instance(&redis, &[]).await;
    let SharedRedis::Cluster(mut cluster) = redis else {
        unreachable!()
    };
    let mut doomed_one = Client::connect(one.addr).await;
    let mut doomed_two = Client::connect(two.addr).await;
    let mut spared_one = Client::connect(one.addr).await;
    let mut spared_two = Client::connect(two.addr).await;
    doomed_one.join(&doomed, "d1").await;
    // With a clientId, as the page joins: its return below takes the name
    // over whether or not the server has seen the old socket close yet.
    let joined = doomed_two
        .request(
            "join",
            json!({"room": doomed, "name": "d2", "clientId": "cid-d2"}),
        )
        .await;
    assert_eq!(joined["ok"], true, "{joined}");
    spared_one.join(&spared, "s1").await;
    spared_two.join(&spared, "s2").await;

    let mut acked = Vec::new();
    for n in 0..20 {
        let message = json!({"room": doomed, "text": format!("before {n}")});
        let ack = doomed_one.request("message", message).await;
        acked.push(ack["id"].as_u64().unwrap());
        let message = json!({"room": spared, "text": format!("before {n}")});
        assert_eq!(spared_one.request("message", message).await["ok"], true);
    }
    // Everyone hears every message, the sender included.
    assert_eq!(message_ids(&mut doomed_one, 20).await, acked);
    assert_eq!(message_ids(&mut doomed_two, 20).await, acked);
    let spared_ids = message_ids(&mut spared_one, 20).await;
    assert_eq!(message_ids(&mut spared_two, 20).await, spared_ids);

    cluster.kill(killed);
    // The other room goes on, both ways, while its neighbour is down.
    for n in 0..20 {
        let message = json!({"room": spared, "text": format!("during {n}")});
        let ack = spared_two.request("message", message).await;
        assert_eq!(ack["ok"], true, "{ack}");
        let id = ack["id"].as_u64().unwrap();
        assert_eq!(message_ids(&mut spared_one, 1).await, vec![id]);
    }
    // The killed room answers, never keeps silent: `unavailable`.
    for n in 0..5 {
        let message = json!({"room": doomed, "text": format!("during {n}")});
        let asked = Instant::now();
        let ack = doomed_one.request("message", message).await;
        assert_eq!(ack["error"]["code"], "unavailable", "{ack}");
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "{:?}",
            asked.elapsed()
        );
    }
    for server in [&one, &two] {
        let health = reqwest::get(server.url("/healthz")).await.unwrap();
        assert_eq!(health.status(), 200, "the other shards serve");
        let body: Value = health.json().await.unwrap();
        assert_eq!(body["redis"], "degraded");
    }

    cluster.restart(killed).await.unwrap();
    for server in [&one, &two] {
        wait_redis_up(server).await;
    }
    let back = Instant::now();
    let after = loop {
        let message = json!({"room": doomed, "text": "after"});
        let ack = doomed_one.request("message", message).await;
        if ack["ok"] == true {
            break ack["id"].as_u64().unwrap();
        }
        assert_eq!(ack["error"]["code"], "unavailable", "{ack}");
        assert!(back.elapsed() < Duration::from_secs(10), "{ack}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The shard came back empty, yet ids go on past what was acked.
    assert!(after > *acked.last().unwrap(), "{after} after {acked:?}");
    assert_eq!(message_ids(&mut doomed_two, 1).await, vec![after]);
    // A member that comes back with `since` misses nothing acked.
    doomed_two.close().await;
    let mut returning = Client::connect(two.addr).await;
    let ack = returning
        .request(
            "join",
            json!({"room": doomed, "name": "d2", "since": 0, "clientId": "cid-d2"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let history: Vec<u64> = ack["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["id"].as_u64().unwrap())
        .collect();
    let mut expected = acked.clone();
    expected.push(after);
    assert_eq!(history, expected);
    // Both instances live on.
    for server in [&one, &two] {
        server.wait_healthy(Duration::from_secs(5)).await.unwrap();
    }
}

/// The control shard (room list, heartbeats, who holds members where)
/// killed with SIGKILL: messages in rooms on the other shards go on, joins
/// answer `unavailable`; once it is back empty, the instances give it the
/// room list and their rooms back.
#[tokio::test]
async fn a_killed_control_shard_stops_joins_not_messages() {
    let cluster = RedisCluster::start(3).await.unwrap();
    let control = cluster.owner_of("{rooms-chat}").unwrap();
    let room = (0..100)
        .map(|n| format!("room-{n}"))
        .find(|room| shard_of(&cluster, room) != control)
        .unwrap();
    let redis = SharedRedis::Cluster(cluster);
    let one = instance(&redis, &[]).await;
    let two = instance(&redis, &[]).await;
    let SharedRedis::Cluster(mut cluster) = redis else {
        unreachable!()
    };
    let mut alice = Client::connect(one.addr).await;
    let mut bob = Client::connect(two.addr).await;
    alice.join(&room, "alice").await;
    bob.join(&room, "bob").await;

    cluster.kill(control);
    for n in 0..10 {
        let message = json!({"room": room, "text": format!("during {n}")});
        let ack = alice.request("message", message).await;
        assert_eq!(ack["ok"], true, "{ack}");
        let id = ack["id"].as_u64().unwrap();
        assert_eq!(message_ids(&mut bob, 1).await, vec![id]);
    }
    let mut carol = Client::connect(two.addr).await;
    let refused = carol
        .request("join", json!({"room": "elsewhere", "name": "carol"}))
        .await;
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");

    cluster.restart(control).await.unwrap();
    for server in [&one, &two] {
        wait_redis_up(server).await;
    }
    wait_rooms(&mut carol, json!([{"name": room, "members": 2}])).await;
    carol.join("elsewhere", "carol").await;
    let ack = alice
        .request("message", json!({"room": room, "text": "after"}))
        .await;
    assert_eq!(ack["id"], 11, "{ack}");
}

/// How many subscribers `room`'s sharded channel has on its shard.
fn subscribers(cluster: &RedisCluster, room: &str) -> u64 {
    let port = cluster.ports()[shard_of(cluster, room)];
    let channel = format!("rooms-chat:{{{room}}}:events");
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "pubsub", "shardnumsub", &channel])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// An instance subscribes to a room's channel only while the room has
/// members on it: the room's messages reach no other instance.
#[tokio::test]
async fn an_instance_listens_only_to_rooms_with_local_members() {
    let cluster = RedisCluster::start(3).await.unwrap();
    let redis = SharedRedis::Cluster(cluster);
    let one = instance(&redis, &[]).await;
    let two = instance(&redis, &[]).await;
    let SharedRedis::Cluster(cluster) = redis else {
        unreachable!()
    };
    let mut alice = Client::connect(one.addr).await;
    let mut bob = Client::connect(two.addr).await;
    alice.join("only-one", "alice").await;
    bob.join("only-two", "bob").await;
    assert_eq!(subscribers(&cluster, "only-one"), 1);
    assert_eq!(subscribers(&cluster, "only-two"), 1);
    bob.join("only-one", "bob").await;
    assert_eq!(subscribers(&cluster, "only-one"), 2);

    for client in [&mut alice, &mut bob] {
        let left = client.request("leave", json!({"room": "only-one"})).await;
        assert_eq!(left["ok"], true, "{left}");
    }
    // Let go at the next heartbeat (HEARTBEAT_MS=200 here).
    let deadline = Instant::now() + Duration::from_secs(5);
    while subscribers(&cluster, "only-one") > 0 {
        assert!(Instant::now() < deadline, "still subscribed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(subscribers(&cluster, "only-two"), 1, "bob is still there");
}
