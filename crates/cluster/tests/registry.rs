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
