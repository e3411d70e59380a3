//! The [`PresenceStore`]: a channel's members, cluster-wide.

use fanfare_protocol::native::Member;
use fanfare_protocol::{ChannelName, UserId};

use crate::{ClusterError, NodeId};

/// A presence transition one node must announce (`join`/`leave` pushes,
/// `member_added`/`member_removed` webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    pub channel: ChannelName,
    pub member: Member,
}

/// Presence keyed by user, with the node and connection behind every
/// membership.
///
/// # Contract
/// - **First and last, cluster-wide.** [`join`](PresenceStore::join)
///   answers `true` exactly when the user had no connection in the channel
///   on any node; [`leave`](PresenceStore::leave) answers `true` exactly
///   when it removed the user's last. Concurrent calls from several nodes
///   for one user are serialised: of two simultaneous first joins one
///   answers `true`, of two simultaneous last leaves one answers `true`.
/// - **Idempotent.** Joining the same `(node, conn)` twice counts once;
///   leaving a connection that is not there answers `false`.
/// - **Members** lists each user once, with the info of their first
///   connection and their id in the JSON type it was sent in.
/// - **Dead nodes.** [`remove_node`](PresenceStore::remove_node) removes
///   every connection the node held and returns the members whose last
///   connection that was, each exactly once even if several nodes call it
///   at once for the same node.
#[async_trait::async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Adds connection `conn` of `member` held by `node`; `true` when it is
    /// the user's first connection in the channel.
    async fn join(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        member: &Member,
        conn: u64,
    ) -> Result<bool, ClusterError>;

    /// Removes connection `conn` of `user` held by `node`; `true` when it
    /// was the user's last connection in the channel.
    async fn leave(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        user: &UserId,
        conn: u64,
    ) -> Result<bool, ClusterError>;

    /// [`join`](PresenceStore::join), and when it is the user's first
    /// connection, `push` (a live frame) published on the channel's live
    /// topic in the same atomic step: the join and leave pushes of one
    /// channel reach every node in the order the engine decided them, even
    /// when a leave decided on one node is followed at once by a join on
    /// another.
    async fn join_pushing(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        member: &Member,
        conn: u64,
        push: Option<Vec<u8>>,
    ) -> Result<bool, ClusterError>;

    /// [`leave`](PresenceStore::leave), publishing `push` when it was the
    /// user's last connection, as [`join_pushing`](PresenceStore::join_pushing).
    async fn leave_pushing(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        user: &UserId,
        conn: u64,
        push: Option<Vec<u8>>,
    ) -> Result<bool, ClusterError>;

    /// The channel's members, sorted by user id.
    async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, ClusterError>;

    /// Removes everything `node` held; returns the leaves to announce.
    async fn remove_node(&self, node: &NodeId) -> Result<Vec<PresenceChange>, ClusterError>;
}
