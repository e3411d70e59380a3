//! Huge-room shaping (`docs/moderation.md` §6): a per-subscriber delivery
//! budget kept by sampling each channel's ordinary publications once,
//! for every subscriber at the same time.
//!
//! A shaped channel's [`Sampler`] sits in front of its fan-out, under the
//! channel's lock. It decides for each new publication, in offset order,
//! whether it is delivered; every subscriber then gets the same subset,
//! so the cost is per channel, not per subscriber. What it decides:
//!
//! - Publications of the priority lane (the server, moderators, hosts),
//!   delete records and tombstones are always delivered and count against
//!   nothing.
//! - Time is cut into windows of `window`; each window admits at most
//!   `quota = budget × window` ordinary publications, spread out: by the
//!   time `t` into the window, at most `⌊t / (window / quota)⌋ + 1` of them
//!   have been admitted. Under a steady flood that is one per slot of
//!   `window / quota` (a uniform sample); after a quiet spell, a burst of
//!   up to the slots gone by.
//! - The clock is the publications' own `time` (clamped to never go back),
//!   never the node's: every node of a cluster, and a recovery replaying
//!   history, takes the same decisions from the same publications, up to
//!   where its sampler started within a window.
//!
//! Each delivery to a subscription says how many publications it did not
//! get just before this one: `skipped` = the offset gap since the previous
//! publication that subscription received (`registry.rs`).

use std::num::NonZeroU32;
use std::time::Duration;

use fanfare_protocol::Publication;

/// A namespace's shaping, as the hub applies it to each of its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shaping {
    /// Ordinary publications delivered per subscriber per second, at most.
    pub budget: NonZeroU32,
    /// The sampling window: `budget × window` ordinary publications at
    /// most per window.
    pub window: Duration,
    /// Reactions are counted and pushed as one aggregate per this window;
    /// `None`: the namespace takes no reactions.
    pub reactions: Option<Duration>,
    /// Kept ordinary publications wait at most this long for the
    /// channel's next batch (`batch.rs`); `None`: each goes at once.
    pub batch: Option<Duration>,
}

impl Shaping {
    fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Ordinary publications admitted per window (at least one).
    pub fn quota(&self) -> u64 {
        (u64::from(self.budget.get()) * self.window_ms() / 1000).max(1)
    }
}

/// One channel's sampling state (see the module documentation).
#[derive(Debug, Default, Clone)]
pub(crate) struct Sampler {
    /// The window of the last ordinary publication seen.
    window: u64,
    /// Ordinary publications admitted in it.
    admitted: u64,
    /// The latest publication time seen: the sampler's clock.
    now_ms: u64,
    /// The offset of the last publication delivered.
    last_offset: Option<u64>,
}

impl Sampler {
    /// A sampler for a subscription at `offset` (a recovery's replay).
    fn starting_at(offset: u64) -> Self {
        Self { last_offset: Some(offset), ..Self::default() }
    }

    /// [`Sampler::admits`], and for a delivery its `skipped` since the
    /// previous one this sampler delivered (0 for its first).
    pub fn decide(&mut self, shaping: &Shaping, publication: &Publication) -> Option<u64> {
        if !self.admits(shaping, publication) {
            return None;
        }
        let skipped = self.last_offset.map_or(0, |last| skipped_between(last, publication.offset));
        self.last_offset = Some(publication.offset);
        Some(skipped)
    }

    /// Whether `publication`, the channel's next in offset order, is
    /// delivered.
    fn admits(&mut self, shaping: &Shaping, publication: &Publication) -> bool {
        self.now_ms = self.now_ms.max(publication.time_ms);
        if publication.priority || !publication.is_message() {
            return true;
        }
        let (window_ms, quota) = (shaping.window_ms(), shaping.quota());
        let window = self.now_ms / window_ms;
        if window != self.window {
            (self.window, self.admitted) = (window, 0);
        }
        let slot_ms = (window_ms / quota).max(1);
        let allowance = (self.now_ms % window_ms / slot_ms + 1).min(quota);
        let admitted = self.admitted < allowance;
        self.admitted += u64::from(admitted);
        admitted
    }
}

