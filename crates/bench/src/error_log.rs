//! Failures that do not stop a run, counted by kind with a few samples,
//! so a report says "312 connect errors (e.g. connection refused)" rather
//! than printing 312 lines or nothing.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Samples kept per kind.
const SAMPLES: usize = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub count: u64,
    pub samples: Vec<String>,
}

/// Counts by kind (`connect`, `refused`, `publish`, …).
pub type ErrorSummary = BTreeMap<String, ErrorCount>;

#[derive(Debug, Default)]
pub struct ErrorLog(Mutex<ErrorSummary>);

impl ErrorLog {
    pub fn record(&self, kind: &str, message: impl ToString) {
        let mut errors = self.0.lock();
        let entry = errors.entry(kind.to_string()).or_default();
        entry.count += 1;
        if entry.samples.len() < SAMPLES {
            let message = message.to_string();
            if !entry.samples.contains(&message) {
                entry.samples.push(message);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.0.lock().values().map(|e| e.count).sum()
    }

    pub fn summary(&self) -> ErrorSummary {
        self.0.lock().clone()
    }
}

/// Adds `other` into `into`, keeping at most a few samples per kind.
pub fn merge(into: &mut ErrorSummary, other: &ErrorSummary) {
    for (kind, count) in other {
        let entry = into.entry(kind.clone()).or_default();
        entry.count += count.count;
        for sample in &count.samples {
            if entry.samples.len() < SAMPLES && !entry.samples.contains(sample) {
                entry.samples.push(sample.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_kind_with_a_few_distinct_samples() {
        let log = ErrorLog::default();
        for i in 0..10 {
            log.record("connect", format!("refused {}", i % 5));
        }
        log.record("publish", "HTTP 503");
        let summary = log.summary();
        assert_eq!(log.total(), 11);
        assert_eq!(summary["connect"].count, 10);
        assert_eq!(summary["connect"].samples, ["refused 0", "refused 1", "refused 2"]);

        let mut total = summary.clone();
        merge(&mut total, &summary);
        assert_eq!(total["connect"].count, 20);
        assert_eq!(total["connect"].samples.len(), 3);
        assert_eq!(total["publish"].samples, ["HTTP 503"]);
    }
}
