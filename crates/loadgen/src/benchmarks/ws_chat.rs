//! The ws-chat section: ws-chat beside Node `ws`, Bun and the raw TCP
//! reference, its ceilings, its idle memory and its targets.

use super::page::Page;
use super::results::Results;
use super::tables::{ceiling_of, ceiling_steps, rounds_line, row, table_head};
use super::targets::Targets;
use super::targets_table;

/// Writes the section.
pub(crate) fn section(
    page: &mut Page,
    results: &Results,
    targets: &Targets,
    targets_file: &str,
    rounds: u32,
) {
    page.line("## ws-chat beside Node `ws` and Bun");
    page.blank();
    page.line("1,000 clients in one chat, 20 senders; light: 80 msg/s in all (80k deliveries/s), heavy: 200 msg/s (200k deliveries/s). Bun ws: `Bun.serve`'s WebSocket server (uWebSockets) with its topic `publish`.");
    for load in ["light", "heavy"] {
        table_head(page);
        row(
            page,
            results,
            &format!("ws-chat-{load}"),
            &format!("ws-chat, {load}"),
        );
        row(
            page,
            results,
            &format!("ws-node-{load}"),
            &format!("Node ws, {load}"),
        );
        row(
            page,
            results,
            &format!("ws-bun-{load}"),
            &format!("Bun ws, {load}"),
        );
        row(
            page,
            results,
            &format!("rawtcp-chat-{load}-1"),
            "raw TCP, one write per frame",
        );
        row(
            page,
            results,
            &format!("rawtcp-chat-{load}-same"),
            "raw TCP, ws-chat's writes",
        );
        if load == "light" {
            rounds_line(
                page,
                results,
                rounds,
                &[
                    ("ws-chat", "ws-chat-light"),
                    ("Node ws", "ws-node-light"),
                    ("Bun ws", "ws-bun-light"),
                    ("raw TCP", "rawtcp-chat-light-1"),
                ],
            );
        }
    }
    page.blank();
    page.line(format!(
        "Clean ceiling (msg/s sent to 1,000 clients): ws-chat {}, Node ws {}, Bun ws {}. Steps:",
        ceiling_of(results, "ws-chat-ceiling"),
        ceiling_of(results, "ws-node-ceiling"),
        ceiling_of(results, "ws-bun-ceiling"),
    ));
    ceiling_steps(
        page,
        results,
        &["ws-chat-ceiling", "ws-node-ceiling", "ws-bun-ceiling"],
    );
    table_head(page);
    row(
        page,
        results,
        "ws-chat-idle-10k",
        "ws-chat, 10,000 idle joined sockets",
    );
    row(
        page,
        results,
        "ws-node-idle-10k",
        "Node ws, 10,000 idle joined sockets",
    );
    for count in [6, 19] {
        row(
            page,
            results,
            &format!("ws-chat-idle-{count}k"),
            &format!("ws-chat, {count},000 idle joined sockets"),
        );
        row(
            page,
            results,
            &format!("ws-bun-idle-{count}k"),
            &format!("Bun ws, {count},000 idle joined sockets"),
        );
    }
    page.blank();
    page.line("### ws-chat targets");
    targets_table(page, results, targets, targets_file, "ws-chat");
}
