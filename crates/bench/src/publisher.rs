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
//! Batches (`pusher_batch` N): each request is one Pusher `batch_events`
//! of N publications, which take N consecutive publication slots; a lane
//! numbers them round its channels as it would single publications, and
//! a failed batch is retried whole. The publications of a batch share one
//! send time, so each one's latency counts from when its batch was sent.
//!
//! Rate: publication `k` (over all tasks) is due at `start + k / rate`; a
//! request is due when its first publication is, so at rate R batches of
//! N go every N / R seconds.
//! With rate 0, a flow check holds publishing while subscribers are on
//! average more than `max_lag` publications behind, so that "as fast as
//! possible" measures what the server delivers, not how deep its queues
//! are before it disconnects slow consumers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::driver::api::{ApiClient, ApiError, BatchEvent};
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

    async fn publish_batch(&self, events: &[BatchEvent<'_>]) -> Result<(), ApiError> {
        match self {
            Sink::Api(api) => api.publish_batch(events).await,
            Sink::Clients(_) | Sink::Nats(_) => {
                Err(ApiError::Unexpected("batches need the Pusher HTTP API".into()))
            }
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
    /// Pusher `batch_events` of this many publications; `None`: one
    /// publication per request.
    pusher_batch: Option<u64>,
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
            pusher_batch: options.pusher_batch.map(|n| n as u64),
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
    let mut numbering = LaneNumbering::new(own);
    while let Some(count) = claim_due(&shared).await {
        wait_for_subscribers(&shared).await;
        let picks = if shared.by_lane { numbering.next(count) } else { pick_any(&shared, count) };
        let sent_us = payload::now_us();
        let texts: Vec<String> =
            picks.iter().map(|&(_, seq)| payload::encode(seq, sent_us, shared.size)).collect();
        shared.counters.attempted.fetch_add(count, Ordering::Relaxed);
        let sent = Instant::now();
        match send(&shared, lane, &picks, &texts).await {
            Ok(offset) => {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                shared.ack_latency.lock().record_n(micros, count);
                for &(channel, seq) in &picks {
                    shared.targets[channel].fetch_max(offset.unwrap_or(seq), Ordering::Relaxed);
                    shared.counters.owed.fetch_add(shared.subscribers[channel], Ordering::Relaxed);
                }
                shared.counters.acked.fetch_add(count, Ordering::Relaxed);
                if shared.by_lane {
                    numbering.advance(count);
                }
            }
            Err(error) => {
                shared.counters.failed.fetch_add(count, Ordering::Relaxed);
                shared.errors.record("publish", &error);
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// One request: a single publication, or all of them as a Pusher batch.
/// The offset when the server answers one.
async fn send(
    shared: &Shared,
    lane: usize,
    picks: &[(usize, u64)],
    texts: &[String],
) -> Result<Option<u64>, ApiError> {
    if shared.pusher_batch.is_none() {
        let (channel, _) = picks[0];
        return shared.sink.publish(lane, &shared.channels[channel], &texts[0]).await;
    }
    let events: Vec<BatchEvent<'_>> = picks
        .iter()
        .zip(texts)
        .map(|(&(channel, _), text)| BatchEvent { channel: &shared.channels[channel], payload: text })
        .collect();
    shared.sink.publish_batch(&events).await.map(|()| None)
}

/// Outside lane mode: the next `count` publications over all channels,
/// as (channel, seq).
fn pick_any(shared: &Shared, count: u64) -> Vec<(usize, u64)> {
    let channels = shared.channels.len() as u64;
    (0..count)
        .map(|_| {
            let pick = shared.picks.fetch_add(1, Ordering::Relaxed);
            ((pick % channels) as usize, pick / channels + 1)
        })
        .collect()
}

/// A lane's channels and the next seq of each: publications go round
/// the channels, each numbered 1, 2, 3… on its own.
struct LaneNumbering {
    own: Vec<usize>,
    next_seq: Vec<u64>,
    turn: usize,
}

impl LaneNumbering {
    fn new(own: Vec<usize>) -> Self {
        let next_seq = vec![1; own.len()];
        Self { own, next_seq, turn: 0 }
    }

    /// The next `count` publications as (channel, seq), without taking
    /// them: a failed request retries the same numbers.
    fn next(&self, count: u64) -> Vec<(usize, u64)> {
        let channels = self.own.len();
        (0..count as usize)
            .map(|i| {
                let k = (self.turn + i) % channels;
                // Earlier publications of this request on the same channel.
                let before = (i / channels) as u64;
                (self.own[k], self.next_seq[k] + before)
            })
            .collect()
    }

    /// The `count` publications [`Self::next`] gave were acknowledged.
    fn advance(&mut self, count: u64) {
        for _ in 0..count {
            let k = self.turn % self.own.len();
            self.next_seq[k] += 1;
            self.turn += 1;
        }
    }
}

/// Claims the next request's publication slots (a batch, or one; fewer
/// at the message limit) and waits until the first is due; how many it
/// claimed, or `None` when publishing is over.
async fn claim_due(shared: &Shared) -> Option<u64> {
    let wanted = shared.pusher_batch.unwrap_or(1);
    let first = shared.slots.fetch_add(wanted, Ordering::Relaxed);
    let count = match shared.messages {
        Some(limit) if first >= limit => return None,
        Some(limit) => wanted.min(limit - first),
        None => wanted,
    };
    if shared.rate > 0.0 {
        let due = shared.start + Duration::from_secs_f64(first as f64 / shared.rate);
        if due >= shared.deadline {
            return None;
        }
        tokio::time::sleep_until(due.into()).await;
    }
    (Instant::now() < shared.deadline).then_some(count)
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use serde_json::Value;

    use super::*;
    use crate::options::{BenchOptions, PusherApp, Scenario};

    /// What the fake Pusher API got, and how many requests it refuses first.
    #[derive(Default)]
    struct Recorded {
        bodies: Mutex<Vec<Value>>,
        refuse_first: AtomicUsize,
    }

    /// A Pusher HTTP API on a free loopback port that keeps every
    /// `batch_events` body (signatures are the driver's tests' business).
    async fn fake_pusher_api(refuse_first: usize) -> (SocketAddr, Arc<Recorded>) {
        async fn batch_events(State(recorded): State<Arc<Recorded>>, body: String) -> (StatusCode, String) {
            let refuse = recorded
                .refuse_first
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            recorded.bodies.lock().push(serde_json::from_str(&body).unwrap());
            if refuse {
                (StatusCode::SERVICE_UNAVAILABLE, "busy".into())
            } else {
                (StatusCode::OK, "{}".into())
            }
        }
        let recorded =
            Arc::new(Recorded { refuse_first: AtomicUsize::new(refuse_first), ..Recorded::default() });
        let app =
            Router::new().route("/apps/{id}/batch_events", post(batch_events)).with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, recorded)
    }

    async fn publish_in_batches(
        addr: SocketAddr,
        messages: u64,
        batch: usize,
    ) -> (PublishOutcome, Arc<ErrorLog>) {
        let mut options = BenchOptions::new(Scenario::Fanout, format!("http://{addr}"));
        options.protocol = Protocol::Pusher;
        options.pusher_app = Some(PusherApp { id: "1".into(), key: "k".into(), secret: "s".into() });
        options.messages = Some(messages);
        options.pusher_batch = Some(batch);
        options.in_flight = 4;
        let plan = options.plan().await.unwrap();
        let errors = Arc::new(ErrorLog::default());
        let sink = Sink::new(&plan).unwrap();
        let outcome = Publisher::new(&plan, sink, vec![3], None, errors.clone()).run().await;
        (outcome, errors)
    }

    /// (seq, sent_us) of each event of a recorded batch body.
    fn events(body: &Value) -> Vec<(u64, u64)> {
        let batch = body["batch"].as_array().unwrap();
        batch
            .iter()
            .map(|event| {
                let data = format!("\"{}\"", event["data"].as_str().unwrap());
                let payload = payload::decode(&data).unwrap();
                (payload.seq, payload.sent_us)
            })
            .collect()
    }

    #[tokio::test]
    async fn batches_carry_every_publication_once_in_order_with_one_send_time_each() {
        let (addr, recorded) = fake_pusher_api(0).await;
        let (outcome, errors) = publish_in_batches(addr, 25, 10).await;

        let bodies = recorded.bodies.lock().clone();
        let sizes: Vec<usize> = bodies.iter().map(|body| events(body).len()).collect();
        assert_eq!(sizes, [10, 10, 5], "the message count cuts the last batch short");
        let seqs: Vec<u64> = bodies.iter().flat_map(events).map(|(seq, _)| seq).collect();
        assert_eq!(seqs, (1..=25).collect::<Vec<_>>());
        for body in &bodies {
            let sent: Vec<u64> = events(body).iter().map(|&(_, sent_us)| sent_us).collect();
            assert!(sent.iter().all(|&us| us == sent[0]), "one send time per batch: {sent:?}");
        }
        assert_eq!((outcome.attempted, outcome.acked, outcome.failed), (25, 25, 0));
        assert_eq!(outcome.targets, [25], "subscribers must reach the last seq");
        assert_eq!(outcome.ack_latency.summary().count, 25, "one acknowledgement per publication");
        assert_eq!(errors.total(), 0);
    }

    #[tokio::test]
    async fn a_refused_batch_is_retried_whole_with_the_same_numbers() {
        let (addr, recorded) = fake_pusher_api(1).await;
        let (outcome, errors) = publish_in_batches(addr, 25, 10).await;

        let bodies = recorded.bodies.lock().clone();
        let seqs: Vec<Vec<u64>> =
            bodies.iter().map(|body| events(body).into_iter().map(|(seq, _)| seq).collect()).collect();
        assert_eq!(seqs, [(1..=10).collect::<Vec<_>>(), (1..=10).collect(), (11..=15).collect()]);
        assert_eq!((outcome.attempted, outcome.acked, outcome.failed), (25, 15, 10));
        assert_eq!(outcome.targets, [15]);
        assert_eq!(errors.total(), 1, "one failed request");
    }

    #[test]
    fn a_lane_numbers_each_of_its_channels_on_its_own_round_them() {
        let mut lane = LaneNumbering::new(vec![3, 7]);
        let first = lane.next(5);
        assert_eq!(first, [(3, 1), (7, 1), (3, 2), (7, 2), (3, 3)]);
        assert_eq!(lane.next(5), first, "nothing is taken until acknowledged");
        lane.advance(5);
        assert_eq!(lane.next(2), [(7, 3), (3, 4)]);
        lane.advance(2);
        assert_eq!(lane.next(1), [(7, 4)]);
    }
}
