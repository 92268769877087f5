//! What the server processes cost, read from `/proc`: CPU time
//! (utime + stime of `/proc/PID/stat`) and resident memory (`VmRSS` of
//! `/proc/PID/status`), summed over every `--server-pid`.

use anyhow::{Context, bail};
use std::sync::OnceLock;

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU time a process has used so far, split as the kernel counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    /// In the process's own code (utime).
    pub user: f64,
    /// In the kernel on its behalf (stime): syscalls, and on loopback also
    /// most of the receiving side of TCP.
    pub system: f64,
}

impl CpuTime {
    pub fn total(self) -> f64 {
        self.user + self.system
    }

    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// CPU seconds (user and system) a process has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let (user, system) = parse_cpu_ticks(&stat)?;
    Ok(CpuTime {
        user: user as f64 / ticks_per_second(),
        system: system as f64 / ticks_per_second(),
    })
}

/// (utime, stime) in ticks; the command name in parentheses may hold spaces.
fn parse_cpu_ticks(stat: &str) -> anyhow::Result<(u64, u64)> {
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' in /proc/PID/stat")?;
    // Fields after the name start at field 3 (state); utime and stime are 14 and 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    if fields.len() < 13 {
        bail!("short /proc/PID/stat");
    }
    let utime: u64 = fields[11].parse().context("utime")?;
    let stime: u64 = fields[12].parse().context("stime")?;
    Ok((utime, stime))
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

/// Totals over several processes.
pub fn total_cpu_time(pids: &[u32]) -> anyhow::Result<CpuTime> {
    pids.iter().try_fold(CpuTime::default(), |total, &pid| {
        let time = cpu_time(pid)?;
        Ok(CpuTime {
            user: total.user + time.user,
            system: total.system + time.system,
        })
    })
}

pub fn total_rss_kib(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter().map(|&pid| rss_kib(pid)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "1234 (my (odd) server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 40 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), (250, 40));
        assert!(parse_cpu_ticks("garbage").is_err());
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    4242 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status).unwrap(), 4242);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_time(pid).unwrap().total() >= 0.0);
    }
}
