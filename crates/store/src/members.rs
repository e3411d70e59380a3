//! The [`MemberStore`] trait: who belongs to a channel, and which
//! channels a user belongs to.
//!
//! A members channel (`subscribe = "members"`) lets only its members
//! subscribe, read and publish; a user's feed needs the reverse, the
//! channels of one user. Both sides live in the store, next to history, so
//! that a cluster shares them and a restart keeps them.

use fanfare_protocol::{ChannelName, UserId};

use crate::StoreError;

/// The most users one [`MemberStore::add_members`] or
/// [`MemberStore::remove_members`] call may name; more is refused with
/// [`StoreError::MemberChangeTooLarge`] before anything changes. It bounds
/// the work of one change (one script, one batch).
pub const MAX_MEMBER_CHANGE: usize = 1_000;

/// The most entries one listing returns, whatever `limit` asks for.
pub const MAX_MEMBER_PAGE: usize = 1_000;

/// The limits a change is checked against, given by the caller (the server
/// takes them from the channel's namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberLimits {
    /// The most members one channel may have.
    pub max_members: u64,
    /// The most channels one user may be a member of.
    pub max_channels: u64,
}

impl Default for MemberLimits {
    /// 10,000 members per channel, 1,000 channels per user.
    fn default() -> Self {
        Self { max_members: 10_000, max_channels: 1_000 }
    }
}

/// Which page of a listing to read: the entries bytewise after `after`
/// (from the first when `None`), at most `limit` of them (and at most
/// [`MAX_MEMBER_PAGE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAfter<'a, T> {
    pub after: Option<&'a T>,
    pub limit: usize,
}

impl<'a, T> PageAfter<'a, T> {
    /// The first `limit` entries.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }

    /// The `limit` entries after `after`.
    pub fn after(after: &'a T, limit: usize) -> Self {
        Self { after: Some(after), limit }
    }

    /// `limit` cut to [`MAX_MEMBER_PAGE`].
    pub fn bounded_limit(&self) -> usize {
        self.limit.min(MAX_MEMBER_PAGE)
    }
}

