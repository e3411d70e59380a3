//! [`MemberStore`] for [`MemoryStore`]: both sides in one map behind one
//! lock, so every change is one atomic step with no window between sides.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use fanfare_protocol::{ChannelName, UserId};

use crate::members::distinct_users;
use crate::{MemberLimits, MemberStore, MemoryStore, PageAfter, StoreError};

/// Both sides of membership. Member changes are rare next to appends, so
/// one lock for all of them costs nothing on the message path.
#[derive(Default)]
pub(crate) struct Memberships {
    members: HashMap<ChannelName, BTreeSet<UserId>>,
    channels: HashMap<UserId, BTreeSet<ChannelName>>,
}

impl Memberships {
    fn add(
        &mut self,
        channel: &ChannelName,
        users: Vec<UserId>,
        limits: MemberLimits,
    ) -> Result<Vec<UserId>, StoreError> {
        let current = self.members.get(channel);
        let new: Vec<UserId> =
            users.into_iter().filter(|user| !current.is_some_and(|set| set.contains(user))).collect();
        let count = current.map_or(0, BTreeSet::len) as u64;
        if count + new.len() as u64 > limits.max_members {
            return Err(StoreError::TooManyMembers { channel: channel.clone(), max: limits.max_members });
        }
        for user in &new {
            let joined = self.channels.get(user).map_or(0, BTreeSet::len) as u64;
            if joined + 1 > limits.max_channels {
                return Err(StoreError::TooManyChannels { user: user.clone(), max: limits.max_channels });
            }
        }
        if !new.is_empty() {
            let members = self.members.entry(channel.clone()).or_default();
            for user in &new {
                members.insert(user.clone());
                self.channels.entry(user.clone()).or_default().insert(channel.clone());
            }
        }
        Ok(new)
    }

    fn remove(&mut self, channel: &ChannelName, users: Vec<UserId>) -> Vec<UserId> {
        let Some(members) = self.members.get_mut(channel) else { return Vec::new() };
        let removed: Vec<UserId> = users.into_iter().filter(|user| members.remove(user)).collect();
        if members.is_empty() {
            self.members.remove(channel);
        }
        for user in &removed {
            if let Some(channels) = self.channels.get_mut(user) {
                channels.remove(channel);
                if channels.is_empty() {
                    self.channels.remove(user);
                }
            }
        }
        removed
    }
}

/// The page of `set` after `page.after`.
fn page_of<T: Ord + Clone>(set: Option<&BTreeSet<T>>, page: PageAfter<'_, T>) -> Vec<T> {
    let Some(set) = set else { return Vec::new() };
    let start = page.after.map_or(Bound::Unbounded, Bound::Excluded);
    set.range((start, Bound::Unbounded)).take(page.bounded_limit()).cloned().collect()
}

#[async_trait::async_trait]
impl MemberStore for MemoryStore {
    async fn add_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
        limits: MemberLimits,
    ) -> Result<Vec<UserId>, StoreError> {
        let users = distinct_users(users)?;
        self.memberships.lock().add(channel, users, limits)
    }

    async fn remove_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        let users = distinct_users(users)?;
        Ok(self.memberships.lock().remove(channel, users))
    }

    async fn is_member(&self, channel: &ChannelName, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.memberships.lock().members.get(channel).is_some_and(|set| set.contains(user)))
    }

    async fn member_count(&self, channel: &ChannelName) -> Result<u64, StoreError> {
        Ok(self.memberships.lock().members.get(channel).map_or(0, BTreeSet::len) as u64)
    }

    async fn members(
        &self,
        channel: &ChannelName,
        page: PageAfter<'_, UserId>,
    ) -> Result<Vec<UserId>, StoreError> {
        Ok(page_of(self.memberships.lock().members.get(channel), page))
    }

    async fn channels_of(
        &self,
        user: &UserId,
        page: PageAfter<'_, ChannelName>,
    ) -> Result<Vec<ChannelName>, StoreError> {
        Ok(page_of(self.memberships.lock().channels.get(user), page))
    }
}
