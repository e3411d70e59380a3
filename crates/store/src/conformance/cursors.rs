//! The conformance suite of [`CursorStore`]: what every implementation
//! must do, written once (see the contract on the trait).
//!
//! The [`cursor_store_conformance!`](crate::cursor_store_conformance) macro
//! turns every case into its own `#[tokio::test]`, like
//! [`history_store_conformance!`](crate::history_store_conformance):
//!
//! ```ignore
//! mod memory_cursors {
//!     fanfare_store::cursor_store_conformance!(async { fanfare_store::MemoryStore::new() });
//! }
//! ```
//!
//! The expression yields a store or a [`CursorSubject`]. Cases use user ids
//! and channels of their own, so they may share one store.

use std::any::Any;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};

use crate::{CursorStore, MAX_CURSORS_PER_READ, MarkOutcome, StoreError};

/// Generates one `#[tokio::test]` per cursor conformance case for the store
/// built by `$make` (a future yielding a store or a [`CursorSubject`]).
#[macro_export]
macro_rules! cursor_store_conformance {
    ($make:expr) => {
        $crate::cursor_store_conformance!(@cases $make;
            a_first_mark_sets_the_cursor,
            marks_move_the_cursor_forward_only,
            a_repeated_or_stale_mark_changes_nothing,
            a_mark_in_another_epoch_replaces_the_cursor,
            reading_many_answers_exactly_the_channels_asked_in_order,
            reading_more_than_the_limit_fails_and_reading_none_is_empty,
            forgetting_removes_only_that_cursor,
            cursors_of_many_users_and_channels_stay_apart,
            user_ids_with_any_characters_are_kept_apart,
            concurrent_marks_end_at_the_greatest_offset,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let subject = $crate::conformance::cursors::CursorSubject::from($make.await);
                $crate::conformance::cursors::$case(subject.store()).await;
            }
        )*
    };
}

/// A cursor store under test and whatever must outlive it (dropped after
/// the store).
pub struct CursorSubject {
    store: Box<dyn CursorStore>,
    _keep_alive: Box<dyn Any + Send>,
}

impl CursorSubject {
    pub fn new(store: impl CursorStore) -> Self {
        Self::keeping(store, ())
    }

    /// The store, plus `keep_alive` (e.g. a `TempDir`) dropped after it.
    pub fn keeping(store: impl CursorStore, keep_alive: impl Any + Send) -> Self {
        Self { store: Box::new(store), _keep_alive: Box::new(keep_alive) }
    }

    pub fn store(&self) -> &dyn CursorStore {
        &*self.store
    }
}

impl<S: CursorStore> From<S> for CursorSubject {
    fn from(store: S) -> Self {
        Self::new(store)
    }
}

fn user(id: &str) -> UserId {
    UserId::new(id)
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("a valid channel name")
}

fn at(epoch: &str, offset: u64) -> StreamPosition {
    StreamPosition::new(Epoch::new(epoch), offset)
}

async fn mark(
    store: &dyn CursorStore,
    user: &UserId,
    channel: &ChannelName,
    read: StreamPosition,
) -> MarkOutcome {
    store.mark_read(user, channel, read).await.expect("the mark is stored")
}

pub async fn a_first_mark_sets_the_cursor(store: &dyn CursorStore) {
    let (alice, chat) = (user("cur:first"), channel("cur:first"));
    assert_eq!(store.cursor(&alice, &chat).await.unwrap(), None);
    let outcome = mark(store, &alice, &chat, at("e1", 0)).await;
    assert_eq!(outcome, MarkOutcome { cursor: at("e1", 0), moved: true }, "offset 0 is a cursor too");
    assert_eq!(store.cursor(&alice, &chat).await.unwrap(), Some(at("e1", 0)));
}

pub async fn marks_move_the_cursor_forward_only(store: &dyn CursorStore) {
    let (alice, chat) = (user("cur:forward"), channel("cur:forward"));
    for offset in [3, 7, 8, u64::MAX] {
        let outcome = mark(store, &alice, &chat, at("e1", offset)).await;
        assert_eq!(outcome, MarkOutcome { cursor: at("e1", offset), moved: true });
        assert_eq!(store.cursor(&alice, &chat).await.unwrap(), Some(at("e1", offset)));
    }
}

