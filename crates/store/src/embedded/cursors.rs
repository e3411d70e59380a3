//! [`CursorStore`] for [`EmbeddedStore`]: one record per (user, channel) in
//! the `cursors` keyspace (layout in `keys.rs`).
//!
//! Marks do not go through the history writer: a mark is a read and a
//! conditional insert of one small record, done on the caller's task under
//! [`Shared::cursor_lock`] (which makes the read-compare-write atomic, the
//! history writer never touches this keyspace). Each insert goes to fjall's
//! journal and is pushed to the operating system before the mark is
//! answered (`PersistMode::Buffer`, no fsync): a process crash keeps it, a
//! power loss may take back the latest marks, which only shows messages as
//! unread again. The history writer's next fsync, and `close`, sync them
//! with everything else (one journal). Measured with
//! `examples/cursor_marks.rs` (release, 2 shared cores, 20,000 marks):
//! ~740,000 marks/s one at a time, ~1,100,000/s from 64 tasks, far past
//! the 20,000/s read receipts need, so a writer thread of its own (with the
//! hand-off it costs) would buy nothing.

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};
use fjall::PersistMode;

use super::keys::CURSORS;
use super::{EmbeddedStore, Shared, storage_error};
use crate::cursors::{apply_mark, check_cursors_asked};
use crate::{CursorStore, MarkOutcome, StoreError};

const OFFSET_LEN: usize = 8;

/// `user length (u16 BE), user, channel`. The length prefix keeps the key
/// unambiguous whatever bytes a user id holds, and makes a user's cursors
/// one contiguous key range. A user id is cut at 65,535 bytes, like the
/// author of a publication (`keys.rs`); ids are far shorter, limits are
/// enforced upstream.
fn cursor_key(user: &UserId, channel: &ChannelName) -> Vec<u8> {
    let user = user.as_str().as_bytes();
    let len = u16::try_from(user.len()).unwrap_or(u16::MAX);
    let user = &user[..usize::from(len)];
    let mut key = Vec::with_capacity(2 + user.len() + channel.as_str().len());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(user);
    key.extend_from_slice(channel.as_str().as_bytes());
    key
}

/// `offset (u64 BE), epoch text`.
fn cursor_value(cursor: &StreamPosition) -> Vec<u8> {
    let mut value = Vec::with_capacity(OFFSET_LEN + cursor.epoch.as_str().len());
    value.extend_from_slice(&cursor.offset.to_be_bytes());
    value.extend_from_slice(cursor.epoch.as_str().as_bytes());
    value
}

fn decode_cursor(user: &UserId, channel: &ChannelName, value: &[u8]) -> Result<StreamPosition, StoreError> {
    let corrupt =
        |reason| StoreError::Corrupt { keyspace: CURSORS, key: format!("{user}/{channel}"), reason };
    let (offset, epoch) = value.split_at_checked(OFFSET_LEN).ok_or_else(|| corrupt("value too short"))?;
    let offset = u64::from_be_bytes(offset.try_into().map_err(|_| corrupt("value too short"))?);
    let epoch = std::str::from_utf8(epoch).map_err(|_| corrupt("epoch not UTF-8"))?;
    Ok(StreamPosition::new(Epoch::new(epoch), offset))
}

impl Shared {
    fn read_cursor(
        &self,
        user: &UserId,
        channel: &ChannelName,
    ) -> Result<Option<StreamPosition>, StoreError> {
        let value = self.cursors.get(cursor_key(user, channel)).map_err(storage_error)?;
        value.map(|value| decode_cursor(user, channel, &value)).transpose()
    }
}

impl EmbeddedStore {
    /// Cursors close with the history: after `close` nothing would sync a
    /// mark any more, so none is taken (nor read, for one answer to all).
    fn check_cursors_open(&self) -> Result<&Shared, StoreError> {
        match self.queue.as_ref().is_some_and(|queue| !queue.is_closed()) {
            true => Ok(&self.shared),
            false => Err(StoreError::Closed),
        }
    }
}

#[async_trait::async_trait]
impl CursorStore for EmbeddedStore {
    async fn mark_read(
        &self,
        user: &UserId,
        channel: &ChannelName,
        read: StreamPosition,
    ) -> Result<MarkOutcome, StoreError> {
        let shared = self.check_cursors_open()?;
        let _one_mark_at_a_time = shared.cursor_lock.lock();
        let outcome = apply_mark(shared.read_cursor(user, channel)?.as_ref(), read);
        if outcome.moved {
            let value = cursor_value(&outcome.cursor);
            shared.cursors.insert(cursor_key(user, channel), value).map_err(storage_error)?;
            shared.db.persist(PersistMode::Buffer).map_err(storage_error)?;
        }
        Ok(outcome)
    }

    async fn cursor(
        &self,
        user: &UserId,
        channel: &ChannelName,
    ) -> Result<Option<StreamPosition>, StoreError> {
        self.check_cursors_open()?.read_cursor(user, channel)
    }

    /// Point reads on the caller's task: at most [`crate::MAX_CURSORS_PER_READ`]
    /// of them, each a memtable or block-cache hit for recently marked
    /// cursors.
    async fn cursors(
        &self,
        user: &UserId,
        channels: &[ChannelName],
    ) -> Result<Vec<Option<StreamPosition>>, StoreError> {
        check_cursors_asked(channels)?;
        let shared = self.check_cursors_open()?;
        channels.iter().map(|channel| shared.read_cursor(user, channel)).collect()
    }

    async fn forget_cursor(&self, user: &UserId, channel: &ChannelName) -> Result<bool, StoreError> {
        let shared = self.check_cursors_open()?;
        let _one_mark_at_a_time = shared.cursor_lock.lock();
        let key = cursor_key(user, channel);
        let existed = shared.cursors.contains_key(&key).map_err(storage_error)?;
        if existed {
            shared.cursors.remove(key).map_err(storage_error)?;
            shared.db.persist(PersistMode::Buffer).map_err(storage_error)?;
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_users_that_share_a_prefix_stay_apart() {
        let channel = |name| ChannelName::new(name).unwrap();
        let ab = cursor_key(&UserId::new("a"), &channel("bc"));
        let a_b = cursor_key(&UserId::new("ab"), &channel("c"));
        assert_ne!(ab, a_b);
    }

    #[test]
    fn values_round_trip_and_short_ones_are_corrupt() {
        let (user, channel) = (UserId::new("u{1}"), ChannelName::new("chat:x").unwrap());
        let cursor = StreamPosition::new(Epoch::new("e p"), u64::MAX);
        assert_eq!(decode_cursor(&user, &channel, &cursor_value(&cursor)).unwrap(), cursor);
        assert!(matches!(decode_cursor(&user, &channel, b"1234"), Err(StoreError::Corrupt { .. })));
    }
}
