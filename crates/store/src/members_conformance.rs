//! The conformance suite of [`MemberStore`]: what every implementation
//! must do, written once, like [`crate::conformance`] for history.
//!
//! The [`member_store_conformance!`](crate::member_store_conformance)
//! macro turns every case into its own `#[tokio::test]`; the expression
//! yields a store or a [`MemberSubject`] holding the store together with
//! what must outlive it:
//!
//! ```ignore
//! mod memory {
//!     fanfare_store::member_store_conformance!(async { fanfare_store::MemoryStore::new() });
//! }
//! ```

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use fanfare_protocol::{ChannelName, UserId};

use crate::{MAX_MEMBER_CHANGE, MemberLimits, MemberStore, PageAfter, StoreError};

/// Generates one `#[tokio::test]` per member conformance case for the
/// store built by `$make` (a future yielding a store or a [`MemberSubject`]).
#[macro_export]
macro_rules! member_store_conformance {
    ($make:expr) => {
        $crate::member_store_conformance!(@cases $make;
            added_members_are_members_and_counted_until_removed,
            adding_a_member_twice_reports_it_once,
            removing_a_non_member_reports_nothing,
            paging_returns_every_member_exactly_once_in_byte_order,
            the_member_limit_refuses_exactly_at_the_bound_and_changes_nothing,
            the_channel_limit_refuses_exactly_at_the_bound_and_changes_nothing,
            the_user_index_matches_the_channel_sides_after_a_sequence_of_changes,
            a_user_in_200_channels_lists_each_once_in_byte_order,
            an_unknown_channel_or_user_lists_nothing,
            a_change_naming_too_many_users_is_refused_and_changes_nothing,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let subject = $crate::members_conformance::MemberSubject::from($make.await);
                $crate::members_conformance::$case(subject.store()).await;
            }
        )*
    };
}

/// A store under test and whatever must outlive it (dropped after it).
pub struct MemberSubject {
    store: Box<dyn MemberStore>,
    _keep_alive: Box<dyn Any + Send>,
}

impl MemberSubject {
    pub fn new(store: impl MemberStore) -> Self {
        Self::keeping(store, ())
    }

    /// A store and something to drop only after it.
    pub fn keeping(store: impl MemberStore, keep_alive: impl Any + Send) -> Self {
        Self { store: Box::new(store), _keep_alive: Box::new(keep_alive) }
    }

    pub fn store(&self) -> &dyn MemberStore {
        &*self.store
    }
}

impl<S: MemberStore> From<S> for MemberSubject {
    fn from(store: S) -> Self {
        Self::new(store)
    }
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("a valid channel name")
}

fn users(names: &[&str]) -> Vec<UserId> {
    names.iter().map(|name| UserId::new(*name)).collect()
}

fn texts(users: &[UserId]) -> Vec<&str> {
    users.iter().map(UserId::as_str).collect()
}

const ROOMY: MemberLimits = MemberLimits { max_members: 10_000, max_channels: 10_000 };

/// Every member of `channel`, paging by `page_size`.
async fn all_members(store: &dyn MemberStore, channel: &ChannelName, page_size: usize) -> Vec<UserId> {
    let mut all: Vec<UserId> = Vec::new();
    loop {
        let page = match all.last() {
            None => PageAfter::first(page_size),
            Some(last) => PageAfter::after(last, page_size),
        };
        let next = store.members(channel, page).await.expect("members lists");
        let done = next.len() < page_size;
        all.extend(next);
        if done {
            return all;
        }
    }
}

/// Every channel of `user`, paging by `page_size`.
async fn all_channels(store: &dyn MemberStore, user: &UserId, page_size: usize) -> Vec<ChannelName> {
    let mut all: Vec<ChannelName> = Vec::new();
    loop {
        let page = match all.last() {
            None => PageAfter::first(page_size),
            Some(last) => PageAfter::after(last, page_size),
        };
        let next = store.channels_of(user, page).await.expect("channels_of lists");
        let done = next.len() < page_size;
        all.extend(next);
        if done {
            return all;
        }
    }
}

pub async fn added_members_are_members_and_counted_until_removed(store: &dyn MemberStore) {
    let room = channel("members:round-trip");
    let added = store.add_members(&room, &users(&["bob", "alice"]), ROOMY).await.unwrap();
    assert_eq!(texts(&added), ["bob", "alice"], "in the order named");
    assert!(store.is_member(&room, &UserId::new("alice")).await.unwrap());
    assert!(!store.is_member(&room, &UserId::new("carol")).await.unwrap());
    assert_eq!(store.member_count(&room).await.unwrap(), 2);

    let removed = store.remove_members(&room, &users(&["alice"])).await.unwrap();
    assert_eq!(texts(&removed), ["alice"]);
    assert!(!store.is_member(&room, &UserId::new("alice")).await.unwrap());
    assert_eq!(store.member_count(&room).await.unwrap(), 1);
    assert_eq!(texts(&all_members(store, &room, 10).await), ["bob"]);
    assert!(all_channels(store, &UserId::new("alice"), 10).await.is_empty());
    assert_eq!(all_channels(store, &UserId::new("bob"), 10).await, [room]);
}

