//! The batching writer: the one task that owns the connection, sends every
//! queued append group of a round as one pipeline, and reconnects.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanfare_protocol::{ChannelName, JsonData, Publication, UserId};
use rand::Rng;
use redis::{Client, RedisError, Value};
use tokio::sync::{mpsc, oneshot};

use super::instance::{Link, connect};
use super::scripts::{
    ItemArgs, ItemOutcome, ItemReply, StateArgs, append_command, append_item_args, parse_append_reply,
    stale_generation, ttl_ms,
};
use super::{BACKEND, RedisStoreOptions, Shared};
use crate::{AppendRequest, Appended, StoreError};

/// What the store sends its writer.
pub(crate) enum Message {
    Append(Job),
    /// Complete what was queued before, fail what comes after, stop.
    Close(oneshot::Sender<()>),
}

/// What a request publishes: its event, data, author and lane (priority).
type Content = (Option<String>, JsonData, Option<UserId>, bool);

/// One `enqueue` or `enqueue_many`: its appends split by channel, one
/// script call per channel, answered together in request order.
pub(crate) struct Job {
    /// Event, data and author of each request, to build its [`Appended`].
    requests: Vec<Content>,
    calls: Vec<ChannelCall>,
    reply: oneshot::Sender<Vec<Result<Appended, StoreError>>>,
}

/// The appends of one job to one channel, in request order.
struct ChannelCall {
    channel: ChannelName,
    /// Which requests of the job these are.
    indices: Vec<usize>,
    items: Vec<ItemArgs>,
}

impl Job {
    /// Encodes the requests (in the caller's task, not the writer's).
    pub fn new(requests: Vec<AppendRequest>) -> (Self, oneshot::Receiver<Vec<Result<Appended, StoreError>>>) {
        let mut calls: Vec<ChannelCall> = Vec::new();
        let mut call_of: HashMap<&ChannelName, usize> = HashMap::new();
        for (index, request) in requests.iter().enumerate() {
            let items = append_item_args(request);
            let call = *call_of.entry(&request.channel).or_insert_with(|| {
                calls.push(ChannelCall {
                    channel: request.channel.clone(),
                    indices: Vec::new(),
                    items: Vec::new(),
                });
                calls.len() - 1
            });
            calls[call].indices.push(index);
            calls[call].items.push(items);
        }
        drop(call_of);
        let requests = requests.into_iter().map(|r| (r.event, r.data, r.author, r.priority)).collect();
        let (reply, rx) = oneshot::channel();
        (Self { requests, calls, reply }, rx)
    }

    /// Answers every request with `error`.
    pub fn fail(self, error: StoreError) {
        let outcomes = self.requests.iter().map(|_| Err(error.clone())).collect();
        let _ = self.reply.send(outcomes);
    }
}

/// How one script call ended.
enum CallOutcome {
    Done(Appended0),
    /// A channel was written under a newer generation: observe again.
    StaleGeneration(u64),
    /// The script cache was flushed: load the scripts again.
    NoScript,
    Failed(StoreError),
}

/// A call's epoch and per-item outcomes.
type Appended0 = (fanfare_protocol::Epoch, Vec<ItemReply>);

pub(crate) struct Writer {
    pub rx: mpsc::Receiver<Message>,
    pub shared: Arc<Shared>,
    pub client: Client,
    pub options: RedisStoreOptions,
    pub link: Option<Link>,
}

impl Writer {
    pub async fn run(mut self) {
        let mut delay = self.options.reconnect_min_delay;
        loop {
            let Some(link) = self.link.clone() else {
                match self.reconnect_round(delay).await {
                    Round::Stop => return,
                    Round::Connected => delay = self.options.reconnect_min_delay,
                    Round::Failed => delay = (delay * 2).min(self.options.reconnect_max_delay),
                }
                continue;
            };
            let first = tokio::select! {
                message = self.rx.recv() => message,
                () = idle(&self.shared, self.options.ping_interval) => {
                    self.check(&link).await;
                    continue;
                }
            };
            let Some(first) = first else { return };
            let mut jobs = Vec::new();
            let mut close = None;
            match first {
                Message::Append(job) => jobs.push(job),
                Message::Close(done) => close = Some(done),
            }
            while close.is_none() && jobs.len() < self.options.max_pipeline_groups {
                match self.rx.try_recv() {
                    Ok(Message::Append(job)) => jobs.push(job),
                    Ok(Message::Close(done)) => close = Some(done),
                    Err(_) => break,
                }
            }
            if !jobs.is_empty()
                && let Err(error) = self.send(link, jobs).await
            {
                self.lost(&error);
            }
            if let Some(done) = close {
                self.stop(done);
                return;
            }
        }
    }

