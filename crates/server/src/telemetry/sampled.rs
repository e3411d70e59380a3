//! Gauges read off the node when `/metrics` is scraped rather than kept up
//! to date on the message path: how full the outboxes are, whether the
//! store answers and the node is ready, the data directory's disk and the
//! process's memory. A scrape every few seconds costs one pass over the
//! connections; keeping them live would cost every delivery.

use std::path::Path;

use metrics::gauge;

use crate::server::AppState;

/// Sets every sampled gauge from the node as it is now.
pub async fn refresh(app: &AppState) {
    let depth = app.hub.connections().outbox_depth();
    gauge!("fanfare_outbox_frames").set(depth.frames as f64);
    gauge!("fanfare_outbox_frames_max").set(depth.largest as f64);
    let store_up = app.hub.store_ready().await;
    gauge!("fanfare_store_up").set(f64::from(u8::from(store_up)));
    let ready = crate::readiness::readiness(app).await.is_ready();
    gauge!("fanfare_ready").set(f64::from(u8::from(ready)));
    if let Some(used) = disk_used_ratio(&app.settings.data_dir) {
        gauge!("fanfare_data_dir_disk_used_ratio").set(used);
    }
    if let Some(bytes) = resident_memory_bytes() {
        gauge!("fanfare_process_resident_memory_bytes").set(bytes as f64);
    }
}

/// The share of the data directory's file system in use, as `df` counts
/// it: what is not available to an unprivileged writer.
fn disk_used_ratio(dir: &Path) -> Option<f64> {
    let stats = rustix::fs::statvfs(dir).ok()?;
    if stats.f_blocks == 0 {
        return None;
    }
    let used = stats.f_blocks.saturating_sub(stats.f_bfree);
    let usable = used + stats.f_bavail;
    Some(used as f64 / usable.max(1) as f64)
}

/// The process's resident set size, from `/proc/self/statm` (Linux; none
/// elsewhere).
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_of_a_real_directory_is_partly_used() {
        let used = disk_used_ratio(Path::new(".")).expect("statvfs of the working directory");
        assert!(used > 0.0 && used <= 1.0, "{used}");
    }

    #[test]
    fn a_missing_directory_has_no_disk_figure() {
        assert_eq!(disk_used_ratio(Path::new("/no/such/directory/here")), None);
    }

    #[test]
    fn the_process_uses_some_memory() {
        let bytes = resident_memory_bytes().expect("Linux has /proc/self/statm");
        assert!(bytes > 1 << 20, "{bytes}");
    }
}
