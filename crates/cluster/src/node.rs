//! Who a node is, and what it reports about itself.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A node's identity: random for every start of the process, so a
/// restarted node is a new node and never inherits a dead one's lease.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// A fresh random id (16 hex digits).
    pub fn random() -> Self {
        Self(format!("{:016x}", rand::random::<u64>()).into())
    }

    pub fn new(id: &str) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A node as `GET /api/nodes` shows it; written at every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    /// The address clients or operators reach it at (`cluster.advertise`).
    pub advertise: Option<String>,
    pub version: String,
    /// When the process started, in ms since the Unix epoch.
    pub started_at_ms: u64,
    /// When it last wrote this record, in ms since the Unix epoch (the
    /// engine's clock where the engine has one).
    pub heartbeat_ms: u64,
    pub connections: u64,
    pub subscriptions: u64,
    pub channels: u64,
}
