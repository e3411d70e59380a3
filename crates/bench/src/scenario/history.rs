//! `history`: how fast the history store takes appends and serves range
//! reads.
//!
//! - Through a server (default): publish as fast as possible, many
//!   requests in flight, so the embedded store's group commit batches
//!   them; then `GET /api/history` of `--read-limit` publications, many
//!   in flight, for the same duration.
//! - In process (`--data-dir DIR`): the same two phases straight against
//!   an `EmbeddedStore` opened in a fresh directory under DIR (removed
//!   afterwards), without HTTP, JSON envelopes or a hub in the way.
//!
//! Every read page is checked: ascending, gap-free offsets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fanfare_protocol::{ChannelName, JsonData};
use fanfare_store::{AppendRequest, EmbeddedOptions, EmbeddedStore, HistoryQuery, HistoryStore, Retention};
use parking_lot::Mutex;

use super::report_frame;
use crate::driver::api::ApiClient;
use crate::error_log::ErrorLog;
use crate::options::{Durability, Plan};
use crate::proc_stats::Process;
use crate::publisher::{Publisher, Sink};
use crate::report::{HistoryReport, Report, ServerReport, ToolReport};
use crate::stats::{Latency, per_second};
use crate::{BenchError, payload, progress};

/// How long an idempotency key is remembered (unused: no keys are sent).
const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(300);

pub(crate) async fn run(plan: Arc<Plan>) -> Result<Report, BenchError> {
    let started = Instant::now();
    let cpu_before = Process::Current.cpu_seconds()?;
    let rss_before = Process::Current.rss_kib()?;
    let probe = super::ServerProbe::new(&plan);
    let server_before = probe.sample()?;
    let errors = Arc::new(ErrorLog::default());
    let history = match &plan.options.data_dir {
        Some(dir) => in_process(&plan, dir, &errors).await?,
        None => over_http(&plan, &errors).await?,
    };
    let server_after = probe.sample()?;
    let tool = ToolReport {
        rss_before_kib: rss_before,
        rss_after_kib: Process::Current.rss_kib()?,
        rss_per_connection_kib: None,
        cpu_seconds: Process::Current.cpu_seconds()? - cpu_before,
    };
    let mut report = report_frame(&plan, started, tool);
    report.connections = 0;
    if let (Some(pid), Some(before), Some(after)) = (probe.pid(), server_before, server_after) {
        report.server = Some(ServerReport::between(pid, before, after));
    }
    report.history = Some(history);
    report.errors = errors.summary();
    Ok(report)
}

/// Counts and latencies of one phase.
#[derive(Default)]
struct Phase {
    done: AtomicU64,
    failed: AtomicU64,
    items: AtomicU64,
    latency: Mutex<Latency>,
}

impl Phase {
    /// A progress line source counting this phase's successes as `name`.
    fn progress(self: &Arc<Self>, name: &'static str) -> progress::Sources {
        let phase = self.clone();
        let counter: progress::Counter = Arc::new(move || phase.done.load(Ordering::Relaxed));
        progress::Sources { counter: Some((name, counter)), ..Default::default() }
    }

    fn record(&self, started: Instant, items: u64) {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.latency.lock().record(micros);
        self.done.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items, Ordering::Relaxed);
    }
}

async fn over_http(plan: &Arc<Plan>, errors: &Arc<ErrorLog>) -> Result<HistoryReport, BenchError> {
    let publisher = Publisher::new(plan, Sink::new(plan)?, vec![0; plan.channels], None, errors.clone());
    let sources = progress::Sources { publish: Some(publisher.counters()), ..Default::default() };
    let line = progress::start(plan.options.progress, "history appends".into(), sources);
    let appended = publisher.run().await;
    drop(line);

    let api = Arc::new(ApiClient::new(plan, plan.options.in_flight)?);
    let tops = Arc::new(appended.targets.clone());
    let reads = run_reads(plan, errors, move |channel, name, limit| {
        let (api, tops) = (api.clone(), tops.clone());
        async move {
            let page = api.history(&name, None, limit).await.map_err(|e| e.to_string())?;
            check_page(&page.offsets, tops[channel], limit)
        }
    })
    .await;
    Ok(HistoryReport {
        mode: "http".into(),
        appends: appended.acked,
        append_failures: appended.failed,
        appends_per_second: per_second(appended.acked, appended.elapsed_s),
        append_latency: appended.ack_latency.summary(),
        ..reads
    })
}

