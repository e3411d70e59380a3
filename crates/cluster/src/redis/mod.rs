//! Redis implementations of the cluster engines.
//!
//! [`RedisBus`] is the live bus (one pub/sub connection per node);
//! [`RedisEngines::open`] gives the presence store, occupancy, node
//! registry, announcements and dead letters over one multiplexed connection; each also has an `open` of
//! its own (a connection each, as a separate node would have).

mod announcements;
mod bus;
mod channel_index;
mod dead_letters;
mod occupancy;
mod presence;
mod rate_limits;
mod registry;
mod sanctions;
mod scripts;
mod webhook_journal;

pub use announcements::RedisAnnouncements;
pub use bus::{RedisBus, RedisBusOptions};
pub use dead_letters::RedisDeadLetters;
pub use occupancy::RedisOccupancy;
pub use presence::RedisPresence;
pub use rate_limits::RedisRateLimits;
pub use registry::RedisRegistry;
pub use sanctions::RedisSanctions;
pub use webhook_journal::RedisWebhookJournal;

use crate::ClusterError;

/// How many bytes of dead letters the cluster keeps (32 MiB, as much as a
/// single node's file and its rotated copy).
pub const DEAD_LETTER_BOUND: u64 = 32 << 20;

/// The Redis engines of one node, sharing one connection (which
/// reconnects by itself).
#[derive(Clone)]
pub struct RedisEngines {
    pub presence: RedisPresence,
    pub occupancy: RedisOccupancy,
    pub registry: RedisRegistry,
    pub announcements: RedisAnnouncements,
    pub dead_letters: RedisDeadLetters,
    pub rate_limits: RedisRateLimits,
    pub sanctions: RedisSanctions,
}

impl RedisEngines {
    /// Connects to the Redis at `url` (`redis://host:port[/db]`). The
    /// dead-letter log keeps up to [`DEAD_LETTER_BOUND`] bytes.
    pub async fn open(url: &str) -> Result<Self, ClusterError> {
        let conn = scripts::connect(url).await?;
        Ok(Self {
            presence: RedisPresence::with_connection(conn.clone()),
            occupancy: RedisOccupancy::with_connection(conn.clone()),
            registry: RedisRegistry::with_connection(conn.clone()),
            announcements: RedisAnnouncements::with_connection(conn.clone()),
            rate_limits: RedisRateLimits::with_connection(conn.clone()),
            sanctions: RedisSanctions::with_connection(conn.clone()),
            dead_letters: RedisDeadLetters::with_connection(conn, DEAD_LETTER_BOUND),
        })
    }

    /// The webhook journal of `node`, on the same connection.
    pub fn webhook_journal(&self, node: crate::NodeId) -> RedisWebhookJournal {
        RedisWebhookJournal::with_connection(self.dead_letters.connection(), node)
    }
}
