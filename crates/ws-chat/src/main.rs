//! ws-chat's entry point: `ops` starts the app ([`ws_chat::app::Server`]), or
//! `token` mints a development token (see the `auth` crate).

/// The same allocator as the other two apps: with jemalloc an idle joined
/// socket costs a little less memory and a delivery a little less CPU
/// (`loadgen idle` / `loadgen fanout`, see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    // `<app> token --sub … --name …` mints a development token instead.
    if let Some(token) = auth::command::token_from_args(std::env::args().skip(1))? {
        println!("{token}");
        return Ok(());
    }
    ops::launch::run::<ws_chat::app::Server>()
}