async fn in_process(
    plan: &Arc<Plan>,
    dir: &std::path::Path,
    errors: &Arc<ErrorLog>,
) -> Result<HistoryReport, BenchError> {
    let dir = dir.join(format!("fanfare-bench-{}", plan.run_id));
    let open_dir = dir.clone();
    let store =
        tokio::task::spawn_blocking(move || EmbeddedStore::open(&open_dir, EmbeddedOptions::default()))
            .await
            .expect("opening the store does not panic")?;
    let store = Arc::new(store);
    let outcome = store_phases(plan, &store, errors).await;
    let _ = store.close().await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(outcome)
}

async fn store_phases(plan: &Arc<Plan>, store: &Arc<EmbeddedStore>, errors: &Arc<ErrorLog>) -> HistoryReport {
    let names: Arc<Vec<ChannelName>> =
        Arc::new((0..plan.channels).filter_map(|c| ChannelName::new(&plan.channel_name(c)).ok()).collect());
    let (appends, append_seconds) = store_appends(plan, store, &names, errors).await;
    let appended = appends.done.load(Ordering::Relaxed);
    let reads = run_reads(plan, errors, {
        let (store, names) = (store.clone(), names.clone());
        move |channel, _name, limit| {
            let (store, name) = (store.clone(), names[channel].clone());
            async move {
                let query =
                    HistoryQuery { since: None, limit, reverse: false, retention: Retention::default() };
                let page = store.read(&name, query).await.map_err(|e| e.to_string())?;
                let offsets: Vec<u64> = page.publications.iter().map(|p| p.offset).collect();
                check_page(&offsets, page.top_offset, limit)
            }
        }
    })
    .await;
    HistoryReport {
        mode: "embedded".into(),
        appends: appended,
        append_failures: appends.failed.load(Ordering::Relaxed),
        appends_per_second: per_second(appended, append_seconds),
        append_latency: appends.latency.lock().summary(),
        ..reads
    }
}

