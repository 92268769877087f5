//! The Redis a cluster-mode test runs against, one Redis or a Redis
//! Cluster, so that one test body proves a behaviour on both.

use crate::{RedisCluster, RedisServer};
use anyhow::Result;

/// A private Redis of either shape.
pub enum SharedRedis {
    /// One `redis-server`.
    Single(RedisServer),
    /// A Redis Cluster of a few masters.
    Cluster(RedisCluster),
}

impl SharedRedis {
    /// A private redis-server.
    pub async fn single() -> Result<SharedRedis> {
        Ok(SharedRedis::Single(RedisServer::start().await?))
    }

    /// A private three-master Redis Cluster.
    pub async fn cluster() -> Result<SharedRedis> {
        Ok(SharedRedis::Cluster(RedisCluster::start(3).await?))
    }

    /// `REDIS_URL` for the apps.
    pub fn url(&self) -> String {
        match self {
            SharedRedis::Single(redis) => redis.url(),
            SharedRedis::Cluster(cluster) => cluster.url(),
        }
    }

    /// An outage of everything.
    pub fn stop(&mut self) {
        match self {
            SharedRedis::Single(redis) => redis.stop(),
            SharedRedis::Cluster(cluster) => cluster.stop(),
        }
    }

    /// Back after [`stop`](Self::stop), empty.
    pub async fn restart(&mut self) -> Result<()> {
        match self {
            SharedRedis::Single(redis) => redis.restart().await,
            SharedRedis::Cluster(cluster) => cluster.restart_all().await,
        }
    }
}

/// Runs each named test body (an `async fn(SharedRedis)`) twice: once on one
/// Redis and once on a Redis Cluster, as `<name>::one_redis` and
/// `<name>::redis_cluster`.
#[macro_export]
macro_rules! on_one_redis_and_on_a_cluster {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn one_redis() {
                super::$test($crate::SharedRedis::single().await.unwrap()).await;
            }

            #[tokio::test]
            async fn redis_cluster() {
                super::$test($crate::SharedRedis::cluster().await.unwrap()).await;
            }
        }
    )*};
}
