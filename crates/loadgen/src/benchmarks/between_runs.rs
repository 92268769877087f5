//! What `scripts/bench.sh` decides from one run's report before the next
//! run: whether the run was clean (the ceiling search goes up or down by
//! it), and how many frames per write the raw TCP reference makes to copy
//! the server's writes.

use super::figures::RunFigures;
use anyhow::bail;

/// A clean run keeps its p99 latency under this many milliseconds.
pub(crate) const CLEAN_P99_MS: f64 = 50.0;

/// Whether a fan-out run was clean: p99 under [`CLEAN_P99_MS`], no message
/// lost, some expected and every one delivered; the error says why not.
pub(crate) fn check_clean(run: &RunFigures) -> anyhow::Result<()> {
    let p99 = run.latency(|latency| latency.p99_ms);
    let messages = run.messages.as_ref();
    let lost = messages.and_then(|counts| counts.lost);
    let expected = messages.and_then(|counts| counts.expected).unwrap_or(0);
    let delivered = run.delivery_rate_pct.unwrap_or(0.0);
    match p99 {
        Some(p99) if p99 < CLEAN_P99_MS => {}
        Some(p99) => bail!("p99 {p99} ms, not under {CLEAN_P99_MS} ms"),
        None => bail!("no latency"),
    }
    if lost != Some(0) {
        bail!(
            "{} messages lost",
            lost.map_or("unknown".to_string(), |lost| lost.to_string())
        );
    }
    if expected == 0 {
        bail!("no deliveries expected");
    }
    if delivered < 100.0 {
        bail!("{delivered} % delivered");
    }
    Ok(())
}

/// Deliveries per TCP data segment of a run (about per write), rounded,
/// at least 1 (and 1 when the run did not measure it).
pub(crate) fn frames_per_write(run: Option<&RunFigures>) -> u64 {
    let per_segment = run
        .and_then(|run| run.server(|server| server.deliveries_per_segment))
        .unwrap_or(1.0);
    if per_segment < 1.0 {
        1
    } else {
        (per_segment + 0.5).floor() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str) -> RunFigures {
        serde_json::from_str(json).unwrap()
    }

    const CLEAN: &str = r#"{"latency": {"p99_ms": 49.9}, "messages": {"lost": 0, "expected": 10},
        "delivery_rate_pct": 100.0}"#;

    #[test]
    fn a_run_under_the_latency_bound_that_lost_nothing_is_clean() {
        assert!(check_clean(&run(CLEAN)).is_ok());
    }

    #[test]
    fn a_run_is_not_clean_for_any_one_reason() {
        for (from, to) in [
            ("49.9", "50.0"),
            (r#""lost": 0"#, r#""lost": 1"#),
            (r#""lost": 0,"#, ""),
            (r#""expected": 10"#, r#""expected": 0"#),
            ("100.0", "99.99"),
        ] {
            let changed = CLEAN.replace(from, to);
            assert!(check_clean(&run(&changed)).is_err(), "clean: {changed}");
        }
        assert!(check_clean(&run("{}")).is_err());
    }

    #[test]
    fn frames_per_write_rounds_the_deliveries_per_segment() {
        let per_segment = |value: f64| {
            run(&format!(
                r#"{{"server": {{"deliveries_per_segment": {value}}}}}"#
            ))
        };
        assert_eq!(frames_per_write(Some(&per_segment(3.96))), 4);
        assert_eq!(frames_per_write(Some(&per_segment(1.49))), 1);
        assert_eq!(frames_per_write(Some(&per_segment(2.5))), 3);
        assert_eq!(frames_per_write(Some(&per_segment(0.99))), 1);
        assert_eq!(frames_per_write(Some(&run("{}"))), 1);
        assert_eq!(frames_per_write(None), 1);
    }
}
