//! rooms-chat's entry point: `ops` starts the app ([`rooms_chat::app::Server`]), or
//! `token` mints a development token (see the `auth` crate).

/// Every delivery allocates its frame on the thread that emits it and frees
/// it on the socket's writer, often the other worker thread; glibc's malloc
/// then fights over its arena locks. jemalloc frees such blocks without
/// that contention, for less CPU per delivery at a little more memory per
/// idle socket (README "Memory allocator", BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    // `<app> token --sub … --name …` mints a development token instead.
    if let Some(token) = auth::command::token_from_args(std::env::args().skip(1))? {
        println!("{token}");
        return Ok(());
    }
    ops::launch::run::<rooms_chat::app::Server>()
}
