//! sse-stocks: read the configuration, start the feed, serve, shut down.

use anyhow::Result;
use ops::Shutdown;
use sse_stocks::config::Config;
use std::time::Duration;

/// Each stream's memory is mostly hyper's per-connection buffers and task;
/// glibc's malloc leaves them spread over fragmented arenas, jemalloc packs
/// them: about 10 KiB of RSS per stream instead of 15 at 19,000 streams, and
/// less CPU per event (measured with `loadgen streams`, see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<()> {
    ops::telemetry::init();
    ops::limits::raise_open_files_limit();
    let config = Config::from_env()?;
    let shutdown = Shutdown::on_signals();
    let (routes, background) = sse_stocks::start(&config, &shutdown)?;
    let listener = ops::server::bind(config.server.addr).await?;
    tracing::info!(
        addr = %config.server.addr,
        mode = if config.server.redis_url.is_some() { "cluster" } else { "embedded" },
        symbols = config.symbols.len(),
        "sse-stocks listening"
    );
    ops::server::serve(listener, warp::service(routes), shutdown).await?;
    // The producer hands its lease over before the process goes.
    background.finish(Duration::from_secs(3)).await;
    tracing::info!("sse-stocks stopped");
    Ok(())
}
