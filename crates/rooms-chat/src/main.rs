//! rooms-chat: read the configuration, serve, shut down on SIGINT/SIGTERM.

use anyhow::Result;
use rooms_chat::config::Config;

/// Every delivery allocates its frame on the thread that emits it and frees
/// it on the socket's writer, often the other worker thread; glibc's malloc
/// then fights over its arena locks. jemalloc frees such blocks without
/// that contention, for less CPU per delivery at a little more memory per
/// idle socket (README "Memory allocator", BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<()> {
    ops::telemetry::init();
    ops::limits::raise_open_files_limit();
    let config = Config::from_env()?;
    let listener = ops::server::bind(config.server.addr).await?;
    let shutdown = ops::Shutdown::on_signals();
    rooms_chat::server::run(config, listener, shutdown).await
}
