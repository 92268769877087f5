//! The targets file (`bench/targets.toml`): what each target measures,
//! how it compares, and its threshold; and the row of a targets table one
//! target gives for a set of results, with its verdict.

use super::figures::{Figure, difference, fixed, ratio, rounded, shown};
use super::results::Results;
use anyhow::{Context, bail, ensure};
use serde::Deserialize;
use std::collections::HashSet;

/// The targets tables a target may belong to.
pub(crate) const TABLES: [&str; 2] = ["ws-chat", "rooms-chat"];

/// Every target of the file, in its order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Targets {
    target: Vec<Target>,
}

/// One target; see the comment at the top of `bench/targets.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    pub(crate) id: String,
    pub(crate) table: String,
    pub(crate) description: String,
    pub(crate) measured: Measured,
    pub(crate) compare: Option<Compare>,
    pub(crate) threshold: Option<Threshold>,
    pub(crate) goal: Option<String>,
}

/// The measured figure: of one run, of one run over another, or one
/// run's minus another's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Measured {
    pub(crate) run: String,
    pub(crate) figure: Figure,
    pub(crate) over: Option<String>,
    pub(crate) minus: Option<String>,
}

/// How the measured figure must compare with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Compare {
    /// At most the threshold.
    #[serde(rename = "<=")]
    AtMost,
    /// Below the threshold.
    #[serde(rename = "<")]
    Below,
    /// Exactly the threshold.
    #[serde(rename = "==")]
    Exactly,
}

/// A fixed number, or a figure of another run (plus an offset).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Threshold {
    /// The same for every run.
    Fixed(f64),
    /// Another run's figure, e.g. a peer's latency plus half a millisecond.
    Run {
        /// The run.
        run: String,
        /// Its figure.
        figure: Figure,
        /// Added to the figure.
        #[serde(default)]
        plus: f64,
    },
}

/// One row of a targets table, ready to be written.
#[derive(Debug, PartialEq)]
pub(crate) struct TargetRow {
    pub(crate) description: String,
    pub(crate) runs: String,
    pub(crate) measured: String,
    pub(crate) goal: String,
    pub(crate) verdict: String,
}

impl Targets {
    /// Reads and checks a targets file's text.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let targets: Targets = toml::from_str(text).context("reading the targets")?;
        let mut ids = HashSet::new();
        for target in &targets.target {
            ensure!(
                ids.insert(target.id.as_str()),
                "target {} is there twice",
                target.id
            );
            target
                .check()
                .with_context(|| format!("target {}", target.id))?;
        }
        Ok(targets)
    }

    /// The targets of one table, in the file's order.
    pub(crate) fn of_table<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a Target> {
        self.target
            .iter()
            .filter(move |target| target.table == table)
    }

    /// The target with this id.
    pub(crate) fn get(&self, id: &str) -> anyhow::Result<&Target> {
        self.target
            .iter()
            .find(|target| target.id == id)
            .with_context(|| format!("the targets file has no target {id}"))
    }
}

impl Target {
    fn check(&self) -> anyhow::Result<()> {
        ensure!(
            TABLES.contains(&self.table.as_str()),
            "table {} is none of {TABLES:?}",
            self.table
        );
        ensure!(
            !(self.measured.over.is_some() && self.measured.minus.is_some()),
            "measured has both over and minus"
        );
        match (&self.compare, &self.threshold, &self.goal) {
            (Some(_), Some(_), Some(_)) | (None, None, None) => {}
            _ => bail!("compare, threshold and goal go together"),
        }
        let has_reference = matches!(self.threshold, Some(Threshold::Run { .. }))
            || self.measured.other_run().is_some();
        if self.description.contains("{reference}") && !has_reference {
            bail!("the description names {{reference}} but nothing is compared with a run");
        }
        Ok(())
    }

    /// The row this target gives for `results`.
    pub(crate) fn row(&self, results: &Results) -> TargetRow {
        let figure = self.measured.figure;
        let read = |run: &str, figure: Figure| {
            results
                .run(run)
                .and_then(|figures| figure.of(&figures))
                .map(|value| rounded(value, figure.decimals()))
        };
        let first = read(&self.measured.run, figure);
        let other = self.measured.other_run().map(|run| read(run, figure));
        let (measured, measured_value) = match (&self.measured.over, &self.measured.minus) {
            (Some(_), _) => fixed(ratio(first, other.flatten())),
            (_, Some(_)) => fixed(difference(first, other.flatten())),
            _ => (shown(first, figure.decimals()), first),
        };
        let (limit, reference) = match &self.threshold {
            Some(Threshold::Fixed(limit)) => (Some(*limit), other.flatten()),
            Some(Threshold::Run { run, figure, plus }) => {
                let peer = read(run, *figure);
                let limit = if *plus == 0.0 {
                    peer
                } else {
                    fixed(peer.map(|peer| peer + plus)).1
                };
                (limit, peer)
            }
            None => (None, other.flatten()),
        };
        let reference_decimals = match &self.threshold {
            Some(Threshold::Run {
                figure: peer_figure,
                ..
            }) => peer_figure.decimals(),
            _ => figure.decimals(),
        };
        let (goal, verdict) = match (&self.compare, &self.goal) {
            (Some(compare), Some(goal)) => (
                goal.clone(),
                verdict(measured_value, *compare, limit).to_string(),
            ),
            _ => ("no target yet".to_string(), "–".to_string()),
        };
        TargetRow {
            description: self
                .description
                .replace("{reference}", &shown(reference, reference_decimals)),
            runs: self.runs().join(", "),
            measured,
            goal,
            verdict,
        }
    }

