//! Cluster mode (`REDIS_URL`): instances serve the same ticks under the
//! same ids, one producer at a time with a takeover when it dies, resume
//! across instances, and Redis outages. Every test runs twice: against a
//! private `redis-server` and against a private three-master Redis Cluster.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fred::prelude::*;
use protocol::sse::Quote;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use testkit::{SharedRedis, TestServer};

async fn instance(redis: &SharedRedis, extra: &[(&str, &str)]) -> TestServer {
    let url = redis.url();
    let mut env = vec![
        ("REDIS_URL", url.as_str()),
        ("TICK_MS", "50"),
        ("SEED", "1"),
        ("KEEPALIVE_MS", "200"),
    ];
    env.extend_from_slice(extra);
    TestServer::start(BINARY, &env)
        .await
        .expect("instance starts")
}

async fn health(server: &TestServer) -> (u16, serde_json::Value) {
    get_json(&server.url("/healthz")).await
}

/// Waits until exactly one of `servers` says it produces the feed; returns its index.
async fn producer_of(servers: &[&TestServer]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut producers = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            if health(server).await.1["producer"] == true {
                producers.push(index);
            }
        }
        if producers.len() == 1 {
            return producers[0];
        }
        assert!(Instant::now() < deadline, "producers: {producers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_health(server: &TestServer, status: u16, redis: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = health(server).await;
        if code == status && body["redis"] == redis {
            return;
        }
        assert!(Instant::now() < deadline, "health stayed {code} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn two_instances_serve_the_same_ticks_with_the_same_ids_from_one_producer(
    redis: SharedRedis,
) {
    let a = instance(&redis, &[]).await;
    let b = instance(&redis, &[]).await;
    producer_of(&[&a, &b]).await;

    let mut on_a = open(&a.url("/events"), None).await;
    let mut on_b = open(&b.url("/events"), None).await;
    on_a.quotes("snapshot").await;
    on_b.quotes("snapshot").await;
    // Each stream's live ticks start after its own snapshot, and B's may
    // have been taken a step or more later than A's (on a busy machine
    // they are far apart): compare from the first tick both carry.
    let from_a = on_a.ticks(120).await;
    let from_b = on_b.ticks(120).await;
    let first = id_key(&from_a[0].id).max(id_key(&from_b[0].id));
    let after_first = |ticks: &[Tick]| -> Vec<Tick> {
        ticks
            .iter()
            .filter(|tick| id_key(&tick.id) >= first)
            .take(50)
            .cloned()
            .collect()
    };
    assert_eq!(after_first(&from_b).len(), 50, "the streams barely overlap");
    assert_eq!(after_first(&from_b), after_first(&from_a));
    // One producer: one walk, ten symbols per step, no interleaving.
    for step in from_a.chunks(10).take(5) {
        let symbols: std::collections::HashSet<_> =
            step.iter().map(|tick| &tick.quote.symbol).collect();
        assert_eq!(symbols.len(), 10);
    }
}

async fn when_the_producer_dies_another_instance_takes_over_and_prices_go_on(redis: SharedRedis) {
    let mut servers = vec![instance(&redis, &[]).await, instance(&redis, &[]).await];
    let producer = producer_of(&[&servers[0], &servers[1]]).await;
    let mut producer = servers.remove(producer);
    let survivor = servers.remove(0);

    let mut stream = open(&survivor.url("/events"), None).await;
    stream.quotes("snapshot").await;
    let mut last_before: HashMap<String, Quote> = HashMap::new();
    for tick in stream.ticks(40).await {
        last_before.insert(tick.quote.symbol.clone(), tick.quote);
    }
    producer.kill().unwrap();
    let killed_at = Instant::now();

    // Ticks already read by the survivor may still be in flight; the first
    // step of the new producer follows, within the lease time and a poll.
    let mut after: HashMap<String, Quote> = HashMap::new();
    let mut last_id = (0, 0);
    while after.len() < 10 {
        let tick = stream.tick().await;
        assert!(id_key(&tick.id) > last_id, "ids go on increasing");
        last_id = id_key(&tick.id);
        if killed_at.elapsed() > Duration::from_millis(300) {
            after.entry(tick.quote.symbol.clone()).or_insert(tick.quote);
        } else {
            last_before.insert(tick.quote.symbol.clone(), tick.quote);
        }
    }
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(5), "the takeover took {took:?}");
    assert_eq!(health(&survivor).await.1["producer"], true);
    for (symbol, before) in &last_before {
        let next = &after[symbol];
        // One step at TICK_MS=50 moves a price by 0.05 % on average: a jump
        // back to the start price would be far larger.
        let moved = (next.price / before.price - 1.0).abs();
        assert!(
            moved < 0.004,
            "{symbol}: {} then {}",
            before.price,
            next.price
        );
        // `change` still counts from the same open.
        let open_before = before.price - before.change;
        let open_after = next.price - next.change;
        assert!(
            (open_before - open_after).abs() < 0.015,
            "{before:?} {next:?}"
        );
    }
}

