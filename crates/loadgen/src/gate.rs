//! The points where a run waits to be measured: after each connection step
//! (server RSS), at the start and end of the window (server CPU). A process
//! on its own measures the servers itself (`Gate::Local`); a worker process
//! tells its parent over stdout and waits for its word on stdin
//! (`Gate::Worker`), so that several processes can load one server together.

use crate::procfs::{self, CpuTime};
use crate::segments;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

/// Server RSS at one number of connections.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RssStep {
    pub connections: u64,
    pub rss_kib: u64,
}

/// Measures the server processes of a run.
#[derive(Debug)]
pub struct ServerMeter {
    pub pids: Vec<u32>,
    /// How long after a step's joins its RSS is read (`--settle`).
    settle: Duration,
    pub rss_before_kib: Option<u64>,
    pub steps: Vec<RssStep>,
    window_start: Option<(Instant, CpuTime)>,
    window_end: Option<(Instant, CpuTime)>,
    /// The servers' listening ports, whose sockets' segments are counted.
    ports: Vec<u16>,
    /// TCP data segments sent at the start and the end of the window.
    segments_start: Option<u64>,
    segments_end: Option<u64>,
}

/// What the servers cost, ready for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ServerFigures {
    pub pids: Vec<u32>,
    pub window_secs: f64,
    pub cpu_seconds: f64,
    pub cpu_user_seconds: f64,
    pub cpu_system_seconds: f64,
    /// Share of one core the servers used over the window.
    pub cpu_cores: f64,
    pub cpu_us_per_delivery: Option<f64>,
    /// TCP data segments the servers sent over the window (see `segments`).
    pub data_segments: Option<u64>,
    /// Deliveries per data segment: how many frames one write carried.
    pub deliveries_per_segment: Option<f64>,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_connection: Option<f64>,
    pub rss_steps: Vec<RssStep>,
    /// Least-squares slope of RSS over connections, steps and the empty server.
    pub slope_kib_per_connection: Option<f64>,
    /// What the slope says one million connections would take.
    pub projected_gib_at_1m: Option<f64>,
}

impl ServerMeter {
    /// Starts measuring: notes the servers' RSS before any client connects.
    pub fn new(pids: Vec<u32>, ports: Vec<u16>, settle: Duration) -> anyhow::Result<Self> {
        let rss_before_kib = if pids.is_empty() {
            None
        } else {
            Some(procfs::total_rss_kib(&pids)?)
        };
        Ok(ServerMeter {
            pids,
            settle,
            rss_before_kib,
            steps: Vec::new(),
            window_start: None,
            window_end: None,
            ports,
            segments_start: None,
            segments_end: None,
        })
    }

    pub async fn step(&mut self, connections: u64) -> anyhow::Result<()> {
        if self.pids.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(self.settle).await;
        let rss_kib = procfs::total_rss_kib(&self.pids)?;
        tracing::info!(connections, rss_kib, "server RSS");
        self.steps.push(RssStep {
            connections,
            rss_kib,
        });
        Ok(())
    }

    pub fn window_started(&mut self) -> anyhow::Result<()> {
        self.window_start = Some((Instant::now(), procfs::total_cpu_time(&self.pids)?));
        self.segments_start = segments::data_segments_out(&self.ports);
        Ok(())
    }

    pub fn window_ended(&mut self) -> anyhow::Result<()> {
        self.window_end = Some((Instant::now(), procfs::total_cpu_time(&self.pids)?));
        self.segments_end = segments::data_segments_out(&self.ports);
        Ok(())
    }

    /// The figures, given how many deliveries the window made.
    pub fn figures(&self, deliveries: u64) -> Option<ServerFigures> {
        let rss_before_kib = self.rss_before_kib?;
        let (start, cpu_start) = self.window_start?;
        let (end, cpu_end) = self.window_end?;
        let window_secs = end.duration_since(start).as_secs_f64();
        let cpu = cpu_end.since(cpu_start);
        let cpu_seconds = cpu.total();
        let last = self.steps.last().copied();
        let rss_after_kib = last.map_or(rss_before_kib, |step| step.rss_kib);
        let kib_per_connection = last
            .filter(|step| step.connections > 0)
            .map(|step| (step.rss_kib as f64 - rss_before_kib as f64) / step.connections as f64);
        let mut points = vec![(0.0, rss_before_kib as f64)];
        points.extend(
            self.steps
                .iter()
                .map(|step| (step.connections as f64, step.rss_kib as f64)),
        );
        let slope = least_squares_slope(&points);
        let data_segments = self
            .segments_start
            .zip(self.segments_end)
            .map(|(start, end)| end.saturating_sub(start));
        Some(ServerFigures {
            pids: self.pids.clone(),
            window_secs,
            cpu_seconds,
            cpu_user_seconds: cpu.user,
            cpu_system_seconds: cpu.system,
            cpu_cores: cpu_seconds / window_secs.max(1e-9),
            cpu_us_per_delivery: (deliveries > 0).then(|| cpu_seconds * 1e6 / deliveries as f64),
            data_segments,
            deliveries_per_segment: data_segments
                .filter(|&segments| segments > 0 && deliveries > 0)
                .map(|segments| deliveries as f64 / segments as f64),
            rss_before_kib,
            rss_after_kib,
            kib_per_connection,
            rss_steps: self.steps.clone(),
            slope_kib_per_connection: slope,
            projected_gib_at_1m: slope
                .map(|slope| (rss_before_kib as f64 + slope * 1e6) / (1024.0 * 1024.0)),
        })
    }
}

fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

/// Where a run stops to be measured.
pub enum Gate {
    Local(ServerMeter),
    Worker(Lines<BufReader<Stdin>>),
}

impl Gate {
    pub fn worker() -> Self {
        Gate::Worker(BufReader::new(tokio::io::stdin()).lines())
    }

    /// All clients of a step have joined (or failed).
    pub async fn step(&mut self, connected: u64, failed: u64) -> anyhow::Result<()> {
        match self {
            Gate::Local(meter) => meter.step(connected).await,
            Gate::Worker(commands) => {
                println!("READY {connected} {failed}");
                match commands.next_line().await? {
                    Some(_) => Ok(()),
                    None => anyhow::bail!("the parent process went away"),
                }
            }
        }
    }

    pub fn window_started(&mut self) -> anyhow::Result<()> {
        match self {
            Gate::Local(meter) => meter.window_started(),
            Gate::Worker(_) => Ok(()),
        }
    }

    pub fn window_ended(&mut self) -> anyhow::Result<()> {
        match self {
            Gate::Local(meter) => meter.window_ended(),
            Gate::Worker(_) => {
                println!("WINDOW_END");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        let points = [(0.0, 1000.0), (100.0, 1800.0), (200.0, 2600.0)];
        assert!((least_squares_slope(&points).unwrap() - 8.0).abs() < 1e-9);
        assert!(least_squares_slope(&points[..1]).is_none());
    }

    #[test]
    fn figures_divide_cpu_by_deliveries() {
        let mut meter =
            ServerMeter::new(vec![std::process::id()], Vec::new(), Duration::ZERO).unwrap();
        meter.steps.push(RssStep {
            connections: 10,
            rss_kib: meter.rss_before_kib.unwrap() + 80,
        });
        meter.window_started().unwrap();
        meter.window_ended().unwrap();
        let figures = meter.figures(1000).unwrap();
        assert_eq!(figures.kib_per_connection, Some(8.0));
        assert!(figures.cpu_us_per_delivery.unwrap() >= 0.0);
        assert!(meter.figures(0).unwrap().cpu_us_per_delivery.is_none());
    }
}