pub async fn adding_a_member_twice_reports_it_once(store: &dyn MemberStore) {
    let room = channel("members:twice");
    let added = store.add_members(&room, &users(&["a", "b", "a"]), ROOMY).await.unwrap();
    assert_eq!(texts(&added), ["a", "b"], "a user named twice in one call is added once");
    let again = store.add_members(&room, &users(&["b", "c", "a"]), ROOMY).await.unwrap();
    assert_eq!(texts(&again), ["c"], "members already there are not reported");
    assert!(store.add_members(&room, &[], ROOMY).await.unwrap().is_empty());
    assert_eq!(store.member_count(&room).await.unwrap(), 3);
}

pub async fn removing_a_non_member_reports_nothing(store: &dyn MemberStore) {
    let room = channel("members:remove-nothing");
    assert!(store.remove_members(&room, &users(&["ghost"])).await.unwrap().is_empty(), "unknown channel");
    store.add_members(&room, &users(&["a"]), ROOMY).await.unwrap();
    let removed = store.remove_members(&room, &users(&["ghost", "a", "a"])).await.unwrap();
    assert_eq!(texts(&removed), ["a"], "only real members, once");
    assert!(store.remove_members(&room, &users(&["a"])).await.unwrap().is_empty(), "already removed");
    assert_eq!(store.member_count(&room).await.unwrap(), 0);
}

pub async fn paging_returns_every_member_exactly_once_in_byte_order(store: &dyn MemberStore) {
    let room = channel("members:paging");
    // Ids whose byte order differs from a numeric, case-folded or
    // Unicode-aware order, and ids that are prefixes of one another.
    let mut names: Vec<String> = (0..57).map(|n| format!("user-{n}")).collect();
    names.extend(["B", "a", "aa", "a0", "ä", "Z", "10", "9", "~", "a b"].map(String::from));
    let named: Vec<UserId> = names.iter().map(|name| UserId::new(name.as_str())).collect();
    store.add_members(&room, &named, ROOMY).await.unwrap();

    let mut expected = names.clone();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for page_size in [1, 7, 67, 500] {
        let listed = all_members(store, &room, page_size).await;
        assert_eq!(texts(&listed), expected, "pages of {page_size}");
    }
    let after_a = store.members(&room, PageAfter::after(&UserId::new("a"), 3)).await.unwrap();
    assert_eq!(texts(&after_a), ["a b", "a0", "aa"], "after is exclusive");
    assert!(store.members(&room, PageAfter::first(0)).await.unwrap().is_empty());
}

pub async fn the_member_limit_refuses_exactly_at_the_bound_and_changes_nothing(store: &dyn MemberStore) {
    let room = channel("members:member-limit");
    let limits = MemberLimits { max_members: 3, max_channels: 10 };
    store.add_members(&room, &users(&["a", "b"]), limits).await.unwrap();
    let over = store.add_members(&room, &users(&["c", "d"]), limits).await;
    assert!(
        matches!(&over, Err(StoreError::TooManyMembers { channel, max: 3 }) if *channel == room),
        "{over:?}"
    );
    assert_eq!(store.member_count(&room).await.unwrap(), 2, "a refused add adds no one");
    assert!(!store.is_member(&room, &UserId::new("c")).await.unwrap());
    assert!(all_channels(store, &UserId::new("c"), 10).await.is_empty(), "nor indexes anyone");

    let existing_and_one = store.add_members(&room, &users(&["a", "b", "c"]), limits).await.unwrap();
    assert_eq!(texts(&existing_and_one), ["c"], "members already there do not count again");
    assert_eq!(store.member_count(&room).await.unwrap(), 3, "exactly at the bound is allowed");
    let full = store.add_members(&room, &users(&["d"]), limits).await;
    assert!(matches!(full, Err(StoreError::TooManyMembers { .. })), "{full:?}");
    assert!(store.add_members(&room, &users(&["a"]), limits).await.unwrap().is_empty(), "no-op is fine");
}

pub async fn the_channel_limit_refuses_exactly_at_the_bound_and_changes_nothing(store: &dyn MemberStore) {
    let limits = MemberLimits { max_members: 10, max_channels: 2 };
    let rooms = ["members:user-limit-1", "members:user-limit-2", "members:user-limit-3"].map(channel);
    store.add_members(&rooms[0], &users(&["busy"]), limits).await.unwrap();
    store.add_members(&rooms[1], &users(&["busy"]), limits).await.unwrap();

    let over = store.add_members(&rooms[2], &users(&["free", "busy"]), limits).await;
    assert!(matches!(&over, Err(StoreError::TooManyChannels { user, max: 2 }) if user == "busy"), "{over:?}");
    assert_eq!(store.member_count(&rooms[2]).await.unwrap(), 0, "the free user was not added either");
    assert!(all_channels(store, &UserId::new("free"), 10).await.is_empty());
    assert_eq!(all_channels(store, &UserId::new("busy"), 10).await, rooms[..2]);

    let again = store.add_members(&rooms[1], &users(&["busy"]), limits).await.unwrap();
    assert!(again.is_empty(), "a channel the user is in does not count again");
    store.remove_members(&rooms[0], &users(&["busy"])).await.unwrap();
    let added = store.add_members(&rooms[2], &users(&["busy"]), limits).await.unwrap();
    assert_eq!(texts(&added), ["busy"], "a removal frees a place");
}

