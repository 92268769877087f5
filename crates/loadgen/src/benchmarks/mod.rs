//! BENCHMARKS.md, rendered from a results directory that `scripts/bench.sh`
//! filled (`loadgen report`), and what the script decides from one run's
//! report before the next: the median of the light rounds (`loadgen
//! median-round`), whether a ceiling step was clean (`loadgen is-clean`),
//! the raw reference's frames per write (`loadgen frames-per-write`).
//!
//! The script only runs things and collects their files; every figure the
//! document computes (ratios, differences, verdicts) is computed here, and
//! the targets come from a data file (`bench/targets.toml`) that the
//! document cites.

mod appendix;
mod between_runs;
mod figures;
mod header;
mod median;
mod page;
mod results;
mod rooms_chat;
mod sse_stocks;
mod tables;
mod targets;
mod ws_chat;

use crate::cli::Args;
use anyhow::Context;
use page::Page;
use results::Results;
use targets::Targets;

/// `loadgen report`: renders the document from `--results` and
/// `--targets-file`, to `--output` (written only once complete) or stdout.
pub(crate) fn report(args: &Args) -> anyhow::Result<()> {
    let results = Results::read(&args.results)?;
    let targets_text = std::fs::read_to_string(&args.targets_file)
        .with_context(|| format!("reading {}", args.targets_file.display()))?;
    let targets = Targets::parse(&targets_text)
        .with_context(|| format!("in {}", args.targets_file.display()))?;
    let document = render(&results, &targets, &args.targets_file.display().to_string())?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, document).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            print!("{document}");
            Ok(())
        }
    }
}

/// `loadgen median-round`: makes the median of `--rounds` rounds of the
/// light row `--run` the row.
pub(crate) fn median_round(args: &Args) -> anyhow::Result<()> {
    let round = median::pick(&args.results, &args.run, args.rounds)?;
    eprintln!("{}: round {round} of {}", args.run, args.rounds);
    Ok(())
}

/// `loadgen is-clean`: succeeds when the run `--run` was clean, fails
/// saying why not.
pub(crate) fn is_clean(args: &Args) -> anyhow::Result<()> {
    let results = Results::read(&args.results)?;
    let run = results
        .run(&args.run)
        .with_context(|| format!("{} left no report", args.run))?;
    between_runs::check_clean(&run).with_context(|| format!("{} is not clean", args.run))
}

/// `loadgen frames-per-write`: prints the frames per write of the raw
/// reference that copies the writes of the run `--run`.
pub(crate) fn frames_per_write(args: &Args) -> anyhow::Result<()> {
    let results = Results::read(&args.results)?;
    println!(
        "{}",
        between_runs::frames_per_write(results.run(&args.run).as_ref())
    );
    Ok(())
}

/// The whole document; `targets_file` is the targets' path as the document
/// cites it.
fn render(results: &Results, targets: &Targets, targets_file: &str) -> anyhow::Result<String> {
    let about = results.about()?;
    let rounds = about.light_rounds;
    let mut page = Page::default();
    header::header(&mut page, &about);
    ws_chat::section(&mut page, results, targets, targets_file, rounds);
    rooms_chat::section(&mut page, results, targets, targets_file, rounds)?;
    sse_stocks::section(&mut page, results);
    appendix::jitter_and_hooks(&mut page, results);
    appendix::rss_steps(&mut page, results);
    appendix::exact_commands(&mut page, results, &about);
    Ok(page.into_text())
}

