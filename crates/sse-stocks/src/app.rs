//! The shared state of sse-stocks, built from the configuration, and the
//! background tasks beside it: the feed (or the Redis producer and tail),
//! the keep-alive timer and the end of open streams at shutdown.

use crate::cluster::Cluster;
use crate::cluster::health::RedisHealth;
use crate::config::Config;
use crate::events::EventsRoute;
use crate::feed::RandomWalk;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::{cluster, feed, routes};
use anyhow::Result;
use ops::Shutdown;
use ops::metrics::{AlwaysHealthy, HealthCheck};
use ops::origin::OriginPolicy;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use warp::Filter;

/// What the routes (and the stream route) need to answer.
pub struct App {
    pub hub: Arc<Hub>,
    pub cluster: Option<Arc<Cluster>>,
    /// Which browser pages may open a stream (contract: same host or `ALLOWED_ORIGINS`).
    pub origins: OriginPolicy,
    pub retry: Duration,
    pub stream_max_age: Option<Duration>,
}

/// The tasks that run beside the routes: the feed, or the Redis producer and
/// tail, the keep-alive timer and the end of open streams at shutdown.
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Waits (at most `timeout`) for the tasks to finish after shutdown, so
    /// that a producer hands its lease over before the process exits.
    pub async fn finish(self, timeout: Duration) {
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("background tasks still running at exit");
        }
    }
}

/// Starts the background tasks and returns them with the routes: warp's,
/// and the stream route served beside them.
pub fn start(
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(
    impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>,
    EventsRoute,
    Background,
)> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let walk = RandomWalk::new(
        &config.symbols,
        feed::seed_or_random(config.seed),
        config.tick,
    );
    let replay_in_memory = match config.server.redis_url {
        Some(_) => config.replay_ticks.min(cluster::LOCAL_REPLAY_TICKS),
        None => config.replay_ticks,
    };
    let hub = Arc::new(Hub::new(
        config.symbols.clone(),
        walk.quotes(protocol::now_ms()),
        replay_in_memory,
        metrics,
    ));

    let mut tasks = Vec::new();
    let (cluster, health): (Option<Arc<Cluster>>, Arc<dyn HealthCheck>) =
        match &config.server.redis_url {
            Some(url) => {
                let cluster = Cluster::connect(url, hub.clone(), config.replay_ticks)?;
                tasks.push(tokio::spawn(cluster.clone().run_tail(shutdown.clone())));
                tasks.push(tokio::spawn(cluster.clone().run_producer(
                    walk,
                    config.tick,
                    shutdown.clone(),
                )));
                (Some(cluster.clone()), Arc::new(RedisHealth(cluster)))
            }
            None => {
                tasks.push(tokio::spawn(feed::run(
                    hub.clone(),
                    walk,
                    config.tick,
                    shutdown.clone(),
                )));
                (None, Arc::new(AlwaysHealthy))
            }
        };
    tasks.push(tokio::spawn(
        hub.clone()
            .run_keepalive(config.keepalive, shutdown.clone()),
    ));
    {
        // Open streams would hold the graceful drain for ever: end them.
        let hub = hub.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            shutdown.wait().await;
            hub.close();
        }));
    }

    let app = Arc::new(App {
        hub,
        cluster,
        origins: OriginPolicy::new(config.server.allowed_origins.clone()),
        retry: config.retry,
        stream_max_age: config.stream_max_age,
    });
    let events = EventsRoute::new(app.clone());
    let routes = routes::routes(app, Arc::new(registry), health);
    Ok((routes, events, Background { tasks }))
}
