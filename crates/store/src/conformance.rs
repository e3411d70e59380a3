//! The conformance suite: what every [`HistoryStore`] must do, written once.
//!
//! Each case is a public async function taking the store under test; the
//! [`history_store_conformance!`](crate::history_store_conformance) macro
//! turns every case into its own `#[tokio::test]`. An implementation's
//! test file wraps one invocation in a module:
//!
//! ```ignore
//! mod memory {
//!     fanfare_store::history_store_conformance!(async { fanfare_store::MemoryStore::new() });
//! }
//! ```
//!
//! The expression is evaluated once per test and yields a store, or a
//! [`Subject`] holding the store together with what must outlive it (a
//! temporary directory, a container). The invoking crate needs `tokio`
//! with the `macros` and `rt` features. Compiled always (not only under
//! `cfg(test)`) so that stores in other crates or test binaries can run it.

pub mod cursors;
mod edits;

pub use edits::*;

use std::any::Any;
use std::time::Duration;

use fanfare_protocol::{ChannelName, JsonData, Publication, UserId};

use crate::{
    AppendRequest, Appended, DeleteTargets, HistoryQuery, HistoryStore, Retention, StoreError, append,
    delete, unix_time_ms,
};

/// Generates one `#[tokio::test]` per conformance case for the store built
/// by `$make` (an expression of a future yielding a store or a [`Subject`]).
#[macro_export]
macro_rules! history_store_conformance {
    ($make:expr) => {
        $crate::history_store_conformance!(@cases $make;
            offsets_start_at_one_and_have_no_gaps,
            position_of_an_unknown_channel_is_the_epoch_and_zero,
            enqueues_from_one_task_get_offsets_in_enqueue_order,
            interleaved_appends_to_many_channels_keep_each_channel_in_order,
            a_group_gets_consecutive_offsets_in_request_order,
            a_group_with_a_repeated_idempotency_key_appends_it_once,
            history_since_is_exclusive_and_limit_takes_the_oldest,
            reverse_history_is_the_newest_after_since_newest_first,
            retention_by_count_keeps_only_the_newest_max_len,
            retention_by_age_hides_publications_older_than_max_age,
            repeated_idempotency_key_returns_the_first_offset_and_appends_nothing,
            idempotency_key_outside_its_window_appends_anew,
            same_idempotency_key_twice_in_one_burst_appends_once,
            idempotency_keys_are_per_channel,
            data_round_trips_byte_for_byte,
            read_agrees_with_position,
            authors_are_kept_with_publications,
            deleting_an_offset_appends_a_record_and_reads_serve_a_tombstone,
            deleting_by_idempotency_key_deletes_the_keyed_publication_within_its_window,
            purging_an_author_deletes_only_their_retained_publications,
            a_delete_that_finds_nothing_appends_nothing_and_consumes_no_offset,
            a_delete_takes_its_offset_in_order_with_appends_around_it,
            a_delete_in_a_group_can_target_a_publication_of_the_same_group,
            deletes_skip_publications_out_of_retention,
            editing_a_message_appends_an_update_record_and_reads_serve_the_newest_data,
            an_edit_that_finds_no_message_appends_nothing_and_consumes_no_offset,
            an_edited_message_and_its_update_records_can_be_deleted_and_purged,
            an_edit_in_a_group_can_target_a_publication_of_the_same_group,
            edits_skip_messages_out_of_retention,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let subject = $crate::conformance::Subject::from($make.await);
                $crate::conformance::$case(subject.store()).await;
            }
        )*
    };
}

/// A store under test and whatever must outlive it. The store is dropped
/// first (so an embedded store flushes before its directory goes).
pub struct Subject {
    store: Box<dyn HistoryStore>,
    _keep_alive: Box<dyn Any + Send>,
}

impl Subject {
    pub fn new(store: impl HistoryStore) -> Self {
        Self::keeping(store, ())
    }

    /// The store, plus `keep_alive` (e.g. a `TempDir`) dropped after it.
    pub fn keeping(store: impl HistoryStore, keep_alive: impl Any + Send) -> Self {
        Self { store: Box::new(store), _keep_alive: Box::new(keep_alive) }
    }

    pub fn store(&self) -> &dyn HistoryStore {
        &*self.store
    }
}

impl<S: HistoryStore> From<S> for Subject {
    fn from(store: S) -> Self {
        Self::new(store)
    }
}

