//! [`MemberStore`] for [`EmbeddedStore`]: both sides and their counts in
//! fjall (layout in `member_keys.rs`).
//!
//! A change:
//! 1. takes the members writer lock, so changes are serialised and the
//!    counts read in step 2 are the ones step 4 overwrites;
//! 2. reads which named users are members and the counts;
//! 3. checks the limits, refusing before anything is written;
//! 4. writes both sides and the counts in one fjall batch, synced to disk,
//!    and only then answers.
//!
//! Changes run on tokio's blocking pool (they wait for an fsync); reads are
//! point and range reads on the caller's task, like `position`.

use std::ops::Bound;
use std::sync::Arc;

use fanfare_protocol::{ChannelName, UserId};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use parking_lot::Mutex;

use super::member_keys as keys;
use super::{EmbeddedStore, Shared, storage_error};
use crate::members::distinct_users;
use crate::{MemberLimits, MemberStore, PageAfter, StoreError};

/// The membership keyspaces, and the lock that serialises changes.
pub(super) struct MemberKeyspaces {
    members: Keyspace,
    user_channels: Keyspace,
    counts: Keyspace,
    /// Held from the first read of a change to its commit.
    writer: Mutex<()>,
}

impl MemberKeyspaces {
    pub(super) fn open(db: &Database) -> Result<Self, StoreError> {
        let keyspace = |name| db.keyspace(name, KeyspaceCreateOptions::default).map_err(storage_error);
        Ok(Self {
            members: keyspace(keys::MEMBERS)?,
            user_channels: keyspace(keys::USER_CHANNELS)?,
            counts: keyspace(keys::MEMBER_COUNTS)?,
            writer: Mutex::new(()),
        })
    }

    fn count(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.counts.get(key).map_err(storage_error)? {
            Some(value) => keys::decode_count(key, &value),
            None => Ok(0),
        }
    }

    fn is_member(&self, channel: &ChannelName, user: &UserId) -> Result<bool, StoreError> {
        self.members.contains_key(keys::member_key(channel, user)).map_err(storage_error)
    }

    /// Sets a count, removing it at 0 so forgotten channels leave nothing.
    fn put_count(&self, batch: &mut OwnedWriteBatch, key: Vec<u8>, count: u64) {
        match count {
            0 => batch.remove(&self.counts, key),
            n => batch.insert(&self.counts, key, n.to_be_bytes()),
        }
    }

    fn add(
        &self,
        db: &Database,
        channel: &ChannelName,
        users: Vec<UserId>,
        limits: MemberLimits,
    ) -> Result<Vec<UserId>, StoreError> {
        let _writer = self.writer.lock();
        let mut new = Vec::with_capacity(users.len());
        for user in users {
            if !self.is_member(channel, &user)? {
                new.push(user);
            }
        }
        let count = self.count(&keys::channel_count_key(channel))?;
        if count + new.len() as u64 > limits.max_members {
            return Err(StoreError::TooManyMembers { channel: channel.clone(), max: limits.max_members });
        }
        let mut joined = Vec::with_capacity(new.len());
        for user in &new {
            let channels = self.count(&keys::user_count_key(user))?;
            if channels + 1 > limits.max_channels {
                return Err(StoreError::TooManyChannels { user: user.clone(), max: limits.max_channels });
            }
            joined.push(channels + 1);
        }
        if new.is_empty() {
            return Ok(new);
        }
        let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
        for (user, channels) in new.iter().zip(joined) {
            batch.insert(&self.members, keys::member_key(channel, user), []);
            batch.insert(&self.user_channels, keys::user_channel_key(user, channel), []);
            self.put_count(&mut batch, keys::user_count_key(user), channels);
        }
        self.put_count(&mut batch, keys::channel_count_key(channel), count + new.len() as u64);
        batch.commit().map_err(storage_error)?;
        Ok(new)
    }

