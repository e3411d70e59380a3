//! The rate limits of publications by connections, checked once per
//! publication, before the hub (so a room's subscribers cost nothing):
//!
//! 1. per connection (`publish_rate_per_connection`): a bucket the
//!    connection's task owns;
//! 2. per user (`publish_rate_per_user`), over every channel of the
//!    namespace, and
//! 3. slow mode (`slow_mode`, or a moderator's interval for the channel),
//!    one publication per user per interval, and
//! 4. per channel (`publish_rate_per_channel`), whoever publishes:
//!    these three in the [`RateLimits`] engine, so in a cluster they hold
//!    for the whole cluster.
//!
//! A refusal takes nothing from the buckets after the one that refused.
//! An anonymous connection counts as a user of its own. If the engine
//! cannot answer, the publication goes ahead (a limit is not worth an
//! outage) and `fanfare_rate_limit_errors_total` counts it.

pub mod local;
pub mod per_user_channel;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use fanfare_cluster::{Admission, Bucket, ClusterError, Rate, RateLimits};
use fanfare_protocol::{ChannelName, ErrorCode, ErrorInfo};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

use crate::config::PublishLimits;
use crate::gateway::rate::count_refusal;

const ONE: NonZeroU32 = NonZeroU32::MIN;

/// The shared limits; one per server.
#[derive(Clone)]
pub struct PublishLimiter {
    engine: Arc<dyn RateLimits>,
}

/// A connection that publishes: the buckets it owns, and the key of its
/// user's buckets and slow-mode slots while it is anonymous.
pub(crate) struct Publisher {
    anonymous: String,
    buckets: HashMap<Box<str>, DefaultDirectRateLimiter>,
}

impl Publisher {
    /// `connection` names the connection uniquely in the cluster.
    pub fn new(connection: &str) -> Self {
        Self { anonymous: format!("~{connection}"), buckets: HashMap::new() }
    }

    /// The key of `user`'s buckets: the user's id, or the connection's for
    /// an anonymous one (`""`).
    fn key<'a>(&'a self, user: &'a str) -> &'a str {
        if user.is_empty() { &self.anonymous } else { user }
    }

    fn take_own(&mut self, namespace: &str, rate: Rate) -> Admission {
        let bucket = self.buckets.entry(namespace.into()).or_insert_with(|| {
            let quota = Quota::with_period(rate.interval().max(Duration::from_nanos(1)))
                .expect("a positive period")
                .allow_burst(rate.count);
            DefaultDirectRateLimiter::direct(quota)
        });
        match bucket.check() {
            Ok(()) => Admission::Admitted,
            Err(not_until) => {
                Admission::Refused { retry_after: not_until.wait_time_from(DefaultClock::default().now()) }
            }
        }
    }
}

impl PublishLimiter {
    pub fn new(engine: Arc<dyn RateLimits>) -> Self {
        Self { engine }
    }

    /// The engine, for moderators' slow-mode changes.
    pub fn engine(&self) -> &Arc<dyn RateLimits> {
        &self.engine
    }

    /// Whether `publisher`, authenticated as `user` (`""`: anonymous), may
    /// publish to `channel` now.
    pub(crate) async fn admit(
        &self,
        publisher: &mut Publisher,
        user: &str,
        channel: &ChannelName,
        limits: &PublishLimits,
    ) -> Result<(), ErrorInfo> {
        let namespace = channel.namespace();
        if let Some(rate) = limits.per_connection {
            refuse_over(publisher.take_own(namespace, rate), Limit::Connection, rate)?;
        }
        if let Some(rate) = limits.per_user {
            let bucket = Bucket::User { namespace, user: publisher.key(user) };
            refuse_over(self.ask(self.engine.take(bucket, rate, ONE).await), Limit::User, rate)?;
        }
        self.slow_mode(publisher.key(user), channel, limits.slow_mode).await?;
        if let Some(rate) = limits.per_channel {
            refuse_over(
                self.ask(self.engine.take(Bucket::Channel(channel), rate, ONE).await),
                Limit::Channel,
                rate,
            )?;
        }
        Ok(())
    }

    async fn slow_mode(&self, user: &str, channel: &ChannelName, default: Duration) -> Result<(), ErrorInfo> {
        let taken = match self.engine.take_slow_mode(channel, user, default).await {
            Ok(taken) => taken,
            Err(error) => {
                engine_failed(&error);
                return Ok(());
            }
        };
        let Admission::Refused { retry_after } = taken.admission else { return Ok(()) };
        count_refusal("slow_mode");
        let message = format!(
            "slow mode: one publication per {} per user in this channel",
            crate::config::format_duration(taken.interval)
        );
        Err(ErrorInfo::new(ErrorCode::SlowMode, message).retry_after(retry_after))
    }

    fn ask(&self, answer: Result<Admission, ClusterError>) -> Admission {
        answer.unwrap_or_else(|error| {
            engine_failed(&error);
            Admission::Admitted
        })
    }
}

