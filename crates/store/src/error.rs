//! The store's one error enum.

use std::sync::Arc;

/// What can go wrong in a history store.
///
/// `Clone` because one failed group commit fails every receipt of its batch
/// with the same error; the engine's error is therefore kept behind an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store is shut down or its writer is gone.
    #[error("the history store is closed")]
    Closed,
    /// The storage engine failed (disk error, failed fsync, engine poisoned
    /// by an earlier failure). The engine's own error is the source.
    #[error("the {backend} history storage failed")]
    Storage {
        /// Which implementation failed: `"embedded"`, `"redis"`, …
        backend: &'static str,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A stored record could not be decoded.
    #[error("stored record {key} in {keyspace} is corrupt: {reason}")]
    Corrupt {
        /// Where the record lives (a keyspace, a table, a stream).
        keyspace: &'static str,
        /// The record's key, printable (`chat:x@42`, `chat:x`).
        key: String,
        reason: &'static str,
    },
    /// The store's options are not valid.
    #[error("invalid history store option `{option}`: {reason}")]
    Config { option: &'static str, reason: &'static str },
}

impl StoreError {
    /// Wraps an engine error of the named backend.
    pub fn storage(backend: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Storage { backend, source: Arc::new(source) }
    }
}
