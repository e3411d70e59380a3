//! Subscribers as tasks of this process.

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use super::subscriber::{self, Control, Spec};
use super::{ConnectSummary, FleetProgress, FleetResult, ProgressGauge};
use crate::dm_user::DmTally;
use crate::driver::Driver;
use crate::error_log::ErrorLog;
use crate::live_tracker::LiveTally;
use crate::options::Plan;
use crate::proc_stats::Process;
use crate::stats::Latency;
use crate::tracker::Integrity;

/// Latency histograms and counts are split this many ways, so that
/// subscriber tasks on different threads rarely share a lock.
const SHARDS: usize = 16;
/// How long stopping waits for the subscribers to close politely.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What every subscriber task of the fleet shares.
pub(super) struct Shared {
    pub driver: Driver,
    pub plan: Arc<Plan>,
    pub channels: Vec<Arc<str>>,
    /// Per channel: the last key published, once draining (`u64::MAX` before).
    pub targets: Vec<AtomicU64>,
    pub connect_slots: Semaphore,
    pub stats: DeliveryStats,
    pub counters: Counters,
    pub errors: ErrorLog,
    pub recovery: Mutex<Latency>,
    /// `live`: the viewers that finished, summed.
    pub live: Mutex<LiveTally>,
    /// `dm`: the users that finished, summed.
    pub dm: Mutex<DmTally>,
    pub attempted: Notify,
}

impl Shared {
    pub fn source_for(&self, index: usize) -> Option<IpAddr> {
        let sources = &self.plan.options.source_addrs;
        (!sources.is_empty()).then(|| sources[index % sources.len()])
    }

    pub fn target(&self, channel: usize) -> Option<u64> {
        let target = self.targets[channel].load(Ordering::Relaxed);
        (target != u64::MAX).then_some(target)
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub connected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub caught_up: AtomicU64,
    pub recovered: AtomicU64,
    pub recovered_false: AtomicU64,
    pub reconnects: AtomicU64,
    pub reconnect_attempts: AtomicU64,
    pub foreign: AtomicU64,
    pub messages_acked: AtomicU64,
    pub messages_failed: AtomicU64,
    pub listed: AtomicU64,
    pub readers: AtomicU64,
    pub reads_sent: AtomicU64,
    pub reads_answered: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[derive(Default)]
struct StatsShard {
    latency: Latency,
    /// `live`: of the priority lane alone.
    priority_latency: Latency,
    delivered: u64,
}

pub(super) struct DeliveryStats {
    shards: Box<[Mutex<StatsShard>]>,
}

impl DeliveryStats {
    fn new() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(StatsShard::default())).collect() }
    }

    /// One delivery to subscriber `index`, with its latency when known
    /// (counted for the priority lane too when it is a priority one).
    pub fn record(&self, index: usize, latency_us: Option<u64>, priority: bool) {
        let mut shard = self.shards[index % SHARDS].lock();
        shard.delivered += 1;
        if let Some(us) = latency_us {
            shard.latency.record(us);
            if priority {
                shard.priority_latency.record(us);
            }
        }
    }

    fn delivered(&self) -> u64 {
        self.shards.iter().map(|shard| shard.lock().delivered).sum()
    }

    fn latency(&self) -> Latency {
        let mut total = Latency::new();
        self.shards.iter().for_each(|shard| total.merge(&shard.lock().latency));
        total
    }

    fn priority_latency(&self) -> Latency {
        let mut total = Latency::new();
        self.shards.iter().for_each(|shard| total.merge(&shard.lock().priority_latency));
        total
    }
}

pub(crate) struct LocalFleet {
    shared: Arc<Shared>,
    control: watch::Sender<Control>,
    tasks: JoinSet<Integrity>,
    size: u64,
    started: Instant,
    rss_before_kib: u64,
}

