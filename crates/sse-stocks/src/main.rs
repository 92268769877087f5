//! sse-stocks' entry point: `ops` starts the app ([`sse_stocks::app::Server`]),
//! or `token` mints a development token (see the `auth` crate).

/// Tens of thousands of small, long-lived allocations (a task, a socket's
/// registration) per open stream: jemalloc packs them more tightly than
/// glibc's arenas and takes fewer locks (measured with `loadgen streams`,
/// see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    // `<app> token --sub … --name …` mints a development token instead.
    if let Some(token) = auth::command::token_from_args(std::env::args().skip(1))? {
        println!("{token}");
        return Ok(());
    }
    ops::launch::run::<sse_stocks::app::Server>()
}
