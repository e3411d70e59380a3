//! Every store in this crate runs the shared resume-point conformance
//! suite (`fanfare_store::resume_conformance`); the embedded store keeps
//! its points across a reopen (a restart on the same data directory), and
//! Redis keeps them under the documented key.
//!
//! The Redis cases start a private `redis-server` each; without one
//! installed (outside CI) they print why and run against the memory store.

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};
use fanfare_store::resume_conformance::ResumeSubject;
use fanfare_store::{
    EmbeddedOptions, EmbeddedStore, RedisStore, RedisStoreOptions, ResumePoint, ResumePoints, Validity,
};
use fanfare_testkit::RedisServer;

fn embedded() -> ResumeSubject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
    ResumeSubject::keeping(store, dir)
}

async fn redis() -> ResumeSubject {
    match RedisServer::start_or_skip() {
        Some(server) => {
            let store = RedisStore::open(&server.url(), RedisStoreOptions::default())
                .await
                .expect("the store connects");
            ResumeSubject::keeping(store, server)
        }
        None => {
            eprintln!("skipped the Redis resume-point case (running it against MemoryStore instead)");
            ResumeSubject::new(fanfare_store::MemoryStore::new())
        }
    }
}

mod memory {
    fanfare_store::resume_points_conformance!(async { fanfare_store::MemoryStore::new() });
}

mod embedded {
    fanfare_store::resume_points_conformance!(async { super::embedded() });
}

mod redis {
    fanfare_store::resume_points_conformance!(async { super::redis().await });
}

const NOW: u64 = 1_700_000_000_000;

fn point(channel: &ChannelName, offset: u64) -> ResumePoint {
    ResumePoint { channel: channel.clone(), position: StreamPosition::new(Epoch::new("e1"), offset) }
}

#[tokio::test]
async fn embedded_points_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (alice, chat) = (UserId::new("alice"), ChannelName::new("private-chat").unwrap());
    let validity = Validity { now_ms: NOW, expires_at_ms: NOW + 120_000 };
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
        store.save_resume_points(&alice, "1.1", &[point(&chat, 41)], validity).await.unwrap();
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store reopens");
    let claimed = store.claim_resume_point(&alice, &chat, "2.2", validity).await.unwrap();
    assert_eq!(claimed, Some(StreamPosition::new(Epoch::new("e1"), 41)));
}

/// The layout `docs/cluster.md` describes: one hash per (user, channel)
/// under the user's tag, field the holder, expiring with its latest point.
#[tokio::test]
async fn redis_points_live_in_one_expiring_hash_per_user_and_channel() {
    let Some(server) = RedisServer::start_or_skip() else {
        eprintln!("skipped: no redis-server");
        return;
    };
    let store =
        RedisStore::open(&server.url(), RedisStoreOptions::default()).await.expect("the store connects");
    let (user, chat) = (UserId::new("app-1:a}b"), ChannelName::new("private-chat").unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let validity = Validity { now_ms: now, expires_at_ms: now + 60_000 };
    store.save_resume_points(&user, "12.34", &[point(&chat, 1042)], validity).await.unwrap();
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = "fanfare:{user:app-1:a%7Db}:resume:private-chat";
    let stored: Vec<(String, String)> =
        ::redis::cmd("HGETALL").arg(key).query_async(&mut conn).await.unwrap();
    assert_eq!(stored, vec![("12.34".to_owned(), format!("{} 1042 e1", now + 60_000))]);
    let ttl: i64 = ::redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
    assert!((1..=60_000).contains(&ttl), "the key expires with its point: {ttl}");
}
