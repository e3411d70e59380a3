//! [`RedisRateLimits`]: the cluster's publish limits, in Redis.
//!
//! ```text
//! fanfare:{<channel>}:rate:<count>/<period ms>        a channel's bucket
//! fanfare:{user:<user>}:rate:<namespace>:<count>/<period ms>   a user's bucket
//! fanfare:{app:<app id>}:rate:<limit>:<count>/<period ms>      a Pusher app's
//! fanfare:{<channel>}:slow:<user>                     a user's slow-mode slot
//! fanfare:{<channel>}:slow_mode                       a moderator's interval (ms)
//! ```
//!
//! A bucket holds its theoretical arrival time (`rate_take.lua`, the
//! generic cell rate algorithm on the Redis server's clock, so nodes'
//! clocks do not matter) and expires once full again. A slow-mode slot is
//! a key set with `NX` and the interval as its expiry
//! (`slow_mode_take.lua`, which reads the moderator's interval in the same
//! step). Each script touches one hash tag.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::ChannelName;
use fanfare_protocol::cluster::{KEY_PREFIX, channel_key};
use redis::aio::ConnectionManager;

use super::scripts::{self, Lua};
use crate::{Admission, Bucket, ClusterError, Rate, RateLimits, SlowModeAdmission};

/// [`RateLimits`] on Redis. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisRateLimits {
    conn: ConnectionManager,
    take: Arc<Lua>,
    slow: Arc<Lua>,
}

impl RedisRateLimits {
    pub async fn open(url: &str) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?))
    }

    pub(crate) fn with_connection(conn: ConnectionManager) -> Self {
        Self {
            conn,
            take: Arc::new(Lua::new("rate_take", include_str!("scripts/rate_take.lua"))),
            slow: Arc::new(Lua::new("slow_mode_take", include_str!("scripts/slow_mode_take.lua"))),
        }
    }
}

fn bucket_key(bucket: Bucket<'_>, rate: Rate) -> String {
    let rate = format!("{}/{}", rate.count, rate.period.as_millis());
    match bucket {
        Bucket::Channel(channel) => channel_key(channel, &format!("rate:{rate}")),
        Bucket::User { namespace, user } => format!("{KEY_PREFIX}:{{user:{user}}}:rate:{namespace}:{rate}"),
        Bucket::App { app, limit } => format!("{KEY_PREFIX}:{{app:{app}}}:rate:{limit}:{rate}"),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn wait(ms: u64) -> Admission {
    match ms {
        0 => Admission::Admitted,
        ms => Admission::Refused { retry_after: Duration::from_millis(ms) },
    }
}

#[async_trait::async_trait]
impl RateLimits for RedisRateLimits {
    async fn take(
        &self,
        bucket: Bucket<'_>,
        rate: Rate,
        tokens: NonZeroU32,
    ) -> Result<Admission, ClusterError> {
        let interval = millis(rate.interval());
        let mut invocation = self.take.prepare();
        invocation
            .key(bucket_key(bucket, rate))
            .arg(interval)
            .arg(interval * f64::from(rate.count.get()))
            .arg(tokens.get());
        self.take.run::<u64>(&mut self.conn.clone(), &invocation).await.map(wait)
    }

    async fn take_slow_mode(
        &self,
        channel: &ChannelName,
        user: &str,
        default: Duration,
    ) -> Result<SlowModeAdmission, ClusterError> {
        let mut invocation = self.slow.prepare();
        invocation
            .key(channel_key(channel, &format!("slow:{user}")))
            .key(channel_key(channel, "slow_mode"))
            .arg(default.as_millis() as u64);
        let (interval, left): (u64, u64) = self.slow.run(&mut self.conn.clone(), &invocation).await?;
        Ok(SlowModeAdmission { interval: Duration::from_millis(interval), admission: wait(left) })
    }

    async fn set_slow_mode(
        &self,
        channel: &ChannelName,
        interval: Option<Duration>,
    ) -> Result<(), ClusterError> {
        let key = channel_key(channel, "slow_mode");
        let mut conn = self.conn.clone();
        let result = match interval {
            Some(interval) => {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(interval.as_millis() as u64)
                    .query_async::<()>(&mut conn)
                    .await
            }
            None => redis::cmd("DEL").arg(&key).query_async::<()>(&mut conn).await,
        };
        result.map_err(scripts::redis_error)
    }

    async fn slow_mode(&self, channel: &ChannelName) -> Result<Option<Duration>, ClusterError> {
        let key = channel_key(channel, "slow_mode");
        let ms: Option<u64> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(scripts::redis_error)?;
        Ok(ms.map(Duration::from_millis))
    }
}
