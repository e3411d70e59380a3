//! Lifecycle events (for webhooks) in a cluster: exactly one node emits
//! each, and a closing waits out a hold that a reopening on *any* node
//! cancels.
//!
//! 1. An opening transition the engine decided (`channel_occupied`,
//!    `member_added`) asks the [`Announcements`] engine first; it is
//!    emitted unless it cancels a closing held somewhere.
//! 2. A closing transition (`channel_vacated`, `member_removed`) marks the
//!    subject closing, waits `event_hold`, then asks whether it is still
//!    closed; only then is it emitted.
//! 3. A node that stops releases what it holds at once (`flush`), so a
//!    clean stop loses no closing.
//!
//! With `event_hold` zero the engine's decisions are emitted as they come;
//! with nobody listening (no webhooks) nothing of this runs.
//!
//! [`Announcements`]: fanfare_cluster::Announcements

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fanfare_cluster::Announced;
use tokio::sync::watch;

use crate::events::HubEvent;
use crate::hub::Shared;

/// A closing marked longer ago than the hold plus this is stale: its node
/// died before releasing it, and a reopening is announced again.
const STALE_AFTER_HOLD: Duration = Duration::from_secs(5);

pub(crate) struct Holds {
    flush: watch::Sender<bool>,
    pending: AtomicUsize,
}

impl Default for Holds {
    fn default() -> Self {
        Self { flush: watch::Sender::new(false), pending: AtomicUsize::new(0) }
    }
}

/// Step 1.
pub(crate) async fn opened(shared: &Shared, subject: Announced, event: HubEvent) {
    let Some(cluster) = &shared.cluster else { return };
    let hold = cluster.options.event_hold;
    if hold.is_zero() || !shared.events.listening() {
        return shared.events.emit(event);
    }
    match cluster.engines.announcements.opening(&subject, hold + STALE_AFTER_HOLD).await {
        Ok(false) => {}
        Ok(true) => shared.events.emit(event),
        Err(error) => {
            tracing::warn!(?subject, %error, "could not record an announcement; emitting it");
            shared.events.emit(event);
        }
    }
}

/// Step 2.
pub(crate) async fn closed(shared: &Arc<Shared>, subject: Announced, event: HubEvent) {
    let Some(cluster) = &shared.cluster else { return };
    let hold = cluster.options.event_hold;
    if hold.is_zero() || !shared.events.listening() {
        return shared.events.emit(event);
    }
    let engines = &cluster.engines;
    if let Err(error) = engines.announcements.closing(&subject).await {
        tracing::warn!(?subject, %error, "could not mark a closing; emitting it after the hold");
    }
    cluster.holds.pending.fetch_add(1, Ordering::AcqRel);
    let mut flush = cluster.holds.flush.subscribe();
    let shared = shared.clone();
    tokio::spawn(async move {
        let Some(cluster) = &shared.cluster else { return };
        tokio::select! {
            () = tokio::time::sleep(hold) => {}
            _ = flush.wait_for(|flushing| *flushing) => {}
        }
        let announce = cluster.engines.announcements.release(&subject).await.unwrap_or_else(|error| {
            tracing::warn!(?subject, %error, "could not release a held closing; emitting it");
            true
        });
        if announce {
            shared.events.emit(event);
        }
        cluster.holds.pending.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Step 3: releases every held closing now; waits (boundedly) for them.
pub(crate) async fn flush(shared: &Shared) {
    let Some(cluster) = &shared.cluster else { return };
    cluster.holds.flush.send_replace(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while cluster.holds.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
