//! `fanout`: N subscribers on one channel; `rooms`: the same over many
//! small channels (by default connections / 3, so 3 subscribers each),
//! publishers spread over them round the channels. Reported: deliveries
//! per second and per server CPU-second, publish → deliver latency, and
//! lost, duplicated and reordered deliveries per subscriber — which must
//! all be 0.

use std::sync::Arc;
use std::time::Instant;

use super::delivery::{delivery_report, publish_and_drain, publish_report};
use super::{connect_report, open_fleet, report_frame, tool_report};
use crate::BenchError;
use crate::options::Plan;
use crate::proc_stats::Process;
use crate::report::{Report, ServerReport};

pub(crate) async fn run(plan: Arc<Plan>) -> Result<Report, BenchError> {
    let started = Instant::now();
    let cpu_before = Process::Current.cpu_seconds()?;
    let (fleet, connected) = open_fleet(&plan).await?;
    let delivery = match publish_and_drain(&plan, &fleet, connected.connected, None).await {
        Ok(delivery) => delivery,
        Err(error) => {
            let _ = fleet.stop().await;
            return Err(error);
        }
    };
    let result = fleet.stop().await?;

    let mut report = report_frame(&plan, started, tool_report(&connected, &result, &plan, cpu_before));
    report.connect = Some(connect_report(&connected));
    report.server = server_report(&plan, &delivery);
    report.publish = Some(publish_report(&delivery));
    report.delivery = Some(delivery_report(&delivery, &result, connected.connected));
    report.errors = result.errors;
    crate::error_log::merge(&mut report.errors, &delivery.errors.summary());
    Ok(report)
}

/// The server while publications flowed (memory before and after).
pub(super) fn server_report(plan: &Plan, delivery: &super::delivery::DeliveryRun) -> Option<ServerReport> {
    let (pid, before, after) = (plan.options.server_pid?, delivery.server_before?, delivery.server_after?);
    Some(ServerReport {
        frames_per_write: delivery.frames_per_write,
        ..ServerReport::between(pid, before, after)
    })
}
