//! What the hub needs to know about a channel and about itself.

use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::ChannelName;
use fanfare_store::{Durability, Retention};

use crate::shaping::Shaping;

/// Per-channel behaviour, resolved from the channel's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelOptions {
    /// Whether durable publications are kept (and get offsets). With history
    /// off, publications are still appended (offsets keep the order and the
    /// position) but with a retention of zero.
    pub history: Retention,
    /// The largest gap (in publications) a resubscribing client may recover.
    pub recovery_limit: u64,
    /// Whether the channel tracks its members.
    pub presence: bool,
    /// Whether members receive `join` and `leave` pushes.
    pub join_leave: bool,
    pub idempotency_window: Duration,
    /// What a durable publication waits for before it is acknowledged and
    /// fanned out: the disk (`Fsync`) or only the OS (`Buffered`).
    pub durability: Durability,
    /// Huge-room shaping (`shaping.rs`); `None`: every publication reaches
    /// every subscriber.
    pub shaping: Option<Shaping>,
    /// Whether this node's appends in the channel go to the append
    /// observer ([`crate::Hub::observe_appends`]): members channels.
    pub observed: bool,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            history: Retention::default(),
            recovery_limit: 1000,
            presence: false,
            join_leave: false,
            idempotency_window: Duration::from_secs(300),
            durability: Durability::Fsync,
            shaping: None,
            observed: false,
        }
    }
}

/// Resolves a channel's options (from its namespace, in the server).
pub type ChannelPolicy = Arc<dyn Fn(&ChannelName) -> ChannelOptions + Send + Sync>;

/// Sizes of the hub itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// Independent publish pipelines (and registry shards). Each channel
    /// belongs to one, which keeps its publications in offset order.
    pub shards: usize,
    /// Publishes waiting per pipeline before publishers wait for room.
    pub publish_queue: usize,
    /// Appends in flight (enqueued in the store, not yet durable) per pipeline.
    pub max_in_flight: usize,
    /// Live frames held per subscription while it replays history; a
    /// subscription that needs more is a slow consumer.
    pub catch_up_buffer: usize,
    /// The most publications one history read returns.
    pub max_history_read: usize,
    /// The configured namespaces: each is a `namespace` label of the
    /// publication and delivery counters; every other channel counts as
    /// `other`.
    pub metric_namespaces: Vec<String>,
}

impl Default for HubOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            shards: (cores * 4).next_power_of_two(),
            publish_queue: 4096,
            max_in_flight: 4096,
            catch_up_buffer: 4096,
            max_history_read: 1000,
            metric_namespaces: Vec::new(),
        }
    }
}
