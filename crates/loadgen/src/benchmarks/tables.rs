//! The tables every section shares: the comparison table of runs (one row
//! per run, "no report" when it left none), the line under the light rows
//! that gives every interleaved round, the clean ceilings and their steps.

use super::figures::{RunFigures, shown};
use super::page::Page;
use super::results::Results;

/// Starts a comparison table (after an empty line).
pub(crate) fn table_head(page: &mut Page) {
    page.blank();
    page.line(
        "| server | run | connected | deliveries/s | p50 ms | p99 ms | max ms | lost | delivered % | CPU-µs/delivery | user | sys | deliveries/segment | KiB/conn | load at start |",
    );
    page.line("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

/// One row of a comparison table: `what` (the server and load) and the
/// figures of `run`.
pub(crate) fn row(page: &mut Page, results: &Results, run: &str, what: &str) {
    let Some(figures) = results.run(run) else {
        // The last line of stderr says why; `|` would cut the table's row.
        let why = results
            .stderr_tail(run, 1)
            .map(|tail| {
                let last = tail.concat().replace('|', "/");
                format!(": {}", cut(&last, 160))
            })
            .unwrap_or_default();
        page.line(format!("| {what} | `{run}` | no report{why} |"));
        return;
    };
    page.line(row_line(&figures, run, what, results.value(run, "load")));
}

fn row_line(figures: &RunFigures, run: &str, what: &str, load: &str) -> String {
    let count = |value: Option<u64>| value.map_or_else(|| "n/a".to_string(), |n| n.to_string());
    let lost = figures
        .lost()
        .map_or_else(|| "–".to_string(), |lost| lost.to_string());
    let server = |pick: fn(&super::figures::ServerFigures) -> Option<f64>| figures.server(pick);
    let cells = [
        what.to_string(),
        format!("`{run}`"),
        format!("{}/{}", count(figures.connected), count(figures.planned)),
        shown(figures.deliveries_per_sec, 0),
        shown(figures.latency(|latency| latency.p50_ms), 1),
        shown(figures.latency(|latency| latency.p99_ms), 1),
        shown(figures.latency(|latency| latency.max_ms), 1),
        lost,
        shown(figures.delivery_rate_pct, 2),
        shown(server(|server| server.cpu_us_per_delivery), 2),
        shown(
            figures.cpu_us_per_delivery_of(|server| server.cpu_user_seconds),
            2,
        ),
        shown(
            figures.cpu_us_per_delivery_of(|server| server.cpu_system_seconds),
            2,
        ),
        shown(server(|server| server.deliveries_per_segment), 2),
        shown(server(|server| server.kib_per_connection), 2),
        load.to_string(),
    ];
    format!("| {} |", cells.join(" | "))
}

/// The line under the light rows: every round's CPU per delivery of each
/// `(label, name)` whose median round was picked, and which round its row
/// shows. Nothing when no set of rounds ran.
pub(crate) fn rounds_line(page: &mut Page, results: &Results, rounds: u32, sets: &[(&str, &str)]) {
    let parts: Vec<String> = sets
        .iter()
        .filter(|(_, name)| results.text(name, "round").is_some())
        .map(|(label, name)| {
            let cpus: Vec<String> = (1..=rounds)
                .map(|round| {
                    let cpu = results
                        .run(&format!("{name}-r{round}"))
                        .and_then(|figures| figures.server(|server| server.cpu_us_per_delivery));
                    shown(cpu, 2)
                })
                .collect();
            format!(
                "{label} {} (row: round {})",
                cpus.join(" / "),
                results.value(name, "round")
            )
        })
        .collect();
    if parts.is_empty() {
        return;
    }
    page.blank();
    page.line(format!(
        "Light rows, CPU-µs per delivery of each of the {rounds} interleaved rounds: {}.",
        parts.join("; ")
    ));
}

/// The clean ceiling a search found (its best rate), or "n/a".
pub(crate) fn ceiling_of(results: &Results, name: &str) -> String {
    match results.text(name, "ceiling") {
        Some(_) => results.value(name, "ceiling").to_string(),
        None => "n/a".to_string(),
    }
}

/// The steps of the given ceiling searches, one row each, by search and
/// step.
pub(crate) fn ceiling_steps(page: &mut Page, results: &Results, searches: &[&str]) {
    table_head(page);
    for search in searches {
        let prefix = format!("{search}-");
        let mut steps: Vec<(u32, &str)> = results
            .runs_with("json", |run| {
                run.strip_prefix(&prefix)
                    .is_some_and(|step| step.parse::<u32>().is_ok())
            })
            .into_iter()
            .filter_map(|run| Some((run.strip_prefix(&prefix)?.parse().ok()?, run)))
            .collect();
        steps.sort();
        for (_, run) in steps {
            let rate = results.run(run).and_then(|figures| figures.rate);
            row(page, results, run, &format!("{} msg/s", shown(rate, 0)));
        }
    }
}

/// At most `bytes` bytes of `text`, cut at a character boundary.
pub(crate) fn cut(text: &str, bytes: usize) -> &str {
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIGHT: &str = r#"{"connected": 1000, "planned": 1000, "deliveries": 400000,
        "deliveries_per_sec": 79977.4, "delivery_rate_pct": 100.0,
        "latency": {"p50_ms": 3.712, "p99_ms": 13.57, "max_ms": 27.2},
        "messages": {"lost": 0, "expected": 400000},
        "server": {"cpu_us_per_delivery": 3.983, "cpu_user_seconds": 0.172, "cpu_system_seconds": 1.42,
                   "deliveries_per_segment": 1.0123, "kib_per_connection": 14.642}}"#;

    fn written(write: impl FnOnce(&mut Page)) -> String {
        let mut page = Page::default();
        write(&mut page);
        page.into_text()
    }

    #[test]
    fn a_row_shows_the_run_figures_rounded() {
        let results = Results::from_files([
            ("ws-chat-light.json", LIGHT),
            ("ws-chat-light.load", "1.76 1.92 3.44\n"),
        ]);
        assert_eq!(
            written(|page| row(page, &results, "ws-chat-light", "ws-chat, light")),
            "| ws-chat, light | `ws-chat-light` | 1000/1000 | 79977 | 3.7 | 13.6 | 27.2 | 0 | 100 | 3.98 | 0.43 | 3.55 | 1.01 | 14.64 | 1.76 1.92 3.44 |\n"
        );
    }

    #[test]
    fn an_idle_row_has_no_cpu_per_delivery() {
        let idle = r#"{"connected": 10, "planned": 10, "deliveries": 0, "deliveries_per_sec": 0,
            "latency": {"p50_ms": 0, "p99_ms": 0, "max_ms": 0}, "messages": null, "streams": null,
            "server": {"cpu_user_seconds": 0.5, "cpu_system_seconds": 0.1, "kib_per_connection": 2.344}}"#;
        let results = Results::from_files([("idle.json", idle)]);
        assert_eq!(
            written(|page| row(page, &results, "idle", "idle")),
            "| idle | `idle` | 10/10 | 0 | 0 | 0 | 0 | – | n/a | n/a | n/a | n/a | n/a | 2.34 |  |\n"
        );
    }

    #[test]
    fn a_missing_peer_row_says_no_report_and_why() {
        let results = Results::from_files([(
            "ws-node-heavy.stderr",
            "starting\nconnect refused | giving up\n",
        )]);
        let page = written(|page| {
            row(page, &results, "ws-node-heavy", "Node ws, heavy");
            row(page, &results, "ws-bun-heavy", "Bun ws, heavy");
        });
        assert_eq!(
            page,
            "| Node ws, heavy | `ws-node-heavy` | no report: connect refused / giving up |\n\
             | Bun ws, heavy | `ws-bun-heavy` | no report |\n"
        );
    }

    #[test]
    fn the_rounds_line_gives_every_round_and_the_row_shown() {
        let round = |cpu: f64| format!(r#"{{"server": {{"cpu_us_per_delivery": {cpu}}}}}"#);
        let (r1, r2, r3) = (round(3.98), round(3.834), round(4.05));
        let results = Results::from_files([
            ("ws-chat-light-r1.json", r1.as_str()),
            ("ws-chat-light-r2.json", r2.as_str()),
            ("ws-chat-light-r3.json", r3.as_str()),
            ("ws-chat-light.round", "1\n"),
            ("ws-node-light-r1.json", r1.as_str()),
            ("ws-node-light.round", "1\n"),
        ]);
        let sets = [
            ("ws-chat", "ws-chat-light"),
            ("Node ws", "ws-node-light"),
            ("Bun ws", "ws-bun-light"),
        ];
        assert_eq!(
            written(|page| rounds_line(page, &results, 3, &sets)),
            "\nLight rows, CPU-µs per delivery of each of the 3 interleaved rounds: \
             ws-chat 3.98 / 3.83 / 4.05 (row: round 1); Node ws 3.98 / n/a / n/a (row: round 1).\n"
        );
        assert_eq!(
            written(|page| rounds_line(page, &results, 3, &sets[2..])),
            ""
        );
    }

    #[test]
    fn ceiling_steps_are_listed_by_search_then_step() {
        let step = |rate: u32| format!(r#"{{"rate": {rate}}}"#);
        let (a, b, c) = (step(200), step(300), step(80));
        let results = Results::from_files([
            ("ws-chat-ceiling-2.json", b.as_str()),
            ("ws-chat-ceiling-1.json", a.as_str()),
            ("ws-node-ceiling-1.json", c.as_str()),
            ("ws-chat-ceiling.ceiling", "300\n"),
        ]);
        let page =
            written(|page| ceiling_steps(page, &results, &["ws-chat-ceiling", "ws-node-ceiling"]));
        let whats: Vec<&str> = page
            .lines()
            .skip(3)
            .map(|line| line.split(" | ").next().unwrap())
            .collect();
        assert_eq!(whats, ["| 200 msg/s", "| 300 msg/s", "| 80 msg/s"]);
        assert_eq!(ceiling_of(&results, "ws-chat-ceiling"), "300");
        assert_eq!(ceiling_of(&results, "ws-node-ceiling"), "n/a");
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("µs", 1), "");
        assert_eq!(cut("µs", 2), "µ");
        assert_eq!(cut("ab", 10), "ab");
    }
}
