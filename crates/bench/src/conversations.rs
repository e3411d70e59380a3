//! The `dm` scenario's direct channels: which two users each one joins.
//!
//! Channel `k` of `C` among `N` users joins user `a = k mod N` (its
//! *starter*, the one that writes in it) and user
//! `b = (a + k div N + 1) mod N`: round `r = k div N` pairs every user with
//! the user `r + 1` places further round the ring. With
//! `2 × ceil(C / N) < N` no pair repeats (offsets `1..=R` and their
//! mirrors `N-R..N-1` do not meet), and each user is in about `2C / N`
//! channels: `C / N` it starts and as many where it is the second member.
//! Deterministic, so the parent process and the workers agree on it
//! without talking.

use crate::options::{BenchOptions, DM_CHANNELS_PER_USER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conversations {
    pub users: usize,
    pub channels: usize,
}

impl Conversations {
    pub(crate) fn of(options: &BenchOptions) -> Self {
        let users = options.connections;
        Self { users, channels: options.channels.unwrap_or(users * DM_CHANNELS_PER_USER / 2) }
    }

    /// (starter, other) of channel `k`.
    pub(crate) fn members(&self, k: usize) -> (usize, usize) {
        let a = k % self.users;
        (a, (a + k / self.users + 1) % self.users)
    }

    /// The channels user `user` starts (writes in), by index.
    pub(crate) fn started_by(&self, user: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.channels.div_ceil(self.users))
            .map(move |round| round * self.users + user)
            .filter(|&k| k < self.channels)
    }

    /// `dm:<a>,<b>`, the two ids sorted bytewise.
    pub(crate) fn name(&self, options: &BenchOptions, k: usize) -> String {
        let (a, b) = self.members(k);
        let (a, b) = (options.dm_user(a), options.dm_user(b));
        if a < b { format!("dm:{a},{b}") } else { format!("dm:{b},{a}") }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::options::Scenario;

    fn layout(users: usize, channels: usize) -> Conversations {
        Conversations { users, channels }
    }

    #[test]
    fn every_pair_is_distinct_and_every_user_is_in_about_twice_channels_over_users() {
        let conversations = layout(50, 500);
        let mut pairs = BTreeSet::new();
        let mut memberships: HashMap<usize, usize> = HashMap::new();
        for k in 0..conversations.channels {
            let (a, b) = conversations.members(k);
            assert_ne!(a, b);
            assert!(pairs.insert((a.min(b), a.max(b))), "pair {a},{b} repeats");
            *memberships.entry(a).or_default() += 1;
            *memberships.entry(b).or_default() += 1;
        }
        assert!(memberships.values().all(|&n| n == 20), "{memberships:?}");
    }

    #[test]
    fn each_channel_is_started_by_exactly_one_user() {
        let conversations = layout(7, 17);
        let mut started: Vec<usize> =
            (0..7).flat_map(|u| conversations.started_by(u).collect::<Vec<_>>()).collect();
        started.sort_unstable();
        assert_eq!(started, (0..17).collect::<Vec<_>>());
        assert!(conversations.started_by(3).all(|k| conversations.members(k).0 == 3));
    }

    #[test]
    fn names_sort_the_two_ids_bytewise() {
        let mut options = BenchOptions::new(Scenario::Dm, "http://127.0.0.1:1");
        options.dm.user_prefix = Some("p-".into());
        options.connections = 20;
        let conversations = layout(20, 40);
        // Channel 9: users 9 and 10; "p-10" < "p-9".
        assert_eq!(conversations.name(&options, 9), "dm:p-10,p-9");
        assert_eq!(conversations.name(&options, 0), "dm:p-0,p-1");
    }
}
