//! Pusher webhooks: telling each app's backend what happened to its
//! channels.
//!
//! ```text
//! Hub::events (occupied, vacated, member added/removed, counts) ──┐
//! Webhooks::send (client_event, cache_miss, from the gateway) ────┴─▶ dispatch.rs
//!     one task: maps hub channels to apps, holds channel_vacated and
//!     member_removed for 3 s (a reconnect within that time cancels both
//!     sides of the flicker), routes each event to the endpoints that want it
//!         │ bounded queue per endpoint (full: dropped and counted)
//!         ▼
//! crate::webhooks (shared with the server's own [[webhooks]]): one task
//!     per (app, url) batches ≤ 50 events / ~100 ms into one POST signed
//!     with the app's secret (`X-Pusher-Signature`, with `X-Pusher-Key`),
//!     retries with exponential backoff for 5 minutes, then keeps a dead
//!     letter; each batch journaled from its first attempt to its end, and
//!     the journal adopted (by this module's dispatcher, for both
//!     families) at start, now and then on a cluster node, and when the
//!     hub hands over a dead node
//! ```
//!
//! [`Webhooks::flush`] (the server stopping) routes held and queued events
//! at once and waits until they are journaled: what a clean stop leaves is
//! delivered after the restart (or by another node). A kill -9 loses only
//! the events not yet in a batch (the last `batch_window`, and held ones).
//!
//! Nothing here can slow the hub: the hub's queue and every queue after it
//! are bounded and overflow is dropped and counted. Unlike Pusher's, every
//! event carries an `id` (a UUID v4) so that receivers can de-duplicate
//! retried batches.

mod dispatch;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fanfare_cluster::ClusterError;
use fanfare_hub::Hub;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use crate::webhooks::{
    DEAD_LETTER_FILE_MAX_BYTES, DeadLetterFile, JournalFile, ReplayError, Replayed, WebhookOptions,
    WebhookStores,
};

use crate::config::WebhookKind;
use crate::pusher::apps::{Apps, PusherApp};
use crate::webhooks::{
    Adoption, BatchEvent, DeliveryMetrics, Destination, EndpointQueue, Replays, Routes, http_client,
    start_endpoint,
};

/// An event only the gateway sees, for the app's webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A `client-*` event a connection sent; `channel` is the Pusher name
    /// (without the app's prefix), `user_id` set on presence channels.
    ClientEvent { channel: String, event: String, data: String, socket_id: String, user_id: Option<String> },
    /// A subscription to a cache channel found nothing cached.
    CacheMiss { channel: String },
}

impl WebhookEvent {
    pub fn kind(&self) -> WebhookKind {
        match self {
            WebhookEvent::ClientEvent { .. } => WebhookKind::ClientEvent,
            WebhookEvent::CacheMiss { .. } => WebhookKind::CacheMiss,
        }
    }
}

/// One event of a webhook body. The same event sent to two endpoints
/// carries the same `id`, and so does a replay of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Event {
    pub name: WebhookKind,
    pub id: String,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_count: Option<usize>,
}

impl Event {
    pub fn new(name: WebhookKind, channel: &str) -> Self {
        Self {
            name,
            id: crate::webhooks::event_id(),
            channel: channel.to_owned(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
            subscription_count: None,
        }
    }
}

impl BatchEvent for Event {
    /// Within a batch, a channel's subscription count is only worth its
    /// latest value, and one cache miss per channel says it all.
    fn coalesce(batch: Vec<Arc<Self>>) -> Vec<Arc<Self>> {
        let mut last_count: HashMap<&str, usize> = HashMap::new();
        for (index, event) in batch.iter().enumerate() {
            if event.name == WebhookKind::SubscriptionCount {
                last_count.insert(&event.channel, index);
            }
        }
        let mut missed = HashSet::new();
        let keep: Vec<bool> = batch
            .iter()
            .enumerate()
            .map(|(index, event)| match event.name {
                WebhookKind::SubscriptionCount => last_count.get(event.channel.as_str()) == Some(&index),
                WebhookKind::CacheMiss => missed.insert(event.channel.as_str()),
                _ => true,
            })
            .collect();
        batch.into_iter().zip(keep).filter_map(|(event, keep)| keep.then_some(event)).collect()
    }
}

/// The dispatcher's side of one endpoint of an app.
pub(super) struct Endpoint {
    events: BTreeSet<WebhookKind>,
    queue: EndpointQueue<Event>,
}

impl Endpoint {
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.events.contains(&kind)
    }

    /// Queues without waiting; false when the queue is full.
    pub fn queue(&self, event: Arc<Event>) -> bool {
        self.queue.queue(event)
    }

    pub async fn flush(&self) {
        self.queue.flush().await;
    }
}

/// Spawns a delivery task per webhook of every app (added to `routes`);
/// returns the dispatcher's handles, by app id.
fn start_endpoints(
    apps: &Apps,
    options: &WebhookOptions,
    stores: &WebhookStores,
    metrics: &DeliveryMetrics,
    routes: &mut Routes,
) -> HashMap<String, Vec<Endpoint>> {
    let client = http_client(options);
    let mut endpoints: HashMap<String, Vec<Endpoint>> = HashMap::new();
    for app in apps.iter() {
        for webhook in &app.settings.webhooks {
            let destination = Destination {
                app_id: Some(app.id().to_owned()),
                url: webhook.url.clone(),
                secret: app.secret().to_owned(),
                signature_header: "X-Pusher-Signature",
                headers: vec![("X-Pusher-Key", app.key().to_owned())],
                timeout: None,
            };
            let queue = start_endpoint(destination, &client, options, stores, metrics, routes);
            let endpoint = Endpoint { events: webhook.events.clone(), queue };
            endpoints.entry(app.id().to_owned()).or_default().push(endpoint);
        }
    }
    endpoints
}