    /// The runs the target reads, each once, in the order it reads them.
    fn runs(&self) -> Vec<&str> {
        let mut runs = vec![self.measured.run.as_str()];
        runs.extend(self.measured.other_run());
        if let Some(Threshold::Run { run, .. }) = &self.threshold {
            runs.push(run);
        }
        let mut seen = HashSet::new();
        runs.retain(|run| seen.insert(*run));
        runs
    }
}

impl Measured {
    /// The run divided by or subtracted, if any.
    fn other_run(&self) -> Option<&str> {
        self.over.as_deref().or(self.minus.as_deref())
    }
}

impl TargetRow {
    /// The row as a line of the Markdown table.
    pub(crate) fn line(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} |",
            self.description, self.runs, self.measured, self.goal, self.verdict
        )
    }
}

/// "met", "**missed**", or "not measured" when a figure is missing.
pub(crate) fn verdict(measured: Option<f64>, compare: Compare, limit: Option<f64>) -> &'static str {
    let (Some(measured), Some(limit)) = (measured, limit) else {
        return "not measured";
    };
    let met = match compare {
        Compare::AtMost => measured <= limit,
        Compare::Below => measured < limit,
        Compare::Exactly => measured == limit,
    };
    if met { "met" } else { "**missed**" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO_TARGETS: &str = include_str!("../../../../bench/targets.toml");

    fn one(toml: &str) -> Targets {
        Targets::parse(toml).unwrap()
    }

    fn report(p50: f64, p99: f64, cpu: f64) -> String {
        format!(
            r#"{{"latency": {{"p50_ms": {p50}, "p99_ms": {p99}}}, "server": {{"cpu_us_per_delivery": {cpu}}}}}"#
        )
    }

    const P50_AGAINST_PEER: &str = r#"
        [[target]]
        id = "t.p50"
        table = "ws-chat"
        description = "light p50 (ms) ≤ Node's + 0.5 ({reference} + 0.5)"
        measured = { run = "ours", figure = "p50-ms" }
        compare = "<="
        threshold = { run = "peer", figure = "p50-ms", plus = 0.5 }
        goal = "≤ Node + 0.5 ms"
    "#;

    #[test]
    fn a_target_against_a_peer_is_met_up_to_its_offset() {
        let targets = one(P50_AGAINST_PEER);
        let ours = report(5.17, 1.0, 1.0);
        let peer = report(4.666, 1.0, 1.0);
        let results =
            Results::from_files([("ours.json", ours.as_str()), ("peer.json", peer.as_str())]);
        let row = targets.get("t.p50").unwrap().row(&results);
        assert_eq!(
            row.line(),
            "| light p50 (ms) ≤ Node's + 0.5 (4.67 + 0.5) | ours, peer | 5.17 | ≤ Node + 0.5 ms | met |"
        );
    }

    #[test]
    fn a_target_against_a_peer_is_missed_above_its_offset() {
        let targets = one(P50_AGAINST_PEER);
        let ours = report(5.18, 1.0, 1.0);
        let peer = report(4.666, 1.0, 1.0);
        let results =
            Results::from_files([("ours.json", ours.as_str()), ("peer.json", peer.as_str())]);
        assert_eq!(
            targets.get("t.p50").unwrap().row(&results).verdict,
            "**missed**"
        );
    }

    #[test]
    fn a_missing_peer_row_leaves_the_target_not_measured() {
        let targets = one(P50_AGAINST_PEER);
        let ours = report(1.0, 1.0, 1.0);
        let results = Results::from_files([("ours.json", ours.as_str())]);
        let row = targets.get("t.p50").unwrap().row(&results);
        assert_eq!(row.description, "light p50 (ms) ≤ Node's + 0.5 (n/a + 0.5)");
        assert_eq!(row.measured, "1");
        assert_eq!(row.verdict, "not measured");
    }

    #[test]
    fn a_ratio_is_of_inputs_read_to_their_decimals_and_judged_as_written() {
        let targets = one(r#"
            [[target]]
            id = "t.cpu"
            table = "rooms-chat"
            description = "CPU ÷ raw ({reference} µs)"
            measured = { run = "ours", figure = "cpu-us-per-delivery", over = "raw" }
            compare = "<="
            threshold = 0.85
            goal = "≤ 0.85×"
        "#);
        // 4.3134 / 5.0749 = 0.8499..., read as 4.313 / 5.075 = 0.8498...: written 0.85, met.
        let ours = report(1.0, 1.0, 4.3134);
        let raw = report(1.0, 1.0, 5.0749);
        let results =
            Results::from_files([("ours.json", ours.as_str()), ("raw.json", raw.as_str())]);
        let row = targets.get("t.cpu").unwrap().row(&results);
        assert_eq!(
            row.line(),
            "| CPU ÷ raw (5.075 µs) | ours, raw | 0.85 | ≤ 0.85× | met |"
        );
        let slower = report(1.0, 1.0, 4.34);
        let results =
            Results::from_files([("ours.json", slower.as_str()), ("raw.json", raw.as_str())]);
        let row = targets.get("t.cpu").unwrap().row(&results);
        assert_eq!(
            (row.measured.as_str(), row.verdict.as_str()),
            ("0.86", "**missed**")
        );
    }

    #[test]
    fn a_difference_and_an_exact_count() {
        let targets = one(r#"
            [[target]]
            id = "t.kib"
            table = "rooms-chat"
            description = "KiB above bare"
            measured = { run = "ours", figure = "kib-per-connection", minus = "bare" }
            compare = "<="
            threshold = 1.5
            goal = "≤ 1.5 KiB"

            [[target]]
            id = "t.lost"
            table = "rooms-chat"
            description = "lost"
            measured = { run = "ours", figure = "lost" }
            compare = "=="
            threshold = 0
            goal = "0"
        "#);
        let ours = r#"{"messages": {"lost": 3}, "server": {"kib_per_connection": 24.5}}"#;
        let bare = r#"{"server": {"kib_per_connection": 23.004}}"#;
        let results = Results::from_files([("ours.json", ours), ("bare.json", bare)]);
        let kib = targets.get("t.kib").unwrap().row(&results);
        assert_eq!(
            (kib.measured.as_str(), kib.verdict.as_str()),
            ("1.50", "met")
        );
        let lost = targets.get("t.lost").unwrap().row(&results);
        assert_eq!(
            (lost.measured.as_str(), lost.verdict.as_str()),
            ("3", "**missed**")
        );
    }

    #[test]
    fn a_figure_without_a_target_says_so() {
        let targets = one(r#"
            [[target]]
            id = "t.info"
            table = "rooms-chat"
            description = "p99 ÷ Bun's ({reference})"
            measured = { run = "ours", figure = "p99-ms", over = "bun" }
        "#);
        let ours = report(1.0, 3.0, 1.0);
        let bun = report(1.0, 2.0, 1.0);
        let results =
            Results::from_files([("ours.json", ours.as_str()), ("bun.json", bun.as_str())]);
        assert_eq!(
            targets.get("t.info").unwrap().row(&results).line(),
            "| p99 ÷ Bun's (2) | ours, bun | 1.50 | no target yet | – |"
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict(Some(30.0), Compare::Below, Some(30.0)),
            "**missed**"
        );
        assert_eq!(verdict(Some(29.99), Compare::Below, Some(30.0)), "met");
        assert_eq!(verdict(Some(0.0), Compare::Exactly, Some(0.0)), "met");
        assert_eq!(verdict(None, Compare::AtMost, Some(1.0)), "not measured");
        assert_eq!(verdict(Some(1.0), Compare::AtMost, None), "not measured");
    }

    #[test]
    fn a_file_with_mistakes_is_refused() {
        let twice = format!("{P50_AGAINST_PEER}\n{P50_AGAINST_PEER}");
        assert!(Targets::parse(&twice).is_err());
        let no_goal = P50_AGAINST_PEER.replace("goal = \"≤ Node + 0.5 ms\"", "");
        assert!(Targets::parse(&no_goal).is_err());
        let unknown_table = P50_AGAINST_PEER.replace("\"ws-chat\"", "\"sse\"");
        assert!(Targets::parse(&unknown_table).is_err());
        let unknown_figure =
            P50_AGAINST_PEER.replace("figure = \"p50-ms\" }", "figure = \"p42\" }");
        assert!(Targets::parse(&unknown_figure).is_err());
        let unknown_compare = P50_AGAINST_PEER.replace("\"<=\"", "\"=<\"");
        assert!(Targets::parse(&unknown_compare).is_err());
    }

    #[test]
    fn the_repository_targets_file_reads_and_each_goal_shows_its_threshold() {
        let targets = Targets::parse(REPO_TARGETS).unwrap();
        for table in TABLES {
            assert!(
                targets.of_table(table).count() > 0,
                "no targets for {table}"
            );
        }
        for target in &targets.target {
            if let Some(Threshold::Fixed(limit)) = target.threshold {
                let goal = target.goal.as_deref().unwrap();
                assert!(
                    goal.contains(&limit.to_string()),
                    "{}: goal {goal} does not show {limit}",
                    target.id
                );
            }
        }
    }
}
