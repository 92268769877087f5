//! ws-chat's entry point: read the configuration, serve the page, the
//! endpoints and the sockets, and on SIGINT/SIGTERM close every socket with
//! 1001 before exiting.

use anyhow::Result;
use ops::Shutdown;
use ops::metrics::prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;
use ws_chat::config::Config;
use ws_chat::metrics::ChatMetrics;
use ws_chat::upgrade::WithWebSocket;
use ws_chat::{Chat, routes};

/// How long open sockets get to deliver their close frames once shutdown
/// begins; with the HTTP drain running alongside, the process is gone
/// within five seconds of the signal.
const SOCKETS_GRACE: Duration = Duration::from_secs(3);

/// The same allocator as the other two apps: with jemalloc an idle joined
/// socket costs a little less memory and a delivery a little less CPU
/// (`loadgen idle` / `loadgen fanout`, see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<()> {
    ops::telemetry::init();
    ops::limits::raise_open_files_limit();
    let config = Config::from_env()?;
    let shutdown = Shutdown::on_signals();

    let mut registry = Registry::default();
    let metrics = ChatMetrics::register(&mut registry);
    let chat = Arc::new(Chat::new(config.clone(), metrics));
    let sessions = TaskTracker::new();
    let service = WithWebSocket::new(
        warp::service(routes::routes(Arc::new(registry))),
        chat.clone(),
        sessions.clone(),
        shutdown.clone(),
    );

    let listener = ops::server::bind(config.server.addr).await?;
    tracing::info!(addr = %config.server.addr, "ws-chat listening");
    let close_sockets = async {
        shutdown.wait().await;
        // Joined sockets see the hub close, the others the shutdown itself.
        chat.hub.shut_down();
        sessions.close();
        if tokio::time::timeout(SOCKETS_GRACE, sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(open = sessions.len(), "sockets still open at exit");
        }
    };
    let serve = async {
        let served = ops::server::serve(listener, service, shutdown.clone()).await;
        // Should serving ever stop on its own, the sockets go too.
        shutdown.trigger();
        served
    };
    let (served, ()) = tokio::join!(serve, close_sockets);
    served?;
    tracing::info!("ws-chat stopped");
    Ok(())
}
