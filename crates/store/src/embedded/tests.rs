//! Embedded-only behaviour: restarts, group commit, failures, the sweep.
//! What every store must do is in the conformance suite instead.

use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::{ChannelName, JsonData};
use tempfile::TempDir;

use super::*;
use crate::{Durability, Retention, append};

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn request(channel: &ChannelName, data: &str) -> AppendRequest {
    AppendRequest::new(channel.clone(), JsonData::parse(data.to_owned()).unwrap())
}

fn buffered(channel: &ChannelName, data: &str) -> AppendRequest {
    AppendRequest { durability: Durability::Buffered, ..request(channel, data) }
}

fn everything() -> HistoryQuery {
    HistoryQuery { since: None, limit: usize::MAX, reverse: false, retention: Retention::default() }
}

fn open(dir: &TempDir) -> EmbeddedStore {
    EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap()
}

/// Offsets physically present on disk for the channel, retention aside.
fn stored_offsets(store: &EmbeddedStore, channel: &ChannelName) -> Vec<u64> {
    let prefix = keys::channel_prefix(channel.as_str());
    let scan = store.shared.publications.prefix(prefix);
    scan.map(|guard| keys::offset_of_publication_key(channel.as_str(), &guard.key().unwrap()).unwrap())
        .collect()
}

fn stored_tail(store: &EmbeddedStore, channel: &ChannelName) -> u64 {
    let key = channel.as_str().as_bytes();
    keys::ChannelMeta::decode(key, &store.shared.channels.get(key).unwrap().unwrap()).unwrap().tail
}

async fn append_burst(store: &EmbeddedStore, channel: &ChannelName, count: u64, retention: Retention) {
    let mut receipts = Vec::new();
    for n in 0..count {
        receipts.push(
            store.enqueue(AppendRequest { retention, ..request(channel, &n.to_string()) }).await.unwrap(),
        );
    }
    for receipt in receipts {
        receipt.await.unwrap();
    }
}

async fn offsets_read(store: &EmbeddedStore, channel: &ChannelName) -> Vec<u64> {
    store.read(channel, everything()).await.unwrap().publications.iter().map(|p| p.offset).collect()
}

#[tokio::test]
async fn reopening_the_directory_keeps_epoch_and_history_and_continues_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let chat = channel("chat:reopen");
    let store = open(&dir);
    let epoch = store.epoch().clone();
    for n in 1..=3 {
        append(&store, request(&chat, &n.to_string())).await.unwrap();
    }
    drop(store);

    let store = open(&dir);
    assert_eq!(store.epoch(), &epoch);
    assert_eq!(offsets_read(&store, &chat).await, vec![1, 2, 3]);
    let appended = append(&store, request(&chat, "4")).await.unwrap();
    assert_eq!(appended.position(), StreamPosition::new(epoch, 4));
}

#[tokio::test]
async fn buffered_appends_survive_an_explicit_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let chat = channel("chat:buffered");
    let store = open(&dir);
    let mut receipts = Vec::new();
    for n in 1..=50 {
        receipts.push(store.enqueue(buffered(&chat, &n.to_string())).await.unwrap());
    }
    store.close().await.unwrap();
    for receipt in receipts {
        receipt.await.unwrap();
    }
    assert_eq!(store.stats().fsyncs, 1, "only the run's first buffered group commit is synced");
    drop(store);
    let store = open(&dir);
    assert_eq!(store.position(&chat).await.unwrap().offset, 50);
}

#[tokio::test]
async fn each_append_waits_for_the_disk_only_if_it_asks_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (chat, comments) = (channel("chat:mixed"), channel("comments:mixed"));
    for n in 1..=5 {
        append(&store, request(&chat, &n.to_string())).await.unwrap();
        append(&store, buffered(&comments, &n.to_string())).await.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.commits, 10, "each append awaited, so each its own group commit");
    assert_eq!(stats.fsyncs, 5 + 1, "the five fsync ones, and the first buffered one of the run");
    assert_eq!(offsets_read(&store, &comments).await, vec![1, 2, 3, 4, 5]);
}

