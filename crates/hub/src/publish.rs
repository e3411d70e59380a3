//! The publish pipelines: where a publication gets its offset and is fanned
//! out in offset order.
//!
//! Each channel belongs to one pipeline (by the same hash as its registry
//! shard). A pipeline is one task: it enqueues its publications in the
//! history store one after the other — so the store hands out offsets in
//! that order — and keeps the pending receipts in a `FuturesOrdered`, so
//! they complete, and are fanned out, in the same order. Appends of many
//! publications are in flight at once (the store commits them as a group),
//! yet every subscriber sees each channel in offset order.

use std::sync::Arc;
use std::time::Instant;

use fanfare_protocol::ChannelName;
use fanfare_store::{AppendRequest, Appended, StoreError};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::HubError;
use crate::encode::{Encoded, Message};
use crate::hub::Shared;
use crate::registry::{ConnId, Outgoing};

/// Most publications fanned out in one pass (those whose appends completed
/// in the same group commit).
const FAN_OUT_BATCH: usize = 64;

pub(crate) struct PublishJob {
    pub request: AppendRequest,
    pub exclude: Option<ConnId>,
    pub accepted_at: Instant,
    pub reply: oneshot::Sender<Result<Appended, HubError>>,
}

struct Pending {
    channel: ChannelName,
    exclude: Option<ConnId>,
    accepted_at: Instant,
    reply: oneshot::Sender<Result<Appended, HubError>>,
}

pub(crate) async fn run_pipeline(shared: Arc<Shared>, mut jobs: mpsc::Receiver<PublishJob>) {
    let max_in_flight = shared.options.max_in_flight;
    let mut in_flight = FuturesOrdered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            Some(first) = in_flight.next(), if !in_flight.is_empty() => {
                let mut done = vec![first];
                while done.len() < FAN_OUT_BATCH
                    && let Some(Some(next)) = in_flight.next().now_or_never()
                {
                    done.push(next);
                }
                finish(&shared, done);
            }
            job = jobs.recv(), if open && in_flight.len() < max_in_flight => {
                let Some(job) = job else { open = false; continue };
                let pending = Pending {
                    channel: job.request.channel.clone(),
                    exclude: job.exclude,
                    accepted_at: job.accepted_at,
                    reply: job.reply,
                };
                match shared.store.enqueue(job.request).await {
                    Ok(receipt) => in_flight.push_back(async move { (pending, receipt.await) }),
                    Err(error) => {
                        let _ = pending.reply.send(Err(error.into()));
                    }
                }
            }
        }
    }
}

/// Fans out publications whose appends completed together, then answers
/// their publishers, in offset order.
fn finish(shared: &Shared, done: Vec<(Pending, Result<Appended, StoreError>)>) {
    let mut start = 0;
    while start < done.len() {
        let channel = &done[start].0.channel;
        let run = done[start..].iter().take_while(|(pending, _)| pending.channel == *channel).count();
        fan_out_durable(shared, channel, &done[start..start + run]);
        start += run;
    }
    for (pending, outcome) in done {
        let outcome = outcome.map_err(HubError::from);
        if let Ok(appended) = &outcome {
            if appended.duplicate {
                shared.metrics.duplicate_publications.increment(1);
            } else {
                shared.metrics.publications.increment(1);
                shared.metrics.fanout_latency.record(pending.accepted_at.elapsed().as_secs_f64());
            }
        }
        // The publisher may have gone away; the publication stands regardless.
        let _ = pending.reply.send(outcome);
    }
}

/// Encodes each new publication of one channel once and queues the same
/// bytes for every subscriber on this node, all of them in one pass over
/// the subscribers (each connection then writes them together).
fn fan_out_durable(shared: &Shared, channel: &ChannelName, run: &[(Pending, Result<Appended, StoreError>)]) {
    let Some(chan) = shared.registry.get(channel) else { return };
    let fresh: Vec<(&Pending, &Appended)> = run
        .iter()
        .filter_map(|(pending, outcome)| outcome.as_ref().ok().filter(|a| !a.duplicate).map(|a| (pending, a)))
        .collect();
    let encoded: Vec<Encoded<'_>> = fresh
        .iter()
        .map(|(_, appended)| {
            let message = Message::Publication { epoch: &appended.epoch, publication: &appended.publication };
            Encoded::new(channel, message)
        })
        .collect();
    let outgoing: Vec<Outgoing<'_>> = fresh
        .iter()
        .zip(&encoded)
        .map(|((pending, appended), message)| Outgoing {
            offset: Some(appended.publication.offset),
            message,
            except: pending.exclude,
        })
        .collect();
    if outgoing.is_empty() {
        return;
    }
    let result = chan.state.lock().fan_out_many(&outgoing, shared.options.catch_up_buffer);
    shared.count_fan_out(result);
}
