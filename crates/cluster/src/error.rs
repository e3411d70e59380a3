//! The cluster engines' one error enum.

use std::sync::Arc;

/// What can go wrong talking to a cluster engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The engine cannot be reached now (connection refused or lost,
    /// timeout). Retrying later may succeed.
    #[error("the cluster engine ({backend}) is unreachable")]
    Unavailable {
        backend: &'static str,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The engine answered with an error (a failed script, a wrong type).
    #[error("the cluster engine ({backend}) refused a command")]
    Refused {
        backend: &'static str,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A stored record or a received message could not be decoded.
    #[error("corrupt cluster record {what}: {reason}")]
    Corrupt { what: &'static str, reason: String },
    /// The engine handle is shut down.
    #[error("the cluster engine is closed")]
    Closed,
    /// The engine's URL or options are not valid.
    #[error("invalid cluster option `{option}`: {reason}")]
    Config { option: &'static str, reason: String },
}

impl ClusterError {
    /// Whether the engine may answer if asked again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}
