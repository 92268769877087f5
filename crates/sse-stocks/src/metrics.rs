//! The series `/metrics` exports: the core series every app has (streams
//! are its connections, tick events its messages out) and the feed's own.

use ops::metrics::CoreMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Default)]
pub struct Metrics {
    pub core: CoreMetrics,
    /// Ticks this instance produced (embedded feed, or cluster lease holder).
    pub ticks_produced: Counter,
    /// Ticks this instance read from the Redis stream (cluster mode).
    pub ticks_received: Counter,
    /// `reset` events sent: too-old ids, lagging streams, lost Redis data.
    pub resets: Counter,
    /// Streams that resumed from a `Last-Event-ID` without a reset.
    pub resumes: Counter,
    /// 1 while this instance holds the producer lease (cluster mode).
    pub lease_held: Gauge,
    /// Failed Redis commands (cluster mode).
    pub redis_errors: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let core = CoreMetrics::register(registry);
        let metrics = Metrics {
            core,
            ..Metrics::default()
        };
        registry.register(
            "sse_streams_open",
            "Event streams open now",
            metrics.core.connections.clone(),
        );
        registry.register(
            "sse_events_written",
            "Tick events written to streams",
            metrics.core.messages_out.clone(),
        );
        registry.register(
            "sse_ticks_produced",
            "Ticks produced by this instance's feed",
            metrics.ticks_produced.clone(),
        );
        registry.register(
            "sse_ticks_received",
            "Ticks read from the Redis stream",
            metrics.ticks_received.clone(),
        );
        registry.register(
            "sse_resets",
            "Reset events sent instead of a replay",
            metrics.resets.clone(),
        );
        registry.register(
            "sse_resumes",
            "Streams resumed from Last-Event-ID without a gap",
            metrics.resumes.clone(),
        );
        registry.register(
            "sse_lease_held",
            "1 while this instance produces the feed (cluster mode)",
            metrics.lease_held.clone(),
        );
        registry.register(
            "sse_redis_errors",
            "Failed Redis commands",
            metrics.redis_errors.clone(),
        );
        metrics
    }
}
