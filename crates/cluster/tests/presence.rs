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
