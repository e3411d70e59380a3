//! [`RedisOccupancy`]: subscription counts per channel and node, in Redis.
//!
//! ```text
//! fanfare:{<channel>}:occupancy        HASH node -> count     (a node with 0 has no field)
//! fanfare:{occupancy}:nodes            SET  node ids          nodes that may hold counts
//! fanfare:{occupancy}:node:<node>      SET  channel names     where the node may hold a count
//! ```
//!
//! 1. `set` with a count above 0 first indexes the channel under the node
//!    (both index sets in one `MULTI`), then runs `occupancy_set.lua`,
//!    which replaces the node's count and returns the totals before and
//!    after: one script, so concurrent nodes see each transition once.
//! 2. `channels` reads the candidates from the index and keeps those whose
//!    total is above 0 (no `SCAN`).
//! 3. `remove_node` runs `occupancy_remove_node.lua` per indexed channel
//!    (nothing for a second caller), then `occupancy_forget_channels.lua`
//!    drops exactly those channels from the index, and the node once it
//!    has none.
//!
//! The index is a superset: a count set to 0 keeps its channel indexed,
//! because shrinking it could race the node's own next `set` and hide a
//! count from `remove_node`. It is emptied when the node is removed.

use std::collections::BTreeSet;
use std::sync::Arc;

use fanfare_protocol::ChannelName;
use fanfare_protocol::cluster::{KEY_PREFIX, channel_key};
use redis::aio::ConnectionManager;

use super::scripts::{self, Lua, corrupt};
use crate::{ClusterError, NodeId, Occupancy, OccupancyChange};

struct Scripts {
    set: Lua,
    remove_node: Lua,
    forget_channels: Lua,
}

impl Scripts {
    fn new() -> Self {
        Self {
            set: Lua::new("occupancy_set", include_str!("scripts/occupancy_set.lua")),
            remove_node: Lua::new("occupancy_remove_node", include_str!("scripts/occupancy_remove_node.lua")),
            forget_channels: Lua::new(
                "occupancy_forget_channels",
                include_str!("scripts/occupancy_forget_channels.lua"),
            ),
        }
    }
}

/// [`Occupancy`] on Redis. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisOccupancy {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
}

impl RedisOccupancy {
    /// Connects to the Redis at `url` with a connection of its own.
    pub async fn open(url: &str) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?))
    }

    pub(crate) fn with_connection(conn: ConnectionManager) -> Self {
        Self { conn, scripts: Arc::new(Scripts::new()) }
    }

    /// The candidate channels of every indexed node, sorted, filtered by prefix.
    async fn indexed_channels(&self, prefix: &str) -> Result<BTreeSet<String>, ClusterError> {
        let mut link = self.conn.clone();
        let nodes: Vec<String> = scripts::query(&mut link, redis::cmd("SMEMBERS").arg(nodes_key())).await?;
        if nodes.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut pipe = redis::pipe();
        for node in &nodes {
            pipe.cmd("SMEMBERS").arg(node_channels_key(&NodeId::new(node)));
        }
        let sets: Vec<Vec<String>> = scripts::query_pipe(&mut link, &pipe).await?;
        Ok(sets.into_iter().flatten().filter(|name| name.starts_with(prefix)).collect())
    }
}

fn counts_key(channel: &ChannelName) -> String {
    channel_key(channel, "occupancy")
}

fn nodes_key() -> String {
    format!("{KEY_PREFIX}:{{occupancy}}:nodes")
}

fn node_channels_key(node: &NodeId) -> String {
    format!("{KEY_PREFIX}:{{occupancy}}:node:{node}")
}

fn total(counts: &[u64]) -> u64 {
    counts.iter().sum()
}

#[async_trait::async_trait]
impl Occupancy for RedisOccupancy {
    async fn set(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        count: u64,
    ) -> Result<OccupancyChange, ClusterError> {
        let mut link = self.conn.clone();
        if count > 0 {
            let mut index = redis::pipe();
            index.atomic();
            index.cmd("SADD").arg(nodes_key()).arg(node.as_str()).ignore();
            index.cmd("SADD").arg(node_channels_key(node)).arg(channel.as_str()).ignore();
            let () = scripts::query_pipe(&mut link, &index).await?;
        }
        let mut invocation = self.scripts.set.prepare();
        invocation.key(counts_key(channel)).arg(node.as_str()).arg(count);
        let (before, after): (u64, u64) = self.scripts.set.run(&mut link, &invocation).await?;
        Ok(OccupancyChange { channel: channel.clone(), before, after })
    }

    async fn count(&self, channel: &ChannelName) -> Result<u64, ClusterError> {
        let counts: Vec<u64> =
            scripts::query(&mut self.conn.clone(), redis::cmd("HVALS").arg(counts_key(channel))).await?;
        Ok(total(&counts))
    }

    async fn channels(&self, prefix: &str) -> Result<Vec<(ChannelName, u64)>, ClusterError> {
        let names = self.indexed_channels(prefix).await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        let mut channels = Vec::with_capacity(names.len());
        for name in &names {
            let channel = ChannelName::new(name).map_err(|e| corrupt("occupancy channel", e))?;
            pipe.cmd("HVALS").arg(counts_key(&channel));
            channels.push(channel);
        }
        let counts: Vec<Vec<u64>> = scripts::query_pipe(&mut self.conn.clone(), &pipe).await?;
        Ok(channels
            .into_iter()
            .zip(counts)
            .map(|(channel, counts)| (channel, total(&counts)))
            .filter(|(_, count)| *count > 0)
            .collect())
    }

    async fn remove_node(&self, node: &NodeId) -> Result<Vec<OccupancyChange>, ClusterError> {
        let mut link = self.conn.clone();
        let index = node_channels_key(node);
        let mut names: Vec<String> = scripts::query(&mut link, redis::cmd("SMEMBERS").arg(&index)).await?;
        names.sort();
        let mut changes = Vec::new();
        for name in &names {
            let channel = ChannelName::new(name).map_err(|e| corrupt("occupancy channel", e))?;
            let mut invocation = self.scripts.remove_node.prepare();
            invocation.key(counts_key(&channel)).arg(node.as_str());
            let totals: Option<(u64, u64)> = self.scripts.remove_node.run(&mut link, &invocation).await?;
            if let Some((before, after)) = totals {
                changes.push(OccupancyChange { channel, before, after });
            }
        }
        let mut invocation = self.scripts.forget_channels.prepare();
        invocation.key(nodes_key()).key(&index).arg(node.as_str()).arg(&names);
        let () = self.scripts.forget_channels.run(&mut link, &invocation).await?;
        Ok(changes)
    }
}
