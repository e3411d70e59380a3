//! `idle`: N connections, each subscribed to one channel, held for the
//! duration with nothing published. What it measures is the server's
//! resident memory per connection ((RSS after − RSS before) / N, from
//! `/proc/<pid>/status` with `--server-pid`), how fast connections open
//! and subscribe, and how many fail.

use std::sync::Arc;
use std::time::Instant;

use super::{ServerProbe, connect_report, open_fleet, per_connection, report_frame, tool_report};
use crate::options::Plan;
use crate::proc_stats::Process;
use crate::report::{Report, ServerReport};
use crate::{BenchError, progress};

pub(crate) async fn run(plan: Arc<Plan>) -> Result<Report, BenchError> {
    let started = Instant::now();
    let cpu_before = Process::Current.cpu_seconds()?;
    let probe = ServerProbe::new(&plan);
    let server_before = probe.sample()?;
    let (fleet, connected) = open_fleet(&plan).await?;

    let sources = progress::Sources {
        fleet: Some((fleet.gauge(), plan.options.connections as u64)),
        publish: None,
        counter: None,
    };
    let line = progress::start(plan.options.progress, "idle hold".into(), sources);
    tokio::time::sleep(plan.options.duration).await;
    drop(line);
    let server_after = probe.sample()?;
    let held = fleet.progress();
    let result = fleet.stop().await?;

    let mut report = report_frame(&plan, started, tool_report(&connected, &result, &plan, cpu_before));
    report.connect = Some(connect_report(&connected));
    if let (Some(pid), Some(before), Some(after)) = (probe.pid(), server_before, server_after) {
        report.server = Some(ServerReport {
            rss_per_connection_kib: per_connection(before.rss_kib, after.rss_kib, held.connected),
            ..ServerReport::between(pid, before, after)
        });
    }
    report.errors = result.errors;
    Ok(report)
}
