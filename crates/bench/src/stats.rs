//! Latency histograms and the percentiles the report shows.
//!
//! Latencies are recorded in microseconds in an HdrHistogram (3
//! significant digits, 1 µs to 10 minutes), so percentiles stay exact to
//! 0.1 % however many samples there are, and histograms from several
//! tasks or worker processes merge without loss.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Longest latency recorded as itself; longer ones count as this.
const HIGHEST_US: u64 = 600_000_000;

#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        Self(Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("static histogram bounds are valid"))
    }

    pub fn record(&mut self, micros: u64) {
        self.0.saturating_record(micros.clamp(1, HIGHEST_US));
    }

    /// `count` samples of the same latency (the publications of one batch).
    pub fn record_n(&mut self, micros: u64, count: u64) {
        let _ = self.0.record_n(micros.clamp(1, HIGHEST_US), count);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn summary(&self) -> Percentiles {
        if self.0.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| self.0.value_at_quantile(q);
        Percentiles {
            count: self.0.len(),
            mean_us: self.0.mean().round() as u64,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.0.max(),
        }
    }

    /// The non-empty buckets as `(value, count)`, for sending a histogram
    /// from a worker process to its parent.
    pub fn to_buckets(&self) -> Vec<(u64, u64)> {
        self.0.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }

    pub fn from_buckets(buckets: &[(u64, u64)]) -> Self {
        let mut latency = Self::new();
        for &(value, count) in buckets {
            let _ = latency.0.record_n(value.clamp(1, HIGHEST_US), count);
        }
        latency
    }
}

/// A latency distribution as the report shows it, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// `part / seconds`, 0 when no time passed.
pub fn per_second(part: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { part as f64 / seconds } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_thousand() {
        let mut latency = Latency::new();
        (1..=1000).for_each(|us| latency.record(us));
        let p = latency.summary();
        assert_eq!(p.count, 1000);
        assert_eq!((p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us), (500, 900, 990, 999, 1000));
        assert!((500..=501).contains(&p.mean_us), "{}", p.mean_us);
    }

    #[test]
    fn values_keep_three_significant_digits() {
        let mut latency = Latency::new();
        latency.record(123_456);
        let max = latency.summary().max_us;
        assert!((123_400..=123_600).contains(&max), "{max}");
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        assert_eq!(Latency::new().summary(), Percentiles::default());
    }

    #[test]
    fn out_of_range_values_are_clamped_not_dropped() {
        let mut latency = Latency::new();
        latency.record(0);
        latency.record(u64::MAX);
        let p = latency.summary();
        assert_eq!(p.count, 2);
        assert_eq!(p.p50_us, 1);
        assert!(p.max_us >= HIGHEST_US * 999 / 1000);
    }

    #[test]
    fn merging_and_buckets_preserve_every_sample() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        (1..=500).for_each(|us| a.record(us));
        (501..=1000).for_each(|us| b.record(us * 10));
        a.merge(&b);
        assert_eq!(a.summary().count, 1000);
        let copy = Latency::from_buckets(&a.to_buckets());
        assert_eq!(copy.summary(), a.summary());
        assert_eq!(copy.summary().p50_us, 500);
    }

    #[test]
    fn rates_guard_against_zero_time() {
        assert_eq!(per_second(10, 0.0), 0.0);
        assert_eq!(per_second(10, 2.0), 5.0);
    }
}
