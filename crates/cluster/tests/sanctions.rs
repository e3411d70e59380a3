//! The Redis sanctions run the `Sanctions` suite, each test against a
//! private `redis-server`.

use std::sync::Arc;

use fanfare_cluster::Sanctions;
use fanfare_cluster::conformance::Subject;
use fanfare_cluster::redis::RedisSanctions;
use fanfare_testkit::RedisServer;

async fn redis_sanctions() -> Option<Subject<dyn Sanctions>> {
    let server = RedisServer::start_or_skip()?;
    let url = server.url();
    Some(Subject::new(server, move || {
        let url = url.clone();
        async move { Arc::new(RedisSanctions::open(&url).await.expect("redis connects")) as Arc<dyn Sanctions> }
    }))
}

mod redis {
    fanfare_cluster::sanctions_conformance!(super::redis_sanctions());
}