pub async fn a_repeated_or_stale_mark_changes_nothing(store: &dyn CursorStore) {
    let (alice, chat) = (user("cur:stale"), channel("cur:stale"));
    mark(store, &alice, &chat, at("e1", 10)).await;
    for offset in [10, 9, 1, 0] {
        let outcome = mark(store, &alice, &chat, at("e1", offset)).await;
        assert_eq!(outcome, MarkOutcome { cursor: at("e1", 10), moved: false }, "a mark of {offset}");
    }
    // Offsets compare as numbers, not as text ("9" > "10" as text).
    mark(store, &alice, &chat, at("e1", 100)).await;
    assert!(!mark(store, &alice, &chat, at("e1", 99)).await.moved);
    assert_eq!(store.cursor(&alice, &chat).await.unwrap(), Some(at("e1", 100)));
}

pub async fn a_mark_in_another_epoch_replaces_the_cursor(store: &dyn CursorStore) {
    let (alice, chat) = (user("cur:epoch"), channel("cur:epoch"));
    mark(store, &alice, &chat, at("old", 500)).await;
    let outcome = mark(store, &alice, &chat, at("new", 2)).await;
    assert_eq!(outcome, MarkOutcome { cursor: at("new", 2), moved: true }, "a lower offset of a new epoch");
    assert_eq!(store.cursor(&alice, &chat).await.unwrap(), Some(at("new", 2)));
    assert!(!mark(store, &alice, &chat, at("new", 1)).await.moved, "forward only again, in the new epoch");
    // An epoch that contains a space still round-trips.
    let outcome = mark(store, &alice, &chat, at("an epoch", 1)).await;
    assert_eq!(outcome.cursor, at("an epoch", 1));
    assert_eq!(store.cursor(&alice, &chat).await.unwrap(), Some(at("an epoch", 1)));
}

pub async fn reading_many_answers_exactly_the_channels_asked_in_order(store: &dyn CursorStore) {
    let alice = user("cur:many");
    let [a, b, c, d] = ["cur:many:a", "cur:many:b", "cur:many:c", "cur:many:d"].map(channel);
    mark(store, &alice, &a, at("e1", 1)).await;
    mark(store, &alice, &c, at("e1", 3)).await;
    mark(store, &alice, &d, at("e2", 4)).await;
    mark(store, &user("cur:many:other"), &b, at("e1", 2)).await;
    let asked = [d.clone(), b.clone(), a.clone(), channel("cur:many:never"), c.clone(), a.clone()];
    let cursors = store.cursors(&alice, &asked).await.unwrap();
    let expected = [Some(at("e2", 4)), None, Some(at("e1", 1)), None, Some(at("e1", 3)), Some(at("e1", 1))];
    assert_eq!(cursors, expected);
    let nobody = store.cursors(&user("cur:many:nobody"), &asked).await.unwrap();
    assert_eq!(nobody, vec![None; asked.len()]);
}

pub async fn reading_more_than_the_limit_fails_and_reading_none_is_empty(store: &dyn CursorStore) {
    let alice = user("cur:limit");
    let last = channel(&format!("cur:limit:{}", MAX_CURSORS_PER_READ - 1));
    mark(store, &alice, &last, at("e1", 9)).await;
    let mut asked: Vec<ChannelName> =
        (0..MAX_CURSORS_PER_READ).map(|n| channel(&format!("cur:limit:{n}"))).collect();
    let cursors = store.cursors(&alice, &asked).await.expect("the limit itself is allowed");
    assert_eq!(cursors.len(), MAX_CURSORS_PER_READ);
    assert_eq!(cursors.last(), Some(&Some(at("e1", 9))));
    assert!(cursors[..MAX_CURSORS_PER_READ - 1].iter().all(Option::is_none));
    asked.push(channel("cur:limit:one-more"));
    let refused = store.cursors(&alice, &asked).await;
    assert!(
        matches!(refused, Err(StoreError::LimitExceeded { limit: MAX_CURSORS_PER_READ, .. })),
        "{refused:?}"
    );
    assert_eq!(store.cursors(&alice, &[]).await.unwrap(), Vec::new());
}

