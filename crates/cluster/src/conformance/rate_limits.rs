//! The [`RateLimits`] suite: one case per rule of its `# Contract`.
//!
//! Cases that wait for a bucket to refill wait the time the engine said,
//! which is what is under test; rates are short, so the suite takes
//! about a second.
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::rate_limits_conformance!(super::redis_limits());
//! }
//! ```

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::ChannelName;

use super::Subject;
use crate::{Admission, Bucket, Rate, RateLimits};

/// Generates one `#[tokio::test]` per case for the engine built by `$make`
/// (a future yielding `Option<Subject<dyn RateLimits>>`; `None` skips).
#[macro_export]
macro_rules! rate_limits_conformance {
    ($make:expr) => {
        $crate::rate_limits_conformance!(@cases $make;
            a_full_bucket_admits_its_count_then_refuses_saying_how_long,
            a_refused_take_is_admitted_once_its_wait_is_over,
            several_tokens_are_taken_at_once_or_not_at_all,
            buckets_are_told_apart_by_channel_user_namespace_and_rate,
            concurrent_takes_on_every_handle_admit_no_more_than_the_bucket_holds,
            slow_mode_admits_one_publication_per_user_per_interval,
            a_zero_interval_admits_everything,
            a_moderators_interval_overrides_the_default_on_every_handle,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::rate_limits::$case(&subject).await;
            }
        )*
    };
}

type Engine = Subject<dyn RateLimits>;

const ONE: NonZeroU32 = NonZeroU32::MIN;

fn rate(count: u32, period_ms: u64) -> Rate {
    Rate { count: NonZeroU32::new(count).unwrap(), period: Duration::from_millis(period_ms) }
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

async fn admitted(limits: &dyn RateLimits, bucket: Bucket<'_>, rate: Rate, times: usize) -> usize {
    let mut count = 0;
    for _ in 0..times {
        if limits.take(bucket, rate, ONE).await.unwrap().is_admitted() {
            count += 1;
        }
    }
    count
}

fn wait_of(admission: Admission) -> Duration {
    match admission {
        Admission::Refused { retry_after } => retry_after,
        Admission::Admitted => panic!("expected a refusal"),
    }
}

pub async fn a_full_bucket_admits_its_count_then_refuses_saying_how_long(engine: &Engine) {
    let limits = engine.connect().await;
    let room = channel("live:a");
    let per_second = rate(5, 1000);
    assert_eq!(admitted(&*limits, Bucket::Channel(&room), per_second, 5).await, 5);
    let wait = wait_of(limits.take(Bucket::Channel(&room), per_second, ONE).await.unwrap());
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(200),
        "one token back in 200 ms: {wait:?}"
    );
}

pub async fn a_refused_take_is_admitted_once_its_wait_is_over(engine: &Engine) {
    let limits = engine.connect().await;
    let bucket = Bucket::User { namespace: "live", user: "ann" };
    let quick = rate(2, 2000);
    assert_eq!(admitted(&*limits, bucket, quick, 2).await, 2);
    let wait = wait_of(limits.take(bucket, quick, ONE).await.unwrap());
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert!(limits.take(bucket, quick, ONE).await.unwrap().is_admitted(), "refilled after {wait:?}");
    assert!(!limits.take(bucket, quick, ONE).await.unwrap().is_admitted(), "one token came back, not two");
}

pub async fn several_tokens_are_taken_at_once_or_not_at_all(engine: &Engine) {
    let limits = engine.connect().await;
    let bucket = Bucket::App { app: "app-1", limit: "events" };
    let ten = rate(10, 60_000);
    let n = |tokens: u32| NonZeroU32::new(tokens).unwrap();
    assert!(limits.take(bucket, ten, n(6)).await.unwrap().is_admitted());
    let wait = wait_of(limits.take(bucket, ten, n(5)).await.unwrap());
    assert!(wait > Duration::from_secs(3), "one token is back in 6 s, not the last of five: {wait:?}");
    assert!(limits.take(bucket, ten, n(4)).await.unwrap().is_admitted(), "the refused five took nothing");
    assert!(!limits.take(bucket, ten, ONE).await.unwrap().is_admitted());
}