pub async fn offsets_start_at_one_and_have_no_gaps(store: &dyn HistoryStore) {
    let chat = channel("conf:gapless");
    for expected in 1..=5 {
        let appended = append_ok(store, request(&chat, &format!("{{\"n\":{expected}}}"))).await;
        assert_eq!(appended.publication.offset, expected);
        assert!(!appended.duplicate);
    }
    let position = store.position(&chat).await.unwrap();
    assert_eq!(position.offset, 5);
}

pub async fn position_of_an_unknown_channel_is_the_epoch_and_zero(store: &dyn HistoryStore) {
    let never = channel("conf:never-published");
    let position = store.position(&never).await.unwrap();
    assert_eq!(position.offset, 0);
    assert!(!position.epoch.as_str().is_empty());
    let page = store.read(&never, everything()).await.unwrap();
    assert_eq!((page.epoch, page.top_offset, page.publications.len()), (position.epoch.clone(), 0, 0));
    let appended = append_ok(store, request(&channel("conf:other"), "1")).await;
    assert_eq!(appended.epoch, position.epoch, "one epoch for the whole store");
}

pub async fn enqueues_from_one_task_get_offsets_in_enqueue_order(store: &dyn HistoryStore) {
    let chat = channel("conf:burst");
    let mut receipts = Vec::new();
    for n in 1..=300 {
        receipts.push(store.enqueue(request(&chat, &n.to_string())).await.unwrap());
    }
    for (n, receipt) in (1..).zip(receipts) {
        assert_eq!(receipt.await.unwrap().publication.offset, n);
    }
    let page = store.read(&chat, everything()).await.unwrap();
    let data: Vec<String> = page.publications.iter().map(|p| p.data.as_str().to_owned()).collect();
    assert_eq!(data, (1..=300).map(|n: u64| n.to_string()).collect::<Vec<_>>());
    assert_eq!(offsets_of(&page.publications), (1..=300).collect::<Vec<_>>());
}

pub async fn a_group_gets_consecutive_offsets_in_request_order(store: &dyn HistoryStore) {
    let (chat, other) = (channel("conf:group"), channel("conf:group-other"));
    let before = store.enqueue(request(&chat, "0")).await.unwrap();
    let group: Vec<AppendRequest> =
        (1..=10).map(|n| request(if n % 3 == 0 { &other } else { &chat }, &n.to_string())).collect();
    let group = store.enqueue_many(group).await;
    let after = store.enqueue(request(&chat, "11")).await.unwrap();
    assert_eq!(before.await.unwrap().publication.offset, 1);
    let outcomes: Vec<(String, u64)> = group
        .await
        .into_iter()
        .map(|outcome| outcome.unwrap().publication)
        .map(|p| (p.data.as_str().to_owned(), p.offset))
        .collect();
    let expected: Vec<(String, u64)> =
        [(1, 2), (2, 3), (3, 1), (4, 4), (5, 5), (6, 2), (7, 6), (8, 7), (9, 3), (10, 8)]
            .into_iter()
            .map(|(n, offset)| (n.to_string(), offset))
            .collect();
    assert_eq!(outcomes, expected, "one outcome per request, in request order");
    assert_eq!(after.await.unwrap().publication.offset, 9);
    let page = store.read(&chat, everything()).await.unwrap();
    let data: Vec<&str> = page.publications.iter().map(|p| p.data.as_str()).collect();
    assert_eq!(data, ["0", "1", "2", "4", "5", "7", "8", "10", "11"]);
    assert_eq!(offsets_of(&page.publications), (1..=9).collect::<Vec<_>>());
    assert!(store.enqueue_many(Vec::new()).await.await.is_empty(), "an empty group answers at once");
}

pub async fn a_group_with_a_repeated_idempotency_key_appends_it_once(store: &dyn HistoryStore) {
    let chat = channel("conf:group-keys");
    let now = unix_time_ms();
    let group = vec![keyed(&chat, "1", "k", now), request(&chat, "2"), keyed(&chat, "3", "k", now)];
    let outcomes: Vec<Appended> =
        store.enqueue_many(group).await.await.into_iter().map(Result::unwrap).collect();
    let seen: Vec<(u64, bool)> = outcomes.iter().map(|a| (a.publication.offset, a.duplicate)).collect();
    assert_eq!(seen, [(1, false), (2, false), (1, true)]);
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(offsets_of(&page.publications), [1, 2]);
}

