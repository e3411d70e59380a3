//! `live`: one huge room. N viewers subscribe to one channel; while
//! comments come at `rate` per second from a few publishing connections
//! (ordinary tokens: the ordinary lane), the viewers send reactions at
//! `reaction_rate` in total, and one publication every
//! `priority_interval` goes through the HTTP API (the server: the
//! priority lane). Then:
//!
//! 1. publishing stops, and so do the reactions;
//! 2. after a pause longer than a shaping window, one closing comment,
//!    which a shaped namespace delivers (the viewers' budgets have
//!    refilled) with `skipped` = what the last window sampled out, so
//!    that every viewer's `ordinary + skipped` can be checked against
//!    what was published;
//! 3. the viewers drain up to the last offset.
//!
//! The server's CPU and the deliveries are counted over the publishing
//! window alone (1), so "cores used" is the load's, not the pause's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ServerProbe, connect_report, open_fleet, report_frame, tool_report};
use crate::driver::PRIORITY_EVENT;
use crate::driver::api::ApiClient;
use crate::driver::ws_publisher::WsPublishers;
use crate::error_log::ErrorLog;
use crate::fleet::{Fleet, FleetResult};
use crate::options::Plan;
use crate::proc_stats::{ProcSample, Process};
use crate::publisher::{PublishOutcome, Publisher, Sink};
use crate::report::{LiveReport, OrdinaryReport, PriorityReport, ReactionReport, Report, ServerReport};
use crate::stats::{Latency, per_second};
use crate::{BenchError, payload, progress};

/// Quiet time before the closing comment: longer than a shaping window
/// (1 s by default) plus a reaction window, so budgets have refilled and
/// the last aggregate has gone out.
const CLOSING_PAUSE: Duration = Duration::from_millis(1500);
/// How often the drain looks whether everyone has caught up.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// What the priority publisher did.
struct PriorityOutcome {
    sent: u64,
    failed: u64,
    last_offset: u64,
    ack_latency: Latency,
}

/// Everything measured while the room was live.
struct LiveRun {
    comments: PublishOutcome,
    priority: PriorityOutcome,
    /// Whether the closing comment was published.
    closed: bool,
    /// The publishing window: its length, and the server and deliveries
    /// over it.
    window_s: f64,
    server_before: Option<ProcSample>,
    server_after: Option<ProcSample>,
    deliveries: u64,
    caught_up: u64,
    errors: Arc<ErrorLog>,
}

pub(crate) async fn run(plan: Arc<Plan>) -> Result<Report, BenchError> {
    let started = Instant::now();
    let cpu_before = Process::Current.cpu_seconds()?;
    let (fleet, connected) = open_fleet(&plan).await?;
    let live = match watch(&plan, &fleet, connected.connected).await {
        Ok(live) => live,
        Err(error) => {
            let _ = fleet.stop().await;
            return Err(error);
        }
    };
    let result = fleet.stop().await?;

    let mut report = report_frame(&plan, started, tool_report(&connected, &result, &plan, cpu_before));
    report.connect = Some(connect_report(&connected));
    if let (Some(pid), Some(before), Some(after)) =
        (plan.options.server_pid, live.server_before, live.server_after)
    {
        report.server = Some(ServerReport::between(pid, before, after));
    }
    report.live = Some(live_report(&plan, &live, &result, connected.connected));
    report.errors = result.errors;
    crate::error_log::merge(&mut report.errors, &live.errors.summary());
    Ok(report)
}

/// Steps 1–3 of the module doc.
async fn watch(plan: &Arc<Plan>, fleet: &Fleet, viewers: u64) -> Result<LiveRun, BenchError> {
    let options = &plan.options;
    let probe = ServerProbe::new(plan);
    let errors = Arc::new(ErrorLog::default());
    let sink = Sink::Clients(WsPublishers::start(plan, options.publishers, options.in_flight));
    let per_channel = plan.subscribers_per_channel(options.connections);
    let comments = Publisher::new(plan, sink, per_channel, None, errors.clone());
    let closing = WsPublishers::start(plan, 1, 1);
    let api = ApiClient::new(plan, 4)?;
    let sources = progress::Sources {
        fleet: Some((fleet.gauge(), options.connections as u64)),
        publish: Some(comments.counters()),
        counter: None,
    };
    let line = progress::start(options.progress, "live".into(), sources);

    let server_before = probe.sample()?;
    let delivered_before = fleet.progress().delivered;
    let started = Instant::now();
    fleet.react(true);
    let priority = tokio::spawn(publish_priority(api, plan.clone(), errors.clone()));
    let comments = comments.run().await;
    let priority = priority.await.expect("the priority publisher does not panic");
    fleet.react(false);
    let window_s = started.elapsed().as_secs_f64();
    let server_after = probe.sample()?;
    let deliveries = fleet.progress().delivered - delivered_before;

    tokio::time::sleep(CLOSING_PAUSE).await;
    let closing_payload = payload::encode(comments.attempted + 1, payload::now_us(), options.size);
    let closing_offset = match closing.publish(0, &plan.channel_name(0), &closing_payload).await {
        Ok(offset) => offset,
        Err(error) => {
            errors.record("closing comment", &error);
            None
        }
    };
    let target = [closing_offset, comments.targets.first().copied(), Some(priority.last_offset)]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
    fleet.drain(&[target]);
    let deadline = Instant::now() + options.drain_timeout;
    while fleet.progress().caught_up < viewers && Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    drop(line);
    Ok(LiveRun {
        comments,
        priority,
        closed: closing_offset.is_some(),
        window_s,
        server_before,
        server_after,
        deliveries,
        caught_up: fleet.progress().caught_up,
        errors,
    })
}