/// What reaches the dispatcher from the gateway.
pub(crate) struct FromGateway {
    pub app: Arc<PusherApp>,
    pub event: WebhookEvent,
}

/// The webhooks of every app: a handle to the dispatcher task.
pub struct Webhooks {
    apps: Arc<Apps>,
    /// `None` when no app has a webhook: nothing runs.
    input: Option<mpsc::Sender<FromGateway>>,
    /// Flush requests to the dispatcher (`None` with no webhook).
    flushes: Option<mpsc::Sender<oneshot::Sender<()>>>,
    stores: WebhookStores,
    /// Every endpoint's queue, for replayed dead letters.
    replays: Arc<Replays>,
    metrics: DeliveryMetrics,
}

impl Webhooks {
    /// Starts the dispatcher and one delivery task per endpoint, fed by the
    /// hub's lifecycle events (with subscription counts only when some app
    /// wants them). Needs a Tokio runtime. Batches are journaled in
    /// `stores.journal` until delivered; batches never accepted are kept in
    /// `stores.dead_letters`.
    pub fn start(apps: Arc<Apps>, hub: &Hub, stores: WebhookStores, options: WebhookOptions) -> Self {
        Self::start_beside(apps, hub, stores, options, Routes::default())
    }

    /// [`start`](Self::start) beside the `[[webhooks]]` endpoints already
    /// in `routes`: the dispatcher (which adopts journaled batches for
    /// every endpoint, and replays their dead letters) runs when either
    /// family has an endpoint.
    pub(crate) fn start_beside(
        apps: Arc<Apps>,
        hub: &Hub,
        stores: WebhookStores,
        options: WebhookOptions,
        routes: Routes,
    ) -> Self {
        let any_webhook = apps.iter().any(|app| !app.settings.webhooks.is_empty()) || !routes.is_empty();
        let with_counts = apps.any_wants(WebhookKind::SubscriptionCount);
        let hub_events = match any_webhook {
            true => hub.events(options.input_queue, with_counts),
            false => None,
        };
        if any_webhook && hub_events.is_none() {
            tracing::warn!("the hub's events already have a listener: channel webhooks are off");
        }
        Self::start_with(apps, hub_events, stores, options, routes)
    }

    /// [`start_beside`](Self::start_beside) with the hub's events given
    /// (tests feed their own).
    pub(crate) fn start_with(
        apps: Arc<Apps>,
        hub_events: Option<mpsc::Receiver<fanfare_hub::HubEvent>>,
        stores: WebhookStores,
        options: WebhookOptions,
        mut routes: Routes,
    ) -> Self {
        let metrics = DeliveryMetrics::pusher();
        let endpoints = start_endpoints(&apps, &options, &stores, &metrics, &mut routes);
        let any_webhook = !routes.is_empty();
        let routes = Arc::new(routes);
        let replays = Arc::new(Replays::new(routes.clone()));
        let mut flushes = None;
        let input = any_webhook.then(|| {
            let (tx, gateway) = mpsc::channel(options.input_queue);
            let (flush_tx, flush_rx) = mpsc::channel(1);
            flushes = Some(flush_tx);
            let adoption = Arc::new(Adoption::new(stores.clone(), routes));
            let dispatcher =
                dispatch::Dispatcher::new(apps.clone(), endpoints, &options, metrics.clone(), adoption);
            let inputs = dispatch::Inputs { hub: hub_events, gateway, flushes: flush_rx };
            tokio::spawn(dispatcher.run(inputs));
            tx
        });
        Self { apps, input, flushes, stores, replays, metrics }
    }

    /// The server is stopping: sends held events now (a `channel_vacated`
    /// held for a reconnect that cannot come here any more), waits up to
    /// `within` for every queued event to be journaled, then releases the
    /// journal (on a cluster node, to whichever node adopts next; a single
    /// node's next start finds its files). What is not journaled by then
    /// is lost, and logged.
    pub async fn flush(&self, within: Duration) {
        let Some(flushes) = &self.flushes else { return };
        let (done, flushed) = oneshot::channel();
        let flushing = async {
            flushes.send(done).await.ok()?;
            flushed.await.ok()
        };
        if tokio::time::timeout(within, flushing).await.ok().flatten().is_none() {
            tracing::warn!("webhook events were still queued at the stop; some are lost");
        }
        if let Err(error) = self.stores.journal.release().await {
            let error = anyhow::Error::from(error);
            tracing::warn!(error = format!("{error:#}"), "could not release the webhook journal");
        }
    }

    /// Queues an event the gateway saw for the webhooks of app `app_id`.
    /// Never waits: when the queue is full the event is dropped (and
    /// counted). Events no webhook of the app wants are dropped here.
    pub fn send(&self, app_id: &str, event: WebhookEvent) {
        let Some(input) = &self.input else { return };
        let Some(app) = self.apps.by_id(app_id) else { return };
        if !app.wants(event.kind()) {
            return;
        }
        if input.try_send(FromGateway { app, event }).is_err() {
            self.metrics.dropped.increment(1);
        }
    }

    /// Up to `limit` batches that could not be delivered, newest first
    /// (on a cluster node: of every node).
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<serde_json::Value>, ClusterError> {
        let letters = self.stores.dead_letters.recent(limit).await?;
        // A letter that is not JSON (written by hand?) is skipped.
        Ok(letters.iter().filter_map(|letter| serde_json::from_slice(letter).ok()).collect())
    }

    /// Queues the events of dead letter `id` again for its endpoint
    /// (`replay.rs`).
    pub async fn replay(&self, id: &str) -> Result<Replayed, ReplayError> {
        self.replays.replay(&*self.stores.dead_letters, id).await
    }
}
