//! The end of BENCHMARKS.md: the jitter run, the sections other bench
//! scripts wrote, every RSS step, and the exact commands of every run.

use super::page::Page;
use super::results::{About, Results};
use super::tables::{cut, row, table_head};

/// Writes the jitter section (when its run left a report) and the other
/// bench scripts' sections.
pub(crate) fn jitter_and_hooks(page: &mut Page, results: &Results) {
    if results.has_report("rooms-chat-jitter") {
        page.blank();
        page.line("## Jitter (clients cut and back, resuming)");
        table_head(page);
        row(
            page,
            results,
            "rooms-chat-jitter",
            "rooms-chat, 2 instances, jitter",
        );
    }
    for section in results.hook_sections() {
        page.blank();
        page.verbatim(section);
    }
}

/// Writes the RSS readings of every run that took more than one.
pub(crate) fn rss_steps(page: &mut Page, results: &Results) {
    page.blank();
    page.line("## RSS steps (idle and stream runs)");
    page.blank();
    for run in results.runs_with("json", |_| true) {
        let Some(figures) = results.run(run) else {
            continue;
        };
        let Some(server) = figures
            .server
            .as_ref()
            .filter(|server| server.rss_steps.len() > 1)
        else {
            continue;
        };
        let before = server
            .rss_before_kib
            .map_or_else(|| "null".to_string(), |kib| kib.to_string());
        let steps: Vec<String> = std::iter::once(format!("0 → {before} KiB"))
            .chain(
                server
                    .rss_steps
                    .iter()
                    .map(|step| format!("{} → {} KiB", step.connections, step.rss_kib)),
            )
            .collect();
        page.line(format!("- `{run}`: {}", steps.join(", ")));
    }
}

/// Writes every run's exact command line, its servers' and the load
/// average it started at.
pub(crate) fn exact_commands(page: &mut Page, results: &Results, about: &About) {
    page.blank();
    page.line("## Exact commands");
    page.blank();
    page.line(format!(
        "Paths are relative to the repository. Each run waited (at most {}s) for the 1-minute load average to fall under {}/2.",
        about.quiet_wait_secs, about.machine.cores
    ));
    for run in results.runs_with("command", |_| true) {
        page.blank();
        page.line(format!("### {run}"));
        page.blank();
        page.line(format!(
            "load average at start: {}",
            results.value(run, "load")
        ));
        match results.run(run) {
            Some(figures) => {
                if let Some(error) = figures.first_error.filter(|error| !error.is_empty()) {
                    page.line(format!("first client error: `{}`", cut(&error, 300)));
                }
            }
            None if !results.has_report(run) => {
                let tail = results.stderr_tail(run, 2).unwrap_or_default();
                let why: String = tail.iter().map(|line| format!("{line} ")).collect();
                page.line(format!("**no report**: {}", cut(&why, 400)));
            }
            None => {}
        }
        page.blank();
        page.line("```");
        page.verbatim(results.text(run, "servers").unwrap_or(""));
        page.verbatim(results.text(run, "command").unwrap_or(""));
        page.line("```");
    }
}
