//! The rooms-chat section: rooms-chat beside Node socket.io, Bun
//! socket.io, socketioxide alone and the raw TCP reference; two instances
//! on Redis, ceilings, idle memory, the join storm, its targets and the
//! same ratios for socketioxide alone.

use super::figures::{Figure, RunFigures, difference, fixed, ratio, rounded};
use super::page::Page;
use super::results::Results;
use super::tables::{ceiling_of, ceiling_steps, rounds_line, row, table_head};
use super::targets::Targets;
use super::targets_table;
use crate::benchmarks::figures::shown;

/// Writes the section.
pub(crate) fn section(
    page: &mut Page,
    results: &Results,
    targets: &Targets,
    targets_file: &str,
    rounds: u32,
) -> anyhow::Result<()> {
    page.blank();
    page.line("## rooms-chat beside Node socket.io and Bun");
    page.blank();
    page.line("1,000 clients in 10 rooms, 50 senders; light: 500 msg/s in all (50k deliveries/s), heavy: 2,000 msg/s (200k deliveries/s). \"2 instances\": two servers on one private Redis, clients spread over both (Node: @socket.io/redis-adapter). Bun socket.io: the Node peer's app on Bun's own server (uWebSockets) through @socket.io/bun-engine.");
    for load in ["light", "heavy"] {
        table_head(page);
        let rows = [
            (format!("rooms-chat-{load}"), format!("rooms-chat, {load}")),
            (
                format!("rooms-node-{load}"),
                format!("Node socket.io, {load}"),
            ),
            (
                format!("rooms-bun-{load}"),
                format!("Bun socket.io, {load}"),
            ),
            (
                format!("rooms-chat-{load}-2"),
                format!("rooms-chat, 2 instances + Redis, {load}"),
            ),
            (
                format!("rooms-node-{load}-2"),
                format!("Node socket.io + redis-adapter, 2 instances, {load}"),
            ),
            (
                format!("socketioxide-bare-{load}"),
                format!(
                    "bare socketioxide, its own room broadcast (examples/bare_socketioxide.rs), {load}"
                ),
            ),
            (
                format!("rawtcp-rooms-{load}-1"),
                "raw TCP, one write per frame".to_string(),
            ),
            (
                format!("rawtcp-rooms-{load}-same"),
                "raw TCP, rooms-chat's writes".to_string(),
            ),
        ];
        for (run, what) in &rows {
            row(page, results, run, what);
        }
        if load == "light" {
            rounds_line(
                page,
                results,
                rounds,
                &[
                    ("rooms-chat", "rooms-chat-light"),
                    ("Node socket.io", "rooms-node-light"),
                    ("Bun socket.io", "rooms-bun-light"),
                    ("bare socketioxide", "socketioxide-bare-light"),
                    ("raw TCP", "rawtcp-rooms-light-1"),
                ],
            );
        }
    }
    page.blank();
    page.line(format!(
        "Clean ceiling (msg/s sent over 10 rooms of 100): rooms-chat {}, Node socket.io {}, Bun socket.io {}. Steps:",
        ceiling_of(results, "rooms-chat-ceiling"),
        ceiling_of(results, "rooms-node-ceiling"),
        ceiling_of(results, "rooms-bun-ceiling"),
    ));
    ceiling_steps(
        page,
        results,
        &[
            "rooms-chat-ceiling",
            "rooms-node-ceiling",
            "rooms-bun-ceiling",
        ],
    );
    idle_rows(page, results);
    join_storm(page, results);
    page.blank();
    page.line("### rooms-chat targets");
    targets_table(page, results, targets, targets_file, "rooms-chat");
    floor_ratios(page, results, targets)
}

fn idle_rows(page: &mut Page, results: &Results) {
    table_head(page);
    for (sockets, rooms) in [("6k", "10"), ("19k", "10"), ("15k", "100")] {
        let shape = format!("{sockets}-{rooms}");
        for (run, server) in [
            ("rooms-chat", "rooms-chat"),
            ("rooms-bun", "Bun socket.io"),
            ("rooms-node", "Node socket.io"),
        ] {
            row(
                page,
                results,
                &format!("{run}-idle-{shape}"),
                &format!("{server}, idle, {sockets} sockets in {rooms} rooms"),
            );
        }
        if sockets == "6k" {
            continue;
        }
        row(
            page,
            results,
            &format!("socketioxide-bare-idle-{shape}"),
            "bare socketioxide (crates/rooms-chat/examples/bare_socketioxide.rs)",
        );
        row(
            page,
            results,
            &format!("socketioxide-bare-notices-idle-{shape}"),
            "bare socketioxide with the contract's join: the members in the ack, user_joined to the room (BARE_NOTICES=1)",
        );
    }
    row(
        page,
        results,
        "rooms-chat-idle-19k-19000",
        "rooms-chat, idle, 19k sockets in 19k rooms (a room each)",
    );
}

