//! The Redis webhook journal runs the shared `WebhookJournal` suite, each
//! test against a private `redis-server`; then the rules only a cluster
//! has: a live node's records stay its own, and a dead node's go to the
//! one node that adopts it.

use std::sync::Arc;

use bytes::Bytes;
use fanfare_cluster::conformance::Subject;
use fanfare_cluster::redis::RedisWebhookJournal;
use fanfare_cluster::{NodeId, WebhookJournal};
use fanfare_testkit::RedisServer;

async fn redis_journal() -> Option<Subject<dyn WebhookJournal>> {
    let server = RedisServer::start_or_skip()?;
    let url = server.url();
    Some(Subject::new(server, move || {
        let url = url.clone();
        async move {
            Arc::new(RedisWebhookJournal::open(&url, NodeId::random()).await.expect("redis connects"))
                as Arc<dyn WebhookJournal>
        }
    }))
}

mod redis {
    fanfare_cluster::webhook_journal_conformance!(super::redis_journal());
    fanfare_cluster::webhook_journal_cluster_conformance!(super::redis_journal());
}

#[tokio::test]
async fn a_live_nodes_records_stay_its_own_and_a_dead_nodes_go_to_one_adopter() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let (a, b, c) = (NodeId::new("node-a"), NodeId::new("node-b"), NodeId::new("node-c"));
    let on_a = RedisWebhookJournal::open(&server.url(), a.clone()).await.unwrap();
    let on_b = RedisWebhookJournal::open(&server.url(), b.clone()).await.unwrap();
    let on_c = RedisWebhookJournal::open(&server.url(), c).await.unwrap();
    on_a.put("1", Bytes::from_static(b"one")).await.unwrap();
    on_a.put("2", Bytes::from_static(b"two")).await.unwrap();
    assert!(on_b.adopt(&[]).await.unwrap().is_empty(), "a is alive and released nothing");
    assert_eq!(server.cli(&["HLEN", "fanfare:{webhooks}:journal:node-a"]), "2");

    let (first, second) =
        tokio::join!(on_b.adopt(std::slice::from_ref(&a)), on_c.adopt(std::slice::from_ref(&a)));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut all: Vec<_> = first.iter().chain(&second).cloned().collect();
    all.sort();
    assert_eq!(
        all,
        vec![("1".to_owned(), Bytes::from_static(b"one")), ("2".to_owned(), Bytes::from_static(b"two"))]
    );
    assert!(first.is_empty() || second.is_empty(), "one adopter takes them all: {first:?} {second:?}");
    assert_eq!(server.cli(&["EXISTS", "fanfare:{webhooks}:journal:node-a"]), "0");
    assert!(on_b.adopt(std::slice::from_ref(&b)).await.unwrap().is_empty(), "adopting itself moves nothing");
}
