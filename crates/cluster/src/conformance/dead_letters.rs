//! The [`DeadLetterLog`] suite: one case per rule of its `# Contract`.
//!
//! The engine under test must be opened with a bound of [`BOUND`] bytes.
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::dead_letter_log_conformance!(super::redis_log());
//! }
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Barrier;

use super::Subject;
use crate::DeadLetterLog;

/// The bound, in bytes, the engine under test is opened with.
pub const BOUND: u64 = 4096;

/// Generates one `#[tokio::test]` per case for the engine built by `$make`
/// (a future yielding `Option<Subject<dyn DeadLetterLog>>`; `None` skips).
#[macro_export]
macro_rules! dead_letter_log_conformance {
    ($make:expr) => {
        $crate::dead_letter_log_conformance!(@cases $make;
            letters_are_listed_newest_first_byte_for_byte,
            a_letter_appended_on_one_handle_is_listed_on_another,
            past_the_bound_the_oldest_letters_are_dropped_whole,
            the_newest_letter_is_kept_whatever_its_size,
            concurrent_appends_are_each_kept_whole_and_listed_once,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::dead_letters::$case(&subject).await;
            }
        )*
    };
}

type Engine = Subject<dyn DeadLetterLog>;

/// A letter of about `size` bytes (at least its JSON frame), naming `n`.
fn letter(n: usize, size: usize) -> Bytes {
    let head = format!(r#"{{"n":{n},"text":"é ✓ "#);
    let pad = size.saturating_sub(head.len() + 2);
    Bytes::from(format!("{head}{}\"}}", "x".repeat(pad)))
}

pub async fn letters_are_listed_newest_first_byte_for_byte(engine: &Engine) {
    let log = engine.connect().await;
    assert!(log.recent(10).await.unwrap().is_empty(), "a new log is empty");
    let letters: Vec<Bytes> = (0..5).map(|n| letter(n, 60)).collect();
    for one in &letters {
        log.append(one.clone()).await.unwrap();
    }
    let newest_first: Vec<Bytes> = letters.iter().rev().cloned().collect();
    assert_eq!(log.recent(10).await.unwrap(), newest_first);
    assert_eq!(log.recent(2).await.unwrap(), newest_first[..2], "at most `limit`");
}

pub async fn a_letter_appended_on_one_handle_is_listed_on_another(engine: &Engine) {
    let (a, b) = (engine.connect().await, engine.connect().await);
    a.append(letter(1, 80)).await.unwrap();
    assert_eq!(b.recent(10).await.unwrap(), [letter(1, 80)]);
}

pub async fn past_the_bound_the_oldest_letters_are_dropped_whole(engine: &Engine) {
    let log = engine.connect().await;
    let count = 100;
    for n in 0..count {
        log.append(letter(n, 200)).await.unwrap();
    }
    let kept = log.recent(count).await.unwrap();
    assert!(!kept.is_empty());
    let total: u64 = kept.iter().map(|l| l.len() as u64).sum();
    assert!(total <= 2 * BOUND + 200, "{total} bytes kept past a bound of {BOUND}");
    let newest: Vec<Bytes> = (count - kept.len()..count).rev().map(|n| letter(n, 200)).collect();
    assert_eq!(kept, newest, "the newest are kept, whole and in order");
}

pub async fn the_newest_letter_is_kept_whatever_its_size(engine: &Engine) {
    let log = engine.connect().await;
    log.append(letter(0, 100)).await.unwrap();
    let huge = letter(1, 3 * BOUND as usize);
    log.append(huge.clone()).await.unwrap();
    assert_eq!(log.recent(10).await.unwrap().first(), Some(&huge));
    log.append(letter(2, 100)).await.unwrap();
    assert_eq!(log.recent(1).await.unwrap(), [letter(2, 100)], "a later letter is listed first");
}

pub async fn concurrent_appends_are_each_kept_whole_and_listed_once(engine: &Engine) {
    const PER_HANDLE: usize = 20;
    let handles = [engine.connect().await, engine.connect().await];
    let barrier = Arc::new(Barrier::new(handles.len() * PER_HANDLE));
    let mut tasks = Vec::new();
    for (h, log) in handles.iter().enumerate() {
        for i in 0..PER_HANDLE {
            let (log, barrier) = (log.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                log.append(letter(h * PER_HANDLE + i, 40)).await.unwrap();
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let listed = handles[0].recent(1000).await.unwrap();
    let expected: HashSet<Bytes> = (0..2 * PER_HANDLE).map(|n| letter(n, 40)).collect();
    assert_eq!(listed.len(), expected.len(), "each listed once");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), expected, "each whole");
}