/// The run record as it is on disk now.
fn run_record(store: &EmbeddedStore) -> keys::RunRecord {
    keys::RunRecord::decode(&store.shared.store.get(keys::RUN_KEY).unwrap().unwrap()).unwrap()
}

#[tokio::test]
async fn the_run_record_says_running_then_unsynced_appends_then_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { boot_id: BootId::Fixed("boot-1"), ..EmbeddedOptions::default() };
    let store = EmbeddedStore::open(dir.path(), options).unwrap();
    assert_eq!(store.last_stop(), LastStop::FirstStart);
    let running =
        keys::RunRecord { closed_cleanly: false, unsynced_appends: false, boot_id: Some("boot-1".into()) };
    assert_eq!(run_record(&store), running);
    append(&store, request(&channel("chat:a"), "1")).await.unwrap();
    assert_eq!(run_record(&store), running, "an fsync append leaves nothing unsynced");
    append(&store, buffered(&channel("comments:a"), "1")).await.unwrap();
    assert_eq!(run_record(&store), keys::RunRecord { unsynced_appends: true, ..running.clone() });
    store.close().await.unwrap();
    assert_eq!(run_record(&store), keys::RunRecord { closed_cleanly: true, ..running.clone() });
    drop(store);

    let store = EmbeddedStore::open(dir.path(), options).unwrap();
    assert_eq!(store.last_stop(), LastStop::Clean);
    assert_eq!(run_record(&store), running, "a new run starts with nothing unsynced");
}

#[tokio::test]
async fn dropping_the_store_without_closing_it_is_a_clean_stop_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let epoch = store.epoch().clone();
    append(&store, buffered(&channel("comments:dropped"), "1")).await.unwrap();
    drop(store);
    let store = open(&dir);
    assert_eq!(store.last_stop(), LastStop::Clean);
    assert_eq!(store.epoch(), &epoch);
}

#[tokio::test]
async fn a_new_directory_gets_a_new_epoch() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = open(&first);
    let second = open(&second);
    assert_ne!(first.epoch(), second.epoch());
    assert!(first.epoch().as_str().len() >= 8);
}

#[tokio::test]
async fn group_commit_makes_a_thousand_concurrent_appends_durable_with_few_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut receipts = Vec::new();
    for n in 0..1_000 {
        let chat = channel(&format!("chat:{}", n % 10));
        receipts.push(store.enqueue(request(&chat, &n.to_string())).await.unwrap());
    }
    for receipt in receipts {
        receipt.await.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.appended, 1_000);
    assert_eq!(stats.fsyncs, stats.commits);
    assert!(stats.fsyncs <= 100, "expected group commits, got {stats:?}");
}

#[tokio::test]
async fn a_failed_commit_fails_its_receipts_and_consumes_no_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:failing");
    append(&store, request(&chat, "1")).await.unwrap();

    store.fail_next_commits(1);
    let keyed = AppendRequest { idempotency_key: Some("k".into()), ..request(&chat, "\"lost\"") };
    let failed = append(&store, keyed.clone()).await;
    assert!(matches!(failed, Err(StoreError::Storage { backend: "embedded", .. })), "{failed:?}");
    assert!(!store.ready().await, "a failed commit turns readiness off");
    assert_eq!(store.stats().failed_commits, 1);

    let retried = append(&store, keyed).await.unwrap();
    assert_eq!((retried.publication.offset, retried.duplicate), (2, false), "no offset, no key consumed");
    assert!(store.ready().await);
    assert_eq!(offsets_read(&store, &chat).await, vec![1, 2]);
}

#[tokio::test]
async fn a_failed_batch_fails_every_receipt_in_it_and_later_offsets_stay_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:failing-burst");
    store.fail_next_commits(1);
    let mut receipts = Vec::new();
    for n in 0..200 {
        receipts.push(store.enqueue(request(&chat, &n.to_string())).await.unwrap());
    }
    let mut succeeded = Vec::new();
    for receipt in receipts {
        if let Ok(appended) = receipt.await {
            succeeded.push(appended.publication.offset);
        }
    }
    assert!(succeeded.len() < 200, "the first batch failed");
    assert_eq!(succeeded, (1..=succeeded.len() as u64).collect::<Vec<_>>());
    assert_eq!(offsets_read(&store, &chat).await, succeeded);
}

