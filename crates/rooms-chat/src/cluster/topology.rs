//! Follows a Redis Cluster's topology: which master serves each shard's
//! slots. A failover promotes a replica on another address, a resharding
//! moves slots; either way the instance asks the cluster (`CLUSTER SLOTS`)
//! and moves its connections (see [`Shards::follow`]). It asks on a
//! `MOVED` or `ASK` answer and on a lost link (through
//! [`Shards::recheck`]), and on a periodic check: often while a shard is
//! down, since a promotion is then expected, seldom otherwise.

use super::shards::{Links, Shards};
use fred::interfaces::ClientLike;
use ops::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// The pause between two checks while every shard serves.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The pause between two checks while some shard is down.
const CHECK_WHILE_DOWN: Duration = Duration::from_millis(500);

/// Runs until the shutdown; only for a Redis Cluster.
pub async fn follow(shards: Arc<Shards>, shutdown: Shutdown) {
    loop {
        let pause = if shards.all_up() {
            CHECK_EVERY
        } else {
            CHECK_WHILE_DOWN
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shards.recheck.notified() => {}
            () = shutdown.wait() => return,
        }
        match shards.masters().await {
            Ok(masters) => {
                for old in shards.follow(&masters).await {
                    tokio::spawn(close(old));
                }
            }
            Err(error) => tracing::debug!("cannot read the cluster's topology: {error:#}"),
        }
    }
}

/// Closes the connections to a master the shard left (they would keep
/// trying to reconnect to it).
async fn close(links: Arc<Links>) {
    let timeout = Duration::from_secs(1);
    // A dead master cannot hear the goodbye; the connection ends either way.
    let _ = tokio::time::timeout(timeout, links.client.quit()).await;
    let _ = tokio::time::timeout(timeout, links.subscriber.quit()).await;
}