pub async fn forgetting_removes_only_that_cursor(store: &dyn CursorStore) {
    let (alice, bob) = (user("cur:forget:alice"), user("cur:forget:bob"));
    let (chat, news) = (channel("cur:forget:chat"), channel("cur:forget:news"));
    mark(store, &alice, &chat, at("e1", 5)).await;
    mark(store, &alice, &news, at("e1", 6)).await;
    mark(store, &bob, &chat, at("e1", 7)).await;
    assert!(store.forget_cursor(&alice, &chat).await.unwrap());
    assert_eq!(store.cursor(&alice, &chat).await.unwrap(), None);
    assert!(!store.forget_cursor(&alice, &chat).await.unwrap(), "nothing left to forget");
    assert_eq!(store.cursor(&alice, &news).await.unwrap(), Some(at("e1", 6)));
    assert_eq!(store.cursor(&bob, &chat).await.unwrap(), Some(at("e1", 7)));
    let outcome = mark(store, &alice, &chat, at("e1", 1)).await;
    assert_eq!(outcome, MarkOutcome { cursor: at("e1", 1), moved: true }, "a forgotten cursor starts afresh");
}

pub async fn cursors_of_many_users_and_channels_stay_apart(store: &dyn CursorStore) {
    let users: Vec<UserId> = (0..20).map(|n| user(&format!("cur:grid:{n}"))).collect();
    let channels: Vec<ChannelName> = (0..20).map(|n| channel(&format!("cur:grid:{n}"))).collect();
    let offset = |u: usize, c: usize| (u * 100 + c) as u64;
    for (u, user) in users.iter().enumerate() {
        for (c, channel) in channels.iter().enumerate().filter(|(c, _)| (u + c) % 3 != 0) {
            mark(store, user, channel, at("e1", offset(u, c))).await;
        }
    }
    for (u, user) in users.iter().enumerate() {
        let cursors = store.cursors(user, &channels).await.unwrap();
        let expected: Vec<_> =
            (0..channels.len()).map(|c| ((u + c) % 3 != 0).then(|| at("e1", offset(u, c)))).collect();
        assert_eq!(cursors, expected, "user {u}");
    }
}

pub async fn user_ids_with_any_characters_are_kept_apart(store: &dyn CursorStore) {
    let chat = channel("cur:odd-ids");
    let ids = ["}", "{", "%7D", "a}b", "a", "{a}", "with space", "ünï", "", "a\0b", "a:cursors"];
    for (n, id) in ids.iter().enumerate() {
        mark(store, &user(id), &chat, at("e1", n as u64 + 1)).await;
    }
    for (n, id) in ids.iter().enumerate() {
        let cursor = store.cursor(&user(id), &chat).await.unwrap();
        assert_eq!(cursor, Some(at("e1", n as u64 + 1)), "user {id:?}");
    }
}

pub async fn concurrent_marks_end_at_the_greatest_offset(store: &dyn CursorStore) {
    let (alice, chat) = (user("cur:race"), channel("cur:race"));
    // Five writers at once, each marking every fifth offset of 1..=50 in
    // its own order: whatever the interleaving, the greatest offset wins.
    let writer = |first: u64| {
        let (alice, chat) = (alice.clone(), chat.clone());
        async move {
            let mut moved = 0;
            let offsets: Vec<u64> = (first..=50).step_by(5).collect();
            for &offset in offsets.iter().rev().chain(&offsets) {
                moved += usize::from(mark(store, &alice, &chat, at("e1", offset)).await.moved);
            }
            moved
        }
    };
    let moved = tokio::join!(writer(1), writer(2), writer(3), writer(4), writer(5));
    let moved = moved.0 + moved.1 + moved.2 + moved.3 + moved.4;
    assert!((1..=50).contains(&moved), "{moved} marks moved the cursor");
    assert_eq!(store.cursor(&alice, &chat).await.unwrap(), Some(at("e1", 50)));
}
