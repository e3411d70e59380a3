//! [`Occupancy`]: how many subscriptions each channel has, cluster-wide.

use fanfare_protocol::ChannelName;

use crate::{ClusterError, NodeId};

/// A channel's cluster-wide subscription count before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupancyChange {
    pub channel: ChannelName,
    pub before: u64,
    pub after: u64,
}

impl OccupancyChange {
    /// The channel got its first subscription anywhere.
    pub fn occupied(&self) -> bool {
        self.before == 0 && self.after > 0
    }

    /// The channel lost its last subscription anywhere.
    pub fn vacated(&self) -> bool {
        self.before > 0 && self.after == 0
    }
}

/// Subscription counts per channel and node.
///
/// # Contract
/// - **Exact transitions.** [`set`](Occupancy::set) replaces `node`'s count
///   for the channel and returns the cluster-wide total before and after,
///   atomically: of any set of concurrent calls, exactly one sees a
///   channel become occupied (`0 → n`) and exactly one sees it vacated
///   (`n → 0`) for each such transition.
/// - **Listing.** [`channels`](Occupancy::channels) lists every channel
///   with a non-zero total whose name starts with `prefix`, sorted by name.
/// - **Dead nodes.** [`remove_node`](Occupancy::remove_node) drops every
///   count `node` held and returns one change per channel it held,
///   exactly once even if called concurrently for the same node.
#[async_trait::async_trait]
pub trait Occupancy: Send + Sync + 'static {
    /// Sets `node`'s subscription count for `channel` (0 removes it).
    async fn set(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        count: u64,
    ) -> Result<OccupancyChange, ClusterError>;

    /// The channel's cluster-wide subscription count.
    async fn count(&self, channel: &ChannelName) -> Result<u64, ClusterError>;

    /// Occupied channels by name, with their counts.
    async fn channels(&self, prefix: &str) -> Result<Vec<(ChannelName, u64)>, ClusterError>;

    /// Drops everything `node` held; returns the changes to announce.
    async fn remove_node(&self, node: &NodeId) -> Result<Vec<OccupancyChange>, ClusterError>;
}
