//! When a publication was accepted, carried by the frames that deliver it,
//! so the socket that writes them can tell how old they are (the
//! `fanfare_delivery_latency_seconds` histogram).
//!
//! A stamp is microseconds on a process-wide monotonic clock, kept in 32
//! bits so it fits in the padding of a [`crate::Frame`]: it costs no
//! memory per queued frame. The clock wraps every 71 minutes; an age is
//! the wrapping difference, right for any frame younger than half that
//! (older ones read as new, which no queued frame is).

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A moment on the process clock, to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(NonZeroU32);

/// The clock's zero: the first time anything asked for a stamp.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn micros_since_base(at: Instant) -> u32 {
    // Truncation is the wrap.
    at.saturating_duration_since(base()).as_micros() as u32
}

impl Stamp {
    pub fn now() -> Self {
        Self::at(Instant::now())
    }

    pub fn at(at: Instant) -> Self {
        Self::from_micros(micros_since_base(at))
    }

    /// A moment given by the wall clock, in milliseconds since the Unix
    /// epoch: a publication another node of a cluster accepted. Its age
    /// then includes the trip between nodes, as far as their clocks agree.
    pub fn from_unix_ms(time_ms: u64) -> Self {
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let age_us = now_us.saturating_sub(time_ms.saturating_mul(1000));
        let now = micros_since_base(Instant::now());
        Self::from_micros(now.wrapping_sub(u32::try_from(age_us).unwrap_or(u32::MAX)))
    }

    fn from_micros(micros: u32) -> Self {
        // 0 stands for 1: a microsecond off, once every 71 minutes.
        Self(NonZeroU32::new(micros).unwrap_or(NonZeroU32::MIN))
    }

    /// How long ago this was, as of `now`. A stamp that reads as later
    /// than `now` (another node's clock ahead of ours, or the microsecond
    /// that 0 stands for) is no age at all.
    pub fn age(self, now: Instant) -> Duration {
        let micros = micros_since_base(now).wrapping_sub(self.0.get());
        if micros > u32::MAX / 2 {
            return Duration::ZERO;
        }
        Duration::from_micros(u64::from(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_age_is_the_time_since_the_stamp() {
        // Moments before the clock's zero all read as its zero.
        let _ = Stamp::now();
        let then = Instant::now();
        let stamp = Stamp::at(then);
        let age = stamp.age(then + Duration::from_millis(250));
        assert!(age.abs_diff(Duration::from_millis(250)) <= Duration::from_micros(1), "{age:?}");
    }

    #[test]
    fn a_wall_clock_stamp_from_the_past_is_that_old() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let age = Stamp::from_unix_ms(now_ms - 40).age(Instant::now());
        assert!(age >= Duration::from_millis(40) && age < Duration::from_millis(1040), "{age:?}");
    }

    #[test]
    fn a_wall_clock_stamp_from_the_future_is_new() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let age = Stamp::from_unix_ms(now_ms + 5_000).age(Instant::now());
        assert!(age < Duration::from_millis(1000), "{age:?}");
    }

    #[test]
    fn a_stamp_taken_as_the_clock_starts_is_no_age_not_a_wrap() {
        // The clock's zero stands as its first microsecond.
        let stamp = Stamp::from_micros(0);
        assert_eq!(stamp.age(base()), Duration::ZERO);
    }

    #[test]
    fn a_stamp_costs_a_frame_no_memory() {
        // `Bytes` is 32 bytes and the header length one: the stamp fits in
        // the padding after them.
        assert_eq!(size_of::<crate::Frame>(), 40);
    }

    #[test]
    fn ages_survive_the_wrap_of_the_clock() {
        let stamp = Stamp::from_micros(u32::MAX - 10);
        let later = Stamp::from_micros(20);
        let age = u64::from(later.0.get().wrapping_sub(stamp.0.get()));
        assert_eq!(age, 31);
    }
}
