//! The link against real servers: a private redis-server and a private
//! three-master Redis Cluster.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use fred::prelude::*;
use redis_link::{LinkOptions, Script, connect};
use std::time::Duration;
use testkit::{RedisCluster, RedisServer};

const ECHO_KEY: &str = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}";

async fn connected(url: &str) -> Client {
    let client = connect(url, &LinkOptions::default()).expect("client");
    client.wait_for_connect().await.expect("connected");
    client
}

#[tokio::test]
async fn a_script_is_loaded_again_after_redis_forgot_it() {
    let redis = RedisServer::start().await.expect("redis");
    let client = connected(&redis.url()).await;
    let script = Script::new(ECHO_KEY);
    let first: Vec<String> = script
        .run(&client, vec!["counter".into()], vec!["a".into()])
        .await
        .expect("first run");
    assert_eq!(first, ["counter", "a", "1"]);
    let _: () = client.script_flush(false).await.expect("flush");
    let second: Vec<String> = script
        .run(&client, vec!["counter".into()], vec!["b".into()])
        .await
        .expect("run after SCRIPT FLUSH");
    assert_eq!(second, ["counter", "b", "2"]);
}

#[tokio::test]
async fn a_command_against_a_dead_redis_fails_within_the_timeout() {
    let mut redis = RedisServer::start().await.expect("redis");
    let options = LinkOptions {
        command_timeout: Duration::from_millis(300),
        ..LinkOptions::default()
    };
    let client = connect(&redis.url(), &options).expect("client");
    client.wait_for_connect().await.expect("connected");
    redis.stop();
    let started = std::time::Instant::now();
    let result: Result<Option<String>, Error> = client.get("anything").await;
    assert!(result.is_err(), "a dead Redis answered {result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the command waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn scripts_run_on_the_shard_that_owns_their_keys() {
    let cluster = RedisCluster::start(3).await.expect("cluster");
    let client = connected(&cluster.url()).await;
    let script = Script::new(ECHO_KEY);
    // Keys spread over the three shards; each script call goes to its own.
    let mut owners = std::collections::HashSet::new();
    for room in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        let key = format!("{{{room}}}:seq");
        owners.insert(cluster.owner_of(&key).expect("owner"));
        let reply: Vec<String> = script
            .run(&client, vec![key.clone()], vec![room.into()])
            .await
            .expect("script on a cluster");
        assert_eq!(reply, [key.as_str(), room, "1"]);
    }
    assert!(owners.len() > 1, "every key on one shard: {owners:?}");
}