pub async fn interleaved_appends_to_many_channels_keep_each_channel_in_order(store: &dyn HistoryStore) {
    let channels: Vec<ChannelName> = (0..20).map(|i| channel(&format!("conf:room-{i}"))).collect();
    let mut receipts = Vec::new();
    for round in 1..=15 {
        for chat in &channels {
            receipts.push((round, store.enqueue(request(chat, &round.to_string())).await.unwrap()));
        }
    }
    for (round, receipt) in receipts {
        assert_eq!(receipt.await.unwrap().publication.offset, round);
    }
    for chat in &channels {
        let page = store.read(chat, everything()).await.unwrap();
        assert_eq!(page.top_offset, 15);
        assert_eq!(offsets_of(&page.publications), (1..=15).collect::<Vec<_>>());
        assert!(page.publications.iter().all(|p| p.data.as_str() == p.offset.to_string()));
    }
}

pub async fn history_since_is_exclusive_and_limit_takes_the_oldest(store: &dyn HistoryStore) {
    let chat = channel("conf:since");
    append_numbers(store, &chat, 10).await;
    let page = store.read(&chat, HistoryQuery { since: Some(3), limit: 4, ..everything() }).await.unwrap();
    assert_eq!(offsets_of(&page.publications), vec![4, 5, 6, 7]);
    assert_eq!(page.top_offset, 10);
    let page = store.read(&chat, HistoryQuery { limit: 2, ..everything() }).await.unwrap();
    assert_eq!(offsets_of(&page.publications), vec![1, 2]);
    for since in [10, 12] {
        let page = store.read(&chat, HistoryQuery { since: Some(since), ..everything() }).await.unwrap();
        assert!(page.publications.is_empty(), "nothing after {since}");
        assert_eq!(page.top_offset, 10);
    }
    let page = store.read(&chat, HistoryQuery { limit: 0, ..everything() }).await.unwrap();
    assert_eq!((page.top_offset, page.publications.len()), (10, 0));
}

pub async fn reverse_history_is_the_newest_after_since_newest_first(store: &dyn HistoryStore) {
    let chat = channel("conf:reverse");
    append_numbers(store, &chat, 10).await;
    let newest = |since, limit| HistoryQuery { since, limit, reverse: true, ..everything() };
    let page = store.read(&chat, newest(Some(3), 4)).await.unwrap();
    assert_eq!(offsets_of(&page.publications), vec![10, 9, 8, 7]);
    let page = store.read(&chat, newest(Some(8), 5)).await.unwrap();
    assert_eq!(offsets_of(&page.publications), vec![10, 9]);
    let page = store.read(&chat, newest(None, 3)).await.unwrap();
    assert_eq!(offsets_of(&page.publications), vec![10, 9, 8]);
}

pub async fn retention_by_count_keeps_only_the_newest_max_len(store: &dyn HistoryStore) {
    let chat = channel("conf:count");
    let retention = Retention { max_len: 3, ..Retention::default() };
    let kept = |since| HistoryQuery { since, retention, ..everything() };
    for n in 1..=4 {
        append_ok(store, AppendRequest { retention, ..request(&chat, &n.to_string()) }).await;
    }
    assert_eq!(offsets_of(&store.read(&chat, kept(None)).await.unwrap().publications), vec![2, 3, 4]);
    // A burst, so batching stores trim inside one batch too.
    let mut receipts = Vec::new();
    for n in 5..=10 {
        receipts.push(
            store.enqueue(AppendRequest { retention, ..request(&chat, &n.to_string()) }).await.unwrap(),
        );
    }
    for receipt in receipts {
        receipt.await.unwrap();
    }
    let page = store.read(&chat, kept(None)).await.unwrap();
    assert_eq!((page.top_offset, offsets_of(&page.publications)), (10, vec![8, 9, 10]));
    let page = store.read(&chat, kept(Some(2))).await.unwrap();
    assert_eq!(offsets_of(&page.publications), vec![8, 9, 10], "the hub sees the gap from 2 to 8");
    assert_eq!(store.position(&chat).await.unwrap().offset, 10);
}

