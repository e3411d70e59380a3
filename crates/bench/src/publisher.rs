//! Publishing: `in_flight` tasks publish payloads at the requested rate
//! (or as fast as the subscribers keep up), until the duration or the
//! message count runs out, and remember for every channel the last
//! publication acknowledged — the point the subscribers must reach.
//!
//! Order: the native API answers each publish with its offset, which is
//! what subscribers check order against, so any task may publish to any
//! channel. The Pusher API (and NATS) answer no position, so there each channel
//! belongs to one task (a *lane*) that publishes it one at a time and
//! numbers its payloads 1, 2, 3…; a failed publish is retried with the
//! same number (so a publish that timed out but was applied shows up as a
//! duplicate, which is what a real Pusher backend retrying would cause).
//!
//! Rate: publication `k` (over all tasks) is due at `start + k / rate`.
//! With rate 0, a flow check holds publishing while subscribers are on
//! average more than `max_lag` publications behind, so that "as fast as
//! possible" measures what the server delivers, not how deep its queues
//! are before it disconnects slow consumers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::driver::api::{ApiClient, ApiError};
use crate::driver::nats::NatsPublishers;
use crate::driver::ws_publisher::WsPublishers;
use crate::error_log::ErrorLog;
use crate::fleet::ProgressGauge;
use crate::options::{Plan, Protocol, PublishFrom};
use crate::payload;
use crate::stats::Latency;

/// How often the flow check looks at the subscribers' progress.
const FLOW_CHECK_EVERY: Duration = Duration::from_millis(2);
/// The longest one publish waits for lagging subscribers; a subscriber
/// that is gone for good must not stop the run.
const FLOW_WAIT_LIMIT: Duration = Duration::from_secs(1);
/// Pause after a failed publish, so a dead server is not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// Where publications go.
pub(crate) enum Sink {
    Api(ApiClient),
    Clients(WsPublishers),
    /// `PUB` on NATS connections of their own (`--protocol nats`).
    Nats(NatsPublishers),
}

impl Sink {
    pub(crate) fn new(plan: &Plan) -> Result<Self, crate::BenchError> {
        let options = &plan.options;
        if options.protocol == Protocol::Nats {
            return Ok(Sink::Nats(NatsPublishers::start(plan, options.publishers)));
        }
        Ok(match options.publish_from {
            PublishFrom::Api => Sink::Api(ApiClient::new(plan, options.in_flight)?),
            PublishFrom::Clients => {
                Sink::Clients(WsPublishers::start(plan, options.publishers, options.in_flight))
            }
        })
    }

    async fn publish(&self, lane: usize, channel: &str, payload: &str) -> Result<Option<u64>, ApiError> {
        match self {
            Sink::Api(api) => api.publish(channel, payload).await,
            Sink::Clients(clients) => clients.publish(lane, channel, payload).await,
            Sink::Nats(nats) => nats.publish(lane, channel, payload).await,
        }
    }
}

/// Counters the progress line reads while publishing runs.
#[derive(Debug, Default)]
pub(crate) struct PublishCounters {
    pub attempted: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    /// Deliveries the acknowledged publications owe the subscribers.
    pub owed: AtomicU64,
}

/// What publishing did.
#[derive(Debug)]
pub(crate) struct PublishOutcome {
    pub attempted: u64,
    pub acked: u64,
    pub failed: u64,
    pub elapsed_s: f64,
    /// Request → acknowledgement.
    pub ack_latency: Latency,
    /// Per channel: the last key acknowledged (offset or seq), 0 if none.
    pub targets: Vec<u64>,
}

/// What every publishing task shares.
struct Shared {
    sink: Sink,
    channels: Vec<String>,
    subscribers: Vec<u64>,
    size: usize,
    rate: f64,
    messages: Option<u64>,
    start: Instant,
    deadline: Instant,
    slots: AtomicU64,
    picks: AtomicU64,
    lanes: usize,
    by_lane: bool,
    targets: Vec<AtomicU64>,
    counters: Arc<PublishCounters>,
    ack_latency: Mutex<Latency>,
    errors: Arc<ErrorLog>,
    flow_ok: AtomicBool,
}

pub(crate) struct Publisher {
    shared: Arc<Shared>,
    flow: Option<(ProgressGauge, u64, u64)>,
}