#[tokio::test]
async fn trimming_by_count_deletes_old_publications_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:trim");
    let retention = Retention { max_len: 5, ..Retention::default() };
    let mut receipts = Vec::new();
    for n in 1..=12 {
        receipts.push(
            store.enqueue(AppendRequest { retention, ..request(&chat, &n.to_string()) }).await.unwrap(),
        );
        if n % 4 == 0 {
            for receipt in receipts.drain(..) {
                receipt.await.unwrap();
            }
        }
    }
    assert_eq!(stored_offsets(&store, &chat), vec![8, 9, 10, 11, 12]);
}

#[tokio::test]
async fn sweep_deletes_expired_history_of_quiet_channels_but_keeps_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let quiet = channel("chat:quiet");
    let retention = Retention { max_age: Duration::from_secs(60), ..Retention::default() };
    let an_hour_ago = unix_time_ms() - 3_600_000;
    for time_ms in [an_hour_ago, an_hour_ago, unix_time_ms()] {
        append(&store, AppendRequest { time_ms, retention, ..request(&quiet, "1") }).await.unwrap();
    }
    let report = store.sweep_expired().await.unwrap();
    assert_eq!(report.publications_deleted, 2);
    assert_eq!(stored_offsets(&store, &quiet), vec![3]);
    assert_eq!(stored_tail(&store, &quiet), 3, "the sweep moved the tail past what it deleted");
    let appended = append(&store, AppendRequest { retention, ..request(&quiet, "4") }).await.unwrap();
    assert_eq!(appended.publication.offset, 4);
    assert_eq!(stored_tail(&store, &quiet), 3, "the writer learned the tail from the sweep");
    assert_eq!(store.sweep_expired().await.unwrap().publications_deleted, 0);
}

#[tokio::test]
async fn lowering_max_len_trims_the_backlog_a_slice_per_batch_and_the_sweep_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:shrinking");
    append_burst(&store, &chat, 2_100, Retention { max_len: 5_000, ..Retention::default() }).await;
    let small = Retention { max_len: 10, ..Retention::default() };
    append_burst(&store, &chat, 1, small).await;
    assert_eq!(stored_tail(&store, &chat), 1 + 1 + 1_024, "one slice: one per append plus 1,024");
    assert_eq!(stored_offsets(&store, &chat).len(), 2_101 - 1_025);
    assert_eq!(offsets_read(&store, &chat).await.len(), 1_000, "reads apply the query's retention");

    let report = store.sweep_expired().await.unwrap();
    assert_eq!(report.publications_deleted, 2_092 - 1_026);
    assert_eq!(stored_offsets(&store, &chat), (2_092..=2_101).collect::<Vec<_>>());
    append_burst(&store, &chat, 3, small).await;
    assert_eq!(stored_offsets(&store, &chat), (2_095..=2_104).collect::<Vec<_>>());
    assert_eq!(stored_tail(&store, &chat), 2_095);
}

#[tokio::test]
async fn sweep_forgets_expired_idempotency_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:keys");
    let old = AppendRequest {
        idempotency_key: Some("old".into()),
        time_ms: unix_time_ms() - 3_600_000,
        ..request(&chat, "1")
    };
    let fresh = AppendRequest { idempotency_key: Some("fresh".into()), ..request(&chat, "2") };
    append(&store, old).await.unwrap();
    append(&store, fresh).await.unwrap();
    assert_eq!(store.sweep_expired().await.unwrap().idempotency_keys_deleted, 1);
    assert_eq!(store.shared.idempotency.iter().count(), 1);
}

