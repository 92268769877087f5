//! Redis failovers followed without a restart: the master holding the
//! feed is killed with SIGKILL while a stream is open, and a replica takes
//! over (promoted by the Redis Cluster itself, or by Sentinel), a replica
//! that had fallen behind and lacks the last ticks. The stream stays open,
//! is told to `reset` (the ticks it had are nowhere any more), ticks come
//! again, and ids only increase: never one twice.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::{Duration, Instant};
use testkit::{RedisCluster, RedisSentinel, TestServer};

/// Ticks the stream must carry after the failover.
const TICKS_AFTER: usize = 20;

/// How long the replica lags behind before the master dies: the ticks of
/// that time are missing on the replica that takes over.
const LAG: Duration = Duration::from_millis(300);

async fn instance(url: &str) -> TestServer {
    let env = [
        ("REDIS_URL", url),
        ("TICK_MS", "50"),
        ("SEED", "1"),
        ("KEEPALIVE_MS", "200"),
    ];
    TestServer::start(BINARY, &env)
        .await
        .expect("instance starts")
}

/// Two instances and a stream open on the second, ticking.
struct Watched {
    servers: [TestServer; 2],
    stream: Sse,
    ids: Vec<(u64, u64)>,
}

async fn watch(url: &str) -> Watched {
    let servers = [instance(url).await, instance(url).await];
    let mut stream = open(&servers[1].url("/events?symbols=AMZN"), None).await;
    stream.quotes("snapshot").await;
    let ids = stream
        .ticks(5)
        .await
        .iter()
        .map(|tick| id_key(&tick.id))
        .collect();
    Watched {
        servers,
        stream,
        ids,
    }
}

/// Reads the stream after the kill until [`TICKS_AFTER`] ticks came,
/// checking that ids only increase across the failover (a `reset` says
/// the replica lacked ticks: the ids after it still go on). Returns the
/// time from the kill to the first tick after the outage.
async fn ticks_go_on(mut watched: Watched, killed_at: Instant) -> Duration {
    let mut after = 0;
    let mut resets = 0;
    let mut first_after: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while after < TICKS_AFTER {
        assert!(Instant::now() < deadline, "the feed did not come back");
        // Silent while no producer can write; keep-alives are no events.
        let Some(event) = watched.stream.next_or_end(Duration::from_secs(30)).await else {
            panic!("the stream ended");
        };
        match event.event.as_str() {
            "tick" => {
                let id = id_key(&event.id);
                let last = *watched.ids.last().unwrap();
                assert!(id > last, "tick {id:?} after {last:?}");
                watched.ids.push(id);
                // A tick that was on its way at the kill is not "after".
                if killed_at.elapsed() > Duration::from_millis(500) {
                    first_after.get_or_insert_with(Instant::now);
                    after += 1;
                }
            }
            "reset" => resets += 1,
            other => panic!("unexpected event {other}: {event:?}"),
        }
    }
    for server in &watched.servers {
        let (status, body) = get_json(&server.url("/healthz")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["redis"], "up", "{body}");
    }
    assert!(resets > 0, "the replica lacked ticks, yet no reset");
    eprintln!("{} ticks, {resets} resets", watched.ids.len());
    first_after.unwrap() - killed_at
}

#[tokio::test]
async fn a_cluster_failover_keeps_the_ids_increasing() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1).await.unwrap();
    let owner = cluster.owner_of("{sse-stocks}:ticks").unwrap();
    let watched = watch(&cluster.url()).await;
    let replica = cluster.lag_replica(owner).unwrap();
    tokio::time::sleep(LAG).await;
    let killed_at = Instant::now();
    cluster.kill(owner);
    cluster.resume(replica).unwrap();
    cluster.wait_failover().await.unwrap();
    let downtime = ticks_go_on(watched, killed_at).await;
    eprintln!("cluster failover: ticks again {downtime:?} after the kill");
}

#[tokio::test]
async fn a_sentinel_failover_keeps_the_ids_increasing() {
    let mut sentinel = RedisSentinel::start().await.unwrap();
    let watched = watch(&sentinel.url()).await;
    sentinel.lag_replica().unwrap();
    tokio::time::sleep(LAG).await;
    let killed_at = Instant::now();
    let old = sentinel.kill_master().unwrap();
    sentinel.resume_replica().unwrap();
    sentinel.wait_failover(old).await.unwrap();
    let downtime = ticks_go_on(watched, killed_at).await;
    eprintln!("sentinel failover: ticks again {downtime:?} after the kill");
}
