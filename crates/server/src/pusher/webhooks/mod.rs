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
//! delivery.rs: one task per (app, url): batches ≤ 50 events / ~100 ms into
//!     one signed POST {"time_ms", "events"}, retries with exponential
//!     backoff for 5 minutes, then keeps a dead letter (dead_letters.rs: a
//!     file on a single node, the cluster's log in Redis on a cluster node)
//!         │ each batch journaled from its first attempt to its end
//!         ▼
//! journal.rs: files in data_dir on a single node, the cluster's journal
//!     in Redis on a cluster node; adoption.rs delivers what an earlier run
//!     (or a dead or stopped node) left
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

mod adoption;
mod dead_letters;
mod delivery;
mod dispatch;
mod journal;
mod replay;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use fanfare_cluster::{ClusterError, DeadLetterLog, WebhookJournal};
use fanfare_hub::Hub;
use metrics::{Counter, counter};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use dead_letters::DeadLetterFile;
pub use journal::JournalFile;
pub use replay::{ReplayError, Replayed};

use crate::config::WebhookKind;
use crate::pusher::apps::{Apps, PusherApp};

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

/// Timings and sizes; the defaults are Pusher's behaviour. Tests shorten
/// the times.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// How long `channel_vacated` and `member_removed` wait for the channel
    /// to be occupied (the member to be added) again; zero sends them at
    /// once (a cluster node: its hub holds them, `fanfare_hub` `announce.rs`).
    pub hold: Duration,
    /// How long a batch collects events after its first one.
    pub batch_window: Duration,
    /// Most events in one POST.
    pub batch_max: usize,
    /// The first retry delay, doubled after each failure…
    pub retry_initial: Duration,
    /// …up to this.
    pub retry_max_delay: Duration,
    /// How long a batch is retried before it becomes a dead letter.
    pub retry_for: Duration,
    /// One POST's timeout.
    pub request_timeout: Duration,
    /// Events queued for the dispatcher (hub events and gateway events).
    pub input_queue: usize,
    /// Events queued per endpoint.
    pub endpoint_queue: usize,
    /// Batches being delivered or retried at once per endpoint.
    pub max_in_flight: usize,
    /// Events held at once; beyond it they are sent without waiting.
    pub max_held: usize,
    /// Roots trusted for `https://` URLs besides the system's
    /// (`tls.webhook_ca_file`).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// How often to adopt journaled batches other nodes released (a
    /// cluster node's); `None`: only at start (a single node's).
    pub adopt_every: Option<Duration>,
}

/// Size at which a single node's dead-letter file is rotated (to `.1`).
pub const DEAD_LETTER_FILE_MAX_BYTES: u64 = 16 << 20;

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(3),
            batch_window: Duration::from_millis(100),
            batch_max: 50,
            retry_initial: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(60),
            retry_for: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            input_queue: 16_384,
            endpoint_queue: 10_000,
            max_in_flight: 16,
            max_held: 100_000,
            extra_roots: Vec::new(),
            adopt_every: None,
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
            id: event_id(),
            channel: channel.to_owned(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
            subscription_count: None,
        }
    }
}

/// A UUID v4: unique across processes and restarts without coordination.
fn event_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Where webhooks keep what must outlive the process: batches given up on,
/// and batches not yet delivered.
#[derive(Clone)]
pub struct WebhookStores {
    pub dead_letters: Arc<dyn DeadLetterLog>,
    pub journal: Arc<dyn WebhookJournal>,
}

impl WebhookStores {
    /// A single node's: files in its data directory.
    pub fn in_data_dir(data_dir: &std::path::Path) -> Self {
        Self {
            dead_letters: Arc::new(DeadLetterFile::new(data_dir, DEAD_LETTER_FILE_MAX_BYTES)),
            journal: Arc::new(JournalFile::new(data_dir)),
        }
    }
}

/// What reaches the dispatcher from the gateway.
pub(crate) struct FromGateway {
    pub app: Arc<PusherApp>,
    pub event: WebhookEvent,
}

#[derive(Clone)]
pub(crate) struct WebhookMetrics {
    pub delivered: Counter,
    pub retried: Counter,
    pub dead: Counter,
    pub dead_letters: Counter,
    /// Events dropped because a queue was full.
    pub dropped: Counter,
}

impl WebhookMetrics {
    fn register() -> Self {
        Self {
            delivered: counter!("fanfare_webhook_deliveries_total", "outcome" => "ok"),
            retried: counter!("fanfare_webhook_deliveries_total", "outcome" => "retry"),
            dead: counter!("fanfare_webhook_deliveries_total", "outcome" => "dead"),
            dead_letters: counter!("fanfare_webhook_dead_letters_total"),
            dropped: counter!("fanfare_webhook_events_dropped_total"),
        }
    }
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
    replays: replay::Replays,
    metrics: WebhookMetrics,
}

impl Webhooks {
    /// Starts the dispatcher and one delivery task per endpoint, fed by the
    /// hub's lifecycle events (with subscription counts only when some app
    /// wants them). Needs a Tokio runtime. Batches are journaled in
    /// `stores.journal` until delivered; batches never accepted are kept in
    /// `stores.dead_letters`.
    pub fn start(apps: Arc<Apps>, hub: &Hub, stores: WebhookStores, options: WebhookOptions) -> Self {
        let any_webhook = apps.iter().any(|app| !app.settings.webhooks.is_empty());
        let with_counts = apps.any_wants(WebhookKind::SubscriptionCount);
        let hub_events = match any_webhook {
            true => hub.events(options.input_queue, with_counts),
            false => None,
        };
        if any_webhook && hub_events.is_none() {
            tracing::warn!("the hub's events already have a listener: channel webhooks are off");
        }
        Self::start_with(apps, hub_events, stores, options)
    }

    /// [`start`](Self::start) with the hub's events given (tests feed their own).
    pub(crate) fn start_with(
        apps: Arc<Apps>,
        hub_events: Option<mpsc::Receiver<fanfare_hub::HubEvent>>,
        stores: WebhookStores,
        options: WebhookOptions,
    ) -> Self {
        let metrics = WebhookMetrics::register();
        let any_webhook = apps.iter().any(|app| !app.settings.webhooks.is_empty());
        let mut replays = replay::Replays::default();
        let mut flushes = None;
        let input = any_webhook.then(|| {
            let (tx, gateway) = mpsc::channel(options.input_queue);
            let (flush_tx, flush_rx) = mpsc::channel(1);
            flushes = Some(flush_tx);
            let (endpoints, targets) = delivery::start_endpoints(&apps, &options, &stores, &metrics);
            replays = replay::Replays::new(&endpoints);
            let adoption = adoption::Adoption { stores: stores.clone(), targets };
            let dispatcher = dispatch::Dispatcher::new(
                apps.clone(),
                endpoints,
                &options,
                metrics.clone(),
                Arc::new(adoption),
            );
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