/// A targets table: the targets of `table`, in the file's order.
fn targets_table(
    page: &mut Page,
    results: &Results,
    targets: &Targets,
    targets_file: &str,
    table: &str,
) {
    page.blank();
    page.line(format!(
        "The targets are those of `{targets_file}` (ids `{table}.*`); each verdict is taken on the figure as the table shows it."
    ));
    page.blank();
    page.line("| target | runs | measured | target | verdict |");
    page.line("|---|---|---|---|---|");
    for target in targets.of_table(table) {
        page.line(target.row(results).line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABOUT: &str = r#"{"written_at": "2026-01-02 03:04 UTC", "seconds": 1500, "quick": false,
        "window_secs": 15, "idle_steps": 4, "ceiling_steps": 6, "quiet_wait_secs": 60,
        "light_rounds": 3, "idle_settle_secs": 12, "commit": "abc1234",
        "uncommitted_changes": false, "results_dir": "target/bench",
        "machine": {"cores": 2, "cpu": "Some CPU", "memory": "8Gi", "kernel": "Linux 6",
          "node": "v20", "bun": "none", "python": "none", "open_files_hard_limit": "20000"}}"#;

    fn targets() -> Targets {
        Targets::parse(include_str!("../../../../bench/targets.toml")).unwrap()
    }

    #[test]
    fn the_document_has_every_section_in_order() {
        let results = Results::from_files([
            ("about/run.json", ABOUT),
            ("ws-chat-light.json", r#"{"connected": 1, "planned": 1}"#),
            ("ws-chat-light.command", "target/release/loadgen fanout\n"),
            (
                "ws-chat-light.servers",
                "(cd . && PORT=1 target/release/ws-chat)\n",
            ),
            ("ws-chat-light.load", "0.10 0.20 0.30\n"),
            ("rooms-chat-jitter.json", "{}"),
            ("hooks/churn.md", "## Churn without leaks\n"),
        ]);
        let text = render(&results, &targets(), "bench/targets.toml").unwrap();
        assert!(text.starts_with(
            "# Benchmarks\n\nWritten by `scripts/bench.sh` on 2026-01-02 03:04 UTC in 25 min, mode: full,\ntree at commit `abc1234`.\n"
        ));
        assert!(text.contains("| cores (nproc) | 2 |\n| CPU | Some CPU |\n"));
        assert!(text.contains(
            "### ws-chat targets\n\nThe targets are those of `bench/targets.toml` (ids `ws-chat.*`)"
        ));
        let headings = [
            "## Machine",
            "## ws-chat beside Node `ws` and Bun",
            "### ws-chat targets",
            "## rooms-chat beside Node socket.io and Bun",
            "### rooms-chat targets",
            "## sse-stocks beside Flask",
            "## Jitter (clients cut and back, resuming)",
            "## Churn without leaks",
            "## RSS steps (idle and stream runs)",
            "## Exact commands",
            "### ws-chat-light",
        ];
        let positions: Vec<usize> = headings
            .iter()
            .map(|heading| {
                text.find(&format!("\n{heading}\n"))
                    .unwrap_or_else(|| panic!("no {heading}"))
            })
            .collect();
        assert!(positions.is_sorted(), "{positions:?}");
        assert!(text.ends_with(
            "### ws-chat-light\n\nload average at start: 0.10 0.20 0.30\n\n```\n(cd . && PORT=1 target/release/ws-chat)\ntarget/release/loadgen fanout\n```\n"
        ));
    }

    #[test]
    fn a_quick_run_says_what_it_left_out() {
        let quick = ABOUT
            .replace(r#""quick": false"#, r#""quick": true"#)
            .replace(
                r#""uncommitted_changes": false"#,
                r#""uncommitted_changes": true"#,
            );
        let results = Results::from_files([("about/run.json", quick.as_str())]);
        let text = render(&results, &targets(), "bench/targets.toml").unwrap();
        assert!(text.contains("mode: quick (--quick: 15s windows, 4 RSS steps, ceiling search of 6 steps, no jitter runs, no idle row of Node ws),\ntree at commit `abc1234` plus uncommitted changes.\n"));
        assert!(!text.contains("## Jitter"));
    }

    #[test]
    fn results_without_the_about_file_are_refused() {
        let results = Results::from_files([("ws-chat-light.json", "{}")]);
        assert!(render(&results, &targets(), "bench/targets.toml").is_err());
    }
}
