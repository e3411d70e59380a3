//! How long to wait before each reconnect attempt.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter for reconnect attempts.
///
/// Attempt `n` (counting from 1) waits a random delay in
/// `[ceiling / 2, ceiling]`, where `ceiling = min(initial × 2^(n-1), max)`.
/// This is "equal jitter": the random half spreads a crowd of clients that
/// lost the same server over time (no thundering herd when it comes back),
/// and the fixed half guarantees every client really backs off, which full
/// jitter (`[0, ceiling]`) does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first attempt's delay.
    pub initial: Duration,
    /// Largest ceiling any attempt gets.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The random delay before attempt `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.jittered(attempt, rand::rng().random_range(0.5..=1.0))
    }

    /// The largest delay attempt `attempt` can get: `initial` doubled per
    /// earlier attempt, capped at `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }

    fn jittered(&self, attempt: u32, factor: f64) -> Duration {
        self.ceiling(attempt).mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn ceilings_double_from_one_second_and_stop_at_thirty() {
        let backoff = Backoff::default();
        let ceilings: Vec<_> = (1..=8).map(|n| backoff.ceiling(n)).collect();
        let expected = [1, 2, 4, 8, 16, 30, 30, 30].map(secs);
        assert_eq!(ceilings, expected);
    }

    #[test]
    fn jitter_keeps_every_delay_between_half_the_ceiling_and_the_ceiling() {
        let backoff = Backoff::default();
        for attempt in 1..=12 {
            let ceiling = backoff.ceiling(attempt);
            assert_eq!(backoff.jittered(attempt, 1.0), ceiling);
            assert_eq!(backoff.jittered(attempt, 0.5), ceiling / 2);
            for _ in 0..50 {
                let delay = backoff.delay(attempt);
                assert!(delay >= ceiling / 2 && delay <= ceiling, "attempt {attempt}: {delay:?}");
            }
        }
    }

    #[test]
    fn a_huge_attempt_count_does_not_overflow() {
        let backoff = Backoff { initial: secs(1), max: secs(30) };
        assert_eq!(backoff.ceiling(u32::MAX), secs(30));
        assert_eq!(backoff.ceiling(0), secs(1));
    }
}
