//! [`WebhookJournal`]: webhook batches accepted for delivery and not yet
//! delivered nor given up on, kept so that a restart or a node's death
//! loses none.
//!
//! A single node keeps them as files in its data directory (`fanfare`
//! `webhooks/journal.rs`): its next start finds them. A cluster
//! keeps each node's in its engine: a node that stops cleanly releases
//! them to whichever node adopts next, and the node that claims a dead
//! node's lease adopts that node's.

use bytes::Bytes;

use crate::{ClusterError, NodeId};

/// The pending webhook batches of one node. A record is opaque to the
/// journal; its id is unique (a UUID).
///
/// # Contract
/// - **Kept until removed.** [`put`](WebhookJournal::put) keeps `record`
///   under `id` for this handle's node, replacing a record of the same id;
///   [`remove`](WebhookJournal::remove) forgets it (forgetting what is not
///   there is no error).
/// - **Released on a clean stop.** [`release`](WebhookJournal::release)
///   hands every record this handle's node keeps to the pool of released
///   records; the handle keeps none after it.
/// - **Adopted once.** [`adopt`](WebhookJournal::adopt)`(dead)` moves to
///   this handle's node, and returns byte for byte, every released record
///   and every record of the nodes in `dead` (nodes the registry declared
///   dead and this node claimed). Each record is returned to exactly one
///   adopter, however many adopt at once; the adopter then keeps it (and
///   removes it once delivered or given up on).
/// - **A live node's records stay its own**: `adopt` never returns a
///   record of a node that is not in `dead` and has not released it. (A
///   single node's journal has one node at a time — the data directory's
///   lock sees to that — so there everything on disk that this handle did
///   not put counts as released: the records of an earlier run, however it
///   ended.)
#[async_trait::async_trait]
pub trait WebhookJournal: Send + Sync + 'static {
    async fn put(&self, id: &str, record: Bytes) -> Result<(), ClusterError>;
    async fn remove(&self, id: &str) -> Result<(), ClusterError>;
    async fn release(&self) -> Result<(), ClusterError>;
    async fn adopt(&self, dead: &[NodeId]) -> Result<Vec<(String, Bytes)>, ClusterError>;
}