pub async fn retention_by_age_hides_publications_older_than_max_age(store: &dyn HistoryStore) {
    let chat = channel("conf:age");
    let retention = Retention { max_age: Duration::from_secs(60), ..Retention::default() };
    let an_hour_ago = unix_time_ms() - 3_600_000;
    for time_ms in [an_hour_ago, an_hour_ago + 1, unix_time_ms(), unix_time_ms()] {
        append_ok(store, AppendRequest { time_ms, retention, ..request(&chat, "1") }).await;
    }
    let page = store.read(&chat, HistoryQuery { retention, ..everything() }).await.unwrap();
    assert_eq!((page.top_offset, offsets_of(&page.publications)), (4, vec![3, 4]));
    let reverse = HistoryQuery { retention, reverse: true, ..everything() };
    assert_eq!(offsets_of(&store.read(&chat, reverse).await.unwrap().publications), vec![4, 3]);
}

pub async fn repeated_idempotency_key_returns_the_first_offset_and_appends_nothing(store: &dyn HistoryStore) {
    let chat = channel("conf:idempotent");
    let first = append_ok(store, keyed(&chat, "\"first\"", "order-1", unix_time_ms())).await;
    assert_eq!((first.publication.offset, first.duplicate), (1, false));
    let again =
        append_ok(store, keyed(&chat, "\"again\"", "order-1", first.publication.time_ms + 1_000)).await;
    assert_eq!((again.publication.offset, again.duplicate), (1, true));
    assert_eq!(again.publication.time_ms, first.publication.time_ms, "the original's time");
    assert_eq!(again.epoch, first.epoch);
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(page.top_offset, 1);
    assert_eq!(page.publications[0].data.as_str(), "\"first\"");
    let other = append_ok(store, keyed(&chat, "2", "order-2", unix_time_ms())).await;
    assert_eq!((other.publication.offset, other.duplicate), (2, false));
}

pub async fn idempotency_key_outside_its_window_appends_anew(store: &dyn HistoryStore) {
    let chat = channel("conf:window");
    let start = unix_time_ms();
    let window = Duration::from_secs(5);
    let at = |time_ms| AppendRequest { idempotency_window: window, ..keyed(&chat, "1", "k", time_ms) };
    assert_eq!(append_ok(store, at(start)).await.publication.offset, 1);
    let inside = append_ok(store, at(start + 4_999)).await;
    assert_eq!((inside.publication.offset, inside.duplicate), (1, true));
    let outside = append_ok(store, at(start + 5_000)).await;
    assert_eq!((outside.publication.offset, outside.duplicate), (2, false));
    let remembered_anew = append_ok(store, at(start + 5_001)).await;
    assert_eq!((remembered_anew.publication.offset, remembered_anew.duplicate), (2, true));
    assert_eq!(store.position(&chat).await.unwrap().offset, 2);
}

pub async fn same_idempotency_key_twice_in_one_burst_appends_once(store: &dyn HistoryStore) {
    let chat = channel("conf:burst-key");
    let now = unix_time_ms();
    let first = store.enqueue(keyed(&chat, "1", "k", now)).await.unwrap();
    let second = store.enqueue(keyed(&chat, "2", "k", now)).await.unwrap();
    let third = store.enqueue(request(&chat, "3")).await.unwrap();
    let (first, second, third) = (first.await.unwrap(), second.await.unwrap(), third.await.unwrap());
    assert_eq!((first.publication.offset, first.duplicate), (1, false));
    assert_eq!((second.publication.offset, second.duplicate), (1, true));
    assert_eq!((third.publication.offset, third.duplicate), (2, false));
    assert_eq!(offsets_of(&store.read(&chat, everything()).await.unwrap().publications), vec![1, 2]);
}

pub async fn idempotency_keys_are_per_channel(store: &dyn HistoryStore) {
    let now = unix_time_ms();
    for name in ["conf:a", "conf:b"] {
        let appended = append_ok(store, keyed(&channel(name), "1", "shared-key", now)).await;
        assert_eq!((appended.publication.offset, appended.duplicate), (1, false), "{name}");
    }
}

