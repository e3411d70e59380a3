//! The Redis store against private `redis-server` processes: the shared
//! conformance suite, its live frames, epochs across restarts, reconnects.
//!
//! Every test starts its own server on a free port; without `redis-server`
//! installed (outside CI) each test prints why and skips.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use fanfare_protocol::cluster::{LiveFrame, LivePublication, channel_key, live_channel};
use fanfare_protocol::{ChannelName, JsonData, UserId};
use fanfare_store::conformance::Subject;
use fanfare_store::{
    AppendRequest, Appended, DeleteTargets, HistoryQuery, HistoryStore, RedisStore, RedisStoreOptions,
    Retention, StoreError, append, delete, unix_time_ms,
};
use fanfare_testkit::{Persistence, RedisServer};
use futures_util::StreamExt;

/// Short reconnect delays, so tests that restart Redis finish quickly.
fn options() -> RedisStoreOptions {
    RedisStoreOptions {
        reconnect_max_delay: Duration::from_millis(300),
        ping_interval: Duration::from_millis(200),
        ..RedisStoreOptions::default()
    }
}

async fn open(server: &RedisServer) -> RedisStore {
    RedisStore::open(&server.url(), options()).await.expect("the store connects")
}

/// The store under conformance test, keeping its server alive. Without
/// `redis-server` (outside CI) the cases run against the memory store so
/// the binary stays green; the skip is printed.
async fn subject() -> Subject {
    match RedisServer::start_or_skip() {
        Some(server) => Subject::keeping(open(&server).await, server),
        None => {
            eprintln!("skipped the Redis conformance case (running it against MemoryStore instead)");
            Subject::new(fanfare_store::MemoryStore::new())
        }
    }
}