    /// Pings an idle connection, so `ready()` turns false without traffic.
    async fn check(&mut self, link: &Link) {
        let mut conn = link.conn.clone();
        if let Err(error) = redis::cmd("PING").query_async::<()>(&mut conn).await {
            self.lost(&error);
        }
    }

    /// Forgets the connection: readers and `ready()` see it at once.
    fn lost(&mut self, error: &RedisError) {
        tracing::warn!(%error, "redis store lost its connection");
        self.link = None;
        *self.shared.link.write() = None;
    }

    /// One backoff round while disconnected: appends fail fast meanwhile.
    async fn reconnect_round(&mut self, delay: Duration) -> Round {
        let jitter = rand::rng().random_range(0.5..1.0);
        let sleep = tokio::time::sleep(delay.mul_f64(jitter));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                message = self.rx.recv() => match message {
                    None => return Round::Stop,
                    Some(Message::Close(done)) => {
                        self.stop(done);
                        return Round::Stop;
                    }
                    Some(Message::Append(job)) => job.fail(StoreError::unavailable(BACKEND, false, None)),
                },
            }
        }
        match connect(&self.client, &self.options).await {
            Ok(link) => {
                self.shared.metrics.reconnects.increment(1);
                self.shared.install(link.clone());
                self.link = Some(link);
                Round::Connected
            }
            Err(error) => {
                tracing::debug!(%error, "redis store reconnect failed");
                Round::Failed
            }
        }
    }

    /// Fails everything still queued, then acknowledges the close.
    fn stop(&mut self, done: oneshot::Sender<()>) {
        self.link = None;
        *self.shared.link.write() = None;
        self.rx.close();
        while let Ok(message) = self.rx.try_recv() {
            match message {
                Message::Append(job) => job.fail(StoreError::Closed),
                Message::Close(other) => {
                    let _ = other.send(());
                }
            }
        }
        let _ = done.send(());
    }

    /// Sends the jobs' calls as one pipeline — every call of a round to
    /// one channel merged into one script call (a *unit*), in job order, so
    /// a channel's appends cost one script however many publishers queued
    /// them — retries units that met a flushed script cache or a newer
    /// generation once, and answers every job.
    async fn send(&mut self, mut link: Link, jobs: Vec<Job>) -> Result<(), RedisError> {
        let units = merge_by_channel(&jobs);
        let mut outcomes: Vec<Option<CallOutcome>> = (0..units.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..units.len()).collect();
        let mut result = Ok(());
        for attempt in 0..2 {
            let values = match self.pipeline(&link, &jobs, &units, &pending).await {
                Ok(values) => values,
                Err(error) => {
                    let lost = StoreError::unavailable(BACKEND, true, Some(Arc::new(error.clone())));
                    for &index in &pending {
                        outcomes[index] = Some(CallOutcome::Failed(lost.clone()));
                    }
                    result = Err(error);
                    break;
                }
            };
            for (&index, value) in pending.iter().zip(values) {
                outcomes[index] = Some(self.classify(value, unit_items(&jobs, &units[index])));
            }
            let retry = self.retryable(&jobs, &units, &pending, &mut outcomes);
            if retry.is_empty() || attempt == 1 {
                break;
            }
            if let Err(error) = self.recover(&mut link, &retry, &outcomes).await {
                result = Err(error);
                break;
            }
            pending = retry;
        }
        finish(jobs, &units, outcomes);
        result
    }

    /// One pipeline of `EVALSHA append.lua`, one per pending unit.
    async fn pipeline(
        &self,
        link: &Link,
        jobs: &[Job],
        units: &[Unit],
        pending: &[usize],
    ) -> Result<Vec<Value>, RedisError> {
        let state = StateArgs { generation: link.generation(), meta_ttl_ms: ttl_ms(self.options.meta_ttl) };
        let mut pipe = redis::pipe();
        for &index in pending {
            let unit = &units[index];
            let channel = &call_of(jobs, unit[0]).channel;
            let items = unit.iter().flat_map(|&part| call_of(jobs, part).items.iter());
            pipe.add_command(append_command(channel, items, unit_items(jobs, unit), &state));
        }
        let started = Instant::now();
        let mut conn = link.conn.clone();
        let values: Vec<Value> = pipe.ignore_errors().query_async(&mut conn).await?;
        self.shared.metrics.roundtrip.record(started.elapsed().as_secs_f64());
        Ok(values)
    }

    fn classify(&self, value: Value, count: usize) -> CallOutcome {
        let reply = match value {
            Value::ServerError(error) => {
                self.shared.metrics.script_errors.increment(1);
                let error = RedisError::from(error);
                if let Some(generation) = stale_generation(&error) {
                    return CallOutcome::StaleGeneration(generation);
                }
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
                    return CallOutcome::NoScript;
                }
                return CallOutcome::Failed(StoreError::storage(BACKEND, error));
            }
            value => redis::from_redis_value::<Vec<String>>(value),
        };
        match reply.map_err(|e| StoreError::storage(BACKEND, RedisError::from(e))) {
            Ok(reply) => match parse_append_reply(reply, count) {
                Ok(done) => CallOutcome::Done(done),
                Err(error) => CallOutcome::Failed(error),
            },
            Err(error) => CallOutcome::Failed(error),
        }
    }

    /// The units to send again. A unit is retried only if no later unit of
    /// its channel in this pipeline succeeded (that would reorder the
    /// channel); such a unit fails instead, having applied nothing.
    fn retryable(
        &self,
        jobs: &[Job],
        units: &[Unit],
        pending: &[usize],
        outcomes: &mut [Option<CallOutcome>],
    ) -> Vec<usize> {
        let channel = |index: usize| &call_of(jobs, units[index][0]).channel;
        let mut succeeded_later: HashSet<&ChannelName> = HashSet::new();
        let mut retry = Vec::new();
        for &index in pending.iter().rev() {
            match &outcomes[index] {
                Some(CallOutcome::Done(_)) => {
                    succeeded_later.insert(channel(index));
                }
                Some(CallOutcome::StaleGeneration(_) | CallOutcome::NoScript)
                    if succeeded_later.contains(channel(index)) =>
                {
                    outcomes[index] =
                        Some(CallOutcome::Failed(StoreError::unavailable(BACKEND, false, None)));
                }
                Some(CallOutcome::StaleGeneration(_) | CallOutcome::NoScript) => retry.push(index),
                _ => {}
            }
        }
        retry.reverse();
        retry
    }

    /// Reloads the scripts and re-observes the instance as the retried
    /// calls need.
    async fn recover(
        &self,
        link: &mut Link,
        retry: &[usize],
        outcomes: &[Option<CallOutcome>],
    ) -> Result<(), RedisError> {
        let mut floor = None;
        let mut no_script = false;
        for &index in retry {
            match outcomes[index] {
                Some(CallOutcome::StaleGeneration(generation)) => floor = floor.max(Some(generation)),
                Some(CallOutcome::NoScript) => no_script = true,
                _ => {}
            }
        }
        if no_script {
            let mut conn = link.conn.clone();
            for script in [&*super::scripts::APPEND, &*super::scripts::READ] {
                script.load_async(&mut conn).await?;
            }
        }
        if let Some(floor) = floor {
            let before = link.generation();
            if link.reobserve(floor).await? != before {
                self.shared.metrics.generation_changes.increment(1);
            }
        }
        Ok(())
    }
}

