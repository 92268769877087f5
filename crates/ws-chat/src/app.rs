//! The shared state of ws-chat, built from the configuration, and the app
//! as `ops` runs it: serve the page, the endpoints and the sockets, and on
//! shutdown close every socket with 1001 before the process goes.

use crate::clock;
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::routes;
use crate::upgrade::WithWebSocket;
use anyhow::{Context, Result};
use ops::metrics::prometheus_client::registry::Registry;
use ops::{ServerConfig, Shutdown};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// How long open sockets get to deliver their close frames once shutdown
/// begins; with the HTTP drain running alongside, the process is gone
/// within five seconds of the signal.
const SOCKETS_GRACE: Duration = Duration::from_secs(3);

/// What every session shares: the settings, the chat and its metrics.
pub(crate) struct App {
    /// The settings read at start.
    pub(crate) config: Config,
    /// The one chat room.
    pub(crate) hub: Hub,
    /// The series `/metrics` shows.
    pub(crate) metrics: Metrics,
    /// Token authentication, when `AUTH_JWT_*` turns it on.
    pub(crate) auth: Option<auth::Verifier>,
}

impl App {
    /// The chat for `config`, counting into `metrics`.
    pub(crate) fn new(config: Config, metrics: Metrics) -> Result<App> {
        let hub = Hub::new(config.write_delay, metrics.clone())
            .context("cannot start the fan-out's thread")?;
        Ok(App {
            hub,
            auth: config.auth.clone().map(auth::Verifier::new),
            config,
            metrics,
        })
    }
}

/// ws-chat running: the shared state, the series, the open sockets, and
/// the task that closes them at shutdown.
pub struct Server {
    app: Arc<App>,
    registry: Arc<Registry>,
    sessions: TaskTracker,
    shutdown: Shutdown,
    close_sockets: JoinHandle<()>,
}

impl ops::launch::Launch for Server {
    const NAME: &'static str = "ws-chat";
    type Config = Config;

    fn config_from_env() -> Result<Config> {
        Config::from_env()
    }

    fn server_config(config: &Config) -> &ServerConfig {
        &config.server
    }

    async fn start(config: Config, shutdown: &Shutdown) -> Result<Server> {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let app = Arc::new(App::new(config, metrics)?);
        let sessions = TaskTracker::new();
        tokio::spawn(clock::run(app.clone(), shutdown.clone()));
        let close_sockets = tokio::spawn(close_sockets(
            app.clone(),
            sessions.clone(),
            shutdown.clone(),
        ));
        Ok(Server {
            app,
            registry: Arc::new(registry),
            sessions,
            shutdown: shutdown.clone(),
            close_sockets,
        })
    }

    async fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
        // `GET /ws` upgrades in front of the warp routes.
        let service = WithWebSocket::new(
            warp::service(routes::routes(
                self.registry.clone(),
                self.app.auth.is_some(),
            )),
            self.app.clone(),
            self.sessions.clone(),
            self.shutdown.clone(),
        );
        let limits = self.app.config.server.limits.clone();
        ops::server::Server::new(service, limits)
            .serve(listener, shutdown)
            .await;
        Ok(())
    }

    async fn drain(self) {
        if let Err(error) = self.close_sockets.await {
            tracing::error!(%error, "closing the sockets failed");
        }
    }
}

/// At shutdown, closes every socket (1001) and waits a little for their
/// close frames to go out.
async fn close_sockets(app: Arc<App>, sessions: TaskTracker, shutdown: Shutdown) {
    shutdown.wait().await;
    // Joined sockets see the hub close, the others the shutdown itself.
    app.hub.shut_down();
    sessions.close();
    if tokio::time::timeout(SOCKETS_GRACE, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(open = sessions.len(), "sockets still open at exit");
    }
}