mod conformance {
    fanfare_store::history_store_conformance!(async { super::subject().await });
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn request(channel: &ChannelName, data: &str) -> AppendRequest {
    AppendRequest::new(channel.clone(), JsonData::parse(data.to_owned()).unwrap())
}

fn everything() -> HistoryQuery {
    HistoryQuery { since: None, limit: usize::MAX, reverse: false, retention: Retention::default() }
}

/// Retries an append until it succeeds, for at most `timeout`.
async fn append_eventually(store: &RedisStore, request: AppendRequest, timeout: Duration) -> Appended {
    let deadline = Instant::now() + timeout;
    loop {
        match append(store, request.clone()).await {
            Ok(appended) => return appended,
            Err(error) if Instant::now() < deadline => {
                assert!(matches!(error, StoreError::Unavailable { .. }), "transient: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("no append succeeded within {timeout:?}: {error}"),
        }
    }
}

/// Waits (bounded) until `ready()` says `expected`.
async fn wait_ready(store: &RedisStore, expected: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.ready().await != expected {
        assert!(Instant::now() < deadline, "ready() never became {expected}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn frame_of(appended: &[(&Appended, u64)]) -> LiveFrame {
    LiveFrame::Publications {
        epoch: appended[0].0.epoch.clone(),
        items: appended
            .iter()
            .map(|(a, exclude)| LivePublication { publication: a.publication.clone(), exclude: *exclude })
            .collect(),
    }
}

#[tokio::test]
async fn every_fresh_append_is_published_once_in_offset_order_with_its_exclusion() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("live:room");
    let client = redis::Client::open(server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(live_channel(&chat)).await.unwrap();
    let mut frames = pubsub.into_on_message();

    let keyed = |data: &str, exclude| AppendRequest {
        idempotency_key: Some("order-1".into()),
        exclude,
        event: Some("created".into()),
        ..request(&chat, data)
    };
    let first = append(&store, AppendRequest { exclude: 42, ..request(&chat, r#"{"n":1}"#) }).await.unwrap();
    let second = append(&store, keyed(r#"{"n":2}"#, 7)).await.unwrap();
    let duplicate = append(&store, keyed(r#"{"n":2}"#, 7)).await.unwrap();
    assert!(duplicate.duplicate);
    let group =
        vec![request(&chat, "3"), keyed("\"again\"", 0), AppendRequest { exclude: 9, ..request(&chat, "4") }];
    let group: Vec<Appended> =
        store.enqueue_many(group).await.await.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        group.iter().map(|a| (a.publication.offset, a.duplicate)).collect::<Vec<_>>(),
        [(3, false), (2, true), (4, false)]
    );

    let expected =
        [frame_of(&[(&first, 42)]), frame_of(&[(&second, 7)]), frame_of(&[(&group[0], 0), (&group[2], 9)])];
    for want in expected {
        let message = tokio::time::timeout(Duration::from_secs(5), frames.next()).await.unwrap().unwrap();
        let bytes = message.get_payload_bytes();
        assert_eq!(LiveFrame::decode(bytes).unwrap(), want);
        assert_eq!(bytes, want.encode(), "the script builds exactly LiveFrame::encode's bytes");
    }
    let nothing_more = tokio::time::timeout(Duration::from_millis(200), frames.next()).await;
    assert!(nothing_more.is_err(), "a duplicate publishes nothing, a group one frame");
}

/// Every node fans a delete out from the live channel, so the script
/// publishes the record like an append, and a delete that finds nothing
/// publishes nothing.
#[tokio::test]
async fn a_delete_record_is_published_in_order_and_a_delete_of_nothing_is_not() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("live:deletes");
    let client = redis::Client::open(server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(live_channel(&chat)).await.unwrap();
    let mut frames = pubsub.into_on_message();

    let first = append(&store, AppendRequest { author: Some(UserId::new("spam")), ..request(&chat, "1") })
        .await
        .unwrap();
    let nothing = delete(&store, AppendRequest::delete(chat.clone(), DeleteTargets::Offsets(vec![9]))).await;
    assert!(matches!(nothing, Err(StoreError::NothingToDelete)), "{nothing:?}");
    let purge = AppendRequest {
        author: Some(UserId::new("moderator")),
        ..AppendRequest::delete(chat.clone(), DeleteTargets::Author(UserId::new("spam")))
    };
    let record = delete(&store, purge).await.unwrap();
    assert_eq!((record.publication.offset, record.publication.deletes()), (2, Some(&[1][..])));
    assert_eq!(record.publication.author, Some(UserId::new("moderator")));

    for want in [frame_of(&[(&first, 0)]), frame_of(&[(&record, 0)])] {
        let message = tokio::time::timeout(Duration::from_secs(5), frames.next()).await.unwrap().unwrap();
        let bytes = message.get_payload_bytes();
        assert_eq!(LiveFrame::decode(bytes).unwrap(), want);
        assert_eq!(bytes, want.encode(), "the script builds exactly LiveFrame::encode's bytes");
    }
}

/// Tombstones live beside the stream; reads merge them back in offset
/// order across the script's scan chunks, both ways and with a limit.
#[tokio::test]
async fn reads_merge_many_tombstones_in_offset_order_with_limit_and_reverse() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("redis:many-deletes");
    let retention = Retention { max_len: 5000, ..Retention::default() };
    let group = (1..=1200).map(|n| AppendRequest { retention, ..request(&chat, &n.to_string()) }).collect();
    for outcome in store.enqueue_many(group).await.await {
        outcome.unwrap();
    }
    // A run of 700 tombstones (longer than a scan chunk), then every other one.
    let targets: Vec<u64> = (1..=1200).filter(|n| *n <= 700 || n % 2 == 1).collect();
    let purge = AppendRequest::delete(chat.clone(), DeleteTargets::Offsets(targets.clone()));
    let record = delete(&store, AppendRequest { retention, ..purge }).await.unwrap();
    assert_eq!(record.publication.offset, 1201);
    assert_eq!(record.publication.deletes().map(<[u64]>::len), Some(targets.len()));

    let all = HistoryQuery { retention, ..everything() };
    let page = store.read(&chat, all).await.unwrap();
    let offsets: Vec<u64> = page.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, (1..=1201).collect::<Vec<_>>(), "no gap where the deleted were");
    for publication in &page.publications[..1200] {
        assert_eq!(publication.is_tombstone(), targets.contains(&publication.offset), "{publication:?}");
    }
    let middle = store.read(&chat, HistoryQuery { since: Some(150), limit: 600, ..all }).await.unwrap();
    let offsets: Vec<u64> = middle.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, (151..=750).collect::<Vec<_>>());
    let newest = store.read(&chat, HistoryQuery { reverse: true, limit: 900, ..all }).await.unwrap();
    let offsets: Vec<u64> = newest.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, (302..=1201).rev().collect::<Vec<_>>());
    let kept = store
        .read(&chat, HistoryQuery { retention: Retention { max_len: 10, ..Retention::default() }, ..all })
        .await
        .unwrap();
    assert_eq!(kept.publications.first().map(|p| (p.offset, p.is_tombstone())), Some((1192, false)));
}

/// A node that lost a publication's live frame heals it from history, so
/// history must keep the connection the frame would have excluded.
#[tokio::test]
async fn history_keeps_each_publications_exclusion_and_entries_without_one_stay_bare() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("exclusions:room");
    append(&store, request(&chat, "1")).await.unwrap();
    append(&store, AppendRequest { exclude: 42, ..request(&chat, "2") }).await.unwrap();
    let group = vec![request(&chat, "3"), AppendRequest { exclude: u64::MAX, ..request(&chat, "4") }];
    assert!(store.enqueue_many(group).await.await.iter().all(Result::is_ok));

    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(channel_key(&chat, "stream"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let fields: Vec<Vec<&str>> =
        entries.iter().map(|(_, fields)| fields.iter().step_by(2).map(String::as_str).collect()).collect();
    assert_eq!(fields, [vec!["p"], vec!["p", "x"], vec!["p"], vec!["p", "x"]]);
    assert_eq!(entries[1].1[3], "42");

    let exclusions = |page: fanfare_store::HistoryPage| -> Vec<(u64, u64)> {
        page.exclusions.iter().map(|e| (e.offset, e.conn)).collect()
    };
    let forward = store.read(&chat, everything()).await.unwrap();
    assert_eq!(forward.publications.len(), 4, "entries with and without `x` all read");
    assert_eq!(exclusions(forward), [(2, 42), (4, u64::MAX)]);
    let reverse = store.read(&chat, HistoryQuery { reverse: true, ..everything() }).await.unwrap();
    assert_eq!(exclusions(reverse), [(4, u64::MAX), (2, 42)], "in the order of the publications");
    let after_two = store.read(&chat, HistoryQuery { since: Some(2), ..everything() }).await.unwrap();
    assert_eq!(exclusions(after_two), [(4, u64::MAX)], "only the page's own");
}

#[tokio::test]
async fn a_restart_without_persistence_gives_a_new_epoch_to_positions_and_appends() {
    let Some(mut server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let (chat, idle) = (channel("truth:chat"), channel("truth:idle"));
    let before = append(&store, request(&chat, "1")).await.unwrap();
    append(&store, request(&chat, "2")).await.unwrap();
    let idle_before = store.position(&idle).await.unwrap();
    assert_eq!(idle_before.epoch, before.epoch);

    server.restart();
    let after = append_eventually(&store, request(&chat, "3"), Duration::from_secs(10)).await;
    assert_ne!(after.epoch, before.epoch);
    assert_eq!(after.publication.offset, 1, "the stream is gone: a new epoch may start at 1");
    let idle_after = store.position(&idle).await.unwrap();
    assert_ne!(idle_after.epoch, idle_before.epoch);
    assert_eq!(idle_after, store.position(&idle).await.unwrap(), "a new channel's position is stable");
}

#[tokio::test]
async fn flushall_gives_a_new_epoch() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("truth:flushed");
    let before = append(&store, request(&chat, "1")).await.unwrap();
    assert_eq!(server.cli(&["FLUSHALL"]), "OK");
    let position = store.position(&chat).await.unwrap();
    assert_ne!(position.epoch, before.epoch);
    assert_eq!(position.offset, 0);
    let after = append(&store, request(&chat, "2")).await.unwrap();
    assert_eq!((after.epoch, after.publication.offset), (position.epoch, 1));
}

#[tokio::test]
async fn an_aof_always_restart_keeps_the_epoch_and_every_acknowledged_append() {
    let Some(mut server) = RedisServer::start_with_or_skip(Persistence::AofAlways) else { return };
    let store = open(&server).await;
    let chat = channel("truth:durable");
    let mut receipts = Vec::new();
    for n in 1..=50 {
        receipts.push(store.enqueue(request(&chat, &n.to_string())).await.unwrap());
    }
    let mut last = None;
    for receipt in receipts {
        last = Some(receipt.into_future().await.unwrap());
    }
    let last = last.unwrap();

    server.kill();
    wait_ready(&store, false).await;
    server.restart();
    let next = append_eventually(&store, request(&chat, "51"), Duration::from_secs(10)).await;
    assert_eq!((next.epoch.clone(), next.publication.offset), (last.epoch.clone(), 51));
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(page.epoch, last.epoch);
    let data: Vec<String> = page.publications.iter().map(|p| p.data.as_str().to_owned()).collect();
    assert_eq!(data, (1..=51).map(|n| n.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_aof_everysec_kill_bumps_the_generation_and_offsets_go_on_under_a_new_epoch() {
    let Some(mut server) = RedisServer::start_with_or_skip(Persistence::AofEverySec) else { return };
    let store = open(&server).await;
    let chat = channel("truth:everysec");
    let mut old = Vec::new();
    for n in 1..=5 {
        old.push(append(&store, request(&chat, &n.to_string())).await.unwrap().position());
    }

    server.kill();
    wait_ready(&store, false).await;
    server.restart();
    let next = append_eventually(&store, request(&chat, "6"), Duration::from_secs(10)).await;
    assert_ne!(next.epoch, old[0].epoch, "the data may have survived, the guarantee did not");
    assert!(!old.contains(&next.position()), "no (epoch, offset) is handed out twice");
    let page = store.read(&chat, everything()).await.unwrap();
    assert_eq!(page.epoch, next.epoch);
    assert_eq!(page.top_offset, next.publication.offset);
    assert!(
        page.publications.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets go on after what survived"
    );
}

/// Polls `check` (bounded) until it holds.
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_promoted_replica_gives_a_new_epoch_even_with_aof_always() {
    let Some(mut primary) = RedisServer::start_with_or_skip(Persistence::AofAlways) else { return };
    let replica = RedisServer::start_with(Persistence::AofAlways);
    let chat = channel("truth:failover");
    let store = open(&primary).await;
    let mut before = None;
    for n in 1..=3 {
        before = Some(append(&store, request(&chat, &n.to_string())).await.unwrap());
    }
    let before = before.unwrap();
    let primary_port = primary.port().to_string();
    assert_eq!(replica.cli(&["REPLICAOF", "127.0.0.1", &primary_port]), "OK");
    let offset_key = format!("fanfare:{{{chat}}}:meta");
    wait_until("the replica has the channel", || replica.cli(&["HGET", &offset_key, "s"]) == "3").await;

    primary.kill();
    assert_eq!(replica.cli(&["REPLICAOF", "NO", "ONE"]), "OK");
    let promoted = open(&replica).await;
    let position = promoted.position(&chat).await.unwrap();
    assert_ne!(position.epoch, before.epoch, "replication is asynchronous: a failover may lose appends");
    assert_eq!(position.offset, 3, "what the replica holds stays, under the new epoch");
    let next = append(&promoted, request(&chat, "4")).await.unwrap();
    assert_eq!((next.epoch, next.publication.offset), (position.epoch, 4));
}

#[tokio::test]
async fn appends_fail_transiently_while_redis_is_down_and_resume_with_a_new_epoch() {
    let Some(mut server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("reconnect:chat");
    let before = append(&store, request(&chat, "1")).await.unwrap();
    assert!(store.ready().await);

    server.kill();
    let error = append(&store, request(&chat, "2")).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { backend: "redis", .. }), "{error:?}");
    wait_ready(&store, false).await;
    let error = append(&store, request(&chat, "3")).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { maybe_applied: false, .. }), "{error:?}");
    assert!(matches!(store.position(&chat).await, Err(StoreError::Unavailable { .. })));

    server.restart();
    let after = append_eventually(&store, request(&chat, "4"), Duration::from_secs(5)).await;
    wait_ready(&store, true).await;
    assert_ne!(after.epoch, before.epoch);
    store.close().await.unwrap();
    assert!(matches!(append(&store, request(&chat, "5")).await, Err(StoreError::Closed)));
}

#[tokio::test]
async fn a_flushed_script_cache_is_reloaded_and_appends_go_on() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("scripts:flushed");
    append(&store, request(&chat, "1")).await.unwrap();
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]), "OK");
    let next = append(&store, request(&chat, "2")).await.unwrap();
    assert_eq!(next.publication.offset, 2);
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]), "OK");
    assert_eq!(store.position(&chat).await.unwrap(), next.position());
}

#[tokio::test]
async fn stream_and_keys_expire_after_the_retention_and_the_meta_lives_longer() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("ttl:room");
    let retention = Retention { max_age: Duration::from_secs(60), ..Retention::default() };
    let keyed = AppendRequest { retention, idempotency_key: Some("k".into()), ..request(&chat, "1") };
    append(&store, keyed).await.unwrap();
    let pttl = |suffix: &str| -> i64 {
        server.cli(&["PTTL", &fanfare_protocol::cluster::channel_key(&chat, suffix)]).parse().unwrap()
    };
    assert!((60_000..=120_000).contains(&pttl("stream")), "max_age plus slack: {}", pttl("stream"));
    assert!(pttl("keys") >= 300_000, "the idempotency window (5 min) outlasts max_age");
    assert!(pttl("key_expiry") >= 300_000);
    assert!(pttl("meta") > 23 * 3600 * 1000, "meta_ttl, 24 h by default");
}