#[tokio::test]
async fn closing_completes_queued_appends_then_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:closing");
    let mut receipts = Vec::new();
    for n in 1..=100 {
        receipts.push(store.enqueue(request(&chat, &n.to_string())).await.unwrap());
    }
    store.close().await.unwrap();
    for (n, receipt) in (1..).zip(receipts) {
        assert_eq!(receipt.await.unwrap().publication.offset, n);
    }
    assert!(matches!(store.enqueue(request(&chat, "0")).await, Err(StoreError::Closed)));
    assert!(!store.ready().await);
    store.close().await.unwrap();
    assert_eq!(store.position(&chat).await.unwrap().offset, 100, "reads still work after close");
}

#[tokio::test]
async fn dropping_the_store_completes_queued_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:dropping");
    let mut receipts = Vec::new();
    for n in 1..=100 {
        receipts.push(store.enqueue(request(&chat, &n.to_string())).await.unwrap());
    }
    drop(store);
    for (n, receipt) in (1..).zip(receipts) {
        assert_eq!(receipt.await.unwrap().publication.offset, n);
    }
}

#[tokio::test]
async fn a_corrupt_record_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let chat = channel("chat:corrupt");
    append(&store, request(&chat, "1")).await.unwrap();
    store.shared.publications.insert(keys::publication_key(chat.as_str(), 1), [1, 2, 3]).unwrap();
    let error = store.read(&chat, everything()).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { keyspace: "publications", .. }), "{error}");
    store.shared.channels.insert(chat.as_str(), [9]).unwrap();
    assert!(matches!(store.position(&chat).await, Err(StoreError::Corrupt { keyspace: "channels", .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_appends_see_every_kept_offset_up_to_the_top() {
    let dir = tempfile::tempdir().unwrap();
    // Small batches, so the reads below land between many commits.
    let options = EmbeddedOptions { max_batch: 8, ..EmbeddedOptions::default() };
    let store = Arc::new(EmbeddedStore::open(dir.path(), options).unwrap());
    let chat = channel("chat:consistent");
    let retention = Retention { max_len: 50, ..Retention::default() };
    let mut receipts = Vec::new();
    for n in 1..=2_000 {
        receipts.push(
            store.enqueue(AppendRequest { retention, ..request(&chat, &n.to_string()) }).await.unwrap(),
        );
    }
    let durable = tokio::spawn(async move {
        for receipt in receipts {
            receipt.await.unwrap();
        }
    });
    let query = HistoryQuery { retention, ..everything() };
    let mut tops_seen = std::collections::BTreeSet::new();
    loop {
        let done = durable.is_finished();
        let page = store.read(&chat, query).await.unwrap();
        let expected: Vec<u64> = (retention.first_kept_offset(page.top_offset)..=page.top_offset).collect();
        assert_eq!(page.publications.iter().map(|p| p.offset).collect::<Vec<_>>(), expected);
        tops_seen.insert(page.top_offset);
        if done {
            break;
        }
    }
    assert_eq!(tops_seen.last(), Some(&2_000));
    assert!(tops_seen.len() > 1, "some reads landed between commits");
}

#[test]
fn options_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        EmbeddedOptions { queue_capacity: 0, ..EmbeddedOptions::default() },
        EmbeddedOptions { max_batch: 0, ..EmbeddedOptions::default() },
    ] {
        let refused = EmbeddedStore::open(dir.path(), options);
        assert!(matches!(refused, Err(StoreError::Config { reason: "must be at least 1", .. })));
    }
}

#[tokio::test]
async fn a_group_of_appends_is_one_commit_and_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (chat, other) = (channel("chat:group"), channel("chat:group-other"));
    let store = open(&dir);
    let group: Vec<AppendRequest> =
        (1..=10).map(|n| request(if n <= 7 { &chat } else { &other }, &n.to_string())).collect();
    let outcomes = store.enqueue_many(group).await.await;
    let offsets: Vec<u64> = outcomes.into_iter().map(|o| o.unwrap().publication.offset).collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5, 6, 7, 1, 2, 3]);
    let stats = store.stats();
    assert_eq!((stats.commits, stats.fsyncs, stats.appended), (1, 1, 10));
}

