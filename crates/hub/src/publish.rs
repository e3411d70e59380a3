//! The publish pipelines: where a publication gets its offset and is fanned
//! out in offset order.
//!
//! Each channel belongs to one pipeline (by the same hash as its registry
//! shard). A pipeline is one task: it takes jobs — one caller's
//! publications to one channel — and enqueues each job's appends in the
//! history store as one group, job after job, so the store hands out
//! offsets in that order; it keeps the pending receipts in a
//! `FuturesOrdered`, so they complete, and are fanned out, in the same
//! order. Appends of many jobs are in flight at once (the store commits
//! whatever is queued as one group commit), yet every subscriber sees each
//! channel in offset order. A job's publications are never split across
//! group commits, so a batch from one request reaches each subscriber in
//! one pass, and in one socket write.
//!
//! A pipeline takes jobs from two queues: a shaped namespace's priority
//! lane (and deletes) first, then the others, so a host's publication is
//! not queued behind a flood of comments.

use std::sync::Arc;
use std::time::Instant;

use fanfare_protocol::{ChannelName, Stamp};
use fanfare_store::{AppendRequest, Appended, StoreError};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::HubError;
use crate::hub::Shared;
use crate::registry::{ConnId, Fresh};

/// Most publications fanned out in one pass (those whose appends completed
/// in the same group commit); a caller's group is never split.
const FAN_OUT_BATCH: usize = 64;

/// One caller's publications to one channel, in order: appended as one
/// store group, so they get consecutive offsets, become durable together
/// and are fanned out in one pass.
pub(crate) struct PublishJob {
    pub channel: ChannelName,
    pub items: Vec<JobItem>,
    pub accepted_at: Instant,
}

pub(crate) struct JobItem {
    pub request: AppendRequest,
    /// A connection that must not receive it.
    pub exclude: Option<ConnId>,
    pub reply: Reply,
}

/// Where a publication's outcome goes.
pub(crate) type Reply = oneshot::Sender<Result<Appended, HubError>>;

/// A job whose appends are in the store, waiting to be durable.
struct Pending {
    channel: ChannelName,
    accepted_at: Instant,
    /// Per publication, in job order.
    replies: Vec<(Option<ConnId>, Reply)>,
}

type Completed = (Pending, Vec<Result<Appended, StoreError>>);

/// A pipeline's two queues: the priority lane's jobs (publications of a
/// shaped namespace's priority lane, deletes) are taken before the others
/// waiting, so they get their offsets, and reach subscribers, first.
pub(crate) struct PipelineQueues {
    pub ordinary: mpsc::Receiver<PublishJob>,
    pub priority: mpsc::Receiver<PublishJob>,
}

pub(crate) async fn run_pipeline(shared: Arc<Shared>, queues: PipelineQueues) {
    let PipelineQueues { ordinary: mut jobs, mut priority } = queues;
    let max_in_flight = shared.options.max_in_flight;
    let mut in_flight = FuturesOrdered::new();
    let (mut open, mut priority_open) = (true, true);
    while open || priority_open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            Some(first) = in_flight.next(), if !in_flight.is_empty() => {
                let mut done: Vec<Completed> = vec![first];
                let mut publications = done[0].1.len();
                while publications < FAN_OUT_BATCH
                    && let Some(Some(next)) = in_flight.next().now_or_never()
                {
                    publications += next.1.len();
                    done.push(next);
                }
                finish(&shared, done);
            }
            job = priority.recv(), if priority_open && in_flight.len() < max_in_flight => {
                let Some(job) = job else { priority_open = false; continue };
                in_flight.push_back(appended(enqueue(&shared, job).await));
            }
            job = jobs.recv(), if open && in_flight.len() < max_in_flight => {
                let Some(job) = job else { open = false; continue };
                in_flight.push_back(appended(enqueue(&shared, job).await));
            }
        }
    }
}

/// A job handed to the store, its receipt pending.
struct Enqueued {
    pending: Pending,
    receipt: fanfare_store::GroupReceipt,
    at: Instant,
    latency: metrics::Histogram,
}