/// Channel members, and each user's channels.
///
/// # Contract
///
/// **Sides.** Membership is a set of (channel, user) pairs. The *channel
/// side* (a channel's members) is authoritative: [`is_member`],
/// [`member_count`] and [`members`] answer from it, and every change is
/// decided there, atomically per call. The *user side* ([`channels_of`])
/// is an index of it.
///
/// **Changes.** [`add_members`] adds every named user not yet a member and
/// answers exactly those, in the order first named, without repeats (a
/// user already a member, or named twice, is not reported again);
/// [`remove_members`] likewise removes and answers only users that were
/// members. So the caller can push a member change only for real changes.
/// An empty list changes nothing. More than [`MAX_MEMBER_CHANGE`] users is
/// refused with [`StoreError::MemberChangeTooLarge`].
///
/// **Limits.** An add that would leave the channel with more than
/// `max_members` members is refused with [`StoreError::TooManyMembers`];
/// one that would leave any named user in more than `max_channels`
/// channels, with [`StoreError::TooManyChannels`] naming the first such
/// user. Users already members count neither against the channel nor
/// against themselves. A refused add changes nothing at all (no user of
/// the call is added). The check and the change are one atomic step per
/// side (see "Cluster" for the user side in Redis); a removal is never
/// refused by a limit.
///
/// **Listings.** [`members`] and [`channels_of`] list bytewise-ascending
/// after the page's `after` (exclusive), at most the page's bounded
/// limit; a shorter page is the end. Paging by the last entry of each page
/// returns every entry exactly once while nothing changes. An unknown
/// channel or user lists nothing and counts 0.
///
/// **Ids.** Users are kept by their text (like presence): `1` and `"1"`
/// are one member, and listings give ids back as text
/// ([`UserId::new`]).
///
/// **Durability.** A change that returned `Ok` survives a restart of a
/// durable store (the embedded store syncs it to disk before answering,
/// Redis keeps it like history).
///
/// **Cluster (Redis).** A channel's members are under the channel's hash
/// tag, a user's channels under the user's, so in a Redis Cluster they sit
/// in different slots and no one script touches both. A change therefore
/// runs in steps: (1) for an add, each named user's side reserves the
/// channel, checking `max_channels` atomically (a refusal releases what
/// the call reserved); (2) the channel side decides the change, checking
/// `max_members`, and stamps it with the channel's change number; (3) each
/// named user's side applies the channel's state at that number, last
/// number wins, so concurrent changes of the same pair converge on the
/// channel side's state. Between the steps, and after a process dies
/// between them, a reader of [`channels_of`] may see a channel the user is
/// not (or no longer) a member of, and a concurrent change of the same pair
/// may briefly hide one; the next change of the pair repairs it. Readers to
/// whom it matters check with [`is_member`]. The in-process stores keep
/// both sides in one atomic step: no window.
///
/// [`is_member`]: MemberStore::is_member
/// [`member_count`]: MemberStore::member_count
/// [`members`]: MemberStore::members
/// [`channels_of`]: MemberStore::channels_of
/// [`add_members`]: MemberStore::add_members
/// [`remove_members`]: MemberStore::remove_members
#[async_trait::async_trait]
pub trait MemberStore: Send + Sync + 'static {
    /// Adds `users` to `channel` within `limits`; answers who was added.
    async fn add_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
        limits: MemberLimits,
    ) -> Result<Vec<UserId>, StoreError>;

    /// Removes `users` from `channel`; answers who was removed.
    async fn remove_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError>;

    async fn is_member(&self, channel: &ChannelName, user: &UserId) -> Result<bool, StoreError>;

    async fn member_count(&self, channel: &ChannelName) -> Result<u64, StoreError>;

    /// One page of `channel`'s members, bytewise by user id.
    async fn members(
        &self,
        channel: &ChannelName,
        page: PageAfter<'_, UserId>,
    ) -> Result<Vec<UserId>, StoreError>;

    /// One page of the channels `user` is a member of, bytewise by name.
    async fn channels_of(
        &self,
        user: &UserId,
        page: PageAfter<'_, ChannelName>,
    ) -> Result<Vec<ChannelName>, StoreError>;
}

/// `users` without repeats, in the order first named, refused past
/// [`MAX_MEMBER_CHANGE`]: what every implementation checks first.
pub(crate) fn distinct_users(users: &[UserId]) -> Result<Vec<UserId>, StoreError> {
    if users.len() > MAX_MEMBER_CHANGE {
        return Err(StoreError::MemberChangeTooLarge { count: users.len(), max: MAX_MEMBER_CHANGE });
    }
    let mut seen = std::collections::HashSet::with_capacity(users.len());
    Ok(users.iter().filter(|user| seen.insert(user.as_str())).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_users_keeps_the_first_of_each_in_order() {
        let users: Vec<UserId> = ["b", "a", "b", "c", "a"].map(UserId::new).into();
        let distinct = distinct_users(&users).unwrap();
        assert_eq!(distinct.iter().map(UserId::as_str).collect::<Vec<_>>(), ["b", "a", "c"]);
    }

    #[test]
    fn a_change_of_more_than_the_bound_is_refused() {
        let users: Vec<UserId> = (0..=MAX_MEMBER_CHANGE).map(|n| UserId::new(n.to_string())).collect();
        assert!(matches!(distinct_users(&users), Err(StoreError::MemberChangeTooLarge { count: 1001, .. })));
        assert!(distinct_users(&users[..MAX_MEMBER_CHANGE]).is_ok());
    }

    #[test]
    fn page_limits_are_bounded() {
        assert_eq!(PageAfter::<UserId>::first(5).bounded_limit(), 5);
        assert_eq!(PageAfter::<UserId>::first(usize::MAX).bounded_limit(), MAX_MEMBER_PAGE);
    }
}