#[tokio::test]
async fn a_failed_group_commit_fails_every_append_of_the_group_and_consumes_no_offset() {
    let dir = tempfile::tempdir().unwrap();
    let chat = channel("chat:group-fails");
    let store = open(&dir);
    store.fail_next_commits(1);
    let outcomes = store.enqueue_many((1..=3).map(|n| request(&chat, &n.to_string())).collect()).await.await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| matches!(o, Err(StoreError::Storage { .. }))), "{outcomes:?}");
    let outcomes = store.enqueue_many(vec![request(&chat, "4")]).await.await;
    assert_eq!(outcomes[0].as_ref().unwrap().publication.offset, 1);
}

/// Rewrites the directory as a format-2 store would have left it: the
/// format key says 2 and the publications at `offsets` are format-2
/// values (the others stay format 3, as after an interrupted migration).
fn downgrade_to_format_2(dir: &TempDir, channel: &ChannelName, offsets: &[(u64, u64, Option<&str>, &str)]) {
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let keyspace = |name| db.keyspace(name, fjall::KeyspaceCreateOptions::default).unwrap();
    let (publications, store) = (keyspace(keys::PUBLICATIONS), keyspace(keys::STORE));
    let mut batch = db.batch().durability(Some(fjall::PersistMode::SyncAll));
    for &(offset, time_ms, event, data) in offsets {
        let value = keys::v2_publication_value(time_ms, event, &JsonData::parse(data.to_owned()).unwrap());
        batch.insert(&publications, keys::publication_key(channel.as_str(), offset), value);
    }
    batch.insert(&store, keys::FORMAT_KEY, 2u32.to_be_bytes());
    batch.commit().unwrap();
}

#[tokio::test]
async fn a_format_2_directory_is_migrated_on_open_and_its_publications_have_no_author() {
    let dir = tempfile::tempdir().unwrap();
    let chat = channel("chat:migrated");
    let epoch = {
        let store = open(&dir);
        for n in 1..=3 {
            let author = Some(fanfare_protocol::UserId::new("kept"));
            append(&store, AppendRequest { author, ..request(&chat, &n.to_string()) }).await.unwrap();
        }
        store.epoch().clone()
    };
    // 1 and 3 as format 2 wrote them; 2 already rewritten by an interrupted migration.
    let then = crate::unix_time_ms() - 60_000;
    downgrade_to_format_2(&dir, &chat, &[(1, then, Some("ev"), r#"{"a":1}"#), (3, then + 2, None, "[3]")]);
    let store = open(&dir);
    assert_eq!(store.epoch(), &epoch, "a migration keeps the epoch");
    let format = store.shared.store.get(keys::FORMAT_KEY).unwrap().unwrap();
    assert_eq!(keys::decode_format(&format).unwrap(), 3);
    let page = store.read(&chat, everything()).await.unwrap();
    let seen: Vec<_> = page
        .publications
        .iter()
        .map(|p| {
            (p.offset, p.time_ms, p.event.as_deref(), p.data.as_str(), p.author.as_ref().map(|a| a.as_str()))
        })
        .collect();
    assert_eq!(seen[0], (1, then, Some("ev"), r#"{"a":1}"#, None));
    assert_eq!((seen[1].0, seen[1].3, seen[1].4), (2, "2", Some("kept")));
    assert_eq!(seen[2], (3, then + 2, None, "[3]", None));
    let record =
        crate::delete(&store, AppendRequest::delete(chat.clone(), crate::DeleteTargets::Offsets(vec![1])))
            .await
            .unwrap();
    assert_eq!(record.publication.offset, 4, "offsets continue after the migration");
    drop(store);
    let store = open(&dir);
    assert!(store.read(&chat, everything()).await.unwrap().publications[0].is_tombstone());
}

#[tokio::test]
async fn a_directory_of_an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let store = db.keyspace(keys::STORE, fjall::KeyspaceCreateOptions::default).unwrap();
        store.insert(keys::FORMAT_KEY, 9u32.to_be_bytes()).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let refused = EmbeddedStore::open(dir.path(), EmbeddedOptions::default());
    assert!(matches!(refused, Err(StoreError::Corrupt { keyspace: "store", .. })));
}
