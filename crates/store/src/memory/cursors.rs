//! [`CursorStore`] for [`MemoryStore`]: cursors in per-user maps, spread
//! over shards by user so marks of different users rarely share a lock.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use fanfare_protocol::{ChannelName, StreamPosition, UserId};
use parking_lot::Mutex;

use super::{MemoryStore, SHARD_COUNT};
use crate::cursors::{apply_mark, check_cursors_asked};
use crate::{CursorStore, MarkOutcome, StoreError};

type UserCursors = HashMap<ChannelName, StreamPosition>;

/// Every user's cursors. Memory grows with the (user, channel) pairs
/// marked and shrinks as they are forgotten, like the history's channels.
pub(super) struct MemoryCursors {
    shards: Box<[Mutex<HashMap<UserId, UserCursors>>]>,
    shard_hasher: RandomState,
}

impl Default for MemoryCursors {
    fn default() -> Self {
        let shards = (0..SHARD_COUNT).map(|_| Mutex::new(HashMap::new())).collect();
        Self { shards, shard_hasher: RandomState::new() }
    }
}

impl MemoryCursors {
    fn shard_of(&self, user: &UserId) -> &Mutex<HashMap<UserId, UserCursors>> {
        let index = self.shard_hasher.hash_one(user) as usize % self.shards.len();
        &self.shards[index]
    }
}

#[async_trait::async_trait]
impl CursorStore for MemoryStore {
    async fn mark_read(
        &self,
        user: &UserId,
        channel: &ChannelName,
        read: StreamPosition,
    ) -> Result<MarkOutcome, StoreError> {
        let mut shard = self.cursors.shard_of(user).lock();
        let cursors = shard.entry(user.clone()).or_default();
        let outcome = apply_mark(cursors.get(channel), read);
        if outcome.moved {
            cursors.insert(channel.clone(), outcome.cursor.clone());
        }
        Ok(outcome)
    }

    async fn cursor(
        &self,
        user: &UserId,
        channel: &ChannelName,
    ) -> Result<Option<StreamPosition>, StoreError> {
        let shard = self.cursors.shard_of(user).lock();
        Ok(shard.get(user).and_then(|cursors| cursors.get(channel)).cloned())
    }

    async fn cursors(
        &self,
        user: &UserId,
        channels: &[ChannelName],
    ) -> Result<Vec<Option<StreamPosition>>, StoreError> {
        check_cursors_asked(channels)?;
        let shard = self.cursors.shard_of(user).lock();
        let cursors = shard.get(user);
        Ok(channels.iter().map(|channel| cursors.and_then(|c| c.get(channel)).cloned()).collect())
    }

    async fn forget_cursor(&self, user: &UserId, channel: &ChannelName) -> Result<bool, StoreError> {
        let mut shard = self.cursors.shard_of(user).lock();
        let Some(cursors) = shard.get_mut(user) else { return Ok(false) };
        let forgotten = cursors.remove(channel).is_some();
        if cursors.is_empty() {
            shard.remove(user);
        }
        Ok(forgotten)
    }
}
