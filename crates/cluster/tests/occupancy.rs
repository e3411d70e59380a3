//! The Redis occupancy runs the shared `Occupancy` suite, each
//! test against a private `redis-server`.

use std::sync::Arc;

use fanfare_cluster::Occupancy;
use fanfare_cluster::conformance::Subject;
use fanfare_cluster::redis::RedisOccupancy;
use fanfare_testkit::RedisServer;

async fn redis_occupancy() -> Option<Subject<dyn Occupancy>> {
    let server = RedisServer::start_or_skip()?;
    let url = server.url();
    Some(Subject::new(server, move || {
        let url = url.clone();
        async move { Arc::new(RedisOccupancy::open(&url).await.expect("redis connects")) as Arc<dyn Occupancy> }
    }))
}

mod redis {
    fanfare_cluster::occupancy_conformance!(super::redis_occupancy());
}

/// A node's index shrinks with its counts, and the node leaves the set of
/// indexed nodes once it counts nothing.
#[tokio::test]
async fn the_nodes_channel_index_is_empty_once_its_counts_are_zero() {
    use fanfare_cluster::NodeId;
    use fanfare_protocol::ChannelName;

    let Some(server) = RedisServer::start_or_skip() else { return };
    let occupancy = RedisOccupancy::open(&server.url()).await.expect("redis connects");
    let node = NodeId::new("node-a");
    let channels: Vec<ChannelName> =
        (0..10).map(|n| ChannelName::new(&format!("chat:{n}")).unwrap()).collect();
    for channel in &channels {
        occupancy.set(&node, channel, 3).await.unwrap();
    }
    assert_eq!(server.cli(&["HLEN", "fanfare:{occupancy}:node:node-a"]), "10");
    for channel in &channels {
        occupancy.set(&node, channel, 0).await.unwrap();
    }
    assert_eq!(server.cli(&["DBSIZE"]), "0", "nothing is left behind");
}
