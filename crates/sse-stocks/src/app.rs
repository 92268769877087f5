//! The shared state of sse-stocks, built from the configuration, the
//! background tasks beside it (the feed, or the Redis producer and tail,
//! the keep-alive timer and the end of open streams at shutdown), and the
//! app as `ops` runs it: serve, then let the producer hand its lease over.

use crate::cluster::Cluster;
use crate::config::Config;
use crate::events::EventsRoute;
use crate::feed::RandomWalk;
use crate::health::RedisHealth;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::{cluster, feed, routes};
use anyhow::Result;
use ops::admission::AdmissionConfig;
use ops::metrics::{AlwaysHealthy, HealthCheck};
use ops::origin::OriginPolicy;
use ops::{ServerConfig, Shutdown};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the routes (and the stream route) need to answer.
pub(crate) struct App {
    pub(crate) hub: Arc<Hub>,
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// Which browser pages may open a stream (contract: same host or `ALLOWED_ORIGINS`).
    pub(crate) origins: OriginPolicy,
    pub(crate) retry: Duration,
    pub(crate) stream_max_age: Option<Duration>,
}

/// sse-stocks running: the shared state, the series, the health to
/// report, and the tasks beside the routes (the feed, or the Redis producer
/// and tail, the keep-alive timer and the end of open streams at shutdown).
pub struct Server {
    app: Arc<App>,
    registry: Arc<Registry>,
    health: Arc<dyn HealthCheck>,
    limits: AdmissionConfig,
    background: Vec<JoinHandle<()>>,
}

/// How long the background tasks get after serving, so that a producer
/// hands its lease over before the process goes.
const BACKGROUND_GRACE: Duration = Duration::from_secs(3);

impl ops::launch::Launch for Server {
    const NAME: &'static str = "sse-stocks";
    type Config = Config;

    fn config_from_env() -> Result<Config> {
        Config::from_env()
    }

    fn server_config(config: &Config) -> &ServerConfig {
        &config.server
    }

    async fn start(config: Config, shutdown: &Shutdown) -> Result<Server> {
        start(&config, shutdown)
    }

    async fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
        let routes = routes::routes(self.app.clone(), self.registry.clone(), self.health.clone());
        let events = EventsRoute::new(self.app.clone());
        ops::server::Server::new(warp::service(routes), self.limits.clone())
            .with_raw_route(events)
            .serve(listener, shutdown)
            .await;
        Ok(())
    }

    async fn drain(self) {
        let all = futures::future::join_all(self.background);
        if tokio::time::timeout(BACKGROUND_GRACE, all).await.is_err() {
            tracing::warn!("background tasks still running at exit");
        }
    }
}

/// Builds the shared state and starts the background tasks.
fn start(config: &Config, shutdown: &Shutdown) -> Result<Server> {
    tracing::info!(
        mode = if config.server.redis_url.is_some() {
            "cluster"
        } else {
            "embedded"
        },
        symbols = config.symbols.len(),
        "sse-stocks starting"
    );
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
    Ok(Server {
        app,
        registry: Arc::new(registry),
        health,
        limits: config.server.limits.clone(),
        background: tasks,
    })
}
