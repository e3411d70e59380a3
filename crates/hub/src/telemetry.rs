//! The hub's metrics, as handles registered once so the hot path does no
//! registry lookup per call.
//!
//! Publications and deliveries carry a `namespace` label: one of the
//! configured namespaces (`default` for a configured `[namespaces.""]`),
//! or `other` for every other channel. Never a channel or a user, so the
//! number of series stays what the configuration says, whatever clients
//! send.

use std::collections::HashMap;

use fanfare_protocol::ChannelName;
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

/// The label of channels outside every configured namespace.
pub const OTHER_NAMESPACE: &str = "other";
/// The label of the default namespace (names without `:`) when it is
/// configured.
pub const DEFAULT_NAMESPACE: &str = "default";

pub struct HubMetrics {
    /// Publications and deliveries, by namespace.
    namespaces: HashMap<Box<str>, NamespaceCounters>,
    other: NamespaceCounters,
    /// Durable publications fanned out from the cluster bus.
    pub publications_received: Counter,
    pub duplicate_publications: Counter,
    pub slow_consumer_disconnects: Counter,
    pub subscriptions: Gauge,
    pub channels: Gauge,
    pub recoveries: Counter,
    pub failed_recoveries: Counter,
    /// Seconds from a publish being accepted to its fan-out being queued in
    /// every subscriber's outbox.
    pub fanout_latency: Histogram,
    /// Seconds from a group of appends being handed to the store to its
    /// receipt (the group commit, or the Redis round trip).
    pub append_latency: Histogram,
    /// Seconds one history read took (the HTTP API, a resubscribe).
    pub read_latency: Histogram,
    /// Reactions counted (`reactions.rs`).
    pub reactions: Counter,
    /// Aggregates of reactions pushed, one per channel window and node.
    pub reaction_aggregates: Counter,
}

/// The counters of one `namespace` label.
pub struct NamespaceCounters {
    pub publications: Counter,
    pub ephemeral_publications: Counter,
    pub deliveries: Counter,
    /// Publications a shaped channel's sampling kept from its subscribers
    /// (once per publication and node, not per subscriber).
    pub sampled_out: Counter,
}

impl NamespaceCounters {
    fn register(namespace: &str) -> Self {
        // The default namespace, configured as `[namespaces.""]`: an empty
        // label would read as no label at all.
        let label = if namespace.is_empty() { DEFAULT_NAMESPACE } else { namespace }.to_owned();
        Self {
            publications: counter!("fanfare_publications_total", "kind" => "durable", "namespace" => label.clone()),
            ephemeral_publications: counter!(
                "fanfare_publications_total", "kind" => "ephemeral", "namespace" => label.clone()
            ),
            deliveries: counter!("fanfare_deliveries_total", "namespace" => label.clone()),
            sampled_out: counter!("fanfare_publications_sampled_out_total", "namespace" => label),
        }
    }
}

impl HubMetrics {
    /// `namespaces`: the configured ones, each its own label.
    pub fn register(namespaces: &[String]) -> Self {
        Self {
            namespaces: namespaces
                .iter()
                .map(|name| (Box::from(name.as_str()), NamespaceCounters::register(name)))
                .collect(),
            other: NamespaceCounters::register(OTHER_NAMESPACE),
            publications_received: counter!("fanfare_cluster_publications_received_total"),
            duplicate_publications: counter!("fanfare_duplicate_publications_total"),
            slow_consumer_disconnects: counter!("fanfare_slow_consumer_disconnects_total"),
            subscriptions: gauge!("fanfare_subscriptions"),
            channels: gauge!("fanfare_channels"),
            recoveries: counter!("fanfare_recoveries_total", "outcome" => "recovered"),
            failed_recoveries: counter!("fanfare_recoveries_total", "outcome" => "not_recovered"),
            fanout_latency: histogram!("fanfare_publish_fanout_seconds"),
            append_latency: histogram!("fanfare_history_append_seconds"),
            read_latency: histogram!("fanfare_history_read_seconds"),
            reactions: counter!("fanfare_reactions_total"),
            reaction_aggregates: counter!("fanfare_reaction_aggregates_total"),
        }
    }

    /// The counters `channel` counts under.
    pub fn of(&self, channel: &ChannelName) -> &NamespaceCounters {
        self.namespaces.get(channel.namespace()).unwrap_or(&self.other)
    }
}
