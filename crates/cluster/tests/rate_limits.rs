//! The Redis rate limits run the `RateLimits` suite, each test against a
//! private `redis-server`.

use std::sync::Arc;

use fanfare_cluster::RateLimits;
use fanfare_cluster::conformance::Subject;
use fanfare_cluster::redis::RedisRateLimits;
use fanfare_testkit::RedisServer;

async fn redis_limits() -> Option<Subject<dyn RateLimits>> {
    let server = RedisServer::start_or_skip()?;
    let url = server.url();
    Some(Subject::new(server, move || {
        let url = url.clone();
        async move { Arc::new(RedisRateLimits::open(&url).await.expect("redis connects")) as Arc<dyn RateLimits> }
    }))
}

mod redis {
    fanfare_cluster::rate_limits_conformance!(super::redis_limits());
}
