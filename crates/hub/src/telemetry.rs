//! The hub's metrics, as handles registered once so the hot path does no
//! map lookup per call.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

#[derive(Clone)]
pub struct HubMetrics {
    pub publications: Counter,
    /// Durable publications fanned out from the cluster bus.
    pub publications_received: Counter,
    pub ephemeral_publications: Counter,
    pub duplicate_publications: Counter,
    pub deliveries: Counter,
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
}

impl HubMetrics {
    pub fn register() -> Self {
        Self {
            publications: counter!("fanfare_publications_total", "kind" => "durable"),
            publications_received: counter!("fanfare_cluster_publications_received_total"),
            ephemeral_publications: counter!("fanfare_publications_total", "kind" => "ephemeral"),
            duplicate_publications: counter!("fanfare_duplicate_publications_total"),
            deliveries: counter!("fanfare_deliveries_total"),
            slow_consumer_disconnects: counter!("fanfare_slow_consumer_disconnects_total"),
            subscriptions: gauge!("fanfare_subscriptions"),
            channels: gauge!("fanfare_channels"),
            recoveries: counter!("fanfare_recoveries_total", "outcome" => "recovered"),
            failed_recoveries: counter!("fanfare_recoveries_total", "outcome" => "not_recovered"),
            fanout_latency: histogram!("fanfare_publish_fanout_seconds"),
            append_latency: histogram!("fanfare_history_append_seconds"),
            read_latency: histogram!("fanfare_history_read_seconds"),
        }
    }
}
