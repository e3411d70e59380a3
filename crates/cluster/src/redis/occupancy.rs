//! [`RedisOccupancy`]: subscription counts per channel and node, in Redis.
//!
//! ```text
//! fanfare:{<channel>}:occupancy        HASH node -> count       (a node with 0 has no field)
//! fanfare:{occupancy}:nodes            SET  node ids            nodes with an index
//! fanfare:{occupancy}:node:<node>      HASH channel -> token    where the node holds a count
//! ```
//!
//! 1. `set` runs `occupancy_set.lua`, which replaces the node's count and
//!    returns the totals before and after: one script, so concurrent nodes
//!    see each transition once. Around it the node's index is kept
//!    (`channel_index.rs`): a count above 0 marks the channel before and
//!    after the script; a count of 0 forgets it unless marked meanwhile.
//! 2. `channels` reads the candidates from the indexes and keeps those
//!    whose total is above 0 (no `SCAN`).
//! 3. `remove_node` runs `occupancy_remove_node.lua` per indexed channel
//!    (nothing for a second caller), then forgets those channels, and the
//!    node once its index is empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use fanfare_protocol::ChannelName;
use fanfare_protocol::cluster::{KEY_PREFIX, channel_key};
use redis::aio::ConnectionManager;

use super::channel_index::{ChannelIndex, IndexKeys};
use super::scripts::{self, Lua, corrupt};
use crate::{ClusterError, NodeId, Occupancy, OccupancyChange};

struct Scripts {
    set: Lua,
    remove_node: Lua,
    index: ChannelIndex,
}

impl Scripts {
    fn new() -> Self {
        Self {
            set: Lua::new("occupancy_set", include_str!("scripts/occupancy_set.lua")),
            remove_node: Lua::new("occupancy_remove_node", include_str!("scripts/occupancy_remove_node.lua")),
            index: ChannelIndex::new(),
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

    /// Runs `occupancy_set.lua`: the totals before and after.
    async fn replace_count(
        &self,
        link: &mut ConnectionManager,
        node: &NodeId,
        channel: &ChannelName,
        count: u64,
    ) -> Result<(u64, u64), ClusterError> {
        let mut invocation = self.scripts.set.prepare();
        invocation.key(counts_key(channel)).arg(node.as_str()).arg(count);
        self.scripts.set.run(link, &invocation).await
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
            pipe.cmd("HKEYS").arg(index_keys(&NodeId::new(node)).index);
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

fn index_keys(node: &NodeId) -> IndexKeys {
    IndexKeys { index: format!("{KEY_PREFIX}:{{occupancy}}:node:{node}"), nodes: Some(nodes_key()) }
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
        let (mut link, index) = (self.conn.clone(), index_keys(node));
        let (before, after) = if count > 0 {
            self.scripts.index.mark(&mut link, &index, node, channel.as_str()).await?;
            let totals = self.replace_count(&mut link, node, channel, count).await?;
            self.scripts.index.mark(&mut link, &index, node, channel.as_str()).await?;
            totals
        } else {
            let token = self.scripts.index.token(&mut link, &index, channel.as_str()).await?;
            let totals = self.replace_count(&mut link, node, channel, 0).await?;
            if let Some(token) = token {
                let entry = [(channel.as_str().to_owned(), token)];
                self.scripts.index.forget(&mut link, &index, node, &entry).await?;
            }
            totals
        };
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
        let (mut link, index) = (self.conn.clone(), index_keys(node));
        let entries = self.scripts.index.entries(&mut link, &index).await?;
        let mut changes = Vec::new();
        for (name, _) in &entries {
            let channel = ChannelName::new(name).map_err(|e| corrupt("occupancy channel", e))?;
            let mut invocation = self.scripts.remove_node.prepare();
            invocation.key(counts_key(&channel)).arg(node.as_str());
            let totals: Option<(u64, u64)> = self.scripts.remove_node.run(&mut link, &invocation).await?;
            if let Some((before, after)) = totals {
                changes.push(OccupancyChange { channel, before, after });
            }
        }
        // Also when empty: the node leaves the set of indexed nodes.
        self.scripts.index.forget(&mut link, &index, node, &entries).await?;
        Ok(changes)
    }
}