impl LocalFleet {
    /// Starts the subscribers with global indices `slice`; they connect at once.
    pub(crate) fn start(plan: Arc<Plan>, slice: Range<usize>) -> Self {
        let rss_before_kib = Process::Current.rss_kib().unwrap_or(0);
        let channels = (0..plan.channels).map(|c| Arc::from(plan.channel_name(c))).collect();
        let shared = Arc::new(Shared {
            driver: Driver::new(&plan),
            targets: (0..plan.channels).map(|_| AtomicU64::new(u64::MAX)).collect(),
            connect_slots: Semaphore::new(plan.options.connect_concurrency),
            channels,
            stats: DeliveryStats::new(),
            counters: Counters::default(),
            errors: ErrorLog::default(),
            recovery: Mutex::new(Latency::new()),
            live: Mutex::new(LiveTally::default()),
            dm: Mutex::new(DmTally::default()),
            attempted: Notify::new(),
            plan: plan.clone(),
        });
        let (control, _) = watch::channel(Control::default());
        let mut tasks = JoinSet::new();
        let size = slice.len() as u64;
        for index in slice {
            let spec = Spec { index, channel: plan.channel_of(index) };
            tasks.spawn(subscriber::run(shared.clone(), spec, control.subscribe()));
        }
        Self { shared, control, tasks, size, started: Instant::now(), rss_before_kib }
    }

    /// Waits until every subscriber connected or failed to.
    pub(crate) async fn connected(&self) -> ConnectSummary {
        let counters = &self.shared.counters;
        let attempted =
            || counters.connected.load(Ordering::Relaxed) + counters.connect_failed.load(Ordering::Relaxed);
        loop {
            let notified = self.shared.attempted.notified();
            if attempted() >= self.size {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
        ConnectSummary {
            attempted: attempted(),
            connected: counters.connected.load(Ordering::Relaxed),
            failed: counters.connect_failed.load(Ordering::Relaxed),
            elapsed_s: self.started.elapsed().as_secs_f64(),
            tool_rss_before_kib: self.rss_before_kib,
            tool_rss_after_kib: Process::Current.rss_kib().unwrap_or(0),
        }
    }

    pub(crate) fn progress(&self) -> FleetProgress {
        progress_of(&self.shared)
    }

    pub(crate) fn gauge(&self) -> ProgressGauge {
        let shared = self.shared.clone();
        Arc::new(move || progress_of(&shared))
    }

    pub(crate) fn cut(&self) {
        self.control.send_modify(|control| control.cut += 1);
    }

    pub(crate) fn react(&self, on: bool) {
        self.control.send_modify(|control| control.reacting = on);
    }

    pub(crate) fn chat(&self, on: bool) {
        self.control.send_modify(|control| control.chatting = on);
    }

    pub(crate) fn list_unread(&self) {
        self.control.send_modify(|control| control.listing = true);
    }

    pub(crate) fn mark_read(&self) {
        self.control.send_modify(|control| control.reading = true);
    }

    pub(crate) fn drain(&self, targets: &[u64]) {
        for (slot, &target) in self.shared.targets.iter().zip(targets) {
            slot.store(target, Ordering::Relaxed);
        }
        self.control.send_modify(|control| control.draining = true);
    }

    /// Closes every connection and sums what the subscribers saw.
    pub(crate) async fn stop(mut self) -> FleetResult {
        self.control.send_modify(|control| control.stop = true);
        let mut integrity = Integrity::default();
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
            if let Ok(counts) = joined {
                integrity.add(&counts);
            }
        }
        let stuck = self.tasks.len();
        if stuck > 0 {
            self.shared.errors.record("stop", format!("{stuck} subscribers did not stop in time"));
            self.tasks.shutdown().await;
        }
        let counters = &self.shared.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        FleetResult {
            integrity,
            latency: self.shared.stats.latency().to_buckets(),
            priority_latency: self.shared.stats.priority_latency().to_buckets(),
            live: self.shared.live.lock().clone(),
            dm: self.shared.dm.lock().clone(),
            recovery: self.shared.recovery.lock().to_buckets(),
            recovered_false: load(&counters.recovered_false),
            reconnects: load(&counters.reconnects),
            reconnect_attempts: load(&counters.reconnect_attempts),
            foreign: load(&counters.foreign),
            errors: self.shared.errors.summary(),
            tool: Process::Current.sample().unwrap_or_default(),
        }
    }
}

fn progress_of(shared: &Shared) -> FleetProgress {
    let counters = &shared.counters;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    FleetProgress {
        connected: load(&counters.connected),
        connect_failed: load(&counters.connect_failed),
        delivered: shared.stats.delivered(),
        caught_up: load(&counters.caught_up),
        recovered: load(&counters.recovered),
        reconnects: load(&counters.reconnects),
        errors: shared.errors.total(),
        messages_acked: load(&counters.messages_acked),
        messages_failed: load(&counters.messages_failed),
        listed: load(&counters.listed),
        readers: load(&counters.readers),
        reads_sent: load(&counters.reads_sent),
        reads_answered: load(&counters.reads_answered),
    }
}
