//! Fanfare's feed counters, read from its `/metrics`: notices appended
//! (`fanfare_feed_notices_total`), notices that failed to append, and
//! messages whose notices were dropped because the hub's queue of them was
//! full. The `dm` scenario waits on the first (a notice is appended after
//! its message is acknowledged) and reports the other two.

use std::time::Duration;

use crate::options::Plan;

/// Limit for reading `/metrics`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct FeedCounts {
    pub notices: f64,
    pub notice_errors: f64,
    pub dropped: f64,
}

impl FeedCounts {
    /// What happened between `before` and `self`.
    pub(crate) fn since(self, before: FeedCounts) -> FeedCounts {
        FeedCounts {
            notices: self.notices - before.notices,
            notice_errors: self.notice_errors - before.notice_errors,
            dropped: self.dropped - before.dropped,
        }
    }
}

/// The server's feed counters now, if it has them.
pub(crate) async fn sample(plan: &Plan) -> Option<FeedCounts> {
    let http = plan.http_client().timeout(SCRAPE_TIMEOUT).build().ok()?;
    let response = http.get(format!("{}/metrics", plan.http_base())).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    parse(&response.text().await.ok()?)
}

fn parse(metrics: &str) -> Option<FeedCounts> {
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
    };
    Some(FeedCounts {
        // A counter nothing has touched yet is absent.
        notices: value("fanfare_feed_notices_total").unwrap_or(0.0),
        notice_errors: value("fanfare_feed_notice_errors_total").unwrap_or(0.0),
        dropped: value("fanfare_hub_observed_appends_dropped_total").unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_feed_counters_and_defaults_the_untouched_ones() {
        let text = "# TYPE fanfare_feed_notices_total counter\nfanfare_feed_notices_total 200\n\
                    fanfare_hub_observed_appends_dropped_total 3\n";
        assert_eq!(parse(text), Some(FeedCounts { notices: 200.0, notice_errors: 0.0, dropped: 3.0 }));
        assert_eq!(parse("fanfare_ws_writes_total 1\n"), Some(FeedCounts::default()));
        let later = FeedCounts { notices: 250.0, notice_errors: 1.0, dropped: 3.0 };
        assert_eq!(
            later.since(parse(text).unwrap()),
            FeedCounts { notices: 50.0, notice_errors: 1.0, dropped: 0.0 }
        );
    }
}
