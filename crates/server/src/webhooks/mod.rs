//! Webhook delivery, shared by the Pusher webhooks (`pusher/webhooks/`)
//! and the server's own `[[webhooks]]` (`webhooks/server.rs`, moderation
//! and rejection events).
//!
//! ```text
//! a family's events (Pusher: its dispatcher; [[webhooks]]: ServerWebhooks::send)
//!         │ bounded queue per endpoint (full: dropped and counted)
//!         ▼
//! delivery.rs: one task per endpoint: batches ≤ `batch_max` events /
//!     `batch_window` into one signed POST {"time_ms", "events"}, retries
//!     with exponential backoff for `retry_for`, then keeps a dead letter
//!     (dead_letters.rs: a file on a single node, the cluster's log in
//!     Redis on a cluster node)
//!         │ each batch journaled from its first attempt to its end
//!         ▼
//! journal.rs: files in data_dir on a single node, the cluster's journal
//!     in Redis on a cluster node; adoption.rs delivers what an earlier run
//!     (or a dead or stopped node) left, to whichever family's endpoint it
//!     names (routes.rs); replay.rs queues a dead letter again
//! ```
//!
//! A family gives its event type ([`BatchEvent`]) and, per endpoint, a
//! [`Destination`]: the URL, the secret, the signature header. An endpoint
//! is named by its app id (a Pusher app's; `None` for `[[webhooks]]`) and
//! URL in the journal and in dead letters, so one journal and one log hold
//! both families. The signature is one function, [`sign`]: the lowercase
//! hex HMAC-SHA256 of the raw body, as Pusher signs (`X-Pusher-Signature`)
//! and as Fanfare signs its own webhooks and the content pre-publish hook
//! (`X-Fanfare-Signature`).

mod adoption;
mod dead_letters;
mod delivery;
pub mod events;
mod journal;
mod replay;
mod routes;
mod server;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanfare_cluster::{DeadLetterLog, WebhookJournal};
use metrics::{Counter, counter};

pub(crate) use adoption::Adoption;
pub use dead_letters::DeadLetterFile;
pub(crate) use delivery::{BatchEvent, Destination, EndpointQueue, http_client, start_endpoint};
pub use journal::JournalFile;
pub(crate) use replay::Replays;
pub use replay::{ReplayError, Replayed};
pub(crate) use routes::Routes;
pub use server::ServerWebhooks;

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
    /// One POST's timeout (a `[[webhooks]]` endpoint has its own).
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

/// Where webhooks keep what must outlive the process: batches given up on,
/// and batches not yet delivered (both families').
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

/// The delivery counters of one family of webhooks.
#[derive(Clone)]
pub(crate) struct DeliveryMetrics {
    pub delivered: Counter,
    pub retried: Counter,
    pub dead: Counter,
    pub dead_letters: Counter,
    /// Events dropped because a queue was full.
    pub dropped: Counter,
}

impl DeliveryMetrics {
    /// `fanfare_webhook_*`: the Pusher webhooks'.
    pub fn pusher() -> Self {
        Self {
            delivered: counter!("fanfare_webhook_deliveries_total", "outcome" => "ok"),
            retried: counter!("fanfare_webhook_deliveries_total", "outcome" => "retry"),
            dead: counter!("fanfare_webhook_deliveries_total", "outcome" => "dead"),
            dead_letters: counter!("fanfare_webhook_dead_letters_total"),
            dropped: counter!("fanfare_webhook_events_dropped_total"),
        }
    }

    /// `fanfare_server_webhook_*`: the `[[webhooks]]` endpoints'.
    pub fn server() -> Self {
        Self {
            delivered: counter!("fanfare_server_webhook_deliveries_total", "outcome" => "ok"),
            retried: counter!("fanfare_server_webhook_deliveries_total", "outcome" => "retry"),
            dead: counter!("fanfare_server_webhook_deliveries_total", "outcome" => "dead"),
            dead_letters: counter!("fanfare_server_webhook_dead_letters_total"),
            dropped: counter!("fanfare_server_webhook_events_dropped_total"),
        }
    }
}

/// A UUID v4: unique across processes and restarts without coordination.
pub(crate) fn event_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The signature of a webhook (or hook) body: the lowercase hex
/// HMAC-SHA256 of the raw bytes with `secret`.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    fanfare_protocol::pusher::sign_webhook(secret, body)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}
