//! ws-chat's entry point: `ops` starts the app ([`ws_chat::app::Server`]).

/// The same allocator as the other two apps: with jemalloc an idle joined
/// socket costs a little less memory and a delivery a little less CPU
/// (`loadgen idle` / `loadgen fanout`, see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    ops::launch::run::<ws_chat::app::Server>()
}