async fn a_new_producer_continues_from_the_prices_kept_in_redis(redis: SharedRedis) {
    // As if an earlier producer had left AAPL at 1000.00, up 810.88 from its open.
    let client = Builder::from_config(Config::from_url(&redis.url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    let kept = Quote {
        symbol: "AAPL".into(),
        price: 1000.0,
        change: 810.88,
        change_pct: 428.76,
        ts: 0,
    };
    let _: () = client
        .hset(
            "{sse-stocks}:quotes",
            ("AAPL", serde_json::to_string(&kept).unwrap()),
        )
        .await
        .unwrap();

    let server = instance(&redis, &[("SYMBOLS", "AAPL,MSFT")]).await;
    let mut stream = open(&server.url("/events?symbols=AAPL"), None).await;
    stream.quotes("snapshot").await;
    let tick = stream.tick().await;
    assert!((tick.quote.price / 1000.0 - 1.0).abs() < 0.01, "{tick:?}");
    assert!(
        (tick.quote.price - tick.quote.change - 189.12).abs() < 0.015,
        "{tick:?}"
    );
}

async fn a_client_resumes_on_another_instance_without_gap_or_duplicate(redis: SharedRedis) {
    // 10 symbols every 20 ms: 500 ticks a second, so after a few seconds
    // the resume id is out of B's in-memory window and comes from Redis.
    let fast = [("TICK_MS", "20")];
    let a = instance(&redis, &fast).await;
    let b = instance(&redis, &fast).await;
    let filtered = "/events?symbols=GOOGL,META";

    let mut witness = open(&b.url("/events"), None).await;
    witness.quotes("snapshot").await;
    let mut first = open(&a.url(filtered), None).await;
    first.quotes("snapshot").await;
    let last_id = first.ticks(5).await.pop().unwrap().id;
    drop(first);

    // Everything the witness saw, read as far as needed.
    let mut seen: Vec<Tick> = Vec::new();
    for pause in [Duration::from_millis(300), Duration::from_millis(2500)] {
        tokio::time::sleep(pause).await;
        let mut resumed = open(&b.url(filtered), Some(&last_id)).await;
        let after = resumed.ticks(30).await;
        let last_wanted = id_key(&after.last().unwrap().id);
        while seen
            .last()
            .is_none_or(|tick| id_key(&tick.id) < last_wanted)
        {
            seen.push(witness.tick().await);
        }
        let expected: Vec<Tick> = seen
            .iter()
            .filter(|tick| {
                id_key(&tick.id) > id_key(&last_id)
                    && ["GOOGL", "META"].contains(&tick.quote.symbol.as_str())
            })
            .take(30)
            .cloned()
            .collect();
        assert_eq!(after, expected, "after a pause of {pause:?}");
    }
}

async fn streams_stay_open_through_a_redis_restart_and_go_on_after_a_reset(mut redis: SharedRedis) {
    let a = instance(&redis, &[]).await;
    let b = instance(&redis, &[]).await;
    let mut stream = open(&b.url("/events?symbols=AMZN"), None).await;
    stream.quotes("snapshot").await;
    stream.ticks(3).await;

    redis.stop();
    wait_for_health(&a, 503, "down").await;
    wait_for_health(&b, 503, "down").await;
    // Open streams stay open (keep-alives only) while Redis is away, and
    // new ones still get a snapshot, never an error.
    let mut during = open(&a.url("/events?symbols=AMZN"), None).await;
    during.quotes("snapshot").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    redis.restart().await.unwrap();
    wait_for_health(&a, 200, "up").await;
    wait_for_health(&b, 200, "up").await;
    // Redis came back empty: the streams are told to start over, then tick on.
    for stream in [&mut stream, &mut during] {
        let mut event = stream.next().await;
        for _ in 0..100 {
            if event.event != "tick" {
                break;
            }
            event = stream.next().await;
        }
        assert_eq!(event.event, "reset", "{event:?}");
        let quotes: Vec<Quote> = serde_json::from_str(&event.data).unwrap();
        assert_eq!(symbols_of(&quotes), ["AMZN"]);
        assert_eq!(stream.tick().await.quote.symbol, "AMZN");
    }
    producer_of(&[&a, &b]).await;
}

async fn an_instance_starts_while_redis_is_down_and_serves_once_it_is_up(mut redis: SharedRedis) {
    redis.stop();
    let url = redis.url();
    let server = TestServer::spawn(
        BINARY,
        testkit::free_port(),
        &[("REDIS_URL", url.as_str()), ("TICK_MS", "50")],
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while testkit::http_status(server.addr, "/healthz").await.ok() != Some(503) {
        assert!(Instant::now() < deadline, "no 503 while Redis is down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis.restart().await.unwrap();
    wait_for_health(&server, 200, "up").await;
    let mut stream = open(&server.url("/events?symbols=NFLX"), None).await;
    stream.quotes("snapshot").await;
    assert_eq!(stream.tick().await.quote.symbol, "NFLX");
}

async fn a_producer_stopped_by_sigterm_hands_the_lease_over_at_once(redis: SharedRedis) {
    // The lease lives 2 s after its last renewal: only a release lets
    // another instance take over well before that.
    let mut servers = vec![instance(&redis, &[]).await, instance(&redis, &[]).await];
    let producer = producer_of(&[&servers[0], &servers[1]]).await;
    let mut producer = servers.remove(producer);
    let survivor = servers.remove(0);
    producer.terminate().unwrap();
    let stopped_at = Instant::now();
    assert!(
        producer
            .wait_exit(Duration::from_secs(5))
            .await
            .unwrap()
            .success()
    );
    while health(&survivor).await.1["producer"] != true {
        assert!(
            stopped_at.elapsed() < Duration::from_millis(1500),
            "the lease was not handed over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

testkit::on_one_redis_and_on_a_cluster!(
    two_instances_serve_the_same_ticks_with_the_same_ids_from_one_producer,
    when_the_producer_dies_another_instance_takes_over_and_prices_go_on,
    a_new_producer_continues_from_the_prices_kept_in_redis,
    a_client_resumes_on_another_instance_without_gap_or_duplicate,
    streams_stay_open_through_a_redis_restart_and_go_on_after_a_reset,
    an_instance_starts_while_redis_is_down_and_serves_once_it_is_up,
    a_producer_stopped_by_sigterm_hands_the_lease_over_at_once,
);

/// A shard outage on a Redis Cluster: the master that holds the feed (all
/// its keys share one hash tag) is killed with SIGKILL while streams are
/// open, then comes back empty with its slots.
#[tokio::test]
async fn the_shard_of_the_feed_killed_with_sigkill_then_back_empty() {
    let mut cluster = testkit::RedisCluster::start(3).await.unwrap();
    let owner = cluster.owner_of("{sse-stocks}:ticks").unwrap();
    let url = cluster.url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("TICK_MS", "50"),
        ("SEED", "1"),
        ("KEEPALIVE_MS", "200"),
    ];
    let a = TestServer::start(BINARY, &env).await.unwrap();
    let b = TestServer::start(BINARY, &env).await.unwrap();
    let mut stream = open(&b.url("/events?symbols=AMZN"), None).await;
    stream.quotes("snapshot").await;
    stream.ticks(3).await;

    cluster.kill(owner);
    wait_for_health(&a, 503, "down").await;
    wait_for_health(&b, 503, "down").await;
    cluster.restart(owner).await.unwrap();
    wait_for_health(&a, 200, "up").await;
    wait_for_health(&b, 200, "up").await;
    // The shard came back empty: the stream is told to start over, then ticks on.
    let mut event = stream.next().await;
    for _ in 0..100 {
        if event.event != "tick" {
            break;
        }
        event = stream.next().await;
    }
    assert_eq!(event.event, "reset", "{event:?}");
    assert_eq!(stream.tick().await.quote.symbol, "AMZN");
    producer_of(&[&a, &b]).await;
}
