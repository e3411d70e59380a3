//! Connections held per client address (`limits.max_connections_per_ip`,
//! counted from the upgrade) and per user (`limits.max_connections_per_user`,
//! counted from `connect` or `pusher:signin`), on this node. Each counted
//! connection holds a [`Counted`] until it closes, like the node's
//! `OpenSlot`; a key whose count falls to 0 is removed, so the map holds
//! only keys with open connections.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use fanfare_protocol::{ErrorCode, ErrorInfo};
use parking_lot::Mutex;

/// How long a refusal for a held limit advises to wait: a connection of
/// the same address or user has to close first, which takes a person.
pub(crate) const HELD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Open connections per key, against one limit (0: none, and then nothing
/// is counted).
pub struct ConnectionCounts<K: Hash + Eq> {
    max: usize,
    open: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> ConnectionCounts<K> {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, open: Mutex::new(HashMap::new()) })
    }

    /// Counts one more connection of `key`. `Ok(None)` when there is no
    /// limit; [`AtLimit`] when `key` already holds `max`.
    pub fn open(self: &Arc<Self>, key: K) -> Result<Option<Counted<K>>, AtLimit> {
        if self.max == 0 {
            return Ok(None);
        }
        let mut open = self.open.lock();
        let count = open.entry(key.clone()).or_default();
        if *count >= self.max {
            return Err(AtLimit { max: self.max });
        }
        *count += 1;
        Ok(Some(Counted { counts: self.clone(), key }))
    }

    /// Connections `key` holds.
    #[cfg(test)]
    fn held(&self, key: &K) -> usize {
        self.open.lock().get(key).copied().unwrap_or(0)
    }
}

/// A connection of `user` (non-empty), counted against
/// `limits.max_connections_per_user`; the error to answer when the user
/// is at the limit (the caller then closes with
/// `CloseCode::TooManyConnections`).
pub(crate) fn open_user(
    counts: &Arc<ConnectionCounts<Arc<str>>>,
    user: &Arc<str>,
) -> Result<Option<Counted<Arc<str>>>, ErrorInfo> {
    counts.open(user.clone()).map_err(|at_limit| {
        let message = format!("this user holds its most connections ({}) on this node", at_limit.max);
        ErrorInfo::new(ErrorCode::TooManyConnections, message).retry_after(HELD_RETRY_AFTER)
    })
}

/// The key holds its most connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtLimit {
    pub max: usize,
}

/// One counted connection; dropping it uncounts it.
pub struct Counted<K: Hash + Eq> {
    counts: Arc<ConnectionCounts<K>>,
    key: K,
}

impl<K: Hash + Eq> Drop for Counted<K> {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_at_its_limit_is_refused_until_one_of_its_connections_closes() {
        let counts = ConnectionCounts::new(2);
        let a = counts.open("alice").unwrap();
        let _b = counts.open("alice").unwrap();
        assert_eq!(counts.open("alice").err(), Some(AtLimit { max: 2 }));
        let _c = counts.open("bob").expect("bob has his own count");
        drop(a);
        assert!(counts.open("alice").is_ok());
    }

    #[test]
    fn keys_without_connections_are_forgotten() {
        let counts = ConnectionCounts::new(5);
        let held = counts.open("alice").unwrap();
        assert_eq!(counts.held(&"alice"), 1);
        drop(held);
        assert_eq!(counts.held(&"alice"), 0);
        assert!(counts.open.lock().is_empty());
    }

    #[test]
    fn zero_counts_nothing() {
        let counts = ConnectionCounts::new(0);
        assert!((0..100).all(|_| matches!(counts.open("alice"), Ok(None))));
        assert!(counts.open.lock().is_empty());
    }
}
