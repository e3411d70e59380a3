//! `dm`: a messenger. N users (one connection each, `--workers` spread
//! them), C direct channels of two users (`conversations.rs`: each user
//! in about 2C / N), each user subscribed to its feed only. Four phases:
//!
//! 1. **Channels.** One message in each direct channel through the HTTP
//!    API (a channel's first message writes its members into the users'
//!    channel lists), `in_flight` at a time, held back while the server's
//!    feed notices lag more than [`NOTICE_LAG`] behind; then wait until
//!    both notices of every message are appended (`/metrics`). The
//!    server's memory before and after, over C: memory per channel (its
//!    one message and two notices included: the report gives their
//!    bytes beside it); and over the second half alone, from a sample
//!    taken halfway (notices settled), which leaves out what the first
//!    channels filled once (the store's memtables and caches up to their
//!    bounds, the allocator's arenas).
//! 2. **Users.** Connect and subscribe every user to `feed:<user>`:
//!    memory per connected user.
//! 3. **Messages.** For `duration`, each user writes in the channels it
//!    starts at its share of `rate` (so the channels get messages
//!    uniformly); each message's notice reaches the other member's feed.
//!    Counted over this window: messages per second, notices delivered per
//!    second and per server CPU-second, notice latency (send time in the
//!    message's text → the notice's `preview` → received). Then wait until
//!    every acknowledged message's notice came; every feed is checked for
//!    gaps, repeats and order (by feed offset, and by message offset per
//!    channel).
//! 4. **Catching up.** Every user asks `unread`, then, all at once, sends
//!    one `read` per channel with something unread: cursor updates per
//!    second, from the order to the last answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{ServerProbe, connect_report, open_fleet, report_frame, tool_report};
use crate::conversations::Conversations;
use crate::driver::api::ApiClient;
use crate::error_log::ErrorLog;
use crate::feed_metrics::{self, FeedCounts};
use crate::fleet::{Fleet, FleetProgress, FleetResult};
use crate::options::Plan;
use crate::proc_stats::{ProcSample, Process};
use crate::report::{DmCatchUp, DmChannels, DmMessages, DmReport, Report, ServerReport};
use crate::stats::{Latency, per_second};
use crate::{BenchError, progress};

/// Phase 1 holds publishing while this many notices are owed: the hub's
/// queue of appends to observe (65,536) must not overflow.
const NOTICE_LAG: f64 = 20_000.0;
/// Channels created between two looks at the notices.
const CREATE_CHUNK: usize = 2_000;
/// The text of each channel's first message.
const FIRST_MESSAGE: &str = r#"{"text":"hello"}"#;
/// How often the waits look.
const POLL: Duration = Duration::from_millis(20);

/// Phase 1, measured.
struct Created {
    created: u64,
    failed: u64,
    publish_s: f64,
    settled_s: f64,
    feed: FeedCounts,
    before: Option<ProcSample>,
    /// Halfway: the channels created by then (their notices appended), and
    /// the server.
    half: Option<(u64, ProcSample)>,
    after: Option<ProcSample>,
}

/// Phases 3 and 4, measured.
struct Conversed {
    window_s: f64,
    server_before: Option<ProcSample>,
    server_after: Option<ProcSample>,
    deliveries: u64,
    acked: u64,
    failed: u64,
    feed: FeedCounts,
    drained: bool,
    list_s: f64,
    listed: u64,
    read_s: f64,
    reads_answered: u64,
    read_cpu_s: Option<f64>,
}

pub(crate) async fn run(plan: Arc<Plan>) -> Result<Report, BenchError> {
    let started = Instant::now();
    let cpu_before = Process::Current.cpu_seconds()?;
    let probe = ServerProbe::new(&plan);
    let errors = Arc::new(ErrorLog::default());
    let created = create_channels(&plan, &probe, &errors).await?;

    let users_before = probe.sample()?;
    let (fleet, connected) = open_fleet(&plan).await?;
    let users_after = probe.sample()?;
    let conversed = match converse(&plan, &fleet, &probe, connected.connected).await {
        Ok(conversed) => conversed,
        Err(error) => {
            let _ = fleet.stop().await;
            return Err(error);
        }
    };
    let result = fleet.stop().await?;

    let mut report = report_frame(&plan, started, tool_report(&connected, &result, &plan, cpu_before));
    report.connect = Some(connect_report(&connected));
    // The direct channels; the fleet's channels are the users' feeds.
    report.channels = Conversations::of(&plan.options).channels;
    if let (Some(pid), Some(before), Some(after)) = (probe.pid(), users_before, users_after) {
        report.server = Some(ServerReport {
            rss_per_connection_kib: super::per_connection(before.rss_kib, after.rss_kib, connected.connected),
            ..ServerReport::between(pid, before, after)
        });
    }
    report.dm = Some(dm_report(
        &plan,
        &created,
        (users_before, users_after),
        &conversed,
        &result,
        connected.connected,
    ));
    report.errors = result.errors;
    crate::error_log::merge(&mut report.errors, &errors.summary());
    Ok(report)
}

