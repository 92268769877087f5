//! The sse-stocks section: sse-stocks beside the Flask peer (dev server
//! and gunicorn + gevent) and the raw TCP reference making its writes.

use super::figures::{Figure, fixed, ratio, rounded};
use super::page::Page;
use super::results::Results;
use super::tables::{row, table_head};

/// Writes the section.
pub(crate) fn section(page: &mut Page, results: &Results) {
    page.blank();
    page.line("## sse-stocks beside Flask");
    page.blank();
    page.line("10 symbols, TICK_MS=100, every stream subscribed to all of them; the Flask peer as its users run it (Werkzeug's threaded dev server) and the stronger variant (gunicorn, one gevent worker). sse-stocks writes one feed step (10 events) per stream per system call: its cost per event is a tenth of a write's; the raw TCP reference makes the same writes (one 1.3 KB write to each of 1,000 sockets, 10 times a second).");
    for streams in ["1k", "19k"] {
        table_head(page);
        row(
            page,
            results,
            &format!("sse-stocks-{streams}"),
            &format!("sse-stocks, {streams} streams"),
        );
        row(
            page,
            results,
            &format!("flask-dev-{streams}"),
            &format!("Flask dev server, {streams} streams"),
        );
        row(
            page,
            results,
            &format!("flask-gevent-{streams}"),
            &format!("Flask on gunicorn + gevent, {streams} streams"),
        );
    }
    row(
        page,
        results,
        "rawtcp-sse",
        "raw TCP, the same writes as sse-stocks-1k (per write, not per event)",
    );
    if results.has_report("sse-stocks-jitter") {
        row(page, results, "sse-stocks-jitter", "sse-stocks, jitter");
    }
    let cpu = |run: &str| {
        results
            .run(run)
            .and_then(|figures| Figure::CpuUsPerDelivery.of(&figures))
            .map(|cpu| rounded(cpu, 3))
    };
    // The raw reference's cost is per write of ten events.
    let raw_per_event = cpu("rawtcp-sse").map(|per_write| per_write / 10.0);
    page.blank();
    page.line(format!(
        "sse-stocks per event at 1,000 streams ÷ the raw reference's per write / 10: {}; CPU per event ÷ gunicorn + gevent's: {} at 1,000 streams, {} at 19,000.",
        fixed(ratio(cpu("sse-stocks-1k"), raw_per_event)).0,
        fixed(ratio(cpu("sse-stocks-1k"), cpu("flask-gevent-1k"))).0,
        fixed(ratio(cpu("sse-stocks-19k"), cpu("flask-gevent-19k"))).0,
    ));
}
