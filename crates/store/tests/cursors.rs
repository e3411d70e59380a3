//! Every store in this crate runs the shared cursor conformance suite
//! (`fanfare_store::conformance::cursors`); the embedded store also keeps
//! its cursors across a reopen.
//!
//! The Redis cases start a private `redis-server` each; without one
//! installed (outside CI) they print why and run against the memory store.

use std::time::Duration;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};
use fanfare_store::conformance::cursors::CursorSubject;
use fanfare_store::{CursorStore, EmbeddedOptions, EmbeddedStore, RedisStore, RedisStoreOptions};
use fanfare_testkit::RedisServer;

fn embedded() -> CursorSubject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
    CursorSubject::keeping(store, dir)
}

async fn redis() -> CursorSubject {
    match RedisServer::start_or_skip() {
        Some(server) => {
            let options =
                RedisStoreOptions { reconnect_max_delay: Duration::from_millis(300), ..Default::default() };
            let store = RedisStore::open(&server.url(), options).await.expect("the store connects");
            CursorSubject::keeping(store, server)
        }
        None => {
            eprintln!("skipped the Redis cursor case (running it against MemoryStore instead)");
            CursorSubject::new(fanfare_store::MemoryStore::new())
        }
    }
}

mod memory {
    fanfare_store::cursor_store_conformance!(async { fanfare_store::MemoryStore::new() });
}

mod embedded {
    fanfare_store::cursor_store_conformance!(async { super::embedded() });
}

mod redis {
    fanfare_store::cursor_store_conformance!(async { super::redis().await });
}

#[tokio::test]
async fn embedded_cursors_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (alice, chat, news) =
        (UserId::new("alice"), ChannelName::new("chat").unwrap(), ChannelName::new("news").unwrap());
    let at = |offset| StreamPosition::new(Epoch::new("e1"), offset);
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
        store.mark_read(&alice, &chat, at(41)).await.unwrap();
        store.mark_read(&alice, &chat, at(42)).await.unwrap();
        store.mark_read(&alice, &news, at(7)).await.unwrap();
        assert!(store.forget_cursor(&alice, &news).await.unwrap());
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store reopens");
    assert_eq!(store.cursors(&alice, &[chat.clone(), news]).await.unwrap(), vec![Some(at(42)), None]);
    assert!(
        !store.mark_read(&alice, &chat, at(40)).await.unwrap().moved,
        "still forward only after the reopen"
    );
}

/// The layout `docs/cluster.md` §8 shows: one hash per user, the user id
/// escaped in the hash tag, field the channel, value `"<epoch> <offset>"`.
#[tokio::test]
async fn redis_cursors_live_in_one_hash_per_user_as_documented() {
    let Some(server) = RedisServer::start_or_skip() else {
        eprintln!("skipped: no redis-server");
        return;
    };
    let store =
        RedisStore::open(&server.url(), RedisStoreOptions::default()).await.expect("the store connects");
    let (user, chat) = (UserId::new("a}b{%"), ChannelName::new("chat:lobby").unwrap());
    store.mark_read(&user, &chat, StreamPosition::new(Epoch::new("an epoch"), 1042)).await.unwrap();
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stored: Vec<(String, String)> = ::redis::cmd("HGETALL")
        .arg("fanfare:{user:a%7Db%7B%25}:cursors")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, vec![("chat:lobby".to_owned(), "an epoch 1042".to_owned())]);
}

#[tokio::test]
async fn a_closed_embedded_store_takes_no_more_marks() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
    let (alice, chat) = (UserId::new("alice"), ChannelName::new("chat").unwrap());
    store.mark_read(&alice, &chat, StreamPosition::new(Epoch::new("e1"), 1)).await.unwrap();
    store.close().await.unwrap();
    let mark = store.mark_read(&alice, &chat, StreamPosition::new(Epoch::new("e1"), 2)).await;
    assert!(matches!(mark, Err(fanfare_store::StoreError::Closed)), "{mark:?}");
    assert!(matches!(store.cursor(&alice, &chat).await, Err(fanfare_store::StoreError::Closed)));
}
