//! What one node does, per core: measured by `fanfare bench --json`, or
//! the figures of `docs/benchmarks.md` when no measurement is given.

use std::path::{Path, PathBuf};

use fanfare_bench::{Report, Scenario};
use serde::Serialize;

use crate::CapacityError;

/// A per-node figure and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub value: f64,
    pub source: String,
}

impl Figure {
    fn documented(value: f64, what: &str) -> Self {
        Self { value, source: format!("docs/benchmarks.md, {what}") }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeFigures {
    /// Server memory (RSS) per subscribed connection, KiB.
    pub rss_per_connection_kib: Figure,
    /// Deliveries per server CPU-second when each delivery is a write of
    /// its own: a connection gets a publication at a time.
    pub paced_deliveries_per_cpu_second: Figure,
    /// Deliveries per server CPU-second when writes carry many
    /// publications each: a node at full load.
    pub saturated_deliveries_per_cpu_second: Figure,
    /// Publications taken through the HTTP API and appended to history,
    /// per server CPU-second.
    pub publishes_per_cpu_second: Figure,
    /// A cluster node's deliveries per CPU-second over a single node's at
    /// the paced rate (each publication is decoded by every node).
    pub cluster_efficiency: Figure,
}

impl Default for NodeFigures {
    fn default() -> Self {
        Self {
            rss_per_connection_kib: Figure::documented(
                1.7,
                "idle: 15,000 subscribed connections, native protocol",
            ),
            paced_deliveries_per_cpu_second: Figure::documented(
                156_740.0,
                "fan-out latency: 1,000 subscribers at 50 publications/s, one write per delivery",
            ),
            saturated_deliveries_per_cpu_second: Figure::documented(
                2_059_666.0,
                "fan-out throughput: 1,000 subscribers, publishing as fast as they keep up",
            ),
            publishes_per_cpu_second: Figure::documented(
                21_686.0,
                "history: 43,372 appends/s through the HTTP API on 2 cores, counted as taking both",
            ),
            cluster_efficiency: Figure::documented(
                0.8,
                "a cluster of three nodes on Redis at 50 publications/s: 0.80x a single node",
            ),
        }
    }
}

impl NodeFigures {
    /// The default figures, each replaced by what one of `paths` (reports
    /// of `fanfare bench --json`, any order) measured.
    pub fn measured(paths: &[PathBuf]) -> Result<Self, CapacityError> {
        let mut figures = Self::default();
        for path in paths {
            let report = read_report(path)?;
            figures.take(path, &report)?;
            figures.check(path)?;
        }
        Ok(figures)
    }

    /// Every figure a positive number: a run too short to measure gives 0
    /// or less, which no plan can divide by.
    fn check(&self, path: &Path) -> Result<(), CapacityError> {
        let all = [
            ("memory per connection", &self.rss_per_connection_kib),
            ("deliveries per CPU-second", &self.paced_deliveries_per_cpu_second),
            ("deliveries per CPU-second", &self.saturated_deliveries_per_cpu_second),
            ("publications per CPU-second", &self.publishes_per_cpu_second),
        ];
        match all.into_iter().find(|(_, figure)| !(figure.value.is_finite() && figure.value > 0.0)) {
            Some((what, figure)) => Err(CapacityError::BenchUnusable {
                path: path.to_owned(),
                reason: format!(
                    "it measured a {what} of {}: run it longer or with more connections",
                    figure.value
                ),
            }),
            None => Ok(()),
        }
    }

    fn take(&mut self, path: &Path, report: &Report) -> Result<(), CapacityError> {
        let unusable = |reason: String| CapacityError::BenchUnusable { path: path.to_owned(), reason };
        let source = |what: &str| format!("{}: {} {what}", path.display(), report.scenario);
        match report.scenario {
            Scenario::Idle => {
                let kib = report.server.as_ref().and_then(|server| server.rss_per_connection_kib);
                let kib = kib.ok_or_else(|| {
                    unusable("an idle report without server memory (run it with --server-pid)".into())
                })?;
                self.rss_per_connection_kib =
                    Figure { value: kib, source: source("(server RSS per connection)") };
            }
            Scenario::Fanout | Scenario::Rooms => {
                let per_cpu = report.delivery.as_ref().and_then(|delivery| delivery.per_server_cpu_second);
                let per_cpu = per_cpu.ok_or_else(|| {
                    unusable(format!(
                        "a {} report without server CPU (run it with --server-pid)",
                        report.scenario
                    ))
                })?;
                let figure = Figure { value: per_cpu, source: source(&format!("at --rate {}", report.rate)) };
                if report.rate == 0.0 {
                    self.saturated_deliveries_per_cpu_second = figure;
                } else {
                    self.paced_deliveries_per_cpu_second = figure;
                }
            }
            Scenario::History => {
                let history = report.history.as_ref().filter(|history| history.mode == "http");
                let appends = history
                    .ok_or_else(|| {
                        unusable(
                            "a history report of the store in process; plan from one through the HTTP API"
                                .into(),
                        )
                    })?
                    .appends;
                let cpu = report.server.as_ref().map(|server| server.cpu_seconds).filter(|cpu| *cpu > 0.0);
                let cpu = cpu.ok_or_else(|| {
                    unusable("a history report without server CPU (run it with --server-pid)".into())
                })?;
                self.publishes_per_cpu_second =
                    Figure { value: appends as f64 / cpu, source: source("through the HTTP API") };
            }
            Scenario::ReconnectStorm | Scenario::Live | Scenario::Dm => {
                return Err(unusable(format!(
                    "a {} report gives no per-node figure; use idle, fanout, rooms or history",
                    report.scenario
                )));
            }
        }
        Ok(())
    }
}

fn read_report(path: &Path) -> Result<Report, CapacityError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| CapacityError::BenchRead { path: path.to_owned(), source })?;
    serde_json::from_str(&text).map_err(|source| CapacityError::BenchJson { path: path.to_owned(), source })
}
