//! Redis failovers under traffic, followed without restarting anything:
//! the master holding a room is killed with SIGKILL while members on two
//! instances send and listen, and a replica takes over (promoted by the
//! Redis Cluster itself, or by Sentinel) although it had fallen behind and
//! lacks the last acked messages. Meanwhile every message gets an ack at
//! once (`ok` or `unavailable`); afterwards the room is served
//! again, ids only increase and are never handed out twice, and every
//! member still connected has every acked message once (one cut off
//! re-joins with `since`).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Heard};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testkit::{RedisCluster, RedisSentinel, TestServer};

const BINARY: &str = env!("CARGO_BIN_EXE_rooms-chat");

/// The pause between two messages of one sender.
const SEND_EVERY: Duration = Duration::from_millis(20);

/// Acks after the failover each sender must get before the traffic stops.
const OK_AFTER: usize = 5;

/// How long the replica lags behind before the master dies: messages
/// acked meanwhile are missing on the replica that takes over.
const LAG: Duration = Duration::from_millis(300);

/// How long a failover may take to be served again before the test fails:
/// far above what it takes (a few seconds), only so the test ends.
const SERVED_AGAIN_WITHIN: Duration = Duration::from_secs(30);

async fn instance(url: &str) -> TestServer {
    let env = [
        ("REDIS_URL", url),
        ("MSG_RATE", "0"),
        ("HEARTBEAT_MS", "200"),
        ("INSTANCE_TTL_MS", "5000"),
    ];
    TestServer::start(BINARY, &env).await.unwrap()
}

/// What one sender saw: each ack with when it came, and whether the
/// server cut the sender off.
struct Sent {
    acks: Vec<(Instant, Value)>,
    /// The longest wait for an ack.
    slowest: Duration,
    cut_off: bool,
}

/// Sends to `room` every [`SEND_EVERY`] until, after the kill, it had
/// [`OK_AFTER`] `ok` acks (or [`SERVED_AGAIN_WITHIN`] passed); every ack
/// must come at once (`ok` or `unavailable`, never a hang).
async fn send(mut client: Client, room: String, killed: Arc<AtomicBool>) -> (Client, Sent) {
    let mut sent = Sent {
        acks: Vec::new(),
        slowest: Duration::ZERO,
        cut_off: false,
    };
    let mut ok_after_kill = 0;
    let mut kill_seen: Option<Instant> = None;
    for n in 0.. {
        if killed.load(Ordering::Relaxed) {
            let since = *kill_seen.get_or_insert_with(Instant::now);
            if ok_after_kill >= OK_AFTER || since.elapsed() > SERVED_AGAIN_WITHIN {
                break;
            }
        }
        let message = json!({"room": room, "text": format!("m{n}")});
        let asked = Instant::now();
        let Some(ack) = client.try_request("message", message).await else {
            sent.cut_off = true;
            break;
        };
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "an ack took {:?}: {ack}",
            asked.elapsed()
        );
        assert!(
            ack["ok"] == true || ack["error"]["code"] == "unavailable",
            "{ack}"
        );
        if kill_seen.is_some() && ack["ok"] == true {
            ok_after_kill += 1;
        }
        sent.slowest = sent.slowest.max(asked.elapsed());
        sent.acks.push((Instant::now(), ack));
        tokio::time::sleep(SEND_EVERY).await;
    }
    (client, sent)
}

/// The ids of the messages a member received until a second of silence,
/// and whether the server cut it off.
async fn received(mut client: Client) -> (Vec<u64>, bool) {
    let mut ids = Vec::new();
    loop {
        match client.listen(Duration::from_secs(1)).await {
            Heard::Event(name, payload) if name == "message" => {
                ids.push(payload["id"].as_u64().unwrap());
            }
            Heard::Event(..) => {}
            Heard::Quiet => return (ids, false),
            Heard::Closed => return (ids, true),
        }
    }
}

/// Two instances, and on each a sender and a listener in `room`.
struct Members {
    senders: Vec<Client>,
    listeners: Vec<Client>,
}

async fn members(servers: [&TestServer; 2], room: &str) -> Members {
    let mut senders = Vec::new();
    let mut listeners = Vec::new();
    for (index, server) in servers.into_iter().enumerate() {
        let mut sender = Client::connect(server.addr).await;
        sender.join(room, &format!("sender-{index}")).await;
        senders.push(sender);
        let mut listener = Client::connect(server.addr).await;
        listener.join(room, &format!("listener-{index}")).await;
        listeners.push(listener);
    }
    Members { senders, listeners }
}

/// The senders at work.
struct Traffic {
    killed: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<(Client, Sent)>>,
    listeners: Vec<Client>,
}

fn start_traffic(members: Members, room: &str) -> Traffic {
    let killed = Arc::new(AtomicBool::new(false));
    let senders = members
        .senders
        .into_iter()
        .map(|client| tokio::spawn(send(client, room.to_owned(), killed.clone())))
        .collect();
    Traffic {
        killed,
        senders,
        listeners: members.listeners,
    }
}

impl Traffic {
    /// Tells the senders the kill happened (just before it does).
    fn kill(&self) -> Instant {
        self.killed.store(true, Ordering::Relaxed);
        Instant::now()
    }
}

