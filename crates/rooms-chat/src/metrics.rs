//! The Prometheus series of rooms-chat: the shared core series plus what
//! an operator of a cluster needs to see (Redis link, cross-instance
//! traffic, dropped volatile frames, repaired gaps).

use ops::metrics::CoreMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every series of rooms-chat; clones count into the same series.
#[derive(Clone, Default)]
pub struct Metrics {
    /// The series every app has (connections, messages, errors).
    pub(crate) core: CoreMetrics,
    /// 1 while the Redis link works (always 1 in embedded mode).
    pub(crate) redis_up: Gauge,
    /// Room events this instance published to the other instances.
    pub(crate) cluster_messages_out: Counter,
    /// Room events received from Redis (every instance's, this one's included).
    pub(crate) cluster_messages_in: Counter,
    /// Volatile frames (`typing`, `rooms`) dropped for a socket that was behind.
    pub(crate) volatile_dropped: Counter,
    /// Client events refused at once because the Redis link was known down
    /// or answered too late.
    pub(crate) redis_unavailable: Counter,
    /// Messages fetched from the history because they went missing on the way.
    pub(crate) gap_repairs: Counter,
    /// Messages that went missing and could not be found in the history
    /// any more (trimmed, or lost with a Redis that restarted empty).
    pub(crate) messages_lost: Counter,
    /// Times the Redis event stream lagged or reconnected and every room was re-checked.
    pub(crate) resyncs: Counter,
    /// Dead instances whose members this instance removed.
    pub(crate) dead_instances_claimed: Counter,
    /// Rooms with members on this instance.
    pub(crate) local_rooms: Gauge,
    /// Sockets recovered after their connection dropped.
    pub(crate) recoveries: Counter,
}

impl Metrics {
    /// The series, registered in `registry` for `/metrics`.
    pub(crate) fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            core: CoreMetrics::register(registry),
            ..Metrics::default()
        };
        let rooms = registry.sub_registry_with_prefix("rooms");
        rooms.register(
            "redis_up",
            "1 while the Redis link works",
            metrics.redis_up.clone(),
        );
        rooms.register(
            "cluster_messages_out",
            "Room events published to the other instances",
            metrics.cluster_messages_out.clone(),
        );
        rooms.register(
            "cluster_messages_in",
            "Room events received through Redis",
            metrics.cluster_messages_in.clone(),
        );
        rooms.register(
            "volatile_dropped",
            "Volatile frames (typing, rooms) dropped for a socket that was behind",
            metrics.volatile_dropped.clone(),
        );
        rooms.register(
            "redis_unavailable",
            "Client events answered unavailable because Redis was down or late",
            metrics.redis_unavailable.clone(),
        );
        rooms.register(
            "gap_repairs",
            "Messages fetched from the history to fill a gap",
            metrics.gap_repairs.clone(),
        );
        rooms.register(
            "messages_lost",
            "Missing messages no longer in the history, skipped",
            metrics.messages_lost.clone(),
        );
        rooms.register(
            "resyncs",
            "Times every room was re-checked against the store",
            metrics.resyncs.clone(),
        );
        rooms.register(
            "dead_instances_claimed",
            "Dead instances whose members this instance removed",
            metrics.dead_instances_claimed.clone(),
        );
        rooms.register(
            "recoveries",
            "Sockets recovered after their connection dropped",
            metrics.recoveries.clone(),
        );
        rooms.register(
            "local_rooms",
            "Rooms with members on this instance",
            metrics.local_rooms.clone(),
        );
        metrics
    }
}
