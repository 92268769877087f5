//! `loadgen`: read the command line, raise the open-files limit, run.
#![deny(unsafe_code)]

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = loadgen::cli::Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    ops::limits::raise_open_files_limit();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(loadgen::app::run(args))
}
