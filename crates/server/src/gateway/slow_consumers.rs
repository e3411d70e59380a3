//! The connections most recently closed as slow consumers, for the admin
//! page (`GET /api/admin/slow_consumers`). Recorded when such a connection
//! ends, never on delivery: `fanfare_slow_consumer_disconnects_total`
//! counts them all, this keeps the last [`KEPT`] for a person to look at.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

/// How many slow consumers are remembered.
pub const KEPT: usize = 100;

/// One connection closed with 4501 (slow consumer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowConsumer {
    /// When it was closed, in ms since the Unix epoch.
    pub time_ms: u64,
    /// The connection's id, as a string (it may exceed 2^53).
    pub connection: String,
    /// `native` or `pusher`.
    pub protocol: &'static str,
    /// How long it had been open, in seconds.
    pub open_s: f64,
}

/// The newest [`KEPT`] slow consumers of this node.
#[derive(Default)]
pub struct SlowConsumers {
    recent: Mutex<VecDeque<SlowConsumer>>,
}

impl SlowConsumers {
    pub fn record(&self, connection: Option<u64>, protocol: &'static str, open: Duration) {
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let connection = connection.map_or_else(String::new, |id| id.to_string());
        let entry = SlowConsumer { time_ms, connection, protocol, open_s: open.as_secs_f64() };
        let mut recent = self.recent.lock();
        if recent.len() == KEPT {
            recent.pop_back();
        }
        recent.push_front(entry);
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<SlowConsumer> {
        self.recent.lock().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_are_kept_newest_first() {
        let slow = SlowConsumers::default();
        for id in 0..(KEPT as u64 + 5) {
            slow.record(Some(id), "native", Duration::from_secs(1));
        }
        let recent = slow.recent();
        assert_eq!(recent.len(), KEPT);
        assert_eq!(recent[0].connection, (KEPT + 4).to_string());
        assert_eq!(recent[KEPT - 1].connection, "5");
        assert_eq!(recent[0].protocol, "native");
    }
}
