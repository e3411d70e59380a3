//! The Redis dead-letter log runs the shared `DeadLetterLog` suite, each
//! test against a private `redis-server`.

use std::sync::Arc;

use fanfare_cluster::DeadLetterLog;
use fanfare_cluster::conformance::Subject;
use fanfare_cluster::conformance::dead_letters::BOUND;
use fanfare_cluster::redis::RedisDeadLetters;
use fanfare_testkit::RedisServer;

async fn redis_log() -> Option<Subject<dyn DeadLetterLog>> {
    let server = RedisServer::start_or_skip()?;
    let url = server.url();
    Some(Subject::new(server, move || {
        let url = url.clone();
        async move {
            Arc::new(RedisDeadLetters::open(&url, BOUND).await.expect("redis connects"))
                as Arc<dyn DeadLetterLog>
        }
    }))
}

mod redis {
    fanfare_cluster::dead_letter_log_conformance!(super::redis_log());
}

/// The size counter follows the list, and a counter left behind by a
/// deleted list does not starve the log.
#[tokio::test]
async fn the_size_counter_follows_the_list_and_heals_when_the_list_is_gone() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let log = RedisDeadLetters::open(&server.url(), BOUND).await.expect("redis connects");
    for n in 0..3 {
        log.append(format!("{{\"n\":{n}}}").into()).await.unwrap();
    }
    assert_eq!(server.cli(&["GET", "fanfare:{webhooks}:dead_letters_bytes"]), "21");
    assert_eq!(server.cli(&["LLEN", "fanfare:{webhooks}:dead_letters"]), "3");
    server.cli(&["DEL", "fanfare:{webhooks}:dead_letters"]);
    log.append("{\"n\":3}".into()).await.unwrap();
    assert_eq!(server.cli(&["GET", "fanfare:{webhooks}:dead_letters_bytes"]), "7");
    log.append("{\"n\":4}".into()).await.unwrap();
    assert_eq!(log.recent(10).await.unwrap().len(), 2, "both kept: the counter healed");
}