/// Waits for the ping interval, or for a reader's report that the
/// connection failed.
async fn idle(shared: &Shared, interval: Duration) {
    tokio::select! {
        () = tokio::time::sleep(interval) => {}
        () = shared.suspect.notified() => {}
    }
}

enum Round {
    Stop,
    Connected,
    Failed,
}

/// The calls of one round to one channel, as `(job, call)` in job order:
/// sent as one script call.
type Unit = Vec<(usize, usize)>;

/// The most appends merged into one script call: a script blocks Redis
/// while it runs.
const MAX_UNIT_ITEMS: usize = 256;

fn call_of(jobs: &[Job], (job, call): (usize, usize)) -> &ChannelCall {
    &jobs[job].calls[call]
}

fn unit_items(jobs: &[Job], unit: &Unit) -> usize {
    unit.iter().map(|&part| call_of(jobs, part).items.len()).sum()
}

/// Groups the round's calls by channel, keeping each channel's calls in
/// job order (and units in the order their channel first appears).
fn merge_by_channel(jobs: &[Job]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut open: HashMap<&ChannelName, (usize, usize)> = HashMap::new();
    for (j, job) in jobs.iter().enumerate() {
        for (c, call) in job.calls.iter().enumerate() {
            let items = call.items.len();
            match open.get_mut(&call.channel) {
                Some((unit, count)) if *count + items <= MAX_UNIT_ITEMS => {
                    units[*unit].push((j, c));
                    *count += items;
                }
                _ => {
                    open.insert(&call.channel, (units.len(), items));
                    units.push(vec![(j, c)]);
                }
            }
        }
    }
    units
}

