//! How many frames the server's socket writes carry: Fanfare's
//! `fanfare_ws_writes_total` and `fanfare_ws_frames_written_total`, read
//! from its `/metrics` before and after publishing. A server without those
//! counters (every peer) simply has no figure.

use std::time::Duration;

use crate::options::Plan;

/// Limit for reading `/metrics`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WriteCounts {
    pub writes: f64,
    pub frames: f64,
}

/// The server's counters now, if it has them.
pub(crate) async fn sample(plan: &Plan) -> Option<WriteCounts> {
    let http = plan.http_client().timeout(SCRAPE_TIMEOUT).build().ok()?;
    let response = http.get(format!("{}/metrics", plan.http_base())).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    parse(&response.text().await.ok()?)
}

/// Frames per write between two samples (none if nothing was written).
pub(crate) fn frames_per_write(before: Option<WriteCounts>, after: Option<WriteCounts>) -> Option<f64> {
    let (before, after) = (before?, after?);
    let writes = after.writes - before.writes;
    (writes > 0.0).then(|| (after.frames - before.frames) / writes)
}

fn parse(metrics: &str) -> Option<WriteCounts> {
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
    };
    Some(WriteCounts {
        writes: value("fanfare_ws_writes_total")?,
        frames: value("fanfare_ws_frames_written_total")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_counters_and_nothing_else() {
        let text = "# TYPE fanfare_ws_writes_total counter\nfanfare_ws_writes_total 10\n\
                    fanfare_ws_writes_total_other 99\nfanfare_ws_frames_written_total 125\n";
        assert_eq!(parse(text), Some(WriteCounts { writes: 10.0, frames: 125.0 }));
        assert_eq!(parse("fanfare_ws_writes_total 10\n"), None);
        assert_eq!(parse("<html>not found</html>"), None);
    }

    #[test]
    fn the_ratio_is_over_the_run() {
        let before = Some(WriteCounts { writes: 100.0, frames: 150.0 });
        let after = Some(WriteCounts { writes: 300.0, frames: 2_150.0 });
        assert_eq!(frames_per_write(before, after), Some(10.0));
        assert_eq!(frames_per_write(before, before), None);
        assert_eq!(frames_per_write(None, after), None);
    }
}