/// Lets the traffic run until every sender has had [`OK_AFTER`] `ok`
/// acks after `killed_at`, then checks what everyone received. Returns
/// the time from the kill to the first `ok`.
async fn served_again(
    traffic: Traffic,
    room: &str,
    servers: [&TestServer; 2],
    killed_at: Instant,
) -> Duration {
    let mut acked: Vec<u64> = Vec::new();
    let mut first_ok_after_kill: Option<Instant> = None;
    let mut members: Vec<Client> = Vec::new();
    let mut unavailable = 0;
    let mut slowest = Duration::ZERO;
    for sender in traffic.senders {
        let (client, sent) = sender.await.unwrap();
        assert!(!sent.cut_off, "a sender was cut off while sending");
        slowest = slowest.max(sent.slowest);
        let mut ids = Vec::new();
        let mut ok_after = 0;
        // Acks for messages sent just before the instances noticed the
        // kill are `ok`: the outage starts at the first `unavailable`.
        let mut refused = false;
        for (at, ack) in &sent.acks {
            if ack["ok"] != true {
                refused |= *at > killed_at;
                unavailable += 1;
                continue;
            }
            ids.push(ack["id"].as_u64().unwrap());
            if *at > killed_at {
                ok_after += 1;
            }
            if refused {
                first_ok_after_kill = Some(first_ok_after_kill.map_or(*at, |first| first.min(*at)));
            }
        }
        assert!(
            ok_after >= OK_AFTER,
            "the room was not served again: {ok_after} ok"
        );
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "one sender's ids went back: {ids:?}"
        );
        acked.extend(ids);
        members.push(client);
    }
    // Served again means healthy again too: `degraded` only while down.
    for server in servers {
        wait_redis_up(server).await;
    }
    let unique: HashSet<u64> = acked.iter().copied().collect();
    assert_eq!(
        unique.len(),
        acked.len(),
        "an id was handed out twice: {acked:?}"
    );
    members.extend(traffic.listeners);
    let mut cut_offs = 0;
    for member in members {
        let (ids, cut_off) = received(member).await;
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "a member received ids out of order or twice: {ids:?}"
        );
        if cut_off {
            cut_offs += 1;
            // Its client re-joins with `since` and gets what follows.
            let since = ids.last().copied().unwrap_or(0);
            let mut back = Client::connect(servers[0].addr).await;
            let ack = back
                .request(
                    "join",
                    json!({"room": room, "name": "back", "since": since}),
                )
                .await;
            assert_eq!(ack["ok"], true, "{ack}");
            back.close().await;
            continue;
        }
        let got: HashSet<u64> = ids.iter().copied().collect();
        let missing: Vec<u64> = acked
            .iter()
            .copied()
            .filter(|id| !got.contains(id))
            .collect();
        assert!(
            missing.is_empty(),
            "a connected member missed acked messages {missing:?}"
        );
    }
    eprintln!(
        "{} messages acked ok, {unavailable} unavailable, ids {:?}..{:?}, {cut_offs} members cut off, slowest ack {slowest:?}",
        acked.len(),
        acked.iter().min(),
        acked.iter().max()
    );
    first_ok_after_kill.unwrap_or(killed_at) - killed_at
}

/// Waits until `server`'s `/healthz` says every shard serves.
async fn wait_redis_up(server: &TestServer) {
    common::wait_redis_up(server, SERVED_AGAIN_WITHIN).await;
}

/// The master of a room (not the control shard's: that one stops joins
/// too, while messages go on) is killed under traffic; its replica takes
/// over and both instances follow it.
#[tokio::test]
async fn a_cluster_failover_is_followed_without_a_restart() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1).await.unwrap();
    let control = cluster.owner_of("{rooms-chat}").unwrap();
    let room = (0..100)
        .map(|n| format!("room-{n}"))
        .find(|room| {
            cluster
                .owner_of(&format!("rooms-chat:{{{room}}}:pos"))
                .unwrap()
                != control
        })
        .unwrap();
    let master = cluster
        .owner_of(&format!("rooms-chat:{{{room}}}:pos"))
        .unwrap();
    let url = cluster.url();
    let one = instance(&url).await;
    let two = instance(&url).await;
    let traffic = start_traffic(members([&one, &two], &room).await, &room);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The replica falls behind: what is acked from now on is lost with the
    // master, and the replica promoted in its place lacks it.
    let replica = cluster.lag_replica(master).unwrap();
    tokio::time::sleep(LAG).await;
    let killed_at = traffic.kill();
    cluster.kill(master);
    cluster.resume(replica).unwrap();
    // Only the killed master's rooms are out: degraded, not down.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = reqwest::get(one.url("/healthz")).await.unwrap();
        let body: Value = health.json().await.unwrap();
        if body["redis"] == "degraded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz never said degraded: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.wait_failover().await.unwrap();
    let downtime = served_again(traffic, &room, [&one, &two], killed_at).await;
    eprintln!("cluster failover: first ok {downtime:?} after the kill");
}

/// The Sentinel service's master is killed under traffic; the sentinels
/// promote the replica and both instances follow it.
#[tokio::test]
async fn a_sentinel_failover_is_followed_without_a_restart() {
    let mut sentinel = RedisSentinel::start().await.unwrap();
    let url = sentinel.url();
    let one = instance(&url).await;
    let two = instance(&url).await;
    let room = "ops";
    let traffic = start_traffic(members([&one, &two], room).await, room);
    tokio::time::sleep(Duration::from_millis(500)).await;

    sentinel.lag_replica().unwrap();
    tokio::time::sleep(LAG).await;
    let killed_at = traffic.kill();
    let old = sentinel.kill_master().unwrap();
    sentinel.resume_replica().unwrap();
    sentinel.wait_failover(old).await.unwrap();
    let downtime = served_again(traffic, room, [&one, &two], killed_at).await;
    eprintln!("sentinel failover: first ok {downtime:?} after the kill");
}
