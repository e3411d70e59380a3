//! The Redis node registry runs the shared `NodeRegistry` suite, each
//! test against a private `redis-server`.

use std::sync::Arc;

use fanfare_cluster::NodeRegistry;
use fanfare_cluster::conformance::Subject;
use fanfare_cluster::redis::RedisEngines;
use fanfare_testkit::RedisServer;

async fn redis_registry() -> Option<Subject<dyn NodeRegistry>> {
    let server = RedisServer::start_or_skip()?;
    let url = server.url();
    Some(Subject::new(server, move || {
        let url = url.clone();
        async move {
            // Through `RedisEngines`, so the shared-connection constructor is exercised too.
            let engines = RedisEngines::open(&url).await.expect("redis connects");
            Arc::new(engines.registry) as Arc<dyn NodeRegistry>
        }
    }))
}

mod redis {
    fanfare_cluster::node_registry_conformance!(super::redis_registry());
}

/// The ghost after `kill -9` (a peer's bug): a node dies without a word;
/// once its lease runs out by Redis's clock, one survivor claims it and
/// announces its members' leaves and its channels' vacancies, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_nodes_members_leave_once_a_survivor_claims_its_lease() {
    use std::time::{Duration, Instant};

    use fanfare_cluster::{NodeId, NodeInfo, Occupancy, PresenceStore};
    use fanfare_protocol::ChannelName;
    use fanfare_protocol::native::Member;

    let Some(server) = RedisServer::start_or_skip() else { return };
    let info = |id: &str| NodeInfo {
        id: NodeId::new(id),
        advertise: None,
        version: "test".into(),
        started_at_ms: 0,
        heartbeat_ms: 0,
        connections: 1,
        subscriptions: 1,
        channels: 1,
    };
    let room = ChannelName::new("presence-room").unwrap();
    let alice = Member { user: "alice".into(), info: None };
    let crashed = RedisEngines::open(&server.url()).await.expect("redis connects");
    crashed.registry.heartbeat(&info("node-crashed"), Duration::from_millis(300)).await.unwrap();
    crashed.presence.join(&NodeId::new("node-crashed"), &room, &alice, 1).await.unwrap();
    crashed.occupancy.set(&NodeId::new("node-crashed"), &room, 1).await.unwrap();
    drop(crashed);

    let survivors = [
        RedisEngines::open(&server.url()).await.expect("redis connects"),
        RedisEngines::open(&server.url()).await.expect("redis connects"),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut claimed = Vec::new();
    while claimed.is_empty() {
        assert!(Instant::now() < deadline, "the crashed node's lease never ran out");
        for survivor in &survivors {
            survivor.registry.heartbeat(&info("node-survivor"), Duration::from_secs(60)).await.unwrap();
            for node in survivor.registry.claim_expired().await.unwrap() {
                let leaves = survivor.presence.remove_node(&node).await.unwrap();
                let changes = survivor.occupancy.remove_node(&node).await.unwrap();
                claimed.push((node, leaves, changes));
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(claimed.len(), 1, "claimed once: {claimed:?}");
    let (node, leaves, changes) = &claimed[0];
    assert_eq!(node.as_str(), "node-crashed");
    assert_eq!(leaves.iter().map(|leave| leave.member.user.as_str()).collect::<Vec<_>>(), ["alice"]);
    assert!(changes.len() == 1 && changes[0].vacated(), "{changes:?}");
    assert!(survivors[0].presence.members(&room).await.unwrap().is_empty(), "no ghost");
    assert_eq!(survivors[1].occupancy.count(&room).await.unwrap(), 0);
}