pub async fn buckets_are_told_apart_by_channel_user_namespace_and_rate(engine: &Engine) {
    let limits = engine.connect().await;
    let (a, b) = (channel("live:a"), channel("live:b"));
    let one = rate(1, 60_000);
    let buckets = [
        Bucket::Channel(&a),
        Bucket::Channel(&b),
        Bucket::User { namespace: "live", user: "ann" },
        Bucket::User { namespace: "live", user: "bob" },
        Bucket::User { namespace: "chat", user: "ann" },
        Bucket::App { app: "app-1", limit: "events" },
        Bucket::App { app: "app-2", limit: "events" },
        Bucket::App { app: "app-1", limit: "reads" },
    ];
    for bucket in buckets {
        assert!(limits.take(bucket, one, ONE).await.unwrap().is_admitted(), "{bucket:?} starts full");
    }
    for bucket in buckets {
        assert!(!limits.take(bucket, one, ONE).await.unwrap().is_admitted(), "{bucket:?} is empty now");
    }
    assert!(
        limits.take(Bucket::Channel(&a), rate(2, 60_000), ONE).await.unwrap().is_admitted(),
        "a new rate"
    );
}

pub async fn concurrent_takes_on_every_handle_admit_no_more_than_the_bucket_holds(engine: &Engine) {
    let handles: Vec<Arc<dyn RateLimits>> = vec![engine.connect().await, engine.connect().await];
    let room = channel("live:busy");
    let slow = rate(10, 60_000);
    let takes = (0..40).map(|n| {
        let (limits, room) = (handles[n % 2].clone(), room.clone());
        tokio::spawn(
            async move { limits.take(Bucket::Channel(&room), slow, ONE).await.unwrap().is_admitted() },
        )
    });
    let mut admitted = 0;
    for take in takes.collect::<Vec<_>>() {
        admitted += usize::from(take.await.unwrap());
    }
    assert_eq!(admitted, 10);
}

pub async fn slow_mode_admits_one_publication_per_user_per_interval(engine: &Engine) {
    let limits = engine.connect().await;
    let room = channel("live:slow");
    let interval = Duration::from_millis(300);
    let first = limits.take_slow_mode(&room, "ann", interval).await.unwrap();
    assert_eq!((first.interval, first.admission), (interval, Admission::Admitted));
    let again = limits.take_slow_mode(&room, "ann", interval).await.unwrap();
    let wait = wait_of(again.admission);
    assert!(wait <= interval, "{wait:?}");
    assert!(limits.take_slow_mode(&room, "bob", interval).await.unwrap().admission.is_admitted(), "bob");
    let elsewhere = channel("live:other");
    assert!(limits.take_slow_mode(&elsewhere, "ann", interval).await.unwrap().admission.is_admitted());
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert!(limits.take_slow_mode(&room, "ann", interval).await.unwrap().admission.is_admitted());
}

pub async fn a_zero_interval_admits_everything(engine: &Engine) {
    let limits = engine.connect().await;
    let room = channel("live:fast");
    for _ in 0..5 {
        let taken = limits.take_slow_mode(&room, "ann", Duration::ZERO).await.unwrap();
        assert_eq!((taken.interval, taken.admission), (Duration::ZERO, Admission::Admitted));
    }
}

pub async fn a_moderators_interval_overrides_the_default_on_every_handle(engine: &Engine) {
    let (moderator, other) = (engine.connect().await, engine.connect().await);
    let room = channel("live:moderated");
    assert_eq!(other.slow_mode(&room).await.unwrap(), None);
    let set = Duration::from_secs(30);
    moderator.set_slow_mode(&room, Some(set)).await.unwrap();
    assert_eq!(other.slow_mode(&room).await.unwrap(), Some(set));
    let first = other.take_slow_mode(&room, "ann", Duration::ZERO).await.unwrap();
    assert_eq!((first.interval, first.admission), (set, Admission::Admitted));
    let wait = wait_of(other.take_slow_mode(&room, "ann", Duration::ZERO).await.unwrap().admission);
    assert!(wait > Duration::from_secs(25), "{wait:?}");

    moderator.set_slow_mode(&room, Some(Duration::ZERO)).await.unwrap();
    let off = other.take_slow_mode(&room, "bob", Duration::from_secs(60)).await.unwrap();
    assert_eq!(off.interval, Duration::ZERO, "zero turns it off whatever the default");
    assert!(
        other.take_slow_mode(&room, "bob", Duration::from_secs(60)).await.unwrap().admission.is_admitted()
    );

    moderator.set_slow_mode(&room, None).await.unwrap();
    assert_eq!(other.slow_mode(&room).await.unwrap(), None);
    let back = other.take_slow_mode(&room, "cy", Duration::from_secs(60)).await.unwrap();
    assert_eq!(back.interval, Duration::from_secs(60), "back to the default");
}
