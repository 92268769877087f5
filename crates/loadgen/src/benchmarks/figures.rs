//! What the report reads of one run's JSON report, the figures the targets
//! name, and how figures are written: rounded to a few decimals, in their
//! shortest form, or with two fixed decimals for computed ratios.

use serde::Deserialize;

/// The fields of a run's JSON report (see `crate::report::Report`) that
/// BENCHMARKS.md shows. Every field is optional: a report of another
/// scenario, or of an older load generator, lacks some and the table then
/// says "n/a" for them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RunFigures {
    pub(crate) rate: Option<f64>,
    pub(crate) planned: Option<u64>,
    pub(crate) connected: Option<u64>,
    pub(crate) first_error: Option<String>,
    pub(crate) deliveries: Option<f64>,
    pub(crate) deliveries_per_sec: Option<f64>,
    pub(crate) delivery_rate_pct: Option<f64>,
    pub(crate) messages: Option<Counts>,
    pub(crate) streams: Option<Counts>,
    pub(crate) storm: Option<StormFigures>,
    pub(crate) latency: Option<LatencyFigures>,
    pub(crate) server: Option<ServerFigures>,
}

/// Deliveries expected and lost, of messages or of SSE streams.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Counts {
    pub(crate) expected: Option<u64>,
    pub(crate) lost: Option<u64>,
}

/// The join storm's tally.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StormFigures {
    pub(crate) join_secs: Option<f64>,
    pub(crate) expected: Option<u64>,
    pub(crate) received: Option<u64>,
    pub(crate) missing: Option<u64>,
    pub(crate) out_of_order: Option<u64>,
    pub(crate) disconnected: Option<u64>,
}

/// End-to-end latency.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LatencyFigures {
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    pub(crate) max_ms: Option<f64>,
}

/// The measured server's costs.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServerFigures {
    pub(crate) cpu_us_per_delivery: Option<f64>,
    pub(crate) cpu_user_seconds: Option<f64>,
    pub(crate) cpu_system_seconds: Option<f64>,
    pub(crate) deliveries_per_segment: Option<f64>,
    pub(crate) kib_per_connection: Option<f64>,
    pub(crate) rss_before_kib: Option<u64>,
    pub(crate) rss_steps: Vec<RssStep>,
}

/// One RSS reading of an idle or stream run.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RssStep {
    pub(crate) connections: u64,
    pub(crate) rss_kib: u64,
}

impl RunFigures {
    /// Lost deliveries: of messages, else of streams.
    pub(crate) fn lost(&self) -> Option<u64> {
        let messages = self.messages.as_ref().and_then(|counts| counts.lost);
        messages.or_else(|| self.streams.as_ref().and_then(|counts| counts.lost))
    }

    /// One of the server's figures.
    pub(crate) fn server<T>(&self, pick: impl Fn(&ServerFigures) -> Option<T>) -> Option<T> {
        self.server.as_ref().and_then(pick)
    }

    /// One of the latency figures.
    pub(crate) fn latency(&self, pick: impl Fn(&LatencyFigures) -> Option<f64>) -> Option<f64> {
        self.latency.as_ref().and_then(pick)
    }

    /// One of the join storm's figures.
    pub(crate) fn storm<T>(&self, pick: impl Fn(&StormFigures) -> Option<T>) -> Option<T> {
        self.storm.as_ref().and_then(pick)
    }

    /// Server CPU seconds (user or system, as `pick` says) per delivery, in
    /// µs; none when nothing was delivered.
    pub(crate) fn cpu_us_per_delivery_of(
        &self,
        pick: impl Fn(&ServerFigures) -> Option<f64>,
    ) -> Option<f64> {
        let deliveries = self.deliveries.filter(|&deliveries| deliveries > 0.0)?;
        Some(self.server(pick)? * 1e6 / deliveries)
    }
}

/// A figure of a run that a target names (`figure = "…"` in the targets file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Figure {
    /// Median latency.
    P50Ms,
    /// 99th percentile latency.
    P99Ms,
    /// Server CPU per delivery.
    CpuUsPerDelivery,
    /// Server RSS per connection.
    KibPerConnection,
    /// Deliveries lost.
    Lost,
    /// Join storm: members the server dropped.
    StormDisconnected,
    /// Join storm: notices missing plus notices out of order.
    StormMissingOrOutOfOrder,
}

impl Figure {
    /// The figure of `run`, if the run has it.
    pub(crate) fn of(self, run: &RunFigures) -> Option<f64> {
        match self {
            Figure::P50Ms => run.latency(|latency| latency.p50_ms),
            Figure::P99Ms => run.latency(|latency| latency.p99_ms),
            Figure::CpuUsPerDelivery => run.server(|server| server.cpu_us_per_delivery),
            Figure::KibPerConnection => run.server(|server| server.kib_per_connection),
            Figure::Lost => run.lost().map(|lost| lost as f64),
            Figure::StormDisconnected => run.storm(|storm| storm.disconnected).map(|n| n as f64),
            Figure::StormMissingOrOutOfOrder => run
                .storm(|storm| Some(storm.missing? + storm.out_of_order?))
                .map(|n| n as f64),
        }
    }

