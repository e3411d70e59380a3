//! [`UserChannelThrottle`]: at most one event per user per channel per
//! interval, on this node (typing indicators; read receipts next). Not
//! cluster-wide: a user typing on two nodes at once may be announced twice
//! per interval, which costs a frame, not correctness.
//!
//! Memory is bounded: an entry lives until its interval ends; when the map
//! reaches its sweep mark, expired entries go and the mark moves to twice
//! what is left (amortised O(1) per event). At [`MAX_ENTRIES`] live entries
//! new users are throttled until some expire.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanfare_protocol::ChannelName;
use parking_lot::Mutex;

/// Live entries at most: about 100 bytes each, so some 10 MB.
pub const MAX_ENTRIES: usize = 100_000;
/// The first sweep mark (below it, expired entries simply wait).
const FIRST_SWEEP: usize = 1024;

/// When each (user, channel) may next be let through.
pub struct UserChannelThrottle {
    state: Mutex<State>,
    max_entries: usize,
}

struct State {
    until: HashMap<(Arc<str>, ChannelName), Instant>,
    sweep_at: usize,
}

impl Default for UserChannelThrottle {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

impl UserChannelThrottle {
    /// A throttle holding at most `max_entries` live entries.
    pub fn with_capacity(max_entries: usize) -> Self {
        let state = State { until: HashMap::new(), sweep_at: FIRST_SWEEP.min(max_entries) };
        Self { state: Mutex::new(state), max_entries }
    }

    /// Whether `user`'s event in `channel` at `now` goes through: true at
    /// most once per `interval` for each pair.
    pub fn admit(&self, user: &str, channel: &ChannelName, interval: Duration, now: Instant) -> bool {
        let mut state = self.state.lock();
        let key = (Arc::<str>::from(user), channel.clone());
        if let Some(until) = state.until.get_mut(&key) {
            if *until > now {
                return false;
            }
            *until = now + interval;
            return true;
        }
        if state.until.len() >= state.sweep_at {
            state.until.retain(|_, until| *until > now);
            state.sweep_at =
                (state.until.len() * 2).clamp(FIRST_SWEEP.min(self.max_entries), self.max_entries);
        }
        if state.until.len() >= self.max_entries {
            return false;
        }
        state.until.insert(key, now + interval);
        true
    }

    /// Entries held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.state.lock().until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    #[test]
    fn one_event_per_user_per_channel_per_interval() {
        let throttle = UserChannelThrottle::default();
        let (start, interval) = (Instant::now(), Duration::from_secs(3));
        let room = channel("chat:a");
        assert!(throttle.admit("al", &room, interval, start));
        assert!(!throttle.admit("al", &room, interval, start + Duration::from_secs(2)));
        assert!(throttle.admit("bo", &room, interval, start), "per user");
        assert!(throttle.admit("al", &channel("chat:b"), interval, start), "per channel");
        assert!(throttle.admit("al", &room, interval, start + interval), "again once the interval ended");
    }

    #[test]
    fn expired_entries_are_swept_and_live_ones_are_bounded() {
        let throttle = UserChannelThrottle::with_capacity(2000);
        let (start, interval) = (Instant::now(), Duration::from_secs(1));
        let room = channel("chat:a");
        for n in 0..2000 {
            assert!(throttle.admit(&n.to_string(), &room, interval, start));
        }
        assert!(!throttle.admit("late", &room, interval, start), "full of live entries");
        assert_eq!(throttle.len(), 2000);
        let later = start + interval;
        assert!(throttle.admit("late", &room, interval, later), "the expired ones make room");
        assert_eq!(throttle.len(), 1);
    }
}
