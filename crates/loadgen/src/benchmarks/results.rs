//! A results directory as `scripts/bench.sh` leaves it, read into memory:
//! per run `<run>.json` (the load generator's report), `.command`,
//! `.servers`, `.load`, `.stderr`; per ceiling search `<name>.ceiling`; per
//! set of light rounds `<name>.round`; `hooks/*.md`, the sections other
//! bench scripts wrote; and `about/run.json`, the invocation and machine.

use super::figures::RunFigures;
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The file endings of a run that the report reads; the servers' logs
/// beside them are not read.
const RUN_FILES: [&str; 7] = [
    "json", "command", "servers", "load", "stderr", "ceiling", "round",
];

/// Where `scripts/bench.sh` describes the invocation, under the results.
pub(crate) const ABOUT_FILE: &str = "about/run.json";

/// The files of a results directory by their path in it, in byte order
/// (the order of the shell's globs under the C locale).
#[derive(Debug, Default)]
pub(crate) struct Results {
    files: BTreeMap<String, String>,
}

impl Results {
    /// Reads the files the report uses from `dir`.
    pub(crate) fn read(dir: &Path) -> anyhow::Result<Self> {
        let mut results = Results::default();
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let wanted = path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| RUN_FILES.contains(&ext));
            if wanted && path.is_file() {
                results.read_file(dir, &path)?;
            }
        }
        let hooks = dir.join("hooks");
        if hooks.is_dir() {
            for entry in
                std::fs::read_dir(&hooks).with_context(|| format!("reading {}", hooks.display()))?
            {
                let path = entry?.path();
                if path.extension().is_some_and(|ext| ext == "md") {
                    results.read_file(dir, &path)?;
                }
            }
        }
        let about = dir.join(ABOUT_FILE);
        if about.is_file() {
            results.read_file(dir, &about)?;
        }
        Ok(results)
    }

    fn read_file(&mut self, dir: &Path, path: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .strip_prefix(dir)
            .with_context(|| format!("{} is not under {}", path.display(), dir.display()))?
            .to_string_lossy()
            .replace('\\', "/");
        self.files
            .insert(name, String::from_utf8_lossy(&bytes).into_owned());
        Ok(())
    }

    /// Results made of the given files (path in the directory, contents).
    #[cfg(test)]
    pub(crate) fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Results {
            files: files
                .into_iter()
                .map(|(name, text)| (name.to_string(), text.to_string()))
                .collect(),
        }
    }

    /// A file's contents, as written.
    pub(crate) fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// `<run>.<ext>` as written.
    pub(crate) fn text(&self, run: &str, ext: &str) -> Option<&str> {
        self.file(&format!("{run}.{ext}"))
    }

    /// `<run>.<ext>` without its trailing line ends, or "" when missing:
    /// what the shell's `$(cat file)` gives.
    pub(crate) fn value(&self, run: &str, ext: &str) -> &str {
        self.text(run, ext).unwrap_or("").trim_end_matches('\n')
    }

    /// Whether the run left a JSON report that is not empty.
    pub(crate) fn has_report(&self, run: &str) -> bool {
        self.text(run, "json").is_some_and(|text| !text.is_empty())
    }

    /// The figures of a run's report; none when the run left no report or
    /// one that is not JSON (the rows then say "no report").
    pub(crate) fn run(&self, run: &str) -> Option<RunFigures> {
        let text = self.text(run, "json").filter(|text| !text.is_empty())?;
        serde_json::from_str(text).ok()
    }

    /// The last `lines` lines of a run's stderr, if it has one.
    pub(crate) fn stderr_tail(&self, run: &str, lines: usize) -> Option<Vec<&str>> {
        let stderr = self.text(run, "stderr")?;
        let all: Vec<&str> = stderr.lines().collect();
        Some(all[all.len().saturating_sub(lines)..].to_vec())
    }

    /// The runs (in byte order) that have a file ending in `.<ext>` and
    /// whose name passes `keep`.
    pub(crate) fn runs_with(&self, ext: &str, keep: impl Fn(&str) -> bool) -> Vec<&str> {
        let suffix = format!(".{ext}");
        self.files
            .keys()
            .filter(|name| !name.contains('/'))
            .filter_map(|name| name.strip_suffix(suffix.as_str()))
            .filter(|run| keep(run))
            .collect()
    }

    /// The sections other bench scripts wrote, in name order, empty ones left out.
    pub(crate) fn hook_sections(&self) -> Vec<&str> {
        self.files
            .iter()
            .filter(|(name, text)| {
                name.starts_with("hooks/") && name.ends_with(".md") && !text.is_empty()
            })
            .map(|(_, text)| text.as_str())
            .collect()
    }

    /// How the benchmarks were run, and where.
    pub(crate) fn about(&self) -> anyhow::Result<About> {
        let text = self
            .file(ABOUT_FILE)
            .with_context(|| format!("the results have no {ABOUT_FILE}"))?;
        serde_json::from_str(text).with_context(|| format!("reading {ABOUT_FILE}"))
    }
}

