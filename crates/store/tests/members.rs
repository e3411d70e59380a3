//! Every store in this crate runs the shared member conformance suite;
//! the embedded store's members survive a reopen, and Redis keeps them
//! under the documented keys.

use fanfare_protocol::{ChannelName, UserId};
use fanfare_store::members_conformance::MemberSubject;
use fanfare_store::{EmbeddedOptions, EmbeddedStore, MemberLimits, MemberStore, PageAfter};

fn embedded() -> MemberSubject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
    MemberSubject::keeping(store, dir)
}

mod memory {
    fanfare_store::member_store_conformance!(async { fanfare_store::MemoryStore::new() });
}

mod embedded {
    fanfare_store::member_store_conformance!(async { super::embedded() });
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

#[tokio::test]
async fn embedded_members_and_the_user_index_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (room, other) = (channel("durable:room"), channel("durable:other"));
    let people = [UserId::new("alice"), UserId::new("bob"), UserId::new("carol")];
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        store.add_members(&room, &people, MemberLimits::default()).await.unwrap();
        store.add_members(&other, &people[..1], MemberLimits::default()).await.unwrap();
        store.remove_members(&room, &people[1..2]).await.unwrap();
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let members = store.members(&room, PageAfter::first(10)).await.unwrap();
    assert_eq!(members, [UserId::new("alice"), UserId::new("carol")]);
    assert_eq!(store.member_count(&room).await.unwrap(), 2);
    let alice = store.channels_of(&people[0], PageAfter::first(10)).await.unwrap();
    assert_eq!(alice, [other, room.clone()]);
    assert!(store.channels_of(&people[1], PageAfter::first(10)).await.unwrap().is_empty());
    let limits = MemberLimits { max_members: 2, max_channels: 10 };
    let full = store.add_members(&room, &people[1..2], limits).await;
    assert!(
        matches!(full, Err(fanfare_store::StoreError::TooManyMembers { .. })),
        "the count survived: {full:?}"
    );
}

/// The Redis store under member conformance test, keeping its server
/// alive; without `redis-server` (outside CI) the cases run against the
/// memory store, and the skip is printed.
async fn redis_subject() -> MemberSubject {
    match fanfare_testkit::RedisServer::start_or_skip() {
        Some(server) => MemberSubject::keeping(open_redis(&server).await, server),
        None => {
            eprintln!("skipped the Redis member conformance case (running it against MemoryStore instead)");
            MemberSubject::new(fanfare_store::MemoryStore::new())
        }
    }
}

async fn open_redis(server: &fanfare_testkit::RedisServer) -> fanfare_store::RedisStore {
    fanfare_store::RedisStore::open(&server.url(), fanfare_store::RedisStoreOptions::default())
        .await
        .expect("the store connects")
}

mod redis {
    fanfare_store::member_store_conformance!(async { super::redis_subject().await });
}