fn join_storm(page: &mut Page, results: &Results) {
    page.blank();
    page.line("Join storm: 2,000 members join one room with 500 handshakes in flight; every member checks the user_joined notices it gets (each later joiner exactly once, in the order every other member saw them).");
    page.blank();
    page.line("| server | run | joined | join time s | notices expected | received | missing | out of order | disconnected |");
    page.line("|---|---|---|---|---|---|---|---|---|");
    for run in ["rooms-chat-join-storm", "rooms-node-join-storm"] {
        let server = run.trim_end_matches("-join-storm");
        let Some(figures) = results.run(run) else {
            page.line(format!("| {server} | `{run}` | no report | | | | | | |"));
            continue;
        };
        page.line(storm_line(&figures, server, run));
    }
}

fn storm_line(figures: &RunFigures, server: &str, run: &str) -> String {
    let count = |value: Option<u64>| value.map_or_else(|| "n/a".to_string(), |n| n.to_string());
    format!(
        "| {server} | `{run}` | {}/{} | {} | {} | {} | {} | {} | {} |",
        count(figures.connected),
        count(figures.planned),
        shown(figures.storm(|storm| storm.join_secs), 1),
        count(figures.storm(|storm| storm.expected)),
        count(figures.storm(|storm| storm.received)),
        count(figures.storm(|storm| storm.missing)),
        count(figures.storm(|storm| storm.out_of_order)),
        count(figures.storm(|storm| storm.disconnected)),
    )
}

/// What a floor ratio divides: CPU per delivery, or its user part.
#[derive(Clone, Copy)]
enum Cost {
    Cpu,
    UserCpu,
}

impl Cost {
    fn of(self, results: &Results, run: &str) -> Option<f64> {
        let figures = results.run(run)?;
        let value = match self {
            Cost::Cpu => Figure::CpuUsPerDelivery.of(&figures),
            Cost::UserCpu => figures.cpu_us_per_delivery_of(|server| server.cpu_user_seconds),
        };
        value.map(|value| rounded(value, 3))
    }
}

