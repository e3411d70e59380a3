//! The [`NodeRegistry`]: which nodes are alive.

use std::time::Duration;

use crate::{ClusterError, NodeId, NodeInfo};

/// Live nodes, each with a lease it renews by heartbeat.
///
/// # Contract
/// - **Lease.** A node is live from its first
///   [`heartbeat`](NodeRegistry::heartbeat) until `lease` after its latest
///   one, judged by the engine's clock (not the nodes'), or until it
///   [`leave`](NodeRegistry::leave)s.
/// - **Expired once.** [`claim_expired`](NodeRegistry::claim_expired)
///   returns every node whose lease has run out and removes it: each
///   expired node is returned to exactly one caller, ever, which must
///   clean up after it (presence, occupancy), then release it with
///   [`leave`](NodeRegistry::leave).
/// - **Resurrection is visible, after the clean-up.** A heartbeat answers
///   `false` when the registration it finds is not the one the previous
///   answered heartbeat of this handle found: the node's first, or one
///   after it expired and was claimed — even when a heartbeat the node
///   gave up on (timed out in a partition) reached the engine late and
///   registered it again first. The node must then announce again what it
///   holds. While a claimer has not released it yet (for a
///   bounded time, should the claimer die), a heartbeat of a claimed node
///   (back from a long pause) answers `true` and does not register it: a
///   paused node records its members again only after its claimer removed
///   them, so the removal never undoes the new record.
/// - **Listing.** [`nodes`](NodeRegistry::nodes) returns the live nodes,
///   sorted by id, as their last heartbeat described them.
#[async_trait::async_trait]
pub trait NodeRegistry: Send + Sync + 'static {
    /// Registers or renews `info.id` for `lease`; `false` when the node
    /// is registered anew since this handle's previous answered heartbeat
    /// of it (see the contract), `true` when not, or when it is claimed and
    /// not released yet (and so still not registered).
    async fn heartbeat(&self, info: &NodeInfo, lease: Duration) -> Result<bool, ClusterError>;

    /// The live nodes.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError>;

    /// Claims the nodes whose lease has expired.
    async fn claim_expired(&self) -> Result<Vec<NodeId>, ClusterError>;

    /// Removes `node` at once (a clean stop), or releases a claimed node
    /// once its claimer has cleaned up after it.
    async fn leave(&self, node: &NodeId) -> Result<(), ClusterError>;
}
