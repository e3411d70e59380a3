//! The progress line: once a second on stderr while a run goes on, so a
//! long run is never silent and a stuck one is obvious.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::fleet::ProgressGauge;
use crate::publisher::PublishCounters;
use crate::report::count;

/// Reads a count from anywhere.
pub(crate) type Counter = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What the line shows; each part is optional.
#[derive(Default)]
pub(crate) struct Sources {
    pub fleet: Option<(ProgressGauge, u64)>,
    pub publish: Option<Arc<PublishCounters>>,
    /// Anything else that counts up, with its name.
    pub counter: Option<(&'static str, Counter)>,
}

/// Prints until the handle is aborted (or dropped with [`Progress`]).
pub(crate) struct Progress(Option<JoinHandle<()>>);

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

pub(crate) fn start(enabled: bool, label: String, sources: Sources) -> Progress {
    if !enabled {
        return Progress(None);
    }
    Progress(Some(tokio::spawn(async move {
        let start = Instant::now();
        let (mut last_delivered, mut last_acked, mut last_counted) = (0u64, 0u64, 0u64);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut line = format!("[{label} {:>4.0}s]", start.elapsed().as_secs_f64());
            if let Some(publish) = &sources.publish {
                let acked = publish.acked.load(Ordering::Relaxed);
                let failed = publish.failed.load(Ordering::Relaxed);
                line += &format!(
                    " published {} (+{}/s, {} failed)",
                    count(acked),
                    count(acked - last_acked),
                    count(failed)
                );
                last_acked = acked;
            }
            if let Some((name, counter)) = &sources.counter {
                let counted = counter();
                line += &format!(
                    " {name} {} (+{}/s)",
                    count(counted),
                    count(counted.saturating_sub(last_counted))
                );
                last_counted = counted;
            }
            if let Some((gauge, planned)) = &sources.fleet {
                let p = gauge();
                line += &format!(
                    " | connected {}/{} ({} failed) | delivered {} (+{}/s) | reconnects {} | errors {}",
                    count(p.connected),
                    count(*planned),
                    count(p.connect_failed),
                    count(p.delivered),
                    count(p.delivered.saturating_sub(last_delivered)),
                    count(p.reconnects),
                    count(p.errors),
                );
                last_delivered = p.delivered;
            }
            eprintln!("{line}");
        }
    })))
}
