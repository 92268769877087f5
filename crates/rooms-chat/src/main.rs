//! rooms-chat: read the configuration, serve, shut down on SIGINT/SIGTERM.

use anyhow::Result;
use rooms_chat::config::Config;

#[tokio::main]
async fn main() -> Result<()> {
    ops::telemetry::init();
    ops::limits::raise_open_files_limit();
    let config = Config::from_env()?;
    let listener = ops::server::bind(config.server.addr).await?;
    let shutdown = ops::Shutdown::on_signals();
    rooms_chat::server::run(config, listener, shutdown).await
}