pub async fn data_round_trips_byte_for_byte(store: &dyn HistoryStore) {
    let chat = channel("conf:bytes");
    let texts = [
        r#"{"text":"héllo wörld — 你好 🎉","escaped":"\u00e9\n\"q\"\\"}"#,
        r#"{ "nested" : { "list" : [ 1, 2.50, -3e+2, true, null, [ ] ], "empty" : { } } }"#,
        r#""just a string with \u0000 and \t""#,
        "12345678901234567890",
        "[]",
    ];
    for text in texts {
        let appended = append_ok(store, request(&chat, text)).await;
        assert_eq!(appended.publication.data.as_str(), text);
    }
    let page = store.read(&chat, everything()).await.unwrap();
    let stored: Vec<&str> = page.publications.iter().map(|p| p.data.as_str()).collect();
    assert_eq!(stored, texts);
}

pub async fn read_agrees_with_position(store: &dyn HistoryStore) {
    let chat = channel("conf:agree");
    let appended = append_numbers(store, &chat, 7).await;
    let position = store.position(&chat).await.unwrap();
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(position, appended.position());
    assert_eq!((page.epoch, page.top_offset), (position.epoch, position.offset));
    assert_eq!(page.publications.last(), Some(&appended.publication));
}

pub async fn authors_are_kept_with_publications(store: &dyn HistoryStore) {
    let chat = channel("conf:authors");
    let first = append_ok(store, authored(&chat, "1", Some("alice"))).await;
    assert_eq!(first.publication.author, Some(UserId::new("alice")));
    append_ok(store, authored(&chat, "2", None)).await;
    let page = store.read(&chat, everything()).await.unwrap();
    let authors: Vec<Option<&str>> =
        page.publications.iter().map(|p| p.author.as_ref().map(UserId::as_str)).collect();
    assert_eq!(authors, [Some("alice"), None]);
}

pub async fn deleting_an_offset_appends_a_record_and_reads_serve_a_tombstone(store: &dyn HistoryStore) {
    let chat = channel("conf:delete");
    for n in 1..=3 {
        append_ok(
            store,
            AppendRequest { event: Some("ev".into()), ..authored(&chat, &n.to_string(), Some("al")) },
        )
        .await;
    }
    let time_ms = unix_time_ms();
    let record =
        delete_ok(store, AppendRequest { time_ms, ..deleting(&chat, offsets([2]), Some("mod")) }).await;
    assert!(!record.duplicate);
    let expected = Publication::delete_record(4, time_ms, vec![2]).with_author(Some(UserId::new("mod")));
    assert_eq!(record.publication, expected);
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(page.top_offset, 4);
    assert_eq!(offsets_of(&page.publications), [1, 2, 3, 4], "no gap: the target keeps its offset");
    let tombstone = &page.publications[1];
    assert_eq!(
        *tombstone,
        Publication::tombstone(2, page.publications[1].time_ms),
        "no data, event or author"
    );
    assert_eq!(page.publications[0].message_data().map(JsonData::as_str), Some("1"));
    assert_eq!(page.publications[3], expected);
    let recovering = store.read(&chat, HistoryQuery { since: Some(1), ..everything() }).await.unwrap();
    assert!(recovering.publications[0].is_tombstone(), "recovery gets the tombstone, not the data");
    let newest = store.read(&chat, HistoryQuery { reverse: true, limit: 3, ..everything() }).await.unwrap();
    assert_eq!(offsets_of(&newest.publications), [4, 3, 2]);
    assert!(newest.publications[2].is_tombstone());
    assert_eq!(store.position(&chat).await.unwrap().offset, 4);
}

pub async fn deleting_by_idempotency_key_deletes_the_keyed_publication_within_its_window(
    store: &dyn HistoryStore,
) {
    let chat = channel("conf:delete-key");
    let start = unix_time_ms();
    append_ok(store, request(&chat, "0")).await;
    let window = Duration::from_secs(5);
    append_ok(store, AppendRequest { idempotency_window: window, ..keyed(&chat, "1", "order-1", start) })
        .await;
    let by_key = |key: &str, time_ms| AppendRequest {
        time_ms,
        ..deleting(&chat, DeleteTargets::IdempotencyKey(key.into()), None)
    };
    assert_nothing_to_delete(store, by_key("unknown", start + 1)).await;
    assert_nothing_to_delete(store, by_key("order-1", start + 5_000)).await;
    let record = delete_ok(store, by_key("order-1", start + 4_999)).await;
    assert_eq!((record.publication.offset, record.publication.deletes()), (3, Some(&[2][..])));
    assert_nothing_to_delete(store, by_key("order-1", start + 4_999)).await;
    let page = store.read(&chat, everything()).await.unwrap();
    assert!(page.publications[1].is_tombstone());
}

