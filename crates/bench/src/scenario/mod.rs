//! The scenarios, each a function from a [`Plan`] to a [`Report`]:
//!
//! - `idle.rs`: open N subscribed connections, hold them, measure memory.
//! - `fanout.rs`: `fanout` (N subscribers on one channel) and `rooms`
//!   (the same over many small channels): publish, deliver, check.
//! - `reconnect.rs`: `reconnect-storm`, fanout with every connection cut
//!   at once in the middle.
//! - `history.rs`: appends and range reads of the history store.
//! - `live.rs`: one huge room — viewers, comments, reactions and a
//!   priority lane, each checked on its own.
//! - `dm.rs`: a messenger — direct channels, users on their feeds,
//!   messages, notices, unread counts and read cursors.
//! - `delivery.rs`: the publish-and-deliver phase the middle three share.

mod delivery;
mod dm;
mod fanout;
mod history;
mod idle;
mod live;
mod reconnect;

use std::sync::Arc;
use std::time::Instant;

use crate::fleet::{ConnectSummary, Fleet, FleetResult, LocalFleet};
use crate::options::{Plan, Scenario};
use crate::proc_stats::{ProcSample, Process};
use crate::report::{ConnectReport, Report, ToolReport};
use crate::stats::per_second;
use crate::workers::WorkerFleet;
use crate::{BenchError, progress};

pub(crate) async fn run(plan: Plan) -> Result<Report, BenchError> {
    let plan = Arc::new(plan);
    match plan.options.scenario {
        Scenario::Idle => idle::run(plan).await,
        Scenario::Fanout | Scenario::Rooms => fanout::run(plan).await,
        Scenario::ReconnectStorm => reconnect::run(plan).await,
        Scenario::History => history::run(plan).await,
        Scenario::Live => live::run(plan).await,
        Scenario::Dm => dm::run(plan).await,
    }
}

/// The server's process, when `--server-pid` names it.
pub(crate) struct ServerProbe(Option<u32>, Vec<u32>);

impl ServerProbe {
    pub(crate) fn new(plan: &Plan) -> Self {
        Self(plan.options.server_pid, plan.options.other_pids.clone())
    }

    /// The server's memory and CPU, with every other pid's added.
    pub(crate) fn sample(&self) -> Result<Option<ProcSample>, BenchError> {
        let Some(mut total) = self.0.map(|pid| Process::Pid(pid).sample()).transpose()? else {
            return Ok(None);
        };
        for pid in &self.1 {
            let other = Process::Pid(*pid).sample()?;
            total.rss_kib += other.rss_kib;
            total.cpu_seconds += other.cpu_seconds;
        }
        Ok(Some(total))
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.0
    }
}

/// Starts the subscribers (here or in workers) and waits until every one
/// has connected or failed; a run where none connected stops here.
pub(crate) async fn open_fleet(plan: &Arc<Plan>) -> Result<(Fleet, ConnectSummary), BenchError> {
    let mut fleet = if plan.options.workers > 1 {
        Fleet::Workers(WorkerFleet::spawn(plan)?)
    } else {
        Fleet::Local(LocalFleet::start(plan.clone(), 0..plan.options.connections))
    };
    let sources = progress::Sources {
        fleet: Some((fleet.gauge(), plan.options.connections as u64)),
        publish: None,
        counter: None,
    };
    let line = progress::start(plan.options.progress, format!("{} connect", plan.options.scenario), sources);
    let summary = fleet.connected().await;
    drop(line);
    let summary = match summary {
        Ok(summary) => summary,
        Err(error) => {
            let _ = fleet.stop().await;
            return Err(error);
        }
    };
    if summary.connected == 0 {
        let result = fleet.stop().await?;
        let first =
            result.errors.values().flat_map(|e| e.samples.first()).next().cloned().unwrap_or_default();
        return Err(BenchError::NothingConnected { connect_errors: summary.failed, first });
    }
    Ok((fleet, summary))
}

pub(crate) fn connect_report(summary: &ConnectSummary) -> ConnectReport {
    ConnectReport {
        attempted: summary.attempted,
        connected: summary.connected,
        failed: summary.failed,
        elapsed_s: summary.elapsed_s,
        per_second: per_second(summary.connected, summary.elapsed_s),
    }
}

/// This process (and its workers): memory before and after connecting,
/// CPU over the run.
pub(crate) fn tool_report(
    summary: &ConnectSummary,
    fleet: &FleetResult,
    plan: &Plan,
    cpu_before: f64,
) -> ToolReport {
    let own_cpu = Process::Current.cpu_seconds().unwrap_or(cpu_before) - cpu_before;
    // Workers report their own CPU; a local fleet's is this process's.
    let workers_cpu = if plan.options.workers > 1 { fleet.tool.cpu_seconds } else { 0.0 };
    ToolReport {
        rss_before_kib: summary.tool_rss_before_kib,
        rss_after_kib: summary.tool_rss_after_kib,
        rss_per_connection_kib: per_connection(
            summary.tool_rss_before_kib,
            summary.tool_rss_after_kib,
            summary.connected,
        ),
        cpu_seconds: own_cpu + workers_cpu,
    }
}

pub(crate) fn per_connection(before_kib: u64, after_kib: u64, connections: u64) -> Option<f64> {
    (connections > 0).then(|| (after_kib as f64 - before_kib as f64) / connections as f64)
}

/// The parts every report shares.
pub(crate) fn report_frame(plan: &Plan, started: Instant, tool: ToolReport) -> Report {
    let options = &plan.options;
    Report {
        scenario: options.scenario,
        protocol: options.protocol,
        url: plan.http_base(),
        connections: options.connections,
        channels: plan.channels,
        workers: options.workers,
        rate: options.rate,
        size: options.size,
        pusher_batch: options.pusher_batch,
        elapsed_s: started.elapsed().as_secs_f64(),
        connect: None,
        server: None,
        tool,
        publish: None,
        delivery: None,
        recovery: None,
        history: None,
        live: None,
        dm: None,
        errors: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_per_connection_is_the_growth_divided_by_connections() {
        assert_eq!(per_connection(1000, 9000, 1000), Some(8.0));
        assert_eq!(per_connection(9000, 8000, 1000), Some(-1.0));
        assert_eq!(per_connection(1000, 9000, 0), None);
    }
}
