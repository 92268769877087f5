//! What `/healthz` says: the mode, and in cluster mode whether the Redis
//! link works (an instance that cannot reach Redis answers 503 so a load
//! balancer sends new clients elsewhere, while it keeps its open sockets).
//! On a Redis Cluster with some shards down the instance still serves the
//! rooms of the others: `redis` says `degraded`, with status 200, since
//! every instance is in the same state and draining them helps nobody.

use crate::metrics::Metrics;
use ops::metrics::{HealthCheck, HealthReport};
use protocol::{ErrorBody, ErrorCode};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};

/// The state of the link to Redis, as `/healthz`, the metrics and the
/// handlers see it (always up in embedded mode).
pub struct Link {
    /// `None` in embedded mode.
    instance: Option<String>,
    up: AtomicBool,
    /// Up, but some shards are not.
    degraded: AtomicBool,
    metrics: Metrics,
}

impl Link {
    /// Embedded mode: nothing outside the process can fail.
    pub(crate) fn embedded(metrics: Metrics) -> Link {
        metrics.redis_up.set(1);
        Link {
            instance: None,
            up: AtomicBool::new(true),
            degraded: AtomicBool::new(false),
            metrics,
        }
    }

    /// Cluster mode: down until the first heartbeats find the shards.
    pub fn cluster(instance: String, metrics: Metrics) -> Link {
        metrics.redis_up.set(0);
        Link {
            instance: Some(instance),
            up: AtomicBool::new(false),
            degraded: AtomicBool::new(true),
            metrics,
        }
    }

    /// Records whether the shards answer, logging each change.
    pub(crate) fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!("Redis link is up");
            } else {
                tracing::warn!("Redis link is down");
            }
        }
        self.metrics.redis_up.set(i64::from(up));
    }

    /// Whether only some of the shards answer.
    pub(crate) fn set_degraded(&self, degraded: bool) {
        if self.degraded.swap(degraded, Ordering::Relaxed) != degraded && degraded {
            tracing::warn!("some Redis shards are down; their rooms are unavailable");
        }
    }

    /// Whether any shard answers: some rooms can be served.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether every shard answers: every room can be served.
    pub(crate) fn is_fully_up(&self) -> bool {
        self.is_up() && !self.degraded.load(Ordering::Relaxed)
    }

    /// `unavailable` while the shared state cannot be reached.
    pub(crate) fn require_up(&self) -> Result<(), ErrorBody> {
        if self.is_up() {
            Ok(())
        } else {
            Err(unavailable())
        }
    }
}

/// The error every handler gives when the store fails.
pub(crate) fn unavailable() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::Unavailable,
        "the chat cannot reach its shared state right now; try again shortly",
    )
}

impl HealthCheck for Link {
    fn report(&self) -> HealthReport {
        let mut details = Map::new();
        let up = self.is_up();
        match &self.instance {
            None => {
                details.insert("mode".into(), Value::from("embedded"));
            }
            Some(instance) => {
                details.insert("mode".into(), Value::from("cluster"));
                details.insert("instance".into(), Value::from(instance.as_str()));
                let redis = match (up, self.degraded.load(Ordering::Relaxed)) {
                    (false, _) => "down",
                    (true, true) => "degraded",
                    (true, false) => "up",
                };
                details.insert("redis".into(), Value::from(redis));
            }
        }
        HealthReport {
            serving: up,
            details,
        }
    }
}
