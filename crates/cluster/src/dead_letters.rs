//! [`DeadLetterLog`]: webhook batches that were never accepted, kept where
//! an operator can list them.
//!
//! A single node writes them to a file in its data directory
//! (`fanfare` `webhooks/dead_letters.rs`); a cluster keeps one log
//! in its engine, so `GET /api/webhooks/dead_letters` on any node lists
//! every node's letters, and a node's letters outlive the node.

use bytes::Bytes;

use crate::ClusterError;

/// A bounded log of dead letters. A letter is opaque to the log: one JSON
/// object, encoded on one line (no `\n` byte).
///
/// # Contract
/// - [`append`](DeadLetterLog::append) stores one letter; once it answers
///   `Ok`, [`recent`](DeadLetterLog::recent) on every handle of the same
///   engine lists it.
/// - `recent(limit)` answers at most `limit` letters, newest first, each
///   byte for byte as appended.
/// - The log is bounded by a size in bytes given when it is opened. Past
///   it, the oldest letters are dropped first, whole (a letter is never
///   cut); the newest letter is kept whatever its size, and the letters
///   kept besides total at most twice the bound.
/// - Appends from several handles at once are each kept whole and listed
///   once.
#[async_trait::async_trait]
pub trait DeadLetterLog: Send + Sync + 'static {
    async fn append(&self, letter: Bytes) -> Result<(), ClusterError>;
    async fn recent(&self, limit: usize) -> Result<Vec<Bytes>, ClusterError>;
}
