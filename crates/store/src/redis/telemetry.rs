//! The Redis store's metrics, registered once.

use metrics::{Counter, Histogram, counter, histogram};

#[derive(Clone)]
pub(crate) struct RedisMetrics {
    /// Seconds from sending a pipeline (or a read) to its last reply.
    pub roundtrip: Histogram,
    /// Script calls answered with an error (stale generation, NOSCRIPT,
    /// anything else), whether or not a retry then succeeded.
    pub script_errors: Counter,
    pub reconnects: Counter,
    /// Connections that got a different generation than the one before:
    /// every channel written through them gets a new epoch.
    pub generation_changes: Counter,
}

impl RedisMetrics {
    pub fn register() -> Self {
        Self {
            roundtrip: histogram!("fanfare_redis_roundtrip_seconds", "engine" => "store"),
            script_errors: counter!("fanfare_redis_script_errors_total", "engine" => "store"),
            reconnects: counter!("fanfare_redis_reconnects_total", "engine" => "store"),
            generation_changes: counter!("fanfare_redis_generation_changes_total"),
        }
    }
}