    /// Decimals the figure is read to before it is compared or combined:
    /// CPU per delivery is a few µs, so its third decimal still counts.
    pub(crate) fn decimals(self) -> u32 {
        match self {
            Figure::CpuUsPerDelivery => 3,
            _ => 2,
        }
    }
}

/// `value` rounded to `decimals` decimals (halves away from zero).
pub(crate) fn rounded(value: f64, decimals: u32) -> f64 {
    let scale = 10f64.powi(decimals as i32);
    let rounded = (value * scale).round() / scale;
    // -0 would be written "-0".
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// A figure rounded to `decimals` and written in its shortest form
/// ("4.5", "100"), or "n/a".
pub(crate) fn shown(value: Option<f64>, decimals: u32) -> String {
    value.map_or_else(
        || "n/a".to_string(),
        |value| rounded(value, decimals).to_string(),
    )
}

/// A computed figure (a ratio, a difference) with two fixed decimals, or
/// "n/a"; the value is the one written, so that a verdict on it agrees
/// with what the reader sees.
pub(crate) fn fixed(value: Option<f64>) -> (String, Option<f64>) {
    match value.filter(|value| value.is_finite()) {
        Some(value) => {
            let text = format!("{value:.2}");
            let written = text.parse().ok();
            (text, written)
        }
        None => ("n/a".to_string(), None),
    }
}

/// `a / b`, none when either is missing or `b` is zero.
pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let b = b.filter(|&b| b != 0.0)?;
    Some(a? / b)
}

/// `a - b`, none when either is missing.
pub(crate) fn difference(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str) -> RunFigures {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn figures_are_read_from_the_report_fields() {
        let figures = run(r#"{
            "latency": {"p50_ms": 1.25, "p99_ms": 9.5},
            "server": {"cpu_us_per_delivery": 3.1234, "kib_per_connection": 2.5},
            "streams": {"lost": 7},
            "storm": {"missing": 2, "out_of_order": 3, "disconnected": 1}
        }"#);
        assert_eq!(Figure::P50Ms.of(&figures), Some(1.25));
        assert_eq!(Figure::P99Ms.of(&figures), Some(9.5));
        assert_eq!(Figure::CpuUsPerDelivery.of(&figures), Some(3.1234));
        assert_eq!(Figure::KibPerConnection.of(&figures), Some(2.5));
        assert_eq!(Figure::Lost.of(&figures), Some(7.0));
        assert_eq!(Figure::StormDisconnected.of(&figures), Some(1.0));
        assert_eq!(Figure::StormMissingOrOutOfOrder.of(&figures), Some(5.0));
    }

    #[test]
    fn message_losses_come_before_stream_losses() {
        let figures = run(r#"{"messages": {"lost": 0}, "streams": {"lost": 4}}"#);
        assert_eq!(figures.lost(), Some(0));
    }

    #[test]
    fn a_report_without_the_fields_has_no_figures() {
        let figures = run(r#"{"label": "x", "server": null}"#);
        assert_eq!(Figure::CpuUsPerDelivery.of(&figures), None);
        assert_eq!(Figure::Lost.of(&figures), None);
        assert_eq!(Figure::StormMissingOrOutOfOrder.of(&figures), None);
    }

    #[test]
    fn user_cpu_per_delivery_needs_deliveries() {
        let figures = run(r#"{"deliveries": 2000000, "server": {"cpu_user_seconds": 3.0}}"#);
        assert_eq!(
            figures.cpu_us_per_delivery_of(|s| s.cpu_user_seconds),
            Some(1.5)
        );
        let idle = run(r#"{"deliveries": 0, "server": {"cpu_user_seconds": 3.0}}"#);
        assert_eq!(idle.cpu_us_per_delivery_of(|s| s.cpu_user_seconds), None);
    }

    #[test]
    fn shown_figures_are_rounded_and_short() {
        assert_eq!(shown(Some(4.666), 2), "4.67");
        assert_eq!(shown(Some(100.0), 2), "100");
        assert_eq!(shown(Some(79977.4), 0), "79977");
        assert_eq!(shown(Some(-0.001), 2), "0");
        assert_eq!(shown(None, 2), "n/a");
    }

    #[test]
    fn fixed_figures_keep_two_decimals_and_the_written_value() {
        assert_eq!(fixed(Some(9.5)), ("9.50".to_string(), Some(9.5)));
        assert_eq!(fixed(Some(0.8549)), ("0.85".to_string(), Some(0.85)));
        assert_eq!(fixed(None), ("n/a".to_string(), None));
        assert_eq!(fixed(ratio(Some(1.0), Some(0.0))).0, "n/a");
        assert_eq!(difference(Some(1.0), None), None);
    }
}
