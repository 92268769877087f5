//! How every app starts and stops, written once, so that no app's `main.rs`
//! repeats it: logging, the open-files limit, the settings from the
//! environment, the shutdown signals, the listening socket, then the app's
//! own start, serve and drain, in that order. While the app starts (it may
//! wait for Redis) the port already answers (the private `starting`
//! module: `/healthz` 503 `"starting"`, anything else 503).
//!
//! An app says what is its own by implementing [`Launch`]; its `main.rs`
//! is the allocator and `ops::launch::run::<App>()`.

use crate::server::{self, Server};
use crate::{ServerConfig, Shutdown};
use anyhow::{Context, Result};
use std::future::Future;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What one app brings to [`run`]: its settings, its start (the shared
/// state and the background tasks), how it serves, and how it drains.
pub trait Launch: Sized {
    /// The app's name, as the logs say it.
    const NAME: &'static str;

    /// The app's settings.
    type Config;

    /// Reads the settings from the environment, with a clear error for a bad value.
    fn config_from_env() -> Result<Self::Config>;

    /// The settings every server shares (address, origins, Redis).
    fn server_config(config: &Self::Config) -> &ServerConfig;

    /// Builds the shared state from `config` and starts the background
    /// tasks, which stop on `shutdown`; returns once the app can serve
    /// (meanwhile `/healthz` says `starting`), or with an error when it
    /// never can, or when `shutdown` came first.
    fn start(config: Self::Config, shutdown: &Shutdown) -> impl Future<Output = Result<Self>>;

    /// Serves `listener` until `shutdown`, the HTTP drain included.
    fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> impl Future<Output = Result<()>>;

    /// What the app finishes after serving and before the process goes:
    /// sockets closed, a lease handed over, members retired.
    fn drain(self) -> impl Future<Output = ()>;
}

/// Runs app `A` on a multi-threaded runtime until SIGINT or SIGTERM and the
/// end of its drain.
pub fn run<A: Launch>() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?
        .block_on(launch::<A>())
}

async fn launch<A: Launch>() -> Result<()> {
    crate::telemetry::init();
    crate::limits::raise_open_files_limit();
    let config = A::config_from_env()?;
    let server_config = A::server_config(&config);
    let (addr, limits) = (server_config.addr, server_config.limits.clone());
    let shutdown = Shutdown::on_signals()?;
    let listener = server::bind(addr).await?;
    tracing::info!(%addr, "{} listening", A::NAME);
    let (started, until_started) = oneshot::channel::<()>();
    let starting = Server::new(warp::service(crate::starting::routes()), limits).serve_until(
        &listener,
        async {
            // Sent or dropped: either way the app is done starting.
            let _ = until_started.await;
        },
        shutdown.clone(),
    );
    let start = async {
        let app = A::start(config, &shutdown).await;
        drop(started);
        app
    };
    let (app, ()) = tokio::join!(start, starting);
    let app = match app {
        Ok(app) => app,
        Err(error) if shutdown.is_triggered() => {
            tracing::info!(%error, "{} stopped while starting", A::NAME);
            return Ok(());
        }
        Err(error) => return Err(error),
    };
    tracing::info!("{} serving", A::NAME);
    let served = app.serve(listener, shutdown.clone()).await;
    // Should serving ever stop on its own, the rest stops with it.
    shutdown.trigger();
    app.drain().await;
    tracing::info!("{} stopped", A::NAME);
    served
}