pub async fn purging_an_author_deletes_only_their_retained_publications(store: &dyn HistoryStore) {
    let chat = channel("conf:purge");
    for (data, author) in [("1", Some("spam")), ("2", Some("bob")), ("3", None), ("4", Some("spam"))] {
        append_ok(store, authored(&chat, data, author)).await;
    }
    append_ok(store, authored(&channel("conf:purge-other"), "0", Some("spam"))).await;
    let purge = || deleting(&chat, DeleteTargets::Author(UserId::new("spam")), None);
    let record = delete_ok(store, purge()).await;
    assert_eq!((record.publication.offset, record.publication.deletes()), (5, Some(&[1, 4][..])));
    append_ok(store, authored(&chat, "6", Some("spam"))).await;
    let again = delete_ok(store, purge()).await;
    assert_eq!((again.publication.offset, again.publication.deletes()), (7, Some(&[6][..])));
    assert_nothing_to_delete(store, purge()).await;
    let page = store.read(&chat, everything()).await.unwrap();
    let kept: Vec<&str> =
        page.publications.iter().filter_map(|p| p.message_data()).map(JsonData::as_str).collect();
    assert_eq!(kept, ["2", "3"]);
    let other = store.read(&channel("conf:purge-other"), everything()).await.unwrap();
    assert!(!other.publications[0].is_tombstone(), "a purge is per channel");
}

pub async fn a_delete_that_finds_nothing_appends_nothing_and_consumes_no_offset(store: &dyn HistoryStore) {
    let chat = channel("conf:delete-nothing");
    assert_nothing_to_delete(store, deleting(&chat, offsets([1]), None)).await;
    append_numbers(store, &chat, 2).await;
    delete_ok(store, deleting(&chat, offsets([1]), None)).await;
    for targets in [offsets([1]), offsets([3]), offsets([0, 4, 99])] {
        assert_nothing_to_delete(store, deleting(&chat, targets, None)).await;
    }
    assert_nothing_to_delete(store, deleting(&chat, DeleteTargets::Author(UserId::new("nobody")), None))
        .await;
    assert_eq!(store.position(&chat).await.unwrap().offset, 3, "deleted 1, then nothing");
    let mixed = delete_ok(store, deleting(&chat, offsets([1, 2, 3]), None)).await;
    assert_eq!(mixed.publication.deletes(), Some(&[2][..]), "only the targets found, once each");
    assert_eq!(append_ok(store, request(&chat, "5")).await.publication.offset, 5);
}

pub async fn a_delete_takes_its_offset_in_order_with_appends_around_it(store: &dyn HistoryStore) {
    let chat = channel("conf:delete-order");
    let mut receipts = Vec::new();
    for n in 1..=20u64 {
        receipts.push(store.enqueue(request(&chat, &n.to_string())).await.unwrap());
        if n % 5 == 0 {
            receipts.push(store.enqueue(deleting(&chat, offsets([n - 1]), None)).await.unwrap());
        }
    }
    let mut seen = Vec::new();
    for receipt in receipts {
        let publication = receipt.await.unwrap().publication;
        seen.push((publication.offset, publication.deletes().map(<[u64]>::to_vec)));
    }
    assert_eq!(offsets_of_pairs(&seen), (1..=24).collect::<Vec<_>>(), "one offset each, in enqueue order");
    assert_eq!(seen[5], (6, Some(vec![4])));
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(offsets_of(&page.publications), (1..=24).collect::<Vec<_>>());
    let tombstones: Vec<u64> =
        page.publications.iter().filter(|p| p.is_tombstone()).map(|p| p.offset).collect();
    assert_eq!(tombstones, [4, 9, 14, 19]);
}

pub async fn a_delete_in_a_group_can_target_a_publication_of_the_same_group(store: &dyn HistoryStore) {
    let chat = channel("conf:delete-group");
    append_ok(store, request(&chat, "0")).await;
    let group = vec![
        request(&chat, "1"),
        deleting(&chat, offsets([1, 2]), None),
        request(&chat, "3"),
        deleting(&chat, offsets([2]), None),
    ];
    let outcomes = store.enqueue_many(group).await.await;
    type Seen = Result<(u64, Option<Vec<u64>>), bool>;
    let seen: Vec<Seen> = outcomes
        .into_iter()
        .map(|o| {
            o.map(|a| (a.publication.offset, a.publication.deletes().map(<[u64]>::to_vec)))
                .map_err(|e| matches!(e, StoreError::NothingToDelete))
        })
        .collect();
    assert_eq!(seen, [Ok((2, None)), Ok((3, Some(vec![1, 2]))), Ok((4, None)), Err(true)]);
    let page = store.read(&chat, everything()).await.unwrap();
    let tombstones: Vec<bool> = page.publications.iter().map(Publication::is_tombstone).collect();
    assert_eq!(tombstones, [true, true, false, false]);
}

