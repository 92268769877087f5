//! sse-stocks: read the configuration, start the feed, serve, shut down.

use anyhow::Result;
use ops::Shutdown;
use sse_stocks::config::Config;
use std::time::Duration;

/// Tens of thousands of small, long-lived allocations (a task, a socket's
/// registration) per open stream: jemalloc packs them more tightly than
/// glibc's arenas and takes fewer locks (measured with `loadgen streams`,
/// see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<()> {
    ops::telemetry::init();
    ops::limits::raise_open_files_limit();
    let config = Config::from_env()?;
    let shutdown = Shutdown::on_signals();
    let (routes, events, background) = sse_stocks::app::start(&config, &shutdown)?;
    let listener = ops::server::bind(config.server.addr).await?;
    tracing::info!(
        addr = %config.server.addr,
        mode = if config.server.redis_url.is_some() { "cluster" } else { "embedded" },
        symbols = config.symbols.len(),
        "sse-stocks listening"
    );
    ops::server::serve_with_raw_route(listener, warp::service(routes), events, shutdown).await?;
    // The producer hands its lease over before the process goes.
    background.finish(Duration::from_secs(3)).await;
    tracing::info!("sse-stocks stopped");
    Ok(())
}