async fn enqueue(shared: &Shared, job: PublishJob) -> Enqueued {
    let (requests, pending) = split(job);
    let at = Instant::now();
    let receipt = shared.store.enqueue_many(requests).await;
    Enqueued { pending, receipt, at, latency: shared.metrics.append_latency.clone() }
}

/// The job's outcomes once its appends are durable.
async fn appended(enqueued: Enqueued) -> Completed {
    let outcomes = enqueued.receipt.await;
    enqueued.latency.record(enqueued.at.elapsed().as_secs_f64());
    (enqueued.pending, outcomes)
}

fn split(job: PublishJob) -> (Vec<AppendRequest>, Pending) {
    let mut requests = Vec::with_capacity(job.items.len());
    let mut replies = Vec::with_capacity(job.items.len());
    for item in job.items {
        requests.push(item.request);
        replies.push((item.exclude, item.reply));
    }
    (requests, Pending { channel: job.channel, accepted_at: job.accepted_at, replies })
}

/// Fans out publications whose appends completed together, then answers
/// their publishers, in offset order.
fn finish(shared: &Arc<Shared>, done: Vec<Completed>) {
    let mut start = 0;
    // A store that publishes live frames itself (a cluster's) leaves
    // fan-out to the receiving side of every node, this one included.
    while start < done.len() && !shared.store.publishes_live() {
        let channel = &done[start].0.channel;
        let run = done[start..].iter().take_while(|(pending, _)| pending.channel == *channel).count();
        fan_out_durable(shared, channel, &done[start..start + run]);
        start += run;
    }
    for (pending, outcomes) in done {
        // Once per job, not per publication: a channel's options are resolved from its name.
        let observed = shared.appends.is_listening() && (shared.policy)(&pending.channel).observed;
        for ((_, reply), outcome) in pending.replies.into_iter().zip(outcomes) {
            let outcome = outcome.map_err(HubError::from);
            if let Ok(appended) = &outcome {
                if appended.duplicate {
                    shared.metrics.duplicate_publications.increment(1);
                } else {
                    shared.metrics.of(&pending.channel).publications.increment(1);
                    shared.metrics.fanout_latency.record(pending.accepted_at.elapsed().as_secs_f64());
                    if observed {
                        shared.appends.emit(crate::ObservedAppend {
                            channel: pending.channel.clone(),
                            epoch: appended.epoch.clone(),
                            publication: appended.publication.clone(),
                        });
                    }
                }
            }
            // The publisher may have gone away; the publication stands regardless.
            let _ = reply.send(outcome);
        }
    }
}

/// Encodes each new publication of one channel once and queues the same
/// bytes for every subscriber on this node, all of them in one pass over
/// the subscribers (each connection then writes them together); a shaped
/// channel's sampling decides first which go out.
fn fan_out_durable(shared: &Arc<Shared>, channel: &ChannelName, run: &[Completed]) {
    let Some(chan) = shared.registry.get(channel) else { return };
    let fresh: Vec<Fresh<'_>> = run
        .iter()
        .flat_map(|(pending, outcomes)| {
            let accepted = Stamp::at(pending.accepted_at);
            pending
                .replies
                .iter()
                .map(|(exclude, _)| *exclude)
                .zip(outcomes)
                .map(move |(e, o)| (e, o, accepted))
        })
        .filter_map(|(except, outcome, accepted)| {
            let appended = outcome.as_ref().ok().filter(|a| !a.duplicate)?;
            Some(Fresh { epoch: &appended.epoch, publication: &appended.publication, except, accepted })
        })
        .collect();
    if fresh.is_empty() {
        return;
    }
    let shaping = (shared.policy)(channel).shaping;
    let delivered = chan.state.lock().fan_out_publications(
        channel,
        &fresh,
        shaping.as_ref(),
        shared.options.catch_up_buffer,
    );
    crate::batch::after_fan_out(shared, &chan, channel, delivered);
}
