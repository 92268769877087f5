//! The Prometheus series of ws-chat: the shared core series plus what only a
//! chat has (users, broadcasts, sockets cut off for falling behind).

use ops::metrics::CoreMetrics;
use ops::metrics::prometheus_client::metrics::counter::Counter;
use ops::metrics::prometheus_client::metrics::gauge::Gauge;
use ops::metrics::prometheus_client::registry::Registry;

/// Every series of ws-chat; clones count into the same series.
#[derive(Clone, Default)]
pub struct Metrics {
    /// The series every app has (connections, messages, errors).
    pub core: CoreMetrics,
    /// Users in the chat now (joined sockets).
    pub users: Gauge,
    /// Successful `hello`s, takeovers included.
    pub users_joined: Counter,
    /// Chat messages accepted and broadcast (each counted once, not per recipient).
    pub broadcasts: Counter,
    /// Sockets cut off because they fell more than `QUEUE_LEN` broadcasts behind.
    pub slow_disconnects: Counter,
}

impl Metrics {
    /// The series, registered in `registry` for `/metrics`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            core: CoreMetrics::register(registry),
            ..Metrics::default()
        };
        registry.register("chat_users", "Users in the chat now", metrics.users.clone());
        registry.register(
            "chat_users_joined",
            "Successful hellos since start",
            metrics.users_joined.clone(),
        );
        registry.register(
            "chat_broadcasts",
            "Chat messages broadcast (once per message, not per recipient)",
            metrics.broadcasts.clone(),
        );
        registry.register(
            "chat_slow_disconnects",
            "Sockets cut off for falling too far behind the broadcasts",
            metrics.slow_disconnects.clone(),
        );
        metrics
    }
}