/// One publication through the HTTP API every `priority_interval`, the
/// first at once, for the run's duration. A failed one is retried at the
/// next tick with the same sequence number, so the lane's numbers have no
/// gap.
async fn publish_priority(api: ApiClient, plan: Arc<Plan>, errors: Arc<ErrorLog>) -> PriorityOutcome {
    let options = &plan.options;
    let deadline = Instant::now() + options.duration;
    let mut ticker = tokio::time::interval(options.live.priority_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let channel = plan.channel_name(0);
    let mut outcome = PriorityOutcome { sent: 0, failed: 0, last_offset: 0, ack_latency: Latency::new() };
    loop {
        ticker.tick().await;
        if Instant::now() >= deadline {
            return outcome;
        }
        let text = payload::encode(outcome.sent + 1, payload::now_us(), options.size);
        let sent = Instant::now();
        match api.publish_event(&channel, Some(PRIORITY_EVENT), &text).await {
            Ok(offset) => {
                outcome.ack_latency.record(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
                outcome.sent += 1;
                outcome.last_offset = outcome.last_offset.max(offset.unwrap_or(0));
            }
            Err(error) => {
                outcome.failed += 1;
                errors.record("priority publish", &error);
            }
        }
    }
}

fn live_report(plan: &Plan, live: &LiveRun, fleet: &FleetResult, viewers: u64) -> LiveReport {
    let options = &plan.options;
    let tally = &fleet.live;
    let server_cpu = match (live.server_before, live.server_after) {
        (Some(before), Some(after)) => Some(after.cpu_seconds - before.cpu_seconds),
        _ => None,
    };
    let window = live.window_s;
    let priority_received = tally.priority.sum;
    let published = live.comments.acked + u64::from(live.closed);
    LiveReport {
        channel: plan.channel_name(0),
        viewers,
        comment_rate: options.rate,
        reaction_rate: options.live.reaction_rate,
        priority_interval_ms: u64::try_from(options.live.priority_interval.as_millis()).unwrap_or(u64::MAX),
        window_s: window,
        deliveries: live.deliveries,
        deliveries_per_second: per_second(live.deliveries, window),
        deliveries_per_server_cpu_second: server_cpu
            .filter(|cpu| *cpu > 0.0)
            .map(|cpu| live.deliveries as f64 / cpu),
        server_cores: server_cpu.filter(|_| window > 0.0).map(|cpu| cpu / window),
        priority: PriorityReport {
            sent: live.priority.sent,
            failed: live.priority.failed,
            received: priority_received,
            received_by_every_viewer: tally.priority.viewers == viewers
                && tally.priority.min == live.priority.sent,
            lost: (viewers * live.priority.sent).saturating_sub(priority_received),
            duplicated: tally.priority_integrity.duplicated,
            out_of_order: tally.priority_integrity.out_of_order,
            flagged: tally.priority_flagged,
            latency: Latency::from_buckets(&fleet.priority_latency).summary(),
            ack_latency: live.priority.ack_latency.summary(),
        },
        ordinary: OrdinaryReport {
            published,
            failed: live.comments.failed,
            delivered: tally.ordinary.sum,
            per_viewer_per_second_mean: tally.ordinary.mean() / window.max(f64::MIN_POSITIVE),
            per_viewer_per_second_max: tally.ordinary.max as f64 / window.max(f64::MIN_POSITIVE),
            busiest_second_max: tally.busiest_second.max,
            skipped: tally.ordinary_accounted.sum - tally.ordinary.sum,
            accounted_min: tally.ordinary_accounted.min,
            accounted_max: tally.ordinary_accounted.max,
            adds_up: tally.ordinary_accounted.viewers == viewers
                && tally.ordinary_accounted.min == published
                && tally.ordinary_accounted.max == published,
            unreported: tally.unreported,
            overreported: tally.overreported,
            repeated: tally.repeated,
            flagged_priority: tally.ordinary_flagged,
        },
        latency: Latency::from_buckets(&fleet.latency).summary(),
        reactions: ReactionReport {
            sent: tally.reactions_sent,
            acked: tally.reactions_acked,
            refused: tally.reactions_refused,
            aggregates: tally.aggregates,
            received_per_viewer_min: tally.reactions_received.min,
            received_per_viewer_max: tally.reactions_received.max,
            received_per_viewer_mean: tally.reactions_received.mean(),
        },
        caught_up: live.caught_up,
        reconnects: fleet.reconnects,
    }
}