fn engine_failed(error: &ClusterError) {
    metrics::counter!("fanfare_rate_limit_errors_total").increment(1);
    tracing::warn!(%error, "the rate limits could not be checked; the publication goes ahead");
}

#[derive(Clone, Copy)]
enum Limit {
    Connection,
    User,
    Channel,
}

impl Limit {
    /// The `limit` label of `fanfare_rate_limited_total`.
    fn label(self) -> &'static str {
        match self {
            Self::Connection => "publish_per_connection",
            Self::User => "publish_per_user",
            Self::Channel => "publish_per_channel",
        }
    }

    fn whom(self) -> &'static str {
        match self {
            Self::Connection => "this connection may publish",
            Self::User => "a user may publish",
            Self::Channel => "this channel takes",
        }
    }
}

fn refuse_over(admission: Admission, limit: Limit, rate: Rate) -> Result<(), ErrorInfo> {
    let Admission::Refused { retry_after } = admission else { return Ok(()) };
    count_refusal(limit.label());
    let per = crate::config::format_duration(rate.period);
    let message = format!("{} at most {} publications per {per}", limit.whom(), rate.count);
    Err(ErrorInfo::new(ErrorCode::RateLimited, message).retry_after(retry_after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::local::LocalRateLimits;

    fn rate(count: u32, secs: u64) -> Option<Rate> {
        Some(Rate { count: NonZeroU32::new(count).unwrap(), period: Duration::from_secs(secs) })
    }

    fn limiter() -> PublishLimiter {
        PublishLimiter::new(Arc::new(LocalRateLimits::in_memory()))
    }

    fn room(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    #[tokio::test]
    async fn each_limit_refuses_with_its_code_and_wait() {
        let limiter = limiter();
        let cases = [
            (
                PublishLimits { per_connection: rate(2, 10), ..PublishLimits::default() },
                ErrorCode::RateLimited,
            ),
            (PublishLimits { per_user: rate(2, 10), ..PublishLimits::default() }, ErrorCode::RateLimited),
            (PublishLimits { per_channel: rate(2, 10), ..PublishLimits::default() }, ErrorCode::RateLimited),
            (
                PublishLimits { slow_mode: Duration::from_secs(10), ..PublishLimits::default() },
                ErrorCode::SlowMode,
            ),
        ];
        for (n, (limits, code)) in cases.into_iter().enumerate() {
            let channel = room(&format!("live:{n}"));
            let mut ann = Publisher::new("n/1");
            let passes = if code == ErrorCode::SlowMode { 1 } else { 2 };
            for _ in 0..passes {
                limiter.admit(&mut ann, "ann", &channel, &limits).await.unwrap();
            }
            let refused = limiter.admit(&mut ann, "ann", &channel, &limits).await.unwrap_err();
            assert_eq!(refused.code, code, "case {n}");
            let wait = refused.retry_after_ms.unwrap();
            assert!(wait > 2000 && wait <= 10_000, "case {n}: {wait}");
        }
    }

    #[tokio::test]
    async fn users_share_their_bucket_across_connections_and_anonymous_ones_do_not() {
        let limiter = limiter();
        let limits = PublishLimits { per_user: rate(1, 60), ..PublishLimits::default() };
        let channel = room("live:show");
        let (mut tab, mut other_tab) = (Publisher::new("n1/1"), Publisher::new("n2/1"));
        limiter.admit(&mut tab, "ann", &channel, &limits).await.unwrap();
        assert!(limiter.admit(&mut other_tab, "ann", &channel, &limits).await.is_err(), "the same user");
        let (mut first, mut second) = (Publisher::new("n1/2"), Publisher::new("n1/3"));
        limiter.admit(&mut first, "", &channel, &limits).await.unwrap();
        limiter.admit(&mut second, "", &channel, &limits).await.unwrap();
        assert!(limiter.admit(&mut first, "", &channel, &limits).await.is_err(), "its own bucket");
    }

    #[tokio::test]
    async fn a_refusal_takes_nothing_from_the_channel_bucket() {
        let limiter = limiter();
        let limits =
            PublishLimits { per_user: rate(1, 60), per_channel: rate(2, 60), ..PublishLimits::default() };
        let channel = room("live:show");
        let mut ann = Publisher::new("n/1");
        limiter.admit(&mut ann, "ann", &channel, &limits).await.unwrap();
        for _ in 0..5 {
            assert!(limiter.admit(&mut ann, "ann", &channel, &limits).await.is_err());
        }
        limiter.admit(&mut Publisher::new("n/2"), "bob", &channel, &limits).await.unwrap();
        let third = limiter.admit(&mut Publisher::new("n/3"), "cy", &channel, &limits).await;
        assert_eq!(third.unwrap_err().code, ErrorCode::RateLimited, "the channel's two went to ann and bob");
    }
}
