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
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot};

use crate::HubError;
use crate::encode::{Encoded, Message};
use crate::hub::Shared;
use crate::registry::ConnId;

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
            Some((pending, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                finish(&shared, pending, outcome);
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

fn finish(shared: &Shared, pending: Pending, outcome: Result<Appended, StoreError>) {
    let outcome = outcome.map_err(HubError::from);
    if let Ok(appended) = &outcome {
        if appended.duplicate {
            shared.metrics.duplicate_publications.increment(1);
        } else {
            fan_out_durable(shared, &pending, appended);
            shared.metrics.publications.increment(1);
            shared.metrics.fanout_latency.record(pending.accepted_at.elapsed().as_secs_f64());
        }
    }
    // The publisher may have gone away; the publication stands regardless.
    let _ = pending.reply.send(outcome);
}

/// Encodes the publication once and queues the same bytes for every
/// subscriber of the channel on this node.
fn fan_out_durable(shared: &Shared, pending: &Pending, appended: &Appended) {
    let Some(chan) = shared.registry.get(&pending.channel) else { return };
    let message = Message::Publication { epoch: &appended.epoch, publication: &appended.publication };
    let encoded = Encoded::new(&pending.channel, message);
    let offset = Some(appended.publication.offset);
    let result = chan.state.lock().fan_out(offset, &encoded, pending.exclude, shared.options.catch_up_buffer);
    shared.count_fan_out(result);
}
