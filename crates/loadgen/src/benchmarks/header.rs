//! The top of BENCHMARKS.md: when and how the figures were made, the
//! machine, and how to read them.

use super::between_runs::CLEAN_P99_MS;
use super::page::Page;
use super::results::About;

/// Writes the title, the run's description, the machine and the notes on
/// reading the figures.
pub(crate) fn header(page: &mut Page, about: &About) {
    let mode = if about.quick {
        format!(
            "quick (--quick: {}s windows, {} RSS steps, ceiling search of {} steps, no jitter runs, no idle row of Node ws)",
            about.window_secs, about.idle_steps, about.ceiling_steps
        )
    } else {
        "full".to_string()
    };
    let uncommitted = if about.uncommitted_changes {
        " plus uncommitted changes"
    } else {
        ""
    };
    let results = &about.results_dir;
    let machine = &about.machine;
    let cores = machine.cores;
    page.line("# Benchmarks");
    page.blank();
    page.line(format!(
        "Written by `scripts/bench.sh` on {} in {} min, mode: {mode},",
        about.written_at,
        about.seconds / 60
    ));
    page.line(format!("tree at commit `{}`{uncommitted}.", about.commit));
    page.verbatim(&format!(
        "\
**Every figure below comes from that one run**: ours, the reference peers of
`bench/peers/` (copied unchanged from the shared peers, installed from their
lock files) and the raw TCP reference, one after the other, driven by the
same load generator (`crates/loadgen`). Each run's JSON report is
`{results}/<run>.json`; \"n/a\" means the run did not produce the figure
(see `{results}/<run>.stderr`).

## Machine

| | |
|---|---|
| cores (nproc) | {cores} |
| CPU | {} |
| memory | {} |
| kernel | {} |
| Node.js | {} |
| Bun | {} |
| Python | {} |
| open files (hard limit per process) | {} |
",
        machine.cpu,
        machine.memory,
        machine.kernel,
        machine.node,
        machine.bun,
        machine.python,
        machine.open_files_hard_limit,
    ));
    page.verbatim(&format!(
        "
How to read the figures:

- Server CPU is utime + stime of `/proc/PID/stat` (user and system apart),
  from the start of the window to the end of the drain (messages) or over
  the window alone (SSE), divided by deliveries. On loopback the kernel work
  of the receiving side of TCP runs in the sender's system call, so \"sys\"
  includes most of the clients' TCP receive cost.
- Deliveries per segment: deliveries divided by the TCP data segments the
  server's sockets sent over the same span (`data_segs_out` of `ss -ti`,
  summed over the sockets of its port). With Nagle off (every server here)
  a write is one segment unless the kernel merges writes queued behind each
  other, so this is about how many frames one write carried, read the same
  way for Rust, Node and Python (whose `send` calls `/proc/PID/io` does
  not count).
- The raw TCP reference (`loadgen raw-server`, no JSON, no framing) runs
  each shape twice: one write per frame (`--frames-per-write 1`), and with
  as many frames per write as our server made in that shape.
- Light load (one instance): nothing batches there, and one run's CPU per
  delivery varies by tens of percent from the next (the kernel's wake-ups
  of the load generator; Node's garbage collector). Ours, the Node and Bun
  peers and the raw reference with one write per frame therefore run {rounds}
  times, interleaved, and each row is the round with the median CPU per
  delivery; the line under the table gives every round
  (`target/bench/<run>-r<round>.json`).
- Latency is end to end (sender's clock to receiver's clock, one machine),
  including the load generator's own scheduling delays: it runs on the same
  {cores} cores as the servers. Where a server uses most of a core the load
  generator becomes the bottleneck too (its clients read late, latency
  grows for every server alike); \"load at start\" is the 1-minute load
  average when each run began.
- A clean ceiling is the highest rate of a short search (steps of ×1.5 up
  from a start while clean, or down from it until clean; a fresh server
  each) with p99 < {CLEAN_P99_MS} ms, nothing lost and every delivery made. \"n/a\": no
  step was clean.
- KiB per idle joined socket: the server's RSS over the joined sockets,
  read {settle} s after the last join of each step (the same for every
  server). Our binaries' jemalloc gives freed pages back over 10 s from a
  background thread; read sooner, the garbage of the join ramp (welcomes,
  notices) would count as memory per socket.

",
        rounds = about.light_rounds,
        settle = about.idle_settle_secs,
    ));
}
