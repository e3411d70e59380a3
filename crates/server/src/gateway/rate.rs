//! A token bucket per connection: how many frames of a kind a client may
//! send per second, with bursts of as many.

use tokio::time::Instant;

/// Counts one refusal of `limit` (`fanfare_rate_limited_total{limit}`):
/// `native_commands`, `pusher_messages`, `pusher_client_events`,
/// `pusher_api_events`, `pusher_api_reads`.
pub(crate) fn count_refusal(limit: &'static str) {
    metrics::counter!("fanfare_rate_limited_total", "limit" => limit).increment(1);
}

pub(crate) struct TokenBucket {
    per_second: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub fn new(per_second: usize) -> Self {
        let per_second = per_second as f64;
        Self { per_second, tokens: per_second, refilled_at: Instant::now() }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_of_the_rate_then_refused_then_refilled_over_time() {
        let mut bucket = TokenBucket::new(10);
        let start = bucket.refilled_at;
        for _ in 0..10 {
            assert!(bucket.try_take_at(start));
        }
        assert!(!bucket.try_take_at(start));
        assert!(bucket.try_take_at(start + Duration::from_millis(150)), "one token back after 100 ms");
        assert!(!bucket.try_take_at(start + Duration::from_millis(150)));
        assert!(bucket.try_take_at(start + Duration::from_secs(60)));
    }
}
