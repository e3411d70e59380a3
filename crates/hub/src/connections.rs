//! Every live connection of this node, so the server can reach them by
//! user (`POST /api/disconnect`), one by one (a moderator's kick) or all
//! at once (shutdown).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::outbox::{CloseReason, Outbox};
use crate::registry::ConnId;

const SHARDS: usize = 32;

pub struct Connections {
    shards: Box<[Mutex<HashMap<ConnId, Registered>>]>,
    next_id: AtomicU64,
}

/// How full the outboxes of this node are (see [`Connections::outbox_depth`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    pub frames: usize,
    pub largest: usize,
}

struct Registered {
    user: Arc<str>,
    outbox: Arc<Outbox>,
}

impl Default for Connections {
    fn default() -> Self {
        // Random high bits make ids unique across the nodes of a cluster
        // too (a Pusher `socket_id` exclusion travels to every node).
        let first = (u64::from(rand::random::<u32>() >> 1) << 32) | 1;
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_id: AtomicU64::new(first),
        }
    }
}

impl Connections {
    /// A fresh connection id, never 0, unique within the cluster with
    /// overwhelming probability.
    pub fn next_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register(&self, conn: ConnId, user: Arc<str>, outbox: Arc<Outbox>) {
        self.shard(conn).lock().insert(conn, Registered { user, outbox });
    }

    pub fn unregister(&self, conn: ConnId) {
        self.shard(conn).lock().remove(&conn);
    }

    /// Closes every connection of `user`; returns how many.
    pub fn close_user(&self, user: &str, reason: CloseReason) -> usize {
        let mut closed = 0;
        for shard in self.shards.iter() {
            for registered in shard.lock().values().filter(|r| &*r.user == user) {
                registered.outbox.close(reason);
                closed += 1;
            }
        }
        closed
    }

    /// Closes the connection `conn`, if it is on this node; returns how
    /// many were closed (0 or 1).
    pub fn close_connection(&self, conn: ConnId, reason: CloseReason) -> usize {
        match self.shard(conn).lock().get(&conn) {
            Some(registered) => {
                registered.outbox.close(reason);
                1
            }
            None => 0,
        }
    }

    /// The connections of this node registered under any of `users`.
    /// Goes through every connection: for rare uses (a shadow-banned
    /// user's publication), not for every publication.
    pub fn ids_of(&self, users: &[String]) -> HashSet<ConnId> {
        let mut ids = HashSet::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            ids.extend(shard.iter().filter(|(_, r)| users.iter().any(|u| **u == *r.user)).map(|(id, _)| *id));
        }
        ids
    }

    /// Closes every connection, each with the reason `reason_for` gives
    /// (shutdown spreads reconnects with a per-connection delay).
    pub fn close_all(&self, mut reason_for: impl FnMut() -> CloseReason) -> usize {
        let mut closed = 0;
        for shard in self.shards.iter() {
            for registered in shard.lock().values() {
                registered.outbox.close(reason_for());
                closed += 1;
            }
        }
        closed
    }

    /// Frames waiting in every outbox of this node, and in the fullest
    /// one. Frames a connection has taken from its outbox but not yet
    /// written are not counted (at most one batch per connection).
    pub fn outbox_depth(&self) -> OutboxDepth {
        let mut depth = OutboxDepth::default();
        for shard in self.shards.iter() {
            for registered in shard.lock().values() {
                let frames = registered.outbox.len();
                depth.frames += frames;
                depth.largest = depth.largest.max(frames);
            }
        }
        depth
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, conn: ConnId) -> &Mutex<HashMap<ConnId, Registered>> {
        &self.shards[conn as usize % SHARDS]
    }
}
