//! sse-stocks' entry point: `ops` starts the app ([`sse_stocks::app::Server`]).

/// Tens of thousands of small, long-lived allocations (a task, a socket's
/// registration) per open stream: jemalloc packs them more tightly than
/// glibc's arenas and takes fewer locks (measured with `loadgen streams`,
/// see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    ops::launch::run::<sse_stocks::app::Server>()
}