/// Answers every job from its units' outcomes, in request order.
fn finish(jobs: Vec<Job>, units: &[Unit], outcomes: Vec<Option<CallOutcome>>) {
    let mut per_call: HashMap<(usize, usize), CallOutcome> = HashMap::new();
    for (unit, outcome) in units.iter().zip(outcomes) {
        let outcome = outcome.unwrap_or(CallOutcome::Failed(StoreError::unavailable(BACKEND, false, None)));
        let mut first = 0;
        for &part in unit {
            let count = call_of(&jobs, part).items.len();
            per_call.insert(part, split(&outcome, first, count));
            first += count;
        }
    }
    for (j, job) in jobs.into_iter().enumerate() {
        let call_outcomes = (0..job.calls.len())
            .map(|c| {
                per_call
                    .remove(&(j, c))
                    .unwrap_or(CallOutcome::Failed(StoreError::unavailable(BACKEND, false, None)))
            })
            .collect();
        answer(job, call_outcomes);
    }
}

/// The outcome of `count` items from `first` of a unit's outcome.
fn split(outcome: &CallOutcome, first: usize, count: usize) -> CallOutcome {
    match outcome {
        CallOutcome::Done((epoch, items)) => {
            CallOutcome::Done((epoch.clone(), items[first..first + count].to_vec()))
        }
        CallOutcome::StaleGeneration(generation) => CallOutcome::StaleGeneration(*generation),
        CallOutcome::NoScript => CallOutcome::NoScript,
        CallOutcome::Failed(error) => CallOutcome::Failed(error.clone()),
    }
}

fn answer(job: Job, call_outcomes: Vec<CallOutcome>) {
    let mut answers: Vec<Option<Result<Appended, StoreError>>> = job.requests.iter().map(|_| None).collect();
    let mut requests: Vec<Option<Content>> = job.requests.into_iter().map(Some).collect();
    for (call, outcome) in job.calls.iter().zip(call_outcomes) {
        for (n, &index) in call.indices.iter().enumerate() {
            let Some(content) = requests[index].take() else { continue };
            answers[index] = Some(match &outcome {
                CallOutcome::Done((epoch, items)) => appended(epoch, &items[n], content),
                CallOutcome::Failed(error) => Err(error.clone()),
                CallOutcome::StaleGeneration(_) | CallOutcome::NoScript => {
                    Err(StoreError::unavailable(BACKEND, false, None))
                }
            });
        }
    }
    let outcomes = answers.into_iter().map(|a| a.unwrap_or(Err(StoreError::Closed))).collect();
    let _ = job.reply.send(outcomes);
}

/// One item's answer from its script outcome and its request's content.
fn appended(
    epoch: &fanfare_protocol::Epoch,
    item: &ItemReply,
    (event, data, author, priority): Content,
) -> Result<Appended, StoreError> {
    let (publication, duplicate) = match &item.outcome {
        ItemOutcome::NothingToDelete => return Err(StoreError::NothingToDelete),
        ItemOutcome::NothingToEdit => return Err(StoreError::NothingToEdit),
        ItemOutcome::Updated(target) => (
            Publication::update_record(item.offset, item.time_ms, *target, data).with_priority(priority),
            false,
        ),
        ItemOutcome::Deleted(offsets) => {
            (Publication::delete_record(item.offset, item.time_ms, offsets.clone()), false)
        }
        ItemOutcome::Fresh => {
            (Publication::new(item.offset, item.time_ms, event, data).with_priority(priority), false)
        }
        ItemOutcome::Duplicate => {
            (Publication::new(item.offset, item.time_ms, event, data).with_priority(priority), true)
        }
    };
    Ok(Appended { epoch: epoch.clone(), publication: publication.with_author(author), duplicate })
}