#[tokio::test]
async fn two_nodes_agree_on_the_new_epoch_after_a_restart() {
    let Some(mut server) = RedisServer::start_or_skip() else { return };
    let (node_a, node_b) = (open(&server).await, open(&server).await);
    let (one, two) = (channel("nodes:one"), channel("nodes:two"));
    let before = append(&node_a, request(&one, "1")).await.unwrap();
    assert_eq!(node_b.position(&one).await.unwrap(), before.position());

    server.restart();
    let a = append_eventually(&node_a, request(&one, "2"), Duration::from_secs(10)).await;
    let b = append_eventually(&node_b, request(&two, "1"), Duration::from_secs(10)).await;
    assert_ne!(a.epoch, before.epoch);
    assert_eq!(a.epoch, b.epoch, "one generation, one epoch, whichever node observed first");
    assert_eq!(node_b.position(&one).await.unwrap(), a.position());
}

#[tokio::test]
async fn expired_idempotency_keys_are_forgotten_by_later_appends() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let store = open(&server).await;
    let chat = channel("keys:cleanup");
    let start = unix_time_ms();
    let keyed = |key: String, time_ms| AppendRequest {
        idempotency_key: Some(key),
        idempotency_window: Duration::from_secs(1),
        time_ms,
        ..request(&chat, "1")
    };
    let group = (0..50).map(|n| keyed(format!("k{n}"), start)).collect();
    assert!(store.enqueue_many(group).await.await.iter().all(Result::is_ok));
    let keys = fanfare_protocol::cluster::channel_key(&chat, "keys");
    assert_eq!(server.cli(&["HLEN", &keys]), "50");
    append(&store, keyed("late".into(), start + 2_000)).await.unwrap();
    assert_eq!(server.cli(&["HLEN", &keys]), "1", "only the key still in its window is kept");
}
