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
