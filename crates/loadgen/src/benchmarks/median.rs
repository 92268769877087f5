//! `loadgen median-round`: of the interleaved rounds of one light row
//! (`<name>-r1` … `<name>-rN`), the round whose server CPU per delivery is
//! the median becomes the row: its files are copied to `<name>.*` and its
//! number written to `<name>.round`.

use super::results::Results;
use anyhow::Context;
use std::path::Path;

/// The files of a round that become the row's.
const ROUND_FILES: [&str; 5] = ["json", "command", "servers", "load", "stderr"];

/// The round (1-based) whose CPU per delivery is the median of `rounds`
/// rounds of `name`; a round without the figure counts as the most costly,
/// and equal figures go by round.
pub(crate) fn median_round(results: &Results, name: &str, rounds: u32) -> u32 {
    let mut costs: Vec<(f64, u32)> = (1..=rounds)
        .map(|round| {
            let cpu = results
                .run(&format!("{name}-r{round}"))
                .and_then(|figures| figures.server(|server| server.cpu_us_per_delivery));
            (cpu.unwrap_or(f64::INFINITY), round)
        })
        .collect();
    costs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // Of an even number of rounds, the cheaper of the two middle ones.
    let middle = (rounds.max(1) as usize).div_ceil(2) - 1;
    costs.get(middle).map_or(1, |&(_, round)| round)
}

/// Picks the median round of `name` in `dir` and makes it the row.
pub(crate) fn pick(dir: &Path, name: &str, rounds: u32) -> anyhow::Result<u32> {
    let results = Results::read(dir)?;
    let round = median_round(&results, name, rounds);
    for ext in ROUND_FILES {
        let from = dir.join(format!("{name}-r{round}.{ext}"));
        if from.is_file() {
            let to = dir.join(format!("{name}.{ext}"));
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    let record = dir.join(format!("{name}.round"));
    std::fs::write(&record, format!("{round}\n"))
        .with_context(|| format!("writing {}", record.display()))?;
    Ok(round)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(cpu: f64) -> String {
        format!(r#"{{"server": {{"cpu_us_per_delivery": {cpu}}}}}"#)
    }

    #[test]
    fn the_median_of_three_rounds_is_the_middle_cost() {
        let (r1, r2, r3) = (cpu(5.0), cpu(3.0), cpu(4.0));
        let results = Results::from_files([
            ("x-r1.json", r1.as_str()),
            ("x-r2.json", r2.as_str()),
            ("x-r3.json", r3.as_str()),
        ]);
        assert_eq!(median_round(&results, "x", 3), 3);
    }

    #[test]
    fn a_round_without_a_report_counts_as_the_most_costly() {
        let (r1, r3) = (cpu(5.0), cpu(4.0));
        let results = Results::from_files([("x-r1.json", r1.as_str()), ("x-r3.json", r3.as_str())]);
        assert_eq!(median_round(&results, "x", 3), 1);
    }

    #[test]
    fn equal_costs_go_by_round_and_one_round_is_its_own_median() {
        let same = cpu(4.0);
        let results = Results::from_files([
            ("x-r1.json", same.as_str()),
            ("x-r2.json", same.as_str()),
            ("x-r3.json", same.as_str()),
        ]);
        assert_eq!(median_round(&results, "x", 3), 2);
        assert_eq!(median_round(&results, "x", 1), 1);
        assert_eq!(median_round(&results, "x", 4), 2);
    }

    #[test]
    fn the_picked_round_becomes_the_row() {
        let dir = std::env::temp_dir().join(format!("loadgen-median-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (round, cost) in [(1, 5.0), (2, 3.0), (3, 4.0)] {
            std::fs::write(dir.join(format!("x-r{round}.json")), cpu(cost)).unwrap();
            std::fs::write(
                dir.join(format!("x-r{round}.command")),
                format!("round {round}\n"),
            )
            .unwrap();
        }
        let picked = pick(&dir, "x", 3);
        let row_json = std::fs::read_to_string(dir.join("x.json"));
        let row_command = std::fs::read_to_string(dir.join("x.command"));
        let record = std::fs::read_to_string(dir.join("x.round"));
        let no_load = !dir.join("x.load").exists();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(picked.unwrap(), 3);
        assert_eq!(row_json.unwrap(), cpu(4.0));
        assert_eq!(row_command.unwrap(), "round 3\n");
        assert_eq!(record.unwrap(), "3\n");
        assert!(no_load);
    }
}
