//! The phase `fanout`, `rooms` and `reconnect-storm` share: publish while
//! the fleet receives (cutting every connection once, for the storm),
//! then tell each subscriber its channel's last publication and wait
//! until all have everything, or the drain timeout passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ServerProbe;
use crate::error_log::ErrorLog;
use crate::fleet::{Fleet, FleetResult};
use crate::options::Plan;
use crate::proc_stats::ProcSample;
use crate::publisher::{PublishOutcome, Publisher, Sink};
use crate::report::{DeliveryReport, PublishReport};
use crate::stats::{Latency, per_second};
use crate::{BenchError, progress, server_writes};

/// How often the drain looks whether everyone has caught up.
const DRAIN_POLL: Duration = Duration::from_millis(20);

pub(crate) struct DeliveryRun {
    pub publish: PublishOutcome,
    /// First publish → everyone caught up (or the drain gave up).
    pub elapsed_s: f64,
    pub server_before: Option<ProcSample>,
    pub server_after: Option<ProcSample>,
    /// Frames per socket write on the server while publishing (Fanfare only).
    pub frames_per_write: Option<f64>,
    pub caught_up: u64,
    pub recovered: u64,
    pub errors: Arc<ErrorLog>,
}

/// Publishes for the run's duration (cutting every connection after
/// `cut_after`, if given), then drains.
pub(crate) async fn publish_and_drain(
    plan: &Arc<Plan>,
    fleet: &Fleet,
    subscribers: u64,
    cut_after: Option<Duration>,
) -> Result<DeliveryRun, BenchError> {
    let probe = ServerProbe::new(plan);
    let errors = Arc::new(ErrorLog::default());
    let per_channel = plan.subscribers_per_channel(plan.options.connections);
    let publisher = Publisher::new(plan, Sink::new(plan)?, per_channel, Some(fleet.gauge()), errors.clone());
    let sources = progress::Sources {
        fleet: Some((fleet.gauge(), plan.options.connections as u64)),
        publish: Some(publisher.counters()),
        counter: None,
    };
    let line = progress::start(plan.options.progress, plan.options.scenario.to_string(), sources);
    let writes_before = server_writes::sample(plan).await;
    let server_before = probe.sample()?;
    let started = Instant::now();
    let publishing = tokio::spawn(publisher.run());
    let mut cut_at = None;
    if let Some(after) = cut_after {
        tokio::time::sleep(after).await;
        cut_at = Some(Instant::now());
        fleet.cut();
    }
    let publish = publishing.await.expect("the publisher does not panic");
    fleet.drain(&publish.targets);
    let drain_deadline = Instant::now() + plan.options.drain_timeout;
    let done = |p: &crate::fleet::FleetProgress| {
        p.caught_up >= subscribers && (cut_at.is_none() || p.recovered >= subscribers)
    };
    while !done(&fleet.progress()) && Instant::now() < drain_deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let server_after = probe.sample()?;
    let frames_per_write = server_writes::frames_per_write(writes_before, server_writes::sample(plan).await);
    drop(line);
    let progress = fleet.progress();
    Ok(DeliveryRun {
        publish,
        elapsed_s,
        server_before,
        server_after,
        frames_per_write,
        caught_up: progress.caught_up,
        recovered: progress.recovered,
        errors,
    })
}

pub(crate) fn publish_report(run: &DeliveryRun) -> PublishReport {
    let p = &run.publish;
    PublishReport {
        attempted: p.attempted,
        acked: p.acked,
        failed: p.failed,
        elapsed_s: p.elapsed_s,
        per_second: per_second(p.acked, p.elapsed_s),
        ack_latency: p.ack_latency.summary(),
    }
}

pub(crate) fn delivery_report(run: &DeliveryRun, fleet: &FleetResult, subscribers: u64) -> DeliveryReport {
    let integrity = &fleet.integrity;
    let delivered = integrity.received + integrity.duplicated;
    let server_cpu = match (run.server_before, run.server_after) {
        (Some(before), Some(after)) => Some(after.cpu_seconds - before.cpu_seconds),
        _ => None,
    };
    DeliveryReport {
        subscribers,
        // Each subscriber expected every publication of its channel after
        // its starting point: what it received plus what it lost.
        expected: integrity.received + integrity.lost,
        delivered,
        elapsed_s: run.elapsed_s,
        per_second: per_second(delivered, run.elapsed_s),
        per_server_cpu_second: server_cpu.filter(|cpu| *cpu > 0.0).map(|cpu| delivered as f64 / cpu),
        latency: Latency::from_buckets(&fleet.latency).summary(),
        lost: integrity.lost,
        duplicated: integrity.duplicated,
        out_of_order: integrity.out_of_order,
        caught_up: run.caught_up,
        reconnects: fleet.reconnects,
        foreign: fleet.foreign,
    }
}