/// `in_flight` tasks append round the channels, each waiting for its
/// append to be durable (so the writer's group commits batch them).
async fn store_appends(
    plan: &Arc<Plan>,
    store: &Arc<EmbeddedStore>,
    names: &Arc<Vec<ChannelName>>,
    errors: &Arc<ErrorLog>,
) -> (Arc<Phase>, f64) {
    let appends = Arc::new(Phase::default());
    let line = progress::start(plan.options.progress, "history appends".into(), appends.progress("appended"));
    let started = Instant::now();
    let deadline = started + plan.options.duration;
    let limit = plan.options.messages.unwrap_or(u64::MAX);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..plan.options.in_flight)
        .map(|_| {
            let (store, names, appends, next, errors) =
                (store.clone(), names.clone(), appends.clone(), next.clone(), errors.clone());
            let size = plan.options.size;
            let durability = match plan.options.durability {
                Durability::Fsync => fanfare_store::Durability::Fsync,
                Durability::Buffered => fanfare_store::Durability::Buffered,
            };
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= limit || Instant::now() >= deadline {
                        return;
                    }
                    let channel = names[(n % names.len() as u64) as usize].clone();
                    let sent = Instant::now();
                    let request = append_request(channel, n, size, durability);
                    match fanfare_store::append(store.as_ref(), request).await {
                        Ok(_) => appends.record(sent, 1),
                        Err(error) => {
                            appends.failed.fetch_add(1, Ordering::Relaxed);
                            errors.record("append", error);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    drop(line);
    (appends, started.elapsed().as_secs_f64())
}

fn append_request(
    channel: ChannelName,
    n: u64,
    size: usize,
    durability: fanfare_store::Durability,
) -> AppendRequest {
    let data =
        JsonData::parse(payload::encode(n, payload::now_us(), size)).expect("payloads are JSON strings");
    AppendRequest {
        channel,
        event: None,
        data,
        time_ms: fanfare_store::unix_time_ms(),
        idempotency_key: None,
        idempotency_window: IDEMPOTENCY_WINDOW,
        retention: Retention::default(),
        durability,
        exclude: 0,
        author: None,
        delete: None,
        update: None,
        priority: false,
    }
}

/// Range reads for the run's duration, `in_flight` at once, round the
/// channels; `read(channel, name, limit)` returns the publications read.
async fn run_reads<F, Fut>(plan: &Arc<Plan>, errors: &Arc<ErrorLog>, read: F) -> HistoryReport
where
    F: Fn(usize, String, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<u64, String>> + Send,
{
    let phase = Arc::new(Phase::default());
    let line = progress::start(plan.options.progress, "history reads".into(), phase.progress("reads"));
    let started = Instant::now();
    let deadline = started + plan.options.duration;
    let next = Arc::new(AtomicU64::new(0));
    let names: Arc<Vec<String>> = Arc::new((0..plan.channels).map(|c| plan.channel_name(c)).collect());
    let limit = plan.options.read_limit;
    let tasks: Vec<_> = (0..plan.options.in_flight)
        .map(|_| {
            let (phase, next, names, errors, read) =
                (phase.clone(), next.clone(), names.clone(), errors.clone(), read.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let channel = (next.fetch_add(1, Ordering::Relaxed) % names.len() as u64) as usize;
                    let sent = Instant::now();
                    match read(channel, names[channel].clone(), limit).await {
                        Ok(items) => phase.record(sent, items),
                        Err(error) => {
                            phase.failed.fetch_add(1, Ordering::Relaxed);
                            errors.record("read", error);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    drop(line);
    let seconds = started.elapsed().as_secs_f64();
    let (reads, items) = (phase.done.load(Ordering::Relaxed), phase.items.load(Ordering::Relaxed));
    HistoryReport {
        mode: String::new(),
        appends: 0,
        append_failures: 0,
        appends_per_second: 0.0,
        append_latency: Default::default(),
        reads,
        read_failures: phase.failed.load(Ordering::Relaxed),
        reads_per_second: per_second(reads, seconds),
        publications_read: items,
        publications_read_per_second: per_second(items, seconds),
        read_latency: phase.latency.lock().summary(),
    }
}

/// A page must hold ascending, gap-free offsets, and not be empty when the
/// channel has publications.
fn check_page(offsets: &[u64], top: u64, limit: usize) -> Result<u64, String> {
    if offsets.windows(2).any(|pair| pair[1] != pair[0] + 1) {
        return Err(format!("offsets not gap-free and ascending: {:?}…", &offsets[..offsets.len().min(8)]));
    }
    if top > 0 && offsets.is_empty() {
        return Err(format!("empty page of a channel whose top is {top}"));
    }
    if offsets.len() > limit {
        return Err(format!("{} publications for a limit of {limit}", offsets.len()));
    }
    Ok(offsets.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_must_be_ascending_gap_free_and_within_the_limit() {
        assert_eq!(check_page(&[4, 5, 6], 10, 3), Ok(3));
        assert_eq!(check_page(&[], 0, 3), Ok(0));
        assert!(check_page(&[4, 6], 10, 3).is_err());
        assert!(check_page(&[5, 4], 10, 3).is_err());
        assert!(check_page(&[], 10, 3).is_err());
        assert!(check_page(&[1, 2, 3, 4], 10, 3).is_err());
    }
}
