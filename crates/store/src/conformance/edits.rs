//! Conformance cases of edits (`HistoryStore`, "Edits"), run by
//! [`history_store_conformance!`](crate::history_store_conformance) with
//! the others.

use fanfare_protocol::{ChannelName, JsonData, Publication, UserId};

use crate::{
    AppendRequest, Appended, DeleteTargets, HistoryQuery, HistoryStore, Retention, StoreError, append,
    delete, edit,
};

pub async fn editing_a_message_appends_an_update_record_and_reads_serve_the_newest_data(
    store: &dyn HistoryStore,
) {
    let chat = channel("conf:edit");
    let original =
        append_ok(store, AppendRequest { event: Some("ev".into()), ..authored(&chat, "1", Some("al")) })
            .await;
    append_ok(store, authored(&chat, "2", Some("bo"))).await;
    let first = edit_ok(store, editing(&chat, 1, r#"{"text":"one"}"#, Some("al"))).await;
    let expected = Publication::update_record(3, first.publication.time_ms, 1, json(r#"{"text":"one"}"#))
        .with_author(Some(UserId::new("al")));
    assert_eq!(first.publication, expected);
    let second = edit_ok(store, editing(&chat, 1, r#"{"text":"uno"}"#, Some("mod"))).await;
    assert_eq!((second.publication.offset, second.publication.updates), (4, Some(1)));
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(page.top_offset, 4);
    let newest = original.publication.clone().edited_to(json(r#"{"text":"uno"}"#));
    assert_eq!(page.publications[0], newest, "original time, event and author; the newest data");
    assert!(page.publications[0].edited);
    assert!(!page.publications[1].edited);
    assert_eq!(page.publications[2], expected, "update records stay with their own data");
    let recovering = store.read(&chat, HistoryQuery { since: Some(2), ..everything() }).await.unwrap();
    let updates: Vec<(u64, Option<u64>)> =
        recovering.publications.iter().map(|p| (p.offset, p.updates)).collect();
    assert_eq!(updates, [(3, Some(1)), (4, Some(1))], "recovery replays the update records in order");
}

pub async fn an_edit_that_finds_no_message_appends_nothing_and_consumes_no_offset(store: &dyn HistoryStore) {
    let chat = channel("conf:edit-nothing");
    append_ok(store, request(&chat, "1")).await;
    append_ok(store, request(&chat, "2")).await;
    delete(store, AppendRequest::delete(chat.clone(), DeleteTargets::Offsets(vec![2]))).await.unwrap();
    edit_ok(store, editing(&chat, 1, "10", None)).await; // 4
    for target in [0, 2, 3, 4, 9] {
        match edit(store, editing(&chat, target, "11", None)).await {
            Err(StoreError::NothingToEdit) => {}
            other => panic!("editing {target}: expected NothingToEdit, got {other:?}"),
        }
    }
    assert_eq!(store.position(&chat).await.unwrap().offset, 4);
    assert_eq!(append_ok(store, request(&chat, "5")).await.publication.offset, 5);
}

pub async fn an_edited_message_and_its_update_records_can_be_deleted_and_purged(store: &dyn HistoryStore) {
    let chat = channel("conf:edit-delete");
    append_ok(store, authored(&chat, "1", Some("al"))).await;
    edit_ok(store, editing(&chat, 1, "2", Some("al"))).await;
    let record = delete(store, AppendRequest::delete(chat.clone(), DeleteTargets::Offsets(vec![1, 2])))
        .await
        .expect("an edited message and an update record are delete targets");
    assert_eq!((record.publication.offset, record.publication.deletes()), (3, Some(&[1, 2][..])));
    let page = store.read(&chat, everything()).await.unwrap();
    assert!(page.publications[0].is_tombstone() && page.publications[1].is_tombstone());
    assert!(matches!(edit(store, editing(&chat, 1, "4", None)).await, Err(StoreError::NothingToEdit)));

    append_ok(store, authored(&chat, "4", Some("spam"))).await; // 4
    append_ok(store, authored(&chat, "5", Some("bo"))).await; // 5
    edit_ok(store, editing(&chat, 4, "6", Some("spam"))).await; // 6
    edit_ok(store, editing(&chat, 5, "7", Some("bo"))).await; // 7
    let purge = AppendRequest::delete(chat.clone(), DeleteTargets::Author(UserId::new("spam")));
    let purged = delete(store, purge).await.unwrap();
    assert_eq!(purged.publication.deletes(), Some(&[4, 6][..]), "ascending, edited ones included");
    let page = store.read(&chat, HistoryQuery { since: Some(3), ..everything() }).await.unwrap();
    let kinds: Vec<(u64, bool, bool)> =
        page.publications.iter().map(|p| (p.offset, p.is_tombstone(), p.edited)).collect();
    assert_eq!(
        kinds,
        [(4, true, false), (5, false, true), (6, true, false), (7, false, false), (8, false, false)]
    );
}

pub async fn an_edit_in_a_group_can_target_a_publication_of_the_same_group(store: &dyn HistoryStore) {
    let chat = channel("conf:edit-group");
    append_ok(store, request(&chat, "1")).await;
    let group = vec![
        request(&chat, "2"),
        editing(&chat, 2, "20", None),
        editing(&chat, 1, "10", None),
        AppendRequest::delete(chat.clone(), DeleteTargets::Offsets(vec![1])),
        editing(&chat, 1, "11", None),
    ];
    let outcomes = store.enqueue_many(group).await.await;
    let offsets: Vec<Option<u64>> =
        outcomes.iter().map(|o| o.as_ref().ok().map(|a| a.publication.offset)).collect();
    assert_eq!(offsets, [Some(2), Some(3), Some(4), Some(5), None]);
    assert!(matches!(outcomes[4], Err(StoreError::NothingToEdit)));
    let page = store.read(&chat, everything()).await.unwrap();
    assert!(page.publications[0].is_tombstone(), "edited, then deleted");
    assert_eq!((page.publications[1].data.as_str(), page.publications[1].edited), ("20", true));
    assert_eq!(page.top_offset, 5);
}

pub async fn edits_skip_messages_out_of_retention(store: &dyn HistoryStore) {
    let chat = channel("conf:edit-retention");
    let retention = Retention { max_len: 2, ..Retention::default() };
    for n in 1..=3 {
        append_ok(store, AppendRequest { retention, ..request(&chat, &n.to_string()) }).await;
    }
    let old = AppendRequest { retention, ..editing(&chat, 1, "9", None) };
    assert!(matches!(edit(store, old).await, Err(StoreError::NothingToEdit)));
    let kept = edit_ok(store, AppendRequest { retention, ..editing(&chat, 3, "9", None) }).await;
    assert_eq!(kept.publication.offset, 4);
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("conformance channel names are valid")
}

fn json(text: &str) -> JsonData {
    JsonData::parse(text.to_owned()).expect("conformance data is JSON")
}

fn request(channel: &ChannelName, data: &str) -> AppendRequest {
    AppendRequest::new(channel.clone(), json(data))
}

fn authored(channel: &ChannelName, data: &str, author: Option<&str>) -> AppendRequest {
    AppendRequest { author: author.map(UserId::new), ..request(channel, data) }
}

fn editing(channel: &ChannelName, target: u64, data: &str, author: Option<&str>) -> AppendRequest {
    AppendRequest {
        author: author.map(UserId::new),
        ..AppendRequest::edit(channel.clone(), target, json(data))
    }
}

fn everything() -> HistoryQuery {
    HistoryQuery { since: None, limit: usize::MAX, reverse: false, retention: Retention::default() }
}

async fn append_ok(store: &dyn HistoryStore, request: AppendRequest) -> Appended {
    append(store, request).await.expect("append succeeds")
}

async fn edit_ok(store: &dyn HistoryStore, request: AppendRequest) -> Appended {
    edit(store, request).await.expect("the edit finds its message")
}
