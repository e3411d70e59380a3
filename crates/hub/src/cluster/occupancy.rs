//! Subscription counts in a cluster: each node reports its own count per
//! channel to the [`Occupancy`](fanfare_cluster::Occupancy) engine, which
//! answers the cluster-wide total before and after.
//!
//! 1. A subscribe or unsubscribe marks its channel *dirty* (no waiting).
//! 2. One task takes every dirty channel, reads this node's current count
//!    from the registry and sets it in the engine, several channels at
//!    once. A channel that changed five times meanwhile is reported once,
//!    with its latest count: a local subscribe and unsubscribe in quick
//!    succession make no occupied/vacated pair at all.
//! 3. The engine's answer decides the events, so exactly one node emits
//!    `channel_occupied` (`0 → n` anywhere) and one `channel_vacated`
//!    (after the hold of `announce.rs`).
//! 4. A report that fails is marked dirty again and retried.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fanfare_cluster::{Announced, OccupancyChange};
use fanfare_protocol::ChannelName;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::events::HubEvent;
use crate::hub::Shared;

/// Channels reported to the engine at once.
const CONCURRENT_REPORTS: usize = 64;

#[derive(Default)]
pub(crate) struct OccupancyReporter {
    dirty: Mutex<HashSet<ChannelName>>,
    wake: Notify,
}

impl OccupancyReporter {
    /// Step 1.
    pub fn mark(&self, channel: &ChannelName) {
        self.dirty.lock().insert(channel.clone());
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<ChannelName> {
        self.dirty.lock().drain().collect()
    }
}

/// Steps 2–4.
pub(crate) async fn run(shared: Arc<Shared>) {
    let Some(cluster) = &shared.cluster else { return };
    let reporter = &cluster.occupancy;
    loop {
        reporter.wake.notified().await;
        loop {
            let channels = reporter.take();
            if channels.is_empty() {
                break;
            }
            let failed = report(&shared, channels).await;
            if !failed.is_empty() {
                for channel in &failed {
                    reporter.mark(channel);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Reports the channels' counts; returns those that failed.
async fn report(shared: &Arc<Shared>, channels: Vec<ChannelName>) -> Vec<ChannelName> {
    let Some(cluster) = &shared.cluster else { return Vec::new() };
    let engines = &cluster.engines;
    let outcomes = futures_util::stream::iter(channels)
        .map(|channel| async move {
            let count = shared.registry.get(&channel).map_or(0, |c| c.state.lock().entries.len() as u64);
            let outcome = engines.occupancy.set(&engines.node, &channel, count).await;
            (channel, outcome)
        })
        .buffer_unordered(CONCURRENT_REPORTS)
        .collect::<Vec<_>>()
        .await;
    let mut failed = Vec::new();
    for (channel, outcome) in outcomes {
        match outcome {
            Ok(change) => emit(shared, &change).await,
            Err(error) => {
                tracing::debug!(%channel, %error, "occupancy report failed; retrying");
                failed.push(channel);
            }
        }
    }
    failed
}

/// Step 3.
pub(crate) async fn emit(shared: &Arc<Shared>, change: &OccupancyChange) {
    let channel = &change.channel;
    if change.occupied() {
        let event = HubEvent::ChannelOccupied { channel: channel.clone() };
        super::announce::opened(shared, Announced::Channel(channel.clone()), event).await;
    }
    if change.after != change.before && change.after > 0 {
        let count = usize::try_from(change.after).unwrap_or(usize::MAX);
        shared.events.emit(HubEvent::SubscriptionCount { channel: channel.clone(), count });
    }
    if change.vacated() {
        let event = HubEvent::ChannelVacated { channel: channel.clone() };
        super::announce::closed(shared, Announced::Channel(channel.clone()), event).await;
    }
}