/// The documented keys hold each side under its own hash tag, and a
/// stale entry in a user's index (left by a node that died between the
/// steps of a change) is repaired by the next change of that pair.
#[tokio::test]
async fn redis_keeps_each_side_under_its_own_tag_and_the_next_change_repairs_a_stale_index() {
    let Some(server) = fanfare_testkit::RedisServer::start_or_skip() else { return };
    let store = open_redis(&server).await;
    let room = channel("tags:room");
    let people = [UserId::new("alice"), UserId::new("bob")];
    store.add_members(&room, &people, MemberLimits::default()).await.unwrap();
    assert_eq!(server.cli(&["ZRANGE", "fanfare:{tags:room}:members", "0", "-1"]), "alice\nbob");
    assert_eq!(server.cli(&["ZRANGE", "fanfare:{user:alice}:channels", "0", "-1"]), "tags:room");
    assert_eq!(server.cli(&["HGET", "fanfare:{user:alice}:channel_seq", "tags:room"]), "1");

    // A node reserved `tags:ghost` for bob and died before step 2.
    assert_eq!(server.cli(&["ZADD", "fanfare:{user:bob}:channels", "0", "tags:ghost"]), "1");
    let ghost = channel("tags:ghost");
    let bob_channels = store.channels_of(&people[1], PageAfter::first(10)).await.unwrap();
    assert_eq!(bob_channels, [ghost.clone(), room.clone()], "the window the contract describes");
    assert!(!store.is_member(&ghost, &people[1]).await.unwrap(), "the channel side is authoritative");
    store.add_members(&ghost, &people[..1], MemberLimits::default()).await.unwrap();
    store.remove_members(&ghost, &people[1..]).await.unwrap();
    let add_then_remove = store.add_members(&ghost, &people[1..], MemberLimits::default()).await.unwrap();
    assert_eq!(add_then_remove, people[1..], "the stale entry did not make bob a member");
    store.remove_members(&ghost, &people[1..]).await.unwrap();
    let bob_channels = store.channels_of(&people[1], PageAfter::first(10)).await.unwrap();
    assert_eq!(bob_channels, [room], "the change of the pair repaired the index");
}

/// Two nodes change the same pairs at once: whatever order the steps
/// interleave in, once every change has answered each user's index holds
/// every channel the user is a member of (the contract allows stale extra
/// entries, never missing ones).
#[tokio::test]
async fn redis_concurrent_changes_of_the_same_pairs_never_lose_an_index_entry() {
    let Some(server) = fanfare_testkit::RedisServer::start_or_skip() else { return };
    let nodes = std::sync::Arc::new([open_redis(&server).await, open_redis(&server).await]);
    let rooms: Vec<ChannelName> = (0..3).map(|n| channel(&format!("race:{n}"))).collect();
    let people: Vec<UserId> = (0..3).map(|n| UserId::new(format!("u{n}"))).collect();
    let mut tasks = Vec::new();
    for task in 0..16u64 {
        let (nodes, rooms, people) = (nodes.clone(), rooms.clone(), people.clone());
        tasks.push(tokio::spawn(async move {
            for step in 0..30u64 {
                let n = (task * 31 + step * 17) as usize;
                let (node, room, user) = (&nodes[n % 2], &rooms[n / 2 % 3], &people[n / 6 % 3]);
                match (n / 18) % 2 {
                    0 => node
                        .add_members(room, std::slice::from_ref(user), MemberLimits::default())
                        .await
                        .unwrap(),
                    _ => node.remove_members(room, std::slice::from_ref(user)).await.unwrap(),
                };
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for user in &people {
        let indexed = nodes[0].channels_of(user, PageAfter::first(100)).await.unwrap();
        for room in &rooms {
            if nodes[1].is_member(room, user).await.unwrap() {
                assert!(indexed.contains(room), "{user} is a member of {room} but its index misses it");
            }
        }
    }
}

/// `member_apply.lua` applies a channel's state last change number wins,
/// so a late step of an older change cannot undo a newer one.
#[tokio::test]
async fn redis_an_older_apply_arriving_late_is_superseded() {
    let Some(server) = fanfare_testkit::RedisServer::start_or_skip() else { return };
    let script = include_str!("../src/redis/member_apply.lua");
    let (index, applied) = ("fanfare:{user:late}:channels", "fanfare:{user:late}:channel_seq");
    let apply =
        |seq: &str, member: &str| server.cli(&["EVAL", script, "2", index, applied, "chat:x", seq, member]);
    assert_eq!(apply("5", "1"), "1");
    assert_eq!(apply("3", "0"), "0", "an older removal is superseded");
    assert_eq!(server.cli(&["ZRANGE", index, "0", "-1"]), "chat:x");
    assert_eq!(apply("6", "0"), "1");
    assert_eq!(server.cli(&["ZCARD", index]), "0");
    assert_eq!(server.cli(&["HLEN", applied]), "0", "a removal leaves no change number behind");
}
