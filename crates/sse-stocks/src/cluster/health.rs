//! `/healthz` in cluster mode: serving needs the Redis link.

use super::Cluster;
use fred::prelude::ClientLike;
use ops::metrics::{HealthCheck, HealthReport};
use serde_json::{Map, Value};
use std::sync::Arc;

impl Cluster {
    /// Up while the tail reads the stream and both connections stand.
    fn is_up(&self) -> bool {
        self.link.is_up() && self.commands.is_connected() && self.tail.is_connected()
    }
}

pub struct RedisHealth(pub Arc<Cluster>);

impl HealthCheck for RedisHealth {
    fn report(&self) -> HealthReport {
        let up = self.0.is_up();
        let mut details = Map::new();
        details.insert("redis".into(), Value::from(if up { "up" } else { "down" }));
        details.insert(
            "producer".into(),
            Value::from(self.0.hub.metrics().lease_held.get() == 1),
        );
        HealthReport {
            serving: up,
            details,
        }
    }
}