/// The invocation of `scripts/bench.sh` and the machine it ran on, as the
/// script wrote them to `about/run.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct About {
    /// When the report was written, as `date -u '+%Y-%m-%d %H:%M UTC'` says.
    pub(crate) written_at: String,
    /// Seconds from the first run to the last.
    pub(crate) seconds: u64,
    /// Whether `--quick` shortened the windows and searches.
    pub(crate) quick: bool,
    /// Length of a measured window, seconds.
    pub(crate) window_secs: u64,
    /// RSS steps of the idle runs.
    pub(crate) idle_steps: u64,
    /// Most runs of one ceiling search.
    pub(crate) ceiling_steps: u64,
    /// Longest wait for a quiet machine before a run, seconds.
    pub(crate) quiet_wait_secs: u64,
    /// Interleaved rounds of the light rows.
    pub(crate) light_rounds: u32,
    /// Seconds between the last join of a step and its RSS reading.
    pub(crate) idle_settle_secs: u64,
    /// The tree's commit, short.
    pub(crate) commit: String,
    /// Whether the tree had uncommitted changes.
    pub(crate) uncommitted_changes: bool,
    /// The results directory as the document names it (relative to the repository).
    pub(crate) results_dir: String,
    /// The machine.
    pub(crate) machine: Machine,
}

/// The machine's table of the document, each value as the tool that read it wrote it.
#[derive(Debug, Deserialize)]
pub(crate) struct Machine {
    pub(crate) cores: u32,
    pub(crate) cpu: String,
    pub(crate) memory: String,
    pub(crate) kernel: String,
    pub(crate) node: String,
    pub(crate) bun: String,
    pub(crate) python: String,
    pub(crate) open_files_hard_limit: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_listed_in_byte_order_without_the_subdirectories() {
        let results = Results::from_files([
            ("ws-bun-light.command", ""),
            ("ws-bun-light-r1.command", ""),
            ("about/run.command", ""),
            ("ws-bun-light-r1.json", ""),
        ]);
        assert_eq!(
            results.runs_with("command", |_| true),
            ["ws-bun-light-r1", "ws-bun-light"]
        );
    }

    #[test]
    fn an_empty_or_broken_report_is_no_report() {
        let results =
            Results::from_files([("a.json", ""), ("b.json", "{not json"), ("c.json", "{}")]);
        assert!(results.run("a").is_none());
        assert!(results.run("b").is_none());
        assert!(results.run("c").is_some());
        assert!(!results.has_report("a"));
        assert!(results.has_report("b"));
    }

    #[test]
    fn a_directory_is_read_with_its_hooks_and_about_file() {
        let dir = std::env::temp_dir().join(format!("loadgen-results-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("hooks")).unwrap();
        std::fs::create_dir_all(dir.join("about")).unwrap();
        std::fs::write(dir.join("x.json"), "{}").unwrap();
        std::fs::write(dir.join("x.load"), "1.00 0.50 0.25\n").unwrap();
        std::fs::write(dir.join("x-4000.log"), "server log").unwrap();
        std::fs::write(dir.join("hooks/churn.md"), "## Churn\n").unwrap();
        std::fs::write(dir.join(ABOUT_FILE), "{}").unwrap();
        let results = Results::read(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let results = results.unwrap();
        assert!(results.has_report("x"));
        assert_eq!(results.value("x", "load"), "1.00 0.50 0.25");
        assert!(results.text("x-4000", "log").is_none());
        assert_eq!(results.hook_sections(), ["## Churn\n"]);
        assert_eq!(results.file(ABOUT_FILE), Some("{}"));
    }
}