    fn remove(
        &self,
        db: &Database,
        channel: &ChannelName,
        users: Vec<UserId>,
    ) -> Result<Vec<UserId>, StoreError> {
        let _writer = self.writer.lock();
        let mut removed = Vec::with_capacity(users.len());
        for user in users {
            if self.is_member(channel, &user)? {
                removed.push(user);
            }
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
        for user in &removed {
            batch.remove(&self.members, keys::member_key(channel, user));
            batch.remove(&self.user_channels, keys::user_channel_key(user, channel));
            let channels = self.count(&keys::user_count_key(user))?;
            self.put_count(&mut batch, keys::user_count_key(user), channels.saturating_sub(1));
        }
        let count = self.count(&keys::channel_count_key(channel))?;
        self.put_count(
            &mut batch,
            keys::channel_count_key(channel),
            count.saturating_sub(removed.len() as u64),
        );
        batch.commit().map_err(storage_error)?;
        Ok(removed)
    }
}

/// Up to `limit` keys of `keyspace` that start with `prefix`, after
/// `prefix + after` (exclusive) when given, each decoded by `decode`.
fn page_of<T>(
    keyspace: &Keyspace,
    prefix: Vec<u8>,
    after: Option<Vec<u8>>,
    limit: usize,
    decode: impl Fn(&[u8]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let start = after.map_or(Bound::Included(prefix.clone()), Bound::Excluded);
    let end = keys::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
    let mut page = Vec::with_capacity(limit.min(64));
    for guard in keyspace.range((start, end)) {
        let key = guard.key().map_err(storage_error)?;
        page.push(decode(&key)?);
        if page.len() == limit {
            break;
        }
    }
    Ok(page)
}

impl EmbeddedStore {
    /// Runs a member change on the blocking pool (it waits for an fsync).
    async fn change_members<T: Send + 'static>(
        &self,
        change: impl FnOnce(&MemberKeyspaces, &Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.queue.as_ref().is_none_or(|queue| queue.is_closed()) {
            return Err(StoreError::Closed);
        }
        let shared: Arc<Shared> = self.shared.clone();
        let task = tokio::task::spawn_blocking(move || change(&shared.memberships, &shared.db));
        task.await.map_err(|e| StoreError::storage(super::BACKEND, e))?
    }
}

#[async_trait::async_trait]
impl MemberStore for EmbeddedStore {
    async fn add_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
        limits: MemberLimits,
    ) -> Result<Vec<UserId>, StoreError> {
        let users = distinct_users(users)?;
        let channel = channel.clone();
        self.change_members(move |members, db| members.add(db, &channel, users, limits)).await
    }

    async fn remove_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        let users = distinct_users(users)?;
        let channel = channel.clone();
        self.change_members(move |members, db| members.remove(db, &channel, users)).await
    }

    async fn is_member(&self, channel: &ChannelName, user: &UserId) -> Result<bool, StoreError> {
        self.shared.memberships.is_member(channel, user)
    }

    async fn member_count(&self, channel: &ChannelName) -> Result<u64, StoreError> {
        self.shared.memberships.count(&keys::channel_count_key(channel))
    }

    async fn members(
        &self,
        channel: &ChannelName,
        page: PageAfter<'_, UserId>,
    ) -> Result<Vec<UserId>, StoreError> {
        let after = page.after.map(|user| keys::member_key(channel, user));
        let keyspace = &self.shared.memberships.members;
        page_of(keyspace, keys::member_prefix(channel), after, page.bounded_limit(), |key| {
            keys::user_of_member_key(channel, key)
        })
    }

    async fn channels_of(
        &self,
        user: &UserId,
        page: PageAfter<'_, ChannelName>,
    ) -> Result<Vec<ChannelName>, StoreError> {
        let after = page.after.map(|channel| keys::user_channel_key(user, channel));
        let keyspace = &self.shared.memberships.user_channels;
        page_of(keyspace, keys::user_prefix(user), after, page.bounded_limit(), |key| {
            keys::channel_of_user_key(user, key)
        })
    }
}
