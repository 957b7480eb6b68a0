//! Latency samples and results: percentiles, the printed line, and the JSON line that
//! `bench/report.py` turns into the table of `docs/benchmarks.md`.

use serde::Serialize;
use std::io::Write as _;
use std::time::Duration;

/// Summary of a set of latencies, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) n: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

impl Latency {
    pub(crate) fn of(mut samples: Vec<Duration>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort();
        let at = |p: f64| {
            let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples[index].as_secs_f64() * 1000.0
        };
        Latency {
            n: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// One measured figure set of one system in one scenario.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Record {
    /// `colonymesh-1`, `colonymesh-3`, `etcd-3`, ...
    pub(crate) system: String,
    /// `dispatch`, `lifecycle`, `writes`, `backlog-100000`, `failover`, ...
    pub(crate) scenario: String,
    /// Concurrent clients.
    pub(crate) clients: usize,
    /// Operations per second (0 when the scenario measures latency only).
    pub(crate) rate: f64,
    pub(crate) latency: Latency,
    /// Anything else worth a column (RSS, failures).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    pub(crate) fn new(system: &str, scenario: &str, clients: usize) -> Record {
        Record {
            system: system.to_string(),
            scenario: scenario.to_string(),
            clients,
            rate: 0.0,
            latency: Latency::default(),
            extra: serde_json::Map::new(),
        }
    }

    /// Prints the record and appends it as a JSON line to `BENCH_RESULTS` when set.
    pub(crate) fn emit(&self) -> anyhow::Result<()> {
        let l = &self.latency;
        let mut line = format!(
            "{:<14} {:<18} clients={:<4} p50={:>8.3} ms p99={:>8.3} ms max={:>8.3} ms",
            self.system, self.scenario, self.clients, l.p50_ms, l.p99_ms, l.max_ms
        );
        if self.rate > 0.0 {
            line += &format!("  rate={:.0}/s", self.rate);
        }
        for (key, value) in &self.extra {
            line += &format!("  {key}={value}");
        }
        println!("{line}");
        if let Ok(path) = std::env::var("BENCH_RESULTS") {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(file, "{}", serde_json::to_string(self)?)?;
        }
        Ok(())
    }
}

/// Resident set size of process `pid` in MiB, from /proc.
pub(crate) fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
