//! [`RateLimits`]: the publish limits every node of a cluster shares —
//! token buckets per channel and per user, and slow mode — so a limit
//! holds for the cluster, not for each node.

use std::num::NonZeroU32;
use std::time::Duration;

use fanfare_protocol::ChannelName;

use crate::ClusterError;

/// How fast a bucket refills: `count` takes per `period`, in bursts of up
/// to `count` (a full bucket holds `count` tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl Rate {
    /// The time one token takes to come back.
    pub fn interval(&self) -> Duration {
        self.period / self.count.get()
    }
}

/// A bucket of publications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket<'a> {
    /// Every publication to one channel, whoever sends it.
    Channel(&'a ChannelName),
    /// One user's publications to every channel of one namespace.
    User { namespace: &'a str, user: &'a str },
    /// One of a Pusher app's HTTP API limits (`limit` names which).
    App { app: &'a str, limit: &'static str },
}

/// The answer of a take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Refused; a take after `retry_after` is admitted (unless others took
    /// the tokens first).
    Refused {
        retry_after: Duration,
    },
}

impl Admission {
    pub fn is_admitted(&self) -> bool {
        matches!(self, Self::Admitted)
    }
}

/// What slow mode decided for one publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowModeAdmission {
    /// The channel's interval in force (zero: slow mode is off).
    pub interval: Duration,
    pub admission: Admission,
}

/// Token buckets and slow-mode slots, shared by every node.
///
/// # Contract
/// - [`take`](RateLimits::take) takes `tokens` tokens from `bucket` at
///   once, all or none, refilled at `rate`: a bucket never used, or unused
///   for `rate.period`, holds `rate.count`; one token comes back per
///   [`Rate::interval`]. A refused take takes nothing and says how long
///   until the tokens are back. Callers never ask more than `rate.count`
///   at once (that could never be admitted).
///   Buckets are told apart by `bucket` and by `rate` alike: a changed rate
///   starts a full bucket.
/// - [`take_slow_mode`](RateLimits::take_slow_mode) admits one publication
///   per user per interval in a channel: the interval a moderator set for
///   the channel ([`set_slow_mode`](RateLimits::set_slow_mode)), or else
///   `default`. A zero interval admits everything. A refusal says how long
///   until that user's next publication is admitted.
/// - [`set_slow_mode`](RateLimits::set_slow_mode) sets the channel's
///   interval (zero turns slow mode off for the channel whatever its
///   namespace says); `None` goes back to the namespace's. It takes effect
///   for the next take on every node, and lasts across restarts.
///   [`slow_mode`](RateLimits::slow_mode) reads it back.
/// - Every call is atomic: of concurrent takes on one bucket no more are
///   admitted than it holds.
#[async_trait::async_trait]
pub trait RateLimits: Send + Sync + 'static {
    async fn take(
        &self,
        bucket: Bucket<'_>,
        rate: Rate,
        tokens: NonZeroU32,
    ) -> Result<Admission, ClusterError>;
    async fn take_slow_mode(
        &self,
        channel: &ChannelName,
        user: &str,
        default: Duration,
    ) -> Result<SlowModeAdmission, ClusterError>;
    async fn set_slow_mode(
        &self,
        channel: &ChannelName,
        interval: Option<Duration>,
    ) -> Result<(), ClusterError>;
    async fn slow_mode(&self, channel: &ChannelName) -> Result<Option<Duration>, ClusterError>;
}