/// Phase 1.
async fn create_channels(
    plan: &Arc<Plan>,
    probe: &ServerProbe,
    errors: &ErrorLog,
) -> Result<Created, BenchError> {
    let options = &plan.options;
    let conversations = Conversations::of(options);
    let api = ApiClient::new(plan, options.in_flight)?;
    let feed_before = feed_metrics::sample(plan).await.unwrap_or_default();
    let before = probe.sample()?;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter: progress::Counter = {
        let done = done.clone();
        Arc::new(move || done.load(std::sync::atomic::Ordering::Relaxed))
    };
    let line = progress::start(
        options.progress,
        "dm channels".into(),
        progress::Sources { counter: Some(("created", counter)), ..progress::Sources::default() },
    );
    let started = Instant::now();
    let (mut created, mut failed) = (0u64, 0u64);
    let mut half = None;
    // Chunks of each half, so that one ends halfway.
    let all = conversations.channels;
    let chunks = [0..all / 2, all / 2..all].map(|half| half.collect::<Vec<_>>());
    let chunks = chunks.iter().flat_map(|half| half.chunks(CREATE_CHUNK));
    for chunk in chunks {
        let mut answers = futures_util::stream::iter(chunk.iter().map(|&k| {
            let api = &api;
            let name = conversations.name(options, k);
            async move { api.publish(&name, FIRST_MESSAGE).await }
        }))
        .buffer_unordered(options.in_flight);
        while let Some(answer) = answers.next().await {
            match answer {
                Ok(_) => created += 1,
                Err(error) => {
                    failed += 1;
                    errors.record("create channel", &error);
                }
            }
            done.store(created + failed, std::sync::atomic::Ordering::Relaxed);
        }
        if half.is_none() && created + failed >= (all / 2) as u64 {
            wait_for_notices(plan, feed_before, 2.0 * created as f64, options.drain_timeout).await;
            half = probe.sample()?.map(|sample| (created, sample));
            continue;
        }
        wait_for_notices(plan, feed_before, 2.0 * created as f64 - NOTICE_LAG, Duration::from_secs(30)).await;
    }
    let publish_s = started.elapsed().as_secs_f64();
    let feed = wait_for_notices(plan, feed_before, 2.0 * created as f64, options.drain_timeout).await;
    let settled_s = started.elapsed().as_secs_f64();
    drop(line);
    let after = probe.sample()?;
    Ok(Created { created, failed, publish_s, settled_s, feed, before, half, after })
}

/// Waits (up to `limit`) until the server has appended `target` notices
/// since `before`, or given up on some (errors, drops); what it did since.
async fn wait_for_notices(plan: &Plan, before: FeedCounts, target: f64, limit: Duration) -> FeedCounts {
    let deadline = Instant::now() + limit;
    loop {
        let Some(now) = feed_metrics::sample(plan).await else { return FeedCounts::default() };
        let since = now.since(before);
        if since.notices + since.notice_errors + 2.0 * since.dropped >= target || Instant::now() >= deadline {
            return since;
        }
        tokio::time::sleep(POLL * 5).await;
    }
}

/// Phases 3 and 4.
async fn converse(
    plan: &Arc<Plan>,
    fleet: &Fleet,
    probe: &ServerProbe,
    users: u64,
) -> Result<Conversed, BenchError> {
    let options = &plan.options;
    let line = progress::start(
        options.progress,
        "dm messages".into(),
        progress::Sources {
            fleet: Some((fleet.gauge(), options.connections as u64)),
            ..progress::Sources::default()
        },
    );
    let feed_before = feed_metrics::sample(plan).await.unwrap_or_default();
    let start = fleet.progress();
    let server_before = probe.sample()?;
    let started = Instant::now();
    fleet.chat(true);
    tokio::time::sleep(options.duration).await;
    fleet.chat(false);
    let window_s = started.elapsed().as_secs_f64();
    let server_after = probe.sample()?;
    let deliveries = fleet.progress().delivered - start.delivered;
    let drained = drain(fleet, &start, options.drain_timeout).await;
    let end = fleet.progress();
    let feed = feed_metrics::sample(plan).await.unwrap_or_default().since(feed_before);
    drop(line);

    fleet.list_unread();
    let listing = Instant::now();
    wait_until(options.drain_timeout, || fleet.progress().listed >= users).await;
    let list_s = listing.elapsed().as_secs_f64();
    let cpu_before_reads = probe.sample()?;
    let reading = Instant::now();
    fleet.mark_read();
    wait_until(options.drain_timeout, || {
        let now = fleet.progress();
        now.readers >= users && now.reads_answered >= now.reads_sent
    })
    .await;
    let read_s = reading.elapsed().as_secs_f64();
    let cpu_after_reads = probe.sample()?;
    let after_reads = fleet.progress();
    Ok(Conversed {
        window_s,
        server_before,
        server_after,
        deliveries,
        acked: end.messages_acked - start.messages_acked,
        failed: end.messages_failed - start.messages_failed,
        feed,
        drained,
        list_s,
        listed: after_reads.listed,
        read_s,
        reads_answered: after_reads.reads_answered,
        read_cpu_s: cpu_before_reads.zip(cpu_after_reads).map(|(b, a)| a.cpu_seconds - b.cpu_seconds),
    })
}

