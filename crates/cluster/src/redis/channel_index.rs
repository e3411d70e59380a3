//! [`ChannelIndex`]: the channels where a node may hold something, so that
//! `remove_node` finds them without `SCAN`.
//!
//! The index is a HASH channel → token, in its own slot, so it cannot
//! change in the same script as the channel's keys. Tokens make the
//! separate steps safe:
//!
//! 1. Before and again after a channel script that adds the node's state,
//!    [`mark`](ChannelIndex::mark) writes a fresh random token (before: so
//!    a crash right after the script leaves the channel indexed; after: so
//!    a concurrent removal that read the old token keeps the entry).
//! 2. Whoever empties the node's state in a channel first [`read`s
//!    ](ChannelIndex::token) the token, runs the channel script, then
//!    [`forget`s](ChannelIndex::forget) the entry only if the token is
//!    unchanged: a mark in between (a join racing a leave, or a resurrected
//!    node racing its own removal) keeps it.
//!
//! So an entry is only dropped when no one re-marked it since the channel
//! was seen empty. The one window left: a mark before the read, its
//! channel script after the emptying one, and the node dying before its
//! second mark.

use redis::aio::ConnectionManager;

use super::scripts::{self, Lua};
use crate::{ClusterError, NodeId};

pub(crate) struct ChannelIndex {
    mark: Lua,
    forget: Lua,
}

/// Where one node's index lives.
pub(crate) struct IndexKeys {
    /// HASH channel → token.
    pub(crate) index: String,
    /// SET of the nodes with an index (same slot), if listings need one.
    pub(crate) nodes: Option<String>,
}

impl IndexKeys {
    fn add_to(&self, invocation: &mut redis::ScriptInvocation<'_>) {
        invocation.key(&self.index);
        if let Some(nodes) = &self.nodes {
            invocation.key(nodes);
        }
    }
}

impl ChannelIndex {
    pub(crate) fn new() -> Self {
        Self {
            mark: Lua::new("index_mark", include_str!("scripts/index_mark.lua")),
            forget: Lua::new("index_forget", include_str!("scripts/index_forget.lua")),
        }
    }

    /// Marks `channel` with a fresh token.
    pub(crate) async fn mark(
        &self,
        conn: &mut ConnectionManager,
        keys: &IndexKeys,
        node: &NodeId,
        channel: &str,
    ) -> Result<(), ClusterError> {
        let mut invocation = self.mark.prepare();
        keys.add_to(&mut invocation);
        invocation.arg(channel).arg(format!("{:016x}", rand::random::<u64>())).arg(node.as_str());
        self.mark.run(conn, &invocation).await
    }

    /// The token of `channel`, if it is indexed.
    pub(crate) async fn token(
        &self,
        conn: &mut ConnectionManager,
        keys: &IndexKeys,
        channel: &str,
    ) -> Result<Option<String>, ClusterError> {
        scripts::query(conn, redis::cmd("HGET").arg(&keys.index).arg(channel)).await
    }

    /// Every indexed channel with its token.
    pub(crate) async fn entries(
        &self,
        conn: &mut ConnectionManager,
        keys: &IndexKeys,
    ) -> Result<Vec<(String, String)>, ClusterError> {
        let mut entries: Vec<(String, String)> =
            scripts::query(conn, redis::cmd("HGETALL").arg(&keys.index)).await?;
        entries.sort();
        Ok(entries)
    }

    /// Drops each `(channel, token)` whose token is unchanged.
    pub(crate) async fn forget(
        &self,
        conn: &mut ConnectionManager,
        keys: &IndexKeys,
        node: &NodeId,
        entries: &[(String, String)],
    ) -> Result<(), ClusterError> {
        let mut invocation = self.forget.prepare();
        keys.add_to(&mut invocation);
        invocation.arg(node.as_str());
        for (channel, token) in entries {
            invocation.arg(channel).arg(token);
        }
        self.forget.run(conn, &invocation).await
    }
}