impl Publisher {
    /// `subscribers[c]`: subscribers of channel `c` (what each publication
    /// there owes); `gauge`: the fleet's progress, for the flow check.
    pub(crate) fn new(
        plan: &Plan,
        sink: Sink,
        subscribers: Vec<u64>,
        gauge: Option<ProgressGauge>,
        errors: Arc<ErrorLog>,
    ) -> Self {
        let options = &plan.options;
        // Pusher and NATS answer no position: order by the payload's seq.
        let by_lane = options.protocol != Protocol::Native;
        let lanes = if by_lane { options.in_flight.min(plan.channels) } else { options.in_flight };
        let start = Instant::now();
        let planned: u64 = subscribers.iter().sum();
        let flow = gauge.filter(|_| options.rate == 0.0).map(|gauge| (gauge, options.max_lag, planned));
        let shared = Shared {
            sink,
            channels: (0..plan.channels).map(|c| plan.channel_name(c)).collect(),
            subscribers,
            size: options.size,
            rate: options.rate,
            messages: options.messages,
            start,
            deadline: start + options.duration,
            slots: AtomicU64::new(0),
            picks: AtomicU64::new(0),
            lanes,
            by_lane,
            targets: (0..plan.channels).map(|_| AtomicU64::new(0)).collect(),
            counters: Arc::new(PublishCounters::default()),
            ack_latency: Mutex::new(Latency::new()),
            errors,
            flow_ok: AtomicBool::new(true),
        };
        Self { shared: Arc::new(shared), flow }
    }

    pub(crate) fn counters(&self) -> Arc<PublishCounters> {
        self.shared.counters.clone()
    }

    /// Publishes until the duration or the message count runs out.
    pub(crate) async fn run(self) -> PublishOutcome {
        let shared = self.shared;
        let flow = self.flow.map(|(gauge, max_lag, planned)| {
            tokio::spawn(check_flow(shared.clone(), gauge, max_lag, planned))
        });
        let tasks: Vec<_> =
            (0..shared.lanes).map(|lane| tokio::spawn(publish_lane(shared.clone(), lane))).collect();
        for task in tasks {
            let _ = task.await;
        }
        if let Some(flow) = flow {
            flow.abort();
        }
        let counters = &shared.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PublishOutcome {
            attempted: load(&counters.attempted),
            acked: load(&counters.acked),
            failed: load(&counters.failed),
            elapsed_s: shared.start.elapsed().as_secs_f64(),
            ack_latency: shared.ack_latency.lock().clone(),
            targets: shared.targets.iter().map(|t| t.load(Ordering::Relaxed)).collect(),
        }
    }
}

/// One publishing task. In lane mode it owns channels `lane`,
/// `lane + lanes`, … and numbers each one's payloads itself.
async fn publish_lane(shared: Arc<Shared>, lane: usize) {
    let own: Vec<usize> = (lane..shared.channels.len()).step_by(shared.lanes.max(1)).collect();
    let mut next_seq = vec![1u64; own.len()];
    let mut turn = 0usize;
    while next_is_due(&shared).await {
        wait_for_subscribers(&shared).await;
        let (channel, seq) = if shared.by_lane {
            let i = turn % own.len();
            (own[i], next_seq[i])
        } else {
            let pick = shared.picks.fetch_add(1, Ordering::Relaxed);
            let channels = shared.channels.len() as u64;
            ((pick % channels) as usize, pick / channels + 1)
        };
        let text = payload::encode(seq, payload::now_us(), shared.size);
        shared.counters.attempted.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        match shared.sink.publish(lane, &shared.channels[channel], &text).await {
            Ok(offset) => {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                shared.ack_latency.lock().record(micros);
                shared.targets[channel].fetch_max(offset.unwrap_or(seq), Ordering::Relaxed);
                shared.counters.acked.fetch_add(1, Ordering::Relaxed);
                shared.counters.owed.fetch_add(shared.subscribers[channel], Ordering::Relaxed);
                if shared.by_lane {
                    next_seq[turn % own.len()] += 1;
                    turn += 1;
                }
            }
            Err(error) => {
                shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                shared.errors.record("publish", &error);
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// Takes the next publication's slot and waits until it is due; false
/// when publishing is over.
async fn next_is_due(shared: &Shared) -> bool {
    let slot = shared.slots.fetch_add(1, Ordering::Relaxed);
    if shared.messages.is_some_and(|limit| slot >= limit) {
        return false;
    }
    if shared.rate > 0.0 {
        let due = shared.start + Duration::from_secs_f64(slot as f64 / shared.rate);
        if due >= shared.deadline {
            return false;
        }
        tokio::time::sleep_until(due.into()).await;
    }
    Instant::now() < shared.deadline
}

async fn wait_for_subscribers(shared: &Shared) {
    let waited = Instant::now();
    while !shared.flow_ok.load(Ordering::Relaxed) && waited.elapsed() < FLOW_WAIT_LIMIT {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Keeps `flow_ok` true while the subscribers are, on average, at most
/// `max_lag` publications behind (scaled to those actually connected).
async fn check_flow(shared: Arc<Shared>, gauge: ProgressGauge, max_lag: u64, planned: u64) {
    loop {
        let progress = gauge();
        let owed = shared.counters.owed.load(Ordering::Relaxed) as f64;
        let connected = progress.connected.max(1) as f64;
        let owed_connected = owed * connected / planned.max(1) as f64;
        let behind = (owed_connected - progress.delivered as f64) / connected;
        shared.flow_ok.store(behind <= max_lag as f64, Ordering::Relaxed);
        tokio::time::sleep(FLOW_CHECK_EVERY).await;
    }
}