/// Waits until the answers to the last messages came and a notice for
/// every acknowledged one; whether it got there before `limit`.
async fn drain(fleet: &Fleet, start: &FleetProgress, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut answered = u64::MAX;
    let mut steady = 0;
    loop {
        let now = fleet.progress();
        let acked = now.messages_acked - start.messages_acked;
        let now_answered = acked + now.messages_failed - start.messages_failed;
        // Answered stays the same for a while: nothing is in flight any more.
        steady = if now_answered == answered { steady + 1 } else { 0 };
        answered = now_answered;
        if steady >= 10 && now.delivered - start.delivered >= acked {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

/// Bytes per channel of what phase 1 stored: its first message's data
/// and the data of the notice in each member's feed (without the store's
/// keys and record framing).
fn stored_bytes_per_channel(plan: &Plan) -> u64 {
    let conversations = Conversations::of(&plan.options);
    let name = conversations.name(&plan.options, conversations.channels / 2);
    // {"channel":…,"epoch":"xxxxxxxx","offset":1,"preview":"hello"}
    let notice = format!(r#"{{"channel":"{name}","epoch":"xxxxxxxx","offset":1,"preview":"hello"}}"#);
    (FIRST_MESSAGE.len() + 2 * notice.len()) as u64
}

fn per_item_bytes(before: Option<ProcSample>, after: Option<ProcSample>, items: u64) -> Option<f64> {
    let (before, after) = (before?, after?);
    (items > 0).then(|| (after.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / items as f64)
}

fn dm_report(
    plan: &Plan,
    created: &Created,
    users: (Option<ProcSample>, Option<ProcSample>),
    conversed: &Conversed,
    fleet: &FleetResult,
    connected: u64,
) -> DmReport {
    let conversations = Conversations::of(&plan.options);
    let tally = &fleet.dm;
    let window = conversed.window_s;
    let cpu = conversed.server_before.zip(conversed.server_after).map(|(b, a)| a.cpu_seconds - b.cpu_seconds);
    let integrity = &fleet.integrity;
    DmReport {
        users: connected,
        channels: DmChannels {
            channels: conversations.channels as u64,
            per_user: 2.0 * conversations.channels as f64 / conversations.users.max(1) as f64,
            created: created.created,
            failed: created.failed,
            publish_s: created.publish_s,
            created_per_second: per_second(created.created, created.publish_s),
            notices_appended: created.feed.notices as u64,
            notices_dropped: created.feed.dropped as u64 * 2 + created.feed.notice_errors as u64,
            settled_s: created.settled_s,
            server_rss_per_channel_bytes: per_item_bytes(created.before, created.after, created.created),
            second_half_rss_per_channel_bytes: created.half.and_then(|(at_half, half)| {
                per_item_bytes(Some(half), created.after, created.created - at_half)
            }),
            stored_bytes_per_channel: stored_bytes_per_channel(plan),
        },
        server_rss_per_user_bytes: per_item_bytes(users.0, users.1, connected),
        messages: DmMessages {
            rate: plan.options.rate,
            window_s: window,
            sent: tally.messages_sent,
            acked: conversed.acked,
            failed: conversed.failed,
            per_second: per_second(conversed.acked, window),
            notices_appended: conversed.feed.notices as u64,
            notices_dropped: conversed.feed.dropped as u64 + conversed.feed.notice_errors as u64,
            notices_received: tally.notices,
            deliveries_per_second: per_second(conversed.deliveries, window),
            deliveries_per_server_cpu_second: cpu
                .filter(|cpu| *cpu > 0.0)
                .map(|cpu| conversed.deliveries as f64 / cpu),
            server_cores: cpu.filter(|_| window > 0.0).map(|cpu| cpu / window),
            latency: Latency::from_buckets(&fleet.latency).summary(),
            untimed: tally.notices - tally.timed,
            lost: conversed.acked.saturating_sub(tally.notices) + integrity.lost,
            duplicated: integrity.duplicated,
            out_of_order: integrity.out_of_order,
            channel_gaps: tally.channel_gaps,
            channel_repeats: tally.channel_repeats,
            drained: conversed.drained,
            reconnects: fleet.reconnects,
        },
        catch_up: DmCatchUp {
            listed: conversed.listed,
            list_refused: tally.list_refused,
            list_s: conversed.list_s,
            unread_per_second: per_second(conversed.listed, conversed.list_s),
            unread_channels: tally.unread_channels,
            unread_publications: tally.unread_publications,
            reads_sent: tally.reads_sent,
            reads_moved: tally.reads_moved,
            reads_not_moved: tally.reads_not_moved,
            reads_refused: tally.reads_refused,
            read_s: conversed.read_s,
            reads_per_second: per_second(conversed.reads_answered, conversed.read_s),
            reads_per_server_cpu_second: conversed
                .read_cpu_s
                .filter(|cpu| *cpu > 0.0)
                .map(|cpu| conversed.reads_answered as f64 / cpu),
        },
    }
}
