//! The engines a cluster of Fanfare nodes shares, each behind a trait.
//!
//! In a cluster the history store (`fanfare-store`) assigns offsets and,
//! in the same atomic step, publishes each channel's durable publications
//! as live frames. What else nodes share lives here:
//!
//! - [`ClusterBus`] (`bus.rs`): live frames of the channels a node has
//!   subscribers for, and control messages between nodes. Lossy by
//!   contract; the hub heals gaps from history.
//! - [`PresenceStore`] (`presence.rs`): presence keyed by user, with the
//!   node holding each connection, so join/leave decisions are cluster-wide.
//! - [`Occupancy`] (`occupancy.rs`): subscription counts per channel and
//!   node, for occupied/vacated and cluster-wide channel listings.
//! - [`Announcements`] (`announcements.rs`): what webhook listeners were
//!   told, so a closing held on one node is cancelled by a reopening on
//!   another.
//! - [`NodeRegistry`] (`registry.rs`): live nodes with leases; each expired
//!   node is claimed by exactly one survivor, which cleans up after it.
//! - [`DeadLetterLog`] (`dead_letters.rs`): webhook batches never accepted,
//!   one bounded log for the whole cluster.
//! - [`RateLimits`] (`rate_limits.rs`): publish token buckets per channel
//!   and per user, and slow mode, so a limit holds for the whole cluster.
//! - [`Sanctions`] (`sanctions.rs`): bans and mutes with their expiry,
//!   kept across restarts.
//! - [`WebhookJournal`] (`webhook_journal.rs`): webhook batches not yet
//!   delivered, per node; released on a clean stop, adopted by the node
//!   that claims a dead one.
//!
//! Implementations: `redis` (Redis 7, standalone; keys of a channel share
//! its hash tag). Each trait has a conformance suite (`conformance`) that
//! every implementation runs.

mod announcements;
mod bus;
pub mod conformance;
mod dead_letters;
mod error;
mod node;
mod occupancy;
mod presence;
mod rate_limits;
pub mod redis;
mod registry;
mod sanctions;
mod webhook_journal;

pub use announcements::{Announced, Announcements};
pub use bus::{BusEvent, ClusterBus};
pub use dead_letters::DeadLetterLog;
pub use error::ClusterError;
pub use node::{NodeId, NodeInfo};
pub use occupancy::{Occupancy, OccupancyChange};
pub use presence::{PresenceChange, PresenceStore};
pub use rate_limits::{Admission, Bucket, Rate, RateLimits, SlowModeAdmission};
pub use registry::NodeRegistry;
pub use sanctions::{Sanction, SanctionKind, Sanctions, Scope};
pub use webhook_journal::WebhookJournal;