pub async fn the_user_index_matches_the_channel_sides_after_a_sequence_of_changes(store: &dyn MemberStore) {
    let rooms: Vec<ChannelName> = (0..6).map(|n| channel(&format!("members:index-{n}"))).collect();
    let people = users(&["u0", "u1", "u2", "u3", "u4"]);
    let mut expected: BTreeMap<UserId, BTreeSet<ChannelName>> = BTreeMap::new();
    // A fixed pseudo-random sequence of adds and removes.
    let mut state: u64 = 0x2545_f491;
    for _ in 0..120 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let room = &rooms[(state >> 33) as usize % rooms.len()];
        let chosen: Vec<UserId> = people
            .iter()
            .enumerate()
            .filter(|(i, _)| (state >> (40 + i)) & 1 == 1)
            .map(|(_, u)| u.clone())
            .collect();
        if (state >> 60) & 1 == 0 {
            for user in store.add_members(room, &chosen, ROOMY).await.unwrap() {
                assert!(expected.entry(user).or_default().insert(room.clone()), "reported added once");
            }
        } else {
            for user in store.remove_members(room, &chosen).await.unwrap() {
                assert!(expected.entry(user).or_default().remove(room), "reported removed only if there");
            }
        }
    }
    for user in &people {
        let indexed = all_channels(store, user, 4).await;
        let wanted: Vec<ChannelName> = expected.get(user).into_iter().flatten().cloned().collect();
        assert_eq!(indexed, wanted, "{user}'s channels");
    }
    for room in &rooms {
        let listed = all_members(store, room, 3).await;
        let wanted: Vec<UserId> =
            expected.iter().filter(|(_, set)| set.contains(room)).map(|(u, _)| u.clone()).collect();
        assert_eq!(listed, wanted, "{room}'s members");
        assert_eq!(store.member_count(room).await.unwrap(), wanted.len() as u64);
    }
}

pub async fn a_user_in_200_channels_lists_each_once_in_byte_order(store: &dyn MemberStore) {
    let fan = UserId::new("fan");
    let mut rooms: Vec<ChannelName> = (0..200).map(|n| channel(&format!("members:many:{n}"))).collect();
    for (n, room) in rooms.iter().enumerate() {
        let others = users(&[&format!("other-{n}"), "fan"]);
        assert_eq!(store.add_members(room, &others, ROOMY).await.unwrap().len(), 2);
    }
    rooms.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
    for page_size in [1, 64, 1_000] {
        assert_eq!(all_channels(store, &fan, page_size).await, rooms, "pages of {page_size}");
    }
    assert_eq!(all_channels(store, &UserId::new("other-7"), 10).await, [channel("members:many:7")]);
}

pub async fn an_unknown_channel_or_user_lists_nothing(store: &dyn MemberStore) {
    let nowhere = channel("members:nowhere");
    let nobody = UserId::new("nobody");
    assert!(store.members(&nowhere, PageAfter::first(100)).await.unwrap().is_empty());
    assert_eq!(store.member_count(&nowhere).await.unwrap(), 0);
    assert!(!store.is_member(&nowhere, &nobody).await.unwrap());
    assert!(store.channels_of(&nobody, PageAfter::first(100)).await.unwrap().is_empty());
}

pub async fn a_change_naming_too_many_users_is_refused_and_changes_nothing(store: &dyn MemberStore) {
    let room = channel("members:too-large");
    let crowd: Vec<UserId> = (0..=MAX_MEMBER_CHANGE).map(|n| UserId::new(format!("u{n}"))).collect();
    let add = store.add_members(&room, &crowd, ROOMY).await;
    assert!(matches!(add, Err(StoreError::MemberChangeTooLarge { .. })), "{add:?}");
    assert_eq!(store.member_count(&room).await.unwrap(), 0);
    let added = store.add_members(&room, &crowd[..MAX_MEMBER_CHANGE], ROOMY).await.unwrap();
    assert_eq!(added.len(), MAX_MEMBER_CHANGE, "exactly the bound is allowed");
    let listed = all_members(store, &room, 128).await;
    let mut expected: Vec<&str> = texts(&crowd[..MAX_MEMBER_CHANGE]);
    expected.sort_unstable();
    assert_eq!(texts(&listed), expected, "a thousand members, paged, each once in byte order");
    let remove = store.remove_members(&room, &crowd).await;
    assert!(matches!(remove, Err(StoreError::MemberChangeTooLarge { .. })), "{remove:?}");
    assert_eq!(store.member_count(&room).await.unwrap(), MAX_MEMBER_CHANGE as u64);
}