pub async fn deletes_skip_publications_out_of_retention(store: &dyn HistoryStore) {
    let chat = channel("conf:delete-retention");
    let retention = Retention { max_len: 3, max_age: Duration::from_secs(60) };
    let an_hour_ago = unix_time_ms() - 3_600_000;
    append_ok(store, AppendRequest { retention, time_ms: an_hour_ago, ..request(&chat, "\"old\"") }).await;
    for n in 2..=5 {
        append_ok(store, AppendRequest { retention, ..request(&chat, &n.to_string()) }).await;
    }
    let kept = |targets| AppendRequest { retention, ..deleting(&chat, targets, None) };
    assert_nothing_to_delete(store, kept(offsets([1]))).await;
    assert_nothing_to_delete(store, kept(offsets([2]))).await;
    let record = delete_ok(store, kept(offsets([1, 2, 3, 5]))).await;
    assert_eq!((record.publication.offset, record.publication.deletes()), (6, Some(&[3, 5][..])));
    let page = store.read(&chat, HistoryQuery { retention, ..everything() }).await.unwrap();
    assert_eq!(offsets_of(&page.publications), [4, 5, 6]);
    assert!(page.publications[1].is_tombstone());
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("conformance channel names are valid")
}

fn request(channel: &ChannelName, data: &str) -> AppendRequest {
    AppendRequest::new(channel.clone(), JsonData::parse(data.to_owned()).expect("conformance data is JSON"))
}

fn keyed(channel: &ChannelName, data: &str, key: &str, time_ms: u64) -> AppendRequest {
    AppendRequest { idempotency_key: Some(key.to_owned()), time_ms, ..request(channel, data) }
}

/// Everything the default retention keeps, oldest first.
fn everything() -> HistoryQuery {
    HistoryQuery { since: None, limit: usize::MAX, reverse: false, retention: Retention::default() }
}

fn authored(channel: &ChannelName, data: &str, author: Option<&str>) -> AppendRequest {
    AppendRequest { author: author.map(UserId::new), ..request(channel, data) }
}

fn deleting(channel: &ChannelName, targets: DeleteTargets, author: Option<&str>) -> AppendRequest {
    AppendRequest { author: author.map(UserId::new), ..AppendRequest::delete(channel.clone(), targets) }
}

fn offsets<const N: usize>(offsets: [u64; N]) -> DeleteTargets {
    DeleteTargets::Offsets(offsets.to_vec())
}

async fn delete_ok(store: &dyn HistoryStore, request: AppendRequest) -> Appended {
    delete(store, request).await.expect("the delete finds its targets")
}

async fn assert_nothing_to_delete(store: &dyn HistoryStore, request: AppendRequest) {
    let targets = request.delete.clone();
    match delete(store, request).await {
        Err(StoreError::NothingToDelete) => {}
        other => panic!("deleting {targets:?}: expected NothingToDelete, got {other:?}"),
    }
}

fn offsets_of(publications: &[Publication]) -> Vec<u64> {
    offset_list(publications)
}

fn offsets_of_pairs(seen: &[(u64, Option<Vec<u64>>)]) -> Vec<u64> {
    seen.iter().map(|(offset, _)| *offset).collect()
}

async fn append_ok(store: &dyn HistoryStore, request: AppendRequest) -> Appended {
    append(store, request).await.expect("append succeeds")
}

/// Appends `1`, `2`, … `count` one after the other; returns the last.
async fn append_numbers(store: &dyn HistoryStore, channel: &ChannelName, count: u64) -> Appended {
    let mut last = None;
    for n in 1..=count {
        last = Some(append_ok(store, request(channel, &n.to_string())).await);
    }
    last.expect("count is at least 1")
}

fn offset_list(publications: &[Publication]) -> Vec<u64> {
    publications.iter().map(|p| p.offset).collect()
}
