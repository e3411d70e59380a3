//! `reconnect-storm`: N subscribers receive a steady stream (100/s by
//! default); after `--cut-after` every connection is dropped at once — a
//! TCP reset, no close frame, as when a load balancer or a network path
//! dies — and each client reconnects with backoff and jitter and
//! resubscribes from its last `(epoch, offset)` while publishing goes on.
//! Reported: the time from the cut until every client has the whole gap
//! replayed, the spread of that time over clients, and what was missed
//! (`recovered: false` and losses) or duplicated.

use std::sync::Arc;
use std::time::Instant;

use super::delivery::{delivery_report, publish_and_drain, publish_report};
use super::{connect_report, open_fleet, report_frame, tool_report};
use crate::BenchError;
use crate::options::Plan;
use crate::proc_stats::Process;
use crate::report::{RecoveryReport, Report};
use crate::stats::Latency;

pub(crate) async fn run(plan: Arc<Plan>) -> Result<Report, BenchError> {
    let started = Instant::now();
    let cpu_before = Process::Current.cpu_seconds()?;
    let (fleet, connected) = open_fleet(&plan).await?;
    let cut_after = Some(plan.options.cut_after);
    let delivery = match publish_and_drain(&plan, &fleet, connected.connected, cut_after).await {
        Ok(delivery) => delivery,
        Err(error) => {
            let _ = fleet.stop().await;
            return Err(error);
        }
    };
    let result = fleet.stop().await?;

    let recovery = Latency::from_buckets(&result.recovery).summary();
    let all_recovered = delivery.recovered >= connected.connected;
    let mut report = report_frame(&plan, started, tool_report(&connected, &result, &plan, cpu_before));
    report.connect = Some(connect_report(&connected));
    report.server = super::fanout::server_report(&plan, &delivery);
    report.publish = Some(publish_report(&delivery));
    report.delivery = Some(delivery_report(&delivery, &result, connected.connected));
    report.recovery = Some(RecoveryReport {
        clients: connected.connected,
        recovered: delivery.recovered,
        all_recovered_after_ms: all_recovered.then(|| recovery.max_us as f64 / 1000.0),
        time_to_recover: recovery,
        recovered_false: result.recovered_false,
        reconnect_attempts: result.reconnect_attempts,
    });
    report.errors = result.errors;
    crate::error_log::merge(&mut report.errors, &delivery.errors.summary());
    Ok(report)
}
