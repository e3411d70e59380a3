//! How many WebSocket connections this node holds against its limit
//! (`limits.max_connections`), for the upgrade (refused when full) and
//! `/ready` (503 from `limits.ready_below_percent` of it, so that a load balancer
//! steers new connections to other nodes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Instant;

use metrics::{Gauge, counter, gauge, histogram};

use std::net::IpAddr;

use crate::config::{FILE_HEADROOM, Limits};
use crate::gateway::connection_counts::Counted;
use crate::gateway::slow_consumers::SlowConsumers;

/// The node's open connections and its limit.
pub struct Capacity {
    open: AtomicUsize,
    max: usize,
    /// `open` from which the node is not ready.
    ready_below: usize,
    /// `fanfare_connections`.
    connections: Gauge,
    /// `fanfare_connection_utilisation_ratio`: `open / max`.
    utilisation: Gauge,
    /// The last connections closed as slow consumers: kept here because
    /// every connection's slot already points here, so remembering them
    /// costs a connection nothing.
    pub slow_consumers: SlowConsumers,
}

impl Capacity {
    /// The limit of `limits`, or (0 there) `open_files` less
    /// [`FILE_HEADROOM`] (less half of them when they are fewer than twice
    /// that); no limit when neither is known.
    pub fn new(limits: &Limits, open_files: Option<u64>) -> Self {
        let max = match (limits.max_connections, open_files) {
            (0, Some(files)) => {
                let files = usize::try_from(files).unwrap_or(usize::MAX);
                (files - FILE_HEADROOM.min(files / 2)).max(1)
            }
            (0, None) => usize::MAX,
            (max, _) => max,
        };
        let ready_below = (max as f64 * f64::from(limits.ready_below_percent) / 100.0).ceil() as usize;
        let capacity = Self {
            open: AtomicUsize::new(0),
            max,
            ready_below: ready_below.max(1),
            connections: gauge!("fanfare_connections"),
            utilisation: gauge!("fanfare_connection_utilisation_ratio"),
            slow_consumers: SlowConsumers::default(),
        };
        capacity.report(0);
        capacity
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more connection, held until the connection ends;
    /// `None` when the node is full.
    pub fn open(self: &Arc<Self>) -> Option<OpenSlot> {
        let max = self.max;
        let before = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()?;
        self.report(before + 1);
        Some(OpenSlot { capacity: self.clone(), opened: Instant::now(), address: None })
    }

    /// Whether the node holds so many connections that it should get no
    /// new ones.
    pub fn near_limit(&self) -> bool {
        self.open.load(Ordering::Acquire) >= self.ready_below
    }

    fn report(&self, open: usize) {
        self.connections.set(open as f64);
        self.utilisation.set(open as f64 / self.max as f64);
    }
}

/// One open connection's place; dropping it frees the place.
pub struct OpenSlot {
    capacity: Arc<Capacity>,
    opened: Instant,
    /// Its place within its client address's limit, freed with this one.
    address: Option<Counted<IpAddr>>,
}

impl OpenSlot {
    /// The slot, holding the connection's place of its address too.
    pub(crate) fn with_address(mut self, address: Option<Counted<IpAddr>>) -> Self {
        self.address = address;
        self
    }

    /// The connection `conn` of `protocol` ended for `reason` (a label of
    /// `fanfare_connections_closed_total`): counts it and its duration, and
    /// remembers a slow consumer.
    pub fn close(self, reason: &'static str, conn: Option<u64>, protocol: &'static str) {
        counter!("fanfare_connections_closed_total", "reason" => reason).increment(1);
        let open = self.opened.elapsed();
        histogram!("fanfare_connection_duration_seconds").record(open.as_secs_f64());
        if reason == "slow_consumer" {
            self.capacity.slow_consumers.record(conn, protocol, open);
        }
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        let open = self.capacity.open.fetch_sub(1, Ordering::AcqRel) - 1;
        self.capacity.report(open);
    }
}

/// The soft open-file limit now; `None` when unlimited.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The soft open-file limit, raised to the hard one first (a connection
/// is a file). `None` where it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else { return limit.current };
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(Resource::Nofile, rustix::process::Rlimit { current: Some(hard), maximum: Some(hard) }) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
            Some(hard)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

/// Warns when the open-file limit cannot hold `limits.max_connections`
/// connections and everything else.
pub fn warn_if_files_run_short(limits: &Limits, open_files: Option<u64>) {
    let Some(files) = open_files else { return };
    let wanted = limits.max_connections as u64 + FILE_HEADROOM as u64;
    if limits.max_connections > 0 && files < wanted {
        tracing::warn!(
            open_file_limit = files,
            max_connections = limits.max_connections,
            "the open-file limit is below limits.max_connections plus {FILE_HEADROOM}: connections will fail \
             (EMFILE) before the limit; raise it (ulimit -n, LimitNOFILE=, the container's nofile ulimit)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, ready_below_percent: u8) -> Limits {
        Limits { max_connections, ready_below_percent, ..Limits::default() }
    }

    #[test]
    fn a_full_node_refuses_a_slot_until_one_is_freed() {
        let capacity = Arc::new(Capacity::new(&limits(3, 60), None));
        let (a, b) = (capacity.open().unwrap(), capacity.open().unwrap());
        assert!(capacity.near_limit(), "2 of 3 is past 60 %");
        let c = capacity.open().unwrap();
        assert!(capacity.open().is_none(), "full");
        drop((a, b));
        assert!(!capacity.near_limit());
        assert!(capacity.open().is_some());
        drop(c);
    }

    #[test]
    fn without_a_configured_limit_the_open_file_limit_less_the_headroom_is_the_limit() {
        assert_eq!(Capacity::new(&limits(0, 90), Some(20_000)).max(), 20_000 - FILE_HEADROOM);
        assert_eq!(Capacity::new(&limits(0, 90), Some(1024)).max(), 512, "a small limit keeps half");
        assert_eq!(Capacity::new(&limits(0, 90), Some(1)).max(), 1, "never 0");
        assert_eq!(Capacity::new(&limits(0, 90), None).max(), usize::MAX);
        assert_eq!(Capacity::new(&limits(500, 90), Some(100)).max(), 500, "configured wins");
    }
}
