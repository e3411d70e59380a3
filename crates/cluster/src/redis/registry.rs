//! [`RedisRegistry`]: live nodes with leases, judged by Redis's clock.
//!
//! ```text
//! fanfare:{nodes}:leases   ZSET node -> lease expiry (ms, Redis TIME)
//! fanfare:{nodes}:info     HASH node -> "<heartbeat ms> <NodeInfo JSON>"
//! fanfare:{nodes}:claims   HASH node -> ms until which its claim holds
//! fanfare:{nodes}:lives    HASH node -> its life: Redis TIME (ms) of its registration
//! fanfare:{nodes}:last_life  the last life given (lives only grow)
//! ```
//!
//! The keys share the `{nodes}` hash tag so every script touches one
//! slot. Each script reads `TIME` itself: nodes' clocks never decide a
//! lease. `registry_claim_expired.lua` removes what it returns, so of
//! concurrent claimers each expired node goes to one, and records a claim
//! for it; while the claim holds (until the claimer's `leave`, at most
//! `CLAIM_HOLD`, 30 s) `registry_heartbeat.lua` answers 1 without registering
//! the node, so a node that was only paused records its members again
//! after its claimer removed them, never before.
//!
//! A heartbeat answers the node's *life*, the time of the registration it
//! found, and the handle remembers the life its last answered heartbeat
//! saw: a different one means the node was registered anew meanwhile.
//! Comparing lives, not asking "was it registered before this call",
//! matters after a silent partition: heartbeats the node gave up on
//! (timed out) may still reach Redis when the link heals, and the first of
//! them re-registers the node with nobody reading the answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::cluster::KEY_PREFIX;
use metrics::counter;
use redis::aio::ConnectionManager;

use super::scripts::{self, Lua, corrupt};
use crate::{ClusterError, NodeId, NodeInfo, NodeRegistry};

/// How long a claim holds at most: a claimer that dies while cleaning up
/// delays a paused node's coming back by this much, no more.
const CLAIM_HOLD: Duration = Duration::from_secs(30);

struct Scripts {
    heartbeat: Lua,
    nodes: Lua,
    claim_expired: Lua,
    leave: Lua,
}

impl Scripts {
    fn new() -> Self {
        Self {
            heartbeat: Lua::new("registry_heartbeat", include_str!("scripts/registry_heartbeat.lua")),
            nodes: Lua::new("registry_nodes", include_str!("scripts/registry_nodes.lua")),
            claim_expired: Lua::new(
                "registry_claim_expired",
                include_str!("scripts/registry_claim_expired.lua"),
            ),
            leave: Lua::new("registry_leave", include_str!("scripts/registry_leave.lua")),
        }
    }
}

/// [`NodeRegistry`] on Redis. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisRegistry {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    /// The life each node's last answered heartbeat through this handle saw.
    lives: Arc<parking_lot::Mutex<HashMap<NodeId, i64>>>,
}

impl RedisRegistry {
    /// Connects to the Redis at `url` with a connection of its own.
    pub async fn open(url: &str) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?))
    }

    pub(crate) fn with_connection(conn: ConnectionManager) -> Self {
        Self { conn, scripts: Arc::new(Scripts::new()), lives: Arc::default() }
    }

    fn invocation<'a>(&self, script: &'a Lua) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare();
        invocation
            .key(format!("{KEY_PREFIX}:{{nodes}}:leases"))
            .key(format!("{KEY_PREFIX}:{{nodes}}:info"))
            .key(format!("{KEY_PREFIX}:{{nodes}}:claims"))
            .key(format!("{KEY_PREFIX}:{{nodes}}:lives"))
            .key(format!("{KEY_PREFIX}:{{nodes}}:last_life"));
        invocation
    }
}

/// `"<heartbeat ms> <json>"`: the heartbeat time is Redis's, written by the
/// script, and replaces whatever the node put in `heartbeat_ms`.
fn decode_record(record: &str) -> Result<NodeInfo, ClusterError> {
    let (heartbeat_ms, json) = record.split_once(' ').ok_or_else(|| corrupt("node record", "no space"))?;
    let heartbeat_ms = heartbeat_ms.parse().map_err(|e| corrupt("node record", e))?;
    let info: NodeInfo = serde_json::from_str(json).map_err(|e| corrupt("node record", e))?;
    Ok(NodeInfo { heartbeat_ms, ..info })
}

#[async_trait::async_trait]
impl NodeRegistry for RedisRegistry {
    async fn heartbeat(&self, info: &NodeInfo, lease: Duration) -> Result<bool, ClusterError> {
        let json = serde_json::to_string(info).expect("node info always serializes");
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = self.invocation(&self.scripts.heartbeat);
        invocation.arg(info.id.as_str()).arg(lease_ms).arg(json);
        let life: i64 = self.scripts.heartbeat.run(&mut self.conn.clone(), &invocation).await?;
        if life < 0 {
            // Claimed, its claimer still cleaning up: wait, announce nothing yet.
            return Ok(true);
        }
        let before = self.lives.lock().insert(info.id.clone(), life);
        Ok(before == Some(life))
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        let invocation = self.invocation(&self.scripts.nodes);
        let records: Vec<String> = self.scripts.nodes.run(&mut self.conn.clone(), &invocation).await?;
        let mut nodes = records.iter().map(|record| decode_record(record)).collect::<Result<Vec<_>, _>>()?;
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    async fn claim_expired(&self) -> Result<Vec<NodeId>, ClusterError> {
        let mut invocation = self.invocation(&self.scripts.claim_expired);
        invocation.arg(u64::try_from(CLAIM_HOLD.as_millis()).unwrap_or(u64::MAX));
        let expired: Vec<String> =
            self.scripts.claim_expired.run(&mut self.conn.clone(), &invocation).await?;
        counter!("fanfare_cluster_lease_expiries_total").increment(expired.len() as u64);
        let mut expired: Vec<NodeId> = expired.iter().map(|id| NodeId::new(id)).collect();
        expired.sort();
        Ok(expired)
    }

    async fn leave(&self, node: &NodeId) -> Result<(), ClusterError> {
        let mut invocation = self.invocation(&self.scripts.leave);
        invocation.arg(node.as_str());
        self.scripts.leave.run(&mut self.conn.clone(), &invocation).await
    }
}