/// A recovery's replay through a fresh sampler: what a subscription at
/// offset `since` gets of `publications`, each with its `skipped` count.
pub(crate) fn shape_replay(
    shaping: &Shaping,
    since: u64,
    publications: Vec<Publication>,
) -> Vec<(Publication, u64)> {
    let mut sampler = Sampler::starting_at(since);
    publications
        .into_iter()
        .filter_map(|publication| sampler.decide(shaping, &publication).map(|skipped| (publication, skipped)))
        .collect()
}

/// `skipped` for a publication at `offset` reaching a subscription whose
/// previous one was at `last`.
pub(crate) fn skipped_between(last: u64, offset: u64) -> u64 {
    offset.saturating_sub(last.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::JsonData;

    use super::*;

    fn shaping(budget: u32, window_ms: u64) -> Shaping {
        Shaping {
            budget: NonZeroU32::new(budget).unwrap(),
            window: Duration::from_millis(window_ms),
            reactions: None,
            batch: None,
        }
    }

    fn at(offset: u64, time_ms: u64) -> Publication {
        Publication::new(offset, time_ms, None, JsonData::parse("1".into()).unwrap())
    }

    /// Offsets admitted out of `count` publications `every_ms` apart from `start_ms`.
    fn admitted(shaping: &Shaping, start_ms: u64, every_ms: u64, count: u64) -> Vec<u64> {
        let mut sampler = Sampler::default();
        (1..=count).filter(|&n| sampler.admits(shaping, &at(n, start_ms + (n - 1) * every_ms))).collect()
    }

    #[test]
    fn a_flood_is_sampled_to_the_budget_one_per_slot() {
        // 500/s for 2 s against 20/s in windows of 1 s: 20 per window, one per 50 ms.
        let rule = shaping(20, 1000);
        let kept = admitted(&rule, 10_000, 2, 1000);
        assert_eq!(kept.len(), 40);
        let gaps: Vec<u64> = kept.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g == 25), "evenly spread: {gaps:?}");
    }

    #[test]
    fn a_quiet_room_gets_everything_and_a_burst_after_quiet_gets_the_slots_gone_by() {
        let rule = shaping(20, 1000);
        assert_eq!(admitted(&rule, 10_000, 100, 20).len(), 20, "10/s is under 20/s");
        // 30 at once, 600 ms into a window: 13 slots have gone by.
        assert_eq!(admitted(&rule, 10_600, 0, 30).len(), 13);
    }

    #[test]
    fn priority_and_deletes_always_pass_and_use_no_quota() {
        let rule = shaping(1, 1000);
        let mut sampler = Sampler::default();
        assert!(sampler.admits(&rule, &at(1, 5_000)));
        assert!(!sampler.admits(&rule, &at(2, 5_001)));
        assert!(sampler.admits(&rule, &at(3, 5_002).with_priority(true)));
        assert!(sampler.admits(&rule, &Publication::delete_record(4, 5_003, vec![1])));
        assert!(!sampler.admits(&rule, &at(5, 5_004)));
        assert!(sampler.admits(&rule, &at(6, 6_000)), "the next window: its quota is whole again");
    }

    #[test]
    fn a_clock_going_back_does_not_reopen_a_window() {
        let rule = shaping(1, 1000);
        let mut sampler = Sampler::default();
        assert!(sampler.admits(&rule, &at(1, 7_500)));
        assert!(!sampler.admits(&rule, &at(2, 6_900)), "another node's clock, behind: still window 7");
    }

    #[test]
    fn a_replay_counts_what_it_skipped_from_the_position() {
        let rule = shaping(1, 1000);
        let publications =
            vec![at(11, 9_000), at(12, 9_100), at(13, 9_200).with_priority(true), at(14, 10_000)];
        let replay = shape_replay(&rule, 10, publications);
        let shaped: Vec<(u64, u64)> = replay.iter().map(|(p, s)| (p.offset, *s)).collect();
        assert_eq!(shaped, [(11, 0), (13, 1), (14, 0)]);
        assert_eq!(skipped_between(10, 14), 3);
    }

    #[test]
    fn the_quota_is_at_least_one() {
        assert_eq!(shaping(1, 100).quota(), 1);
        assert_eq!(shaping(20, 250).quota(), 5);
    }
}