/// The table that sets rooms-chat's ratios beside socketioxide's alone;
/// its target column cites the targets file.
fn floor_ratios(page: &mut Page, results: &Results, targets: &Targets) -> anyhow::Result<()> {
    let goal = |id: &str| -> anyhow::Result<String> {
        Ok(targets.get(id)?.goal.clone().unwrap_or_default())
    };
    let cpu = |run: &str| Cost::Cpu.of(results, run);
    let rows = [
        (
            "light CPU per delivery ÷ Node's",
            "light",
            Cost::Cpu,
            cpu("rooms-node-light"),
            goal("rooms-chat.light-cpu-vs-node")?,
        ),
        (
            "light CPU per delivery ÷ Bun socket.io's",
            "light",
            Cost::Cpu,
            cpu("rooms-bun-light"),
            String::new(),
        ),
        (
            "light CPU per delivery ÷ raw TCP one write per frame",
            "light",
            Cost::Cpu,
            cpu("rawtcp-rooms-light-1"),
            format!(
                "{} (against raw TCP with the same writes)",
                goal("rooms-chat.light-cpu-vs-raw-same-writes")?
            ),
        ),
        (
            "heavy CPU per delivery ÷ raw TCP one write per frame",
            "heavy",
            Cost::Cpu,
            cpu("rawtcp-rooms-heavy-1"),
            goal("rooms-chat.heavy-cpu-vs-raw")?,
        ),
        (
            "heavy CPU per delivery ÷ Bun socket.io's",
            "heavy",
            Cost::Cpu,
            cpu("rooms-bun-heavy"),
            String::new(),
        ),
        (
            "heavy user CPU per delivery ÷ raw TCP one write per frame (all of it)",
            "heavy",
            Cost::UserCpu,
            cpu("rawtcp-rooms-heavy-1"),
            String::new(),
        ),
    ];
    page.blank();
    page.line("The same ratios for socketioxide alone (`examples/bare_socketioxide.rs`: its own room broadcast, one encoding per message, nothing of ours), the floor that rooms-chat's deliveries pass through:");
    page.blank();
    page.line("| ratio | rooms-chat | bare socketioxide | target |");
    page.line("|---|---|---|---|");
    for (what, load, cost, denominator, goal) in rows {
        let ours = fixed(ratio(
            cost.of(results, &format!("rooms-chat-{load}")),
            denominator,
        ))
        .0;
        let bare = fixed(ratio(
            cost.of(results, &format!("socketioxide-bare-{load}")),
            denominator,
        ))
        .0;
        page.line(format!("| {what} | {ours} | {bare} | {goal} |"));
    }
    for (sockets, rooms) in [("19k", "10"), ("15k", "100")] {
        let kib = |run: String| {
            results
                .run(&run)
                .and_then(|figures| Figure::KibPerConnection.of(&figures))
                .map(|kib| rounded(kib, 2))
        };
        let above = fixed(difference(
            kib(format!("rooms-chat-idle-{sockets}-{rooms}")),
            kib(format!("socketioxide-bare-notices-idle-{sockets}-{rooms}")),
        ))
        .0;
        page.line(format!("| idle KiB per joined socket above bare socketioxide with the contract's join (BARE_NOTICES=1), {sockets} sockets in {rooms} rooms | {above} | 0 | |"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_row_shows_the_tally() {
        let results = Results::from_files([(
            "rooms-chat-join-storm.json",
            r#"{"connected": 2000, "planned": 2000, "storm": {"join_secs": 2.2499, "expected": 3998000,
                "received": 3997990, "missing": 10, "out_of_order": 0, "disconnected": 0}}"#,
        )]);
        let mut page = Page::default();
        join_storm(&mut page, &results);
        let text = page.into_text();
        assert!(text.contains(
            "| rooms-chat | `rooms-chat-join-storm` | 2000/2000 | 2.2 | 3998000 | 3997990 | 10 | 0 | 0 |\n"
        ));
        assert!(
            text.contains("| rooms-node | `rooms-node-join-storm` | no report | | | | | | |\n")
        );
    }

    #[test]
    fn floor_ratios_set_ours_beside_the_bare_framework() {
        let cpu = |cpu: f64| {
            format!(
                r#"{{"deliveries": 1000000, "server": {{"cpu_us_per_delivery": {cpu}, "cpu_user_seconds": 2.0}}}}"#
            )
        };
        let (ours, bare, node, raw) = (cpu(9.96), cpu(8.68), cpu(13.44), cpu(4.0));
        let results = Results::from_files([
            ("rooms-chat-light.json", ours.as_str()),
            ("socketioxide-bare-light.json", bare.as_str()),
            ("rooms-node-light.json", node.as_str()),
            ("rooms-chat-heavy.json", ours.as_str()),
            ("rawtcp-rooms-heavy-1.json", raw.as_str()),
            (
                "rooms-chat-idle-19k-10.json",
                r#"{"server": {"kib_per_connection": 36.54}}"#,
            ),
            (
                "socketioxide-bare-notices-idle-19k-10.json",
                r#"{"server": {"kib_per_connection": 38.75}}"#,
            ),
        ]);
        let targets = Targets::parse(include_str!("../../../../bench/targets.toml")).unwrap();
        let mut page = Page::default();
        floor_ratios(&mut page, &results, &targets).unwrap();
        let text = page.into_text();
        assert!(
            text.contains("| light CPU per delivery ÷ Node's | 0.74 | 0.65 | ≤ 0.65× |\n"),
            "{text}"
        );
        assert!(
            text.contains("| light CPU per delivery ÷ Bun socket.io's | n/a | n/a |  |\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "| heavy CPU per delivery ÷ raw TCP one write per frame | 2.49 | n/a | ≤ 0.55× |\n"
            ),
            "{text}"
        );
        assert!(text.contains("| heavy user CPU per delivery ÷ raw TCP one write per frame (all of it) | 0.50 | n/a |  |\n"), "{text}");
        assert!(
            text.contains("19k sockets in 10 rooms | -2.21 | 0 | |\n"),
            "{text}"
        );
        assert!(
            text.contains("15k sockets in 100 rooms | n/a | 0 | |\n"),
            "{text}"
        );
    }
}
