//! [`LocalRateLimits`]: the publish limits of a single node, in memory,
//! with the slow-mode intervals moderators set kept in the data
//! directory (`moderation/slow_mode.json`), so they last across restarts.
//!
//! Buckets are `governor`'s keyed GCRA limiters, one per rate; slow-mode
//! slots are the time each user may publish again. Both are swept of what
//! has refilled or expired every [`SWEEP_EVERY`] takes, so memory follows
//! the active publishers, not every publisher ever seen.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fanfare_cluster::{Admission, Bucket, ClusterError, Rate, RateLimits, SlowModeAdmission};
use fanfare_protocol::ChannelName;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use parking_lot::Mutex;

use crate::data_dir::ModerationFile;

/// Takes between two sweeps.
const SWEEP_EVERY: u64 = 4096;

type Limiter = DefaultKeyedRateLimiter<String>;

pub struct LocalRateLimits {
    buckets: Mutex<HashMap<Rate, Arc<Limiter>>>,
    clock: DefaultClock,
    /// When each (channel, user) may publish again.
    slots: Mutex<HashMap<(ChannelName, String), Instant>>,
    intervals: Mutex<HashMap<ChannelName, Duration>>,
    /// Where `intervals` are kept; `None` keeps them in memory only.
    file: Option<ModerationFile>,
    takes: AtomicU64,
}

impl LocalRateLimits {
    /// Reads the intervals kept in `data_dir` (none yet is fine; a file
    /// that does not parse is an error).
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let file = ModerationFile::new(data_dir, "slow_mode.json");
        let intervals: BTreeMap<ChannelName, u64> = file.read()?;
        let intervals =
            intervals.into_iter().map(|(channel, ms)| (channel, Duration::from_millis(ms))).collect();
        Ok(Self::new(Some(file), intervals))
    }

    /// Limits that keep nothing on disk (tests, the memory store).
    pub fn in_memory() -> Self {
        Self::new(None, HashMap::new())
    }

    fn new(file: Option<ModerationFile>, intervals: HashMap<ChannelName, Duration>) -> Self {
        Self {
            buckets: Mutex::default(),
            clock: DefaultClock::default(),
            slots: Mutex::default(),
            intervals: Mutex::new(intervals),
            file,
            takes: AtomicU64::new(0),
        }
    }

    fn limiter(&self, rate: Rate) -> Arc<Limiter> {
        let mut buckets = self.buckets.lock();
        let limiter = buckets.entry(rate).or_insert_with(|| {
            let quota = Quota::with_period(rate.interval().max(Duration::from_nanos(1)))
                .expect("a positive period")
                .allow_burst(rate.count);
            Arc::new(Limiter::keyed(quota))
        });
        limiter.clone()
    }

    fn count_take(&self) {
        if self.takes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
    }

    fn sweep(&self) {
        let now = Instant::now();
        self.slots.lock().retain(|_, until| *until > now);
        self.buckets.lock().retain(|_, limiter| {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            !limiter.is_empty()
        });
    }

    async fn save(&self) -> Result<(), ClusterError> {
        let Some(file) = &self.file else { return Ok(()) };
        let intervals: BTreeMap<ChannelName, u64> = self
            .intervals
            .lock()
            .iter()
            .map(|(channel, interval)| (channel.clone(), interval.as_millis() as u64))
            .collect();
        file.write(&intervals).await
    }
}

fn bucket_key(bucket: Bucket<'_>) -> String {
    match bucket {
        Bucket::Channel(channel) => format!("c\0{channel}"),
        Bucket::User { namespace, user } => format!("u\0{namespace}\0{user}"),
        Bucket::App { app, limit } => format!("a\0{app}\0{limit}"),
    }
}

#[async_trait::async_trait]
impl RateLimits for LocalRateLimits {
    async fn take(
        &self,
        bucket: Bucket<'_>,
        rate: Rate,
        tokens: NonZeroU32,
    ) -> Result<Admission, ClusterError> {
        self.count_take();
        Ok(match self.limiter(rate).check_key_n(&bucket_key(bucket), tokens) {
            Ok(Ok(())) => Admission::Admitted,
            Ok(Err(not_until)) => {
                Admission::Refused { retry_after: not_until.wait_time_from(self.clock.now()) }
            }
            // More than the bucket holds: callers do not ask it; a wait
            // of a whole period is the honest answer closest to "never".
            Err(_) => Admission::Refused { retry_after: rate.period },
        })
    }

    async fn take_slow_mode(
        &self,
        channel: &ChannelName,
        user: &str,
        default: Duration,
    ) -> Result<SlowModeAdmission, ClusterError> {
        self.count_take();
        let interval = self.intervals.lock().get(channel).copied().unwrap_or(default);
        if interval.is_zero() {
            return Ok(SlowModeAdmission { interval, admission: Admission::Admitted });
        }
        let now = Instant::now();
        let mut slots = self.slots.lock();
        let until = slots.entry((channel.clone(), user.to_owned())).or_insert(now);
        let admission = if *until <= now {
            *until = now + interval;
            Admission::Admitted
        } else {
            Admission::Refused { retry_after: *until - now }
        };
        Ok(SlowModeAdmission { interval, admission })
    }

    async fn set_slow_mode(
        &self,
        channel: &ChannelName,
        interval: Option<Duration>,
    ) -> Result<(), ClusterError> {
        {
            let mut intervals = self.intervals.lock();
            match interval {
                Some(interval) => intervals.insert(channel.clone(), interval),
                None => intervals.remove(channel),
            };
        }
        self.save().await
    }

    async fn slow_mode(&self, channel: &ChannelName) -> Result<Option<Duration>, ClusterError> {
        Ok(self.intervals.lock().get(channel).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fanfare_cluster::conformance::Subject;

    async fn local_limits() -> Option<Subject<dyn RateLimits>> {
        // Every handle of a single node's limits is the same one.
        let limits: Arc<dyn RateLimits> = Arc::new(LocalRateLimits::in_memory());
        Some(Subject::new((), move || {
            let limits = limits.clone();
            async move { limits }
        }))
    }

    mod local {
        fanfare_cluster::rate_limits_conformance!(super::local_limits());
    }

    #[tokio::test]
    async fn a_moderators_interval_is_read_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let room = ChannelName::new("live:show").unwrap();
        let limits = LocalRateLimits::open(dir.path()).unwrap();
        limits.set_slow_mode(&room, Some(Duration::from_secs(15))).await.unwrap();
        drop(limits);
        let again = LocalRateLimits::open(dir.path()).unwrap();
        assert_eq!(again.slow_mode(&room).await.unwrap(), Some(Duration::from_secs(15)));
        again.set_slow_mode(&room, None).await.unwrap();
        assert_eq!(LocalRateLimits::open(dir.path()).unwrap().slow_mode(&room).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_sweep_forgets_refilled_buckets_and_expired_slots() {
        let limits = LocalRateLimits::in_memory();
        let room = ChannelName::new("live:show").unwrap();
        let rate = Rate { count: NonZeroU32::MIN, period: Duration::from_millis(1) };
        limits.take(Bucket::Channel(&room), rate, NonZeroU32::MIN).await.unwrap();
        limits.take_slow_mode(&room, "ann", Duration::from_millis(1)).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        limits.sweep();
        assert!(limits.buckets.lock().is_empty());
        assert!(limits.slots.lock().is_empty());
    }
}
