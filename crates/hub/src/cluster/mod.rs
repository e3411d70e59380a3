//! The hub in a cluster: what changes when several nodes share one engine.
//!
//! ```text
//! publish ──▶ pipeline ──▶ store append script ──▶ offset + PUBLISH live frame
//!                                                        │ (every node watching the channel)
//! bus events ──▶ receive.rs: gap check by offset ──▶ fan-out to local subscribers
//!                   └─ gap: heal from history first; lost: subscribers told to recover
//! ```
//!
//! - `watch.rs`: a node watches a channel's live frames while it has local
//!   subscribers, and watches *before* a subscriber reads history.
//! - `receive.rs`: the receiving side; one task, so each channel's frames
//!   are checked and fanned out in the order the bus delivered them.
//! - `load.rs`: how many deliveries the node makes; above a rate the
//!   receiver waits for fuller batches, so socket writes carry more frames.
//! - `recent.rs`: recent publications of live channels, so a storm of
//!   resuming clients is served from memory, not from the engine.
//! - `members.rs`: presence through the cluster's [`PresenceStore`]: first
//!   join and last leave decided by the engine, announced by one node.
//! - `occupancy.rs`: subscription counts through [`Occupancy`], so
//!   occupied/vacated and listings are cluster-wide.
//! - `lease.rs`: heartbeats in the [`NodeRegistry`]; a survivor cleans up
//!   after a dead node.
//! - `announce.rs`: lifecycle events (webhooks) once per transition, with
//!   a hold that a reopening on any node cancels.
//! - `control.rs`: requests to every node (disconnect a user, close one
//!   connection) with replies, so an answer names the nodes that did not
//!   answer; a shadow-banned user's publications to every node.
//!
//! [`PresenceStore`]: fanfare_cluster::PresenceStore
//! [`Occupancy`]: fanfare_cluster::Occupancy
//! [`NodeRegistry`]: fanfare_cluster::NodeRegistry

mod announce;
mod control;
mod lease;
mod load;
mod members;
mod occupancy;
mod receive;
mod recent;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fanfare_cluster::{Announcements, ClusterBus, NodeId, NodeRegistry, Occupancy, PresenceStore};
use tokio::sync::mpsc;

pub use control::DisconnectReport;

pub(crate) use control::{close_connection, deliver_to_others, deliver_to_users, disconnect_user};
pub(crate) use lease::{beat, leave};
pub(crate) use members::{Leave, LeaveQueue, join, leave_queue, members_of, queue_leave};
pub(crate) use occupancy::OccupancyReporter;
pub(crate) use watch::{WATCH_QUEUE, WatchCommand};

/// The engines a cluster shares, each chosen by URL in the server.
#[derive(Clone)]
pub struct ClusterEngines {
    /// This node, random per start.
    pub node: NodeId,
    pub bus: Arc<dyn ClusterBus>,
    pub presence: Arc<dyn PresenceStore>,
    pub occupancy: Arc<dyn Occupancy>,
    pub registry: Arc<dyn NodeRegistry>,
    pub announcements: Arc<dyn Announcements>,
}

/// Timings of a cluster node.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// How often the node renews its lease.
    pub heartbeat: Duration,
    /// How long after its last heartbeat a silent node counts as dead
    /// (its members are then removed by a survivor).
    pub node_lease: Duration,
    /// How often every watched channel's position is compared with the
    /// store, to catch a lost live frame on a quiet channel.
    pub position_check: Duration,
    /// How long a request to every node waits for their replies.
    pub request_timeout: Duration,
    /// The address this node is reached at, as listed by `/api/nodes`.
    pub advertise: Option<String>,
    /// The server's version, as listed by `/api/nodes`.
    pub version: String,
    /// How long `channel_vacated` and `member_removed` events wait for a
    /// reopening on any node, which cancels both (`announce.rs`); zero
    /// emits every decision at once.
    pub event_hold: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(5),
            node_lease: Duration::from_secs(15),
            position_check: Duration::from_secs(10),
            request_timeout: Duration::from_secs(2),
            advertise: None,
            version: String::new(),
            event_hold: Duration::from_secs(3),
        }
    }
}

/// The cluster side of a hub.
pub(crate) struct Cluster {
    pub engines: ClusterEngines,
    pub options: ClusterOptions,
    pub watcher: mpsc::Sender<WatchCommand>,
    pub leaves: LeaveQueue,
    pub occupancy: OccupancyReporter,
    pub requests: control::Requests,
    /// Recent publications of live channels, for resumes (`recent.rs`).
    pub recent: recent::RecentCache,
    pub holds: announce::Holds,
    /// Whether the bus link is up (for `/ready`).
    pub bus_up: AtomicBool,
    pub started_at_ms: u64,
}

impl Cluster {
    pub fn node(&self) -> &NodeId {
        &self.engines.node
    }

    pub fn bus_up(&self) -> bool {
        self.bus_up.load(Ordering::Relaxed) && self.engines.bus.is_up()
    }
}

/// Starts the cluster tasks of a hub whose `shared.cluster` is set.
pub(crate) fn start(
    shared: &Arc<crate::hub::Shared>,
    watch_rx: mpsc::Receiver<WatchCommand>,
    leaves_rx: members::LeaveReceiver,
) {
    let Some(cluster) = &shared.cluster else { return };
    let (receive_tx, receive_rx) = mpsc::channel(receive::COMMAND_QUEUE);
    let Some(bus_events) = cluster.engines.bus.events() else {
        tracing::error!("the cluster bus's events were already taken: this node receives nothing");
        return;
    };
    tokio::spawn(receive::run(shared.clone(), bus_events, receive_rx, receive_tx.clone()));
    tokio::spawn(watch::run(shared.clone(), watch_rx, receive_tx));
    tokio::spawn(members::run_leaves(shared.clone(), leaves_rx));
    tokio::spawn(occupancy::run(shared.clone()));
    tokio::spawn(lease::run(shared.clone()));
}
