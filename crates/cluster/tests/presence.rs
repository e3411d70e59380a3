//! The Redis presence store runs the shared `PresenceStore` suite, each
//! test against a private `redis-server`.

use std::sync::Arc;

use fanfare_cluster::PresenceStore;
use fanfare_cluster::conformance::Subject;
use fanfare_cluster::redis::RedisPresence;
use fanfare_testkit::RedisServer;

async fn redis_presence() -> Option<Subject<dyn PresenceStore>> {
    let server = RedisServer::start_or_skip()?;
    let url = server.url();
    Some(Subject::new(server, move || {
        let url = url.clone();
        async move { Arc::new(RedisPresence::open(&url).await.expect("redis connects")) as Arc<dyn PresenceStore> }
    }))
}

mod redis {
    fanfare_cluster::presence_store_conformance!(super::redis_presence());
}

/// Redis going away is an error worth retrying, never a wrong answer; once
/// it is back (empty, without the scripts loaded) the same handle works.
#[tokio::test]
async fn a_lost_redis_is_a_transient_error_and_scripts_load_again_after_a_restart() {
    use std::time::{Duration, Instant};

    use fanfare_cluster::NodeId;
    use fanfare_protocol::native::Member;
    use fanfare_protocol::{ChannelName, UserId};

    let Some(mut server) = RedisServer::start_or_skip() else { return };
    let presence = RedisPresence::open(&server.url()).await.expect("redis connects");
    let (node, room) = (NodeId::new("node-a"), ChannelName::new("chat:restart").unwrap());
    let alice = Member { user: UserId::new("alice"), info: None };
    assert!(presence.join(&node, &room, &alice, 1).await.unwrap());
    server.kill();
    let error = presence.join(&node, &room, &alice, 2).await.expect_err("redis is gone");
    assert!(error.is_transient(), "{error:?}");
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        match presence.join(&node, &room, &alice, 1).await {
            Ok(first) => break first,
            Err(error) => {
                assert!(error.is_transient(), "{error:?}");
                assert!(Instant::now() < deadline, "the handle never reconnected: {error:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(first, "the restarted server is empty, so this is a first join again");
}

/// The node's channel index shrinks with its connections: a long-lived
/// node does not collect every channel it ever joined.
#[tokio::test]
async fn the_nodes_channel_index_is_empty_once_its_connections_left() {
    use fanfare_cluster::NodeId;
    use fanfare_protocol::ChannelName;
    use fanfare_protocol::native::Member;

    let Some(server) = RedisServer::start_or_skip() else { return };
    let presence = RedisPresence::open(&server.url()).await.expect("redis connects");
    let node = NodeId::new("node-a");
    let alice = Member { user: "alice".into(), info: None };
    for n in 0..10 {
        let room = ChannelName::new(&format!("dm:alice,user{n}")).unwrap();
        presence.join(&node, &room, &alice, 1).await.unwrap();
        presence.join(&node, &room, &alice, 2).await.unwrap();
    }
    assert_eq!(server.cli(&["HLEN", "fanfare:node:node-a:presence"]), "10");
    for n in 0..10 {
        let room = ChannelName::new(&format!("dm:alice,user{n}")).unwrap();
        presence.leave(&node, &room, &alice.user, 1).await.unwrap();
        presence.leave(&node, &room, &alice.user, 2).await.unwrap();
    }
    assert_eq!(server.cli(&["EXISTS", "fanfare:node:node-a:presence"]), "0");
    assert_eq!(server.cli(&["DBSIZE"]), "0", "nothing is left behind");
}
