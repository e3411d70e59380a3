//! The [`WebhookJournal`] suite: one case per rule of its `# Contract`.
//! Each handle the subject opens is a node of its own (a cluster's), or
//! the next run of the one node (a single node's).
//! [`webhook_journal_conformance!`] has the rules every journal keeps;
//! [`webhook_journal_cluster_conformance!`] adds those that need several
//! live handles at once (concurrent adopters, a live node's records),
//! which a cluster engine must keep and a single node never meets.
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::webhook_journal_conformance!(super::redis_journal());
//!     fanfare_cluster::webhook_journal_cluster_conformance!(super::redis_journal());
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Barrier;

use super::Subject;
use crate::WebhookJournal;

/// Generates one `#[tokio::test]` per case for the engine built by `$make`
/// (a future yielding `Option<Subject<dyn WebhookJournal>>`; `None` skips).
#[macro_export]
macro_rules! webhook_journal_conformance {
    ($make:expr) => {
        $crate::webhook_journal_conformance!(@cases $make;
            records_kept_and_released_are_adopted_byte_for_byte_and_removed_ones_are_not,
            an_adopted_record_is_the_adopters_until_it_releases_it,
            a_record_put_again_replaces_the_first,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::webhook_journal::$case(&subject).await;
            }
        )*
    };
}

/// The cluster-only cases, like [`webhook_journal_conformance!`].
#[macro_export]
macro_rules! webhook_journal_cluster_conformance {
    ($make:expr) => {
        $crate::webhook_journal_conformance!(@cases $make;
            each_released_record_goes_to_one_adopter_of_many,
            a_live_handles_records_are_not_adopted,
        );
    };
}

type Engine = Subject<dyn WebhookJournal>;

fn record(n: usize) -> Bytes {
    Bytes::from(format!(r#"{{"n":{n},"events":["é ✓ \n"]}}"#))
}

fn id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

async fn adopted(journal: &dyn WebhookJournal) -> BTreeMap<String, Bytes> {
    journal.adopt(&[]).await.unwrap().into_iter().collect()
}

pub async fn records_kept_and_released_are_adopted_byte_for_byte_and_removed_ones_are_not(engine: &Engine) {
    let first = engine.connect().await;
    for n in 0..5 {
        first.put(&id(n), record(n)).await.unwrap();
    }
    first.remove(&id(1)).await.unwrap();
    first.remove(&id(3)).await.unwrap();
    first.remove(&id(99)).await.unwrap();
    first.release().await.unwrap();

    let next = engine.connect().await;
    let expected: BTreeMap<String, Bytes> = [0, 2, 4].into_iter().map(|n| (id(n), record(n))).collect();
    assert_eq!(adopted(&*next).await, expected);
    assert!(next.adopt(&[]).await.unwrap().is_empty(), "adopted once: the second adoption finds none");
}

pub async fn a_live_handles_records_are_not_adopted(engine: &Engine) {
    let live = engine.connect().await;
    live.put(&id(1), record(1)).await.unwrap();
    let other = engine.connect().await;
    assert!(adopted(&*other).await.is_empty(), "nothing was released");
    live.release().await.unwrap();
    assert_eq!(adopted(&*other).await.len(), 1);
}

pub async fn each_released_record_goes_to_one_adopter_of_many(engine: &Engine) {
    let first = engine.connect().await;
    for n in 0..40 {
        first.put(&id(n), record(n)).await.unwrap();
    }
    first.release().await.unwrap();
    let adopters = 4;
    let barrier = Arc::new(Barrier::new(adopters));
    let mut tasks = Vec::new();
    for _ in 0..adopters {
        let journal = engine.connect().await;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            journal.adopt(&[]).await.unwrap()
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let expected: Vec<(String, Bytes)> = (0..40).map(|n| (id(n), record(n))).collect();
    assert_eq!(all, expected, "every record once, none twice");
}

pub async fn an_adopted_record_is_the_adopters_until_it_releases_it(engine: &Engine) {
    let first = engine.connect().await;
    for n in 0..3 {
        first.put(&id(n), record(n)).await.unwrap();
    }
    first.release().await.unwrap();
    let adopter = engine.connect().await;
    assert_eq!(adopted(&*adopter).await.len(), 3);
    adopter.remove(&id(0)).await.unwrap();
    adopter.put(&id(7), record(7)).await.unwrap();
    adopter.release().await.unwrap();
    let last = engine.connect().await;
    let expected: BTreeMap<String, Bytes> = [1, 2, 7].into_iter().map(|n| (id(n), record(n))).collect();
    assert_eq!(adopted(&*last).await, expected);
}

pub async fn a_record_put_again_replaces_the_first(engine: &Engine) {
    let first = engine.connect().await;
    first.put(&id(1), record(1)).await.unwrap();
    first.put(&id(1), record(2)).await.unwrap();
    first.release().await.unwrap();
    let next = engine.connect().await;
    assert_eq!(next.adopt(&[]).await.unwrap(), vec![(id(1), record(2))]);
}
