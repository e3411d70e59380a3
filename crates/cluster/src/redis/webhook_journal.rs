//! [`RedisWebhookJournal`]: each node's pending webhook batches, in Redis.
//!
//! ```text
//! fanfare:{webhooks}:journal:NODE      HASH id -> record, the node's own
//! fanfare:{webhooks}:journal_released  HASH id -> record, released by
//!                                      nodes that stopped cleanly
//! ```
//!
//! `journal_move.lua` moves hashes into another whole and returns what it
//! moved, so release and adoption are each one atomic step. Every key
//! shares the `{webhooks}` hash tag.

use std::sync::Arc;

use bytes::Bytes;
use fanfare_protocol::cluster::KEY_PREFIX;
use redis::aio::ConnectionManager;

use super::scripts::{self, Lua};
use crate::{ClusterError, NodeId, WebhookJournal};

/// [`WebhookJournal`] on Redis for one node. Cheap to clone.
#[derive(Clone)]
pub struct RedisWebhookJournal {
    conn: ConnectionManager,
    node: NodeId,
    script: Arc<Lua>,
}

impl RedisWebhookJournal {
    /// Connects to the Redis at `url`, as the journal of `node`.
    pub async fn open(url: &str, node: NodeId) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?, node))
    }

    pub(crate) fn with_connection(conn: ConnectionManager, node: NodeId) -> Self {
        let script = Lua::new("journal_move", include_str!("scripts/journal_move.lua"));
        Self { conn, node, script: Arc::new(script) }
    }

    async fn move_into(
        &self,
        destination: String,
        sources: &[String],
    ) -> Result<Vec<(String, Bytes)>, ClusterError> {
        let mut invocation = self.script.prepare();
        invocation.key(destination);
        for source in sources {
            invocation.key(source);
        }
        let flat: Vec<Vec<u8>> = self.script.run(&mut self.conn.clone(), &invocation).await?;
        let mut moved = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(id), Some(record)) = (flat.next(), flat.next()) {
            let id = String::from_utf8(id).map_err(|_| ClusterError::Corrupt {
                what: "webhook journal",
                reason: "an id is not UTF-8".into(),
            })?;
            moved.push((id, Bytes::from(record)));
        }
        Ok(moved)
    }
}

fn node_key(node: &NodeId) -> String {
    format!("{KEY_PREFIX}:{{webhooks}}:journal:{node}")
}

fn released_key() -> String {
    format!("{KEY_PREFIX}:{{webhooks}}:journal_released")
}

#[async_trait::async_trait]
impl WebhookJournal for RedisWebhookJournal {
    async fn put(&self, id: &str, record: Bytes) -> Result<(), ClusterError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(node_key(&self.node)).arg(id).arg(record.as_ref());
        scripts::query::<u64>(&mut self.conn.clone(), &cmd).await.map(drop)
    }

    async fn remove(&self, id: &str) -> Result<(), ClusterError> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(node_key(&self.node)).arg(id);
        scripts::query::<u64>(&mut self.conn.clone(), &cmd).await.map(drop)
    }

    async fn release(&self) -> Result<(), ClusterError> {
        self.move_into(released_key(), &[node_key(&self.node)]).await.map(drop)
    }

    async fn adopt(&self, dead: &[NodeId]) -> Result<Vec<(String, Bytes)>, ClusterError> {
        let mut sources = vec![released_key()];
        sources.extend(dead.iter().filter(|node| **node != self.node).map(node_key));
        self.move_into(node_key(&self.node), &sources).await
    }
}
