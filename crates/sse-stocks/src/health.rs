//! What `/healthz` says in cluster mode: serving needs the Redis link
//! (503 while Redis cannot be read; open streams stay open, quiet but for
//! keep-alives, and catch up when Redis is back), and whether this instance
//! produces the feed. Embedded mode depends on nothing outside the process
//! and is always healthy.

use crate::cluster::Cluster;
use ops::metrics::{HealthCheck, HealthReport};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Cluster mode's health.
pub struct RedisHealth(pub Arc<Cluster>);

impl HealthCheck for RedisHealth {
    fn report(&self) -> HealthReport {
        let up = self.0.is_up();
        let mut details = Map::new();
        details.insert("redis".into(), Value::from(if up { "up" } else { "down" }));
        details.insert(
            "producer".into(),
            Value::from(self.0.metrics().lease_held.get() == 1),
        );
        HealthReport {
            serving: up,
            details,
        }
    }
}
