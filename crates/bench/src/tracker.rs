//! Loss, duplication and reordering on one subscription, in bounded memory.
//!
//! A subscription expects a gap-free run of sequence numbers (offsets for
//! the native protocol, the payload's `seq` for Pusher) after its starting
//! point. The tracker keeps `base`, the lowest number not yet received,
//! and one bit for each of the [`WINDOW`] numbers from `base` up; every
//! number below `base` has been received or declared lost. A number that
//! arrives more than [`WINDOW`] ahead of `base` pushes the window on, and
//! the numbers it leaves behind unreceived are lost. So the cost is 128
//! bytes per subscriber, whatever the length of the run.
//!
//! A number below `base` counts as a duplicate: it was received before,
//! or declared lost more than [`WINDOW`] numbers ago (a reordering that
//! large is a bug of its own).

use serde::{Deserialize, Serialize};

/// Numbers tracked above `base`.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What a tracker (or many, summed) counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integrity {
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

impl Integrity {
    pub fn add(&mut self, other: &Integrity) {
        self.received += other.received;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
    }
}

#[derive(Debug, Clone)]
pub struct SeqTracker {
    base: u64,
    /// Bit `n % WINDOW` is set when `n` (in `base..base + WINDOW`) arrived.
    bits: [u64; WORDS],
    max_seen: u64,
    counts: Integrity,
}

impl SeqTracker {
    /// A tracker expecting `after + 1`, `after + 2`, …
    pub fn after(after: u64) -> Self {
        Self { base: after + 1, bits: [0; WORDS], max_seen: after, counts: Integrity::default() }
    }

    /// Records the arrival of `n`.
    pub fn observe(&mut self, n: u64) {
        if n < self.base {
            self.counts.duplicated += 1;
            return;
        }
        if n >= self.base + WINDOW {
            self.declare_lost_below(n + 1 - WINDOW);
        }
        if self.bit(n) {
            self.counts.duplicated += 1;
            return;
        }
        self.set(n, true);
        self.counts.received += 1;
        if n < self.max_seen {
            self.counts.out_of_order += 1;
        }
        self.max_seen = self.max_seen.max(n);
        while self.bit(self.base) {
            self.set(self.base, false);
            self.base += 1;
        }
    }

    /// Everything below `n` not received so far will never be: counts it
    /// lost and moves on (a resubscribe answered `recovered: false`).
    pub fn skip_to(&mut self, n: u64) {
        if n > self.base {
            self.declare_lost_below(n);
        }
        self.max_seen = self.max_seen.max(n.saturating_sub(1));
    }

    /// Whether every number up to `target` has arrived.
    pub fn complete_through(&self, target: u64) -> bool {
        self.base > target
    }

    /// The last number received, where a reconnecting client resumes.
    pub fn last(&self) -> u64 {
        self.max_seen.max(self.base - 1)
    }

    /// Ends the run: what did not arrive up to `target` is lost.
    pub fn finish(mut self, target: u64) -> Integrity {
        self.declare_lost_below(target + 1);
        self.counts
    }

    /// Moves `base` up to `n`, counting the numbers passed that never came.
    fn declare_lost_below(&mut self, n: u64) {
        if n <= self.base {
            return;
        }
        if n - self.base >= WINDOW {
            let arrived: u64 = self.bits.iter().map(|word| u64::from(word.count_ones())).sum();
            self.counts.lost += (n - self.base) - arrived;
            self.bits = [0; WORDS];
            self.base = n;
            return;
        }
        while self.base < n {
            if !self.bit(self.base) {
                self.counts.lost += 1;
            }
            self.set(self.base, false);
            self.base += 1;
        }
        while self.bit(self.base) {
            self.set(self.base, false);
            self.base += 1;
        }
    }

    fn bit(&self, n: u64) -> bool {
        let slot = n % WINDOW;
        self.bits[(slot / 64) as usize] & (1 << (slot % 64)) != 0
    }

    fn set(&mut self, n: u64, on: bool) {
        let slot = n % WINDOW;
        let word = &mut self.bits[(slot / 64) as usize];
        if on {
            *word |= 1 << (slot % 64);
        } else {
            *word &= !(1 << (slot % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(after: u64, arrivals: impl IntoIterator<Item = u64>, target: u64) -> Integrity {
        let mut tracker = SeqTracker::after(after);
        arrivals.into_iter().for_each(|n| tracker.observe(n));
        tracker.finish(target)
    }

    #[test]
    fn an_intact_run_counts_nothing_but_arrivals() {
        let counts = run(10, 11..=5000, 5000);
        assert_eq!(counts, Integrity { received: 4990, ..Integrity::default() });
    }

    #[test]
    fn gaps_are_lost_whether_in_the_middle_or_at_the_end() {
        let arrivals = (1..=100).filter(|n| n % 10 != 0);
        let counts = run(0, arrivals, 105);
        assert_eq!(counts.lost, 10 + 5);
        assert_eq!(counts.received, 90);
        assert_eq!((counts.duplicated, counts.out_of_order), (0, 0));
    }

    #[test]
    fn repeats_are_duplicates_below_and_inside_the_window() {
        let counts = run(0, [1, 2, 3, 2, 5, 5, 4, 1], 5);
        assert_eq!(counts.duplicated, 3);
        assert_eq!(counts.out_of_order, 1, "4 came after 5");
        assert_eq!((counts.received, counts.lost), (5, 0));
    }

    #[test]
    fn a_late_arrival_inside_the_window_is_out_of_order_not_lost() {
        let counts = run(0, [1, 3, 4, 2], 4);
        assert_eq!(counts, Integrity { received: 4, out_of_order: 1, ..Integrity::default() });
    }

    #[test]
    fn a_jump_beyond_the_window_declares_the_skipped_numbers_lost() {
        let counts = run(0, [1, 2, 5000, 5001], 5001);
        assert_eq!(counts.lost, 4997);
        assert_eq!(counts.received, 4);
        let counts = run(0, [1, 2, 1500, 1501], 1501);
        assert_eq!(counts.lost, 1497);
    }

    #[test]
    fn skipping_counts_the_gap_and_resumes_after_it() {
        let mut tracker = SeqTracker::after(0);
        tracker.observe(1);
        tracker.skip_to(50);
        assert_eq!(tracker.last(), 49);
        tracker.observe(50);
        assert!(tracker.complete_through(50));
        assert_eq!(tracker.finish(50), Integrity { received: 2, lost: 48, ..Integrity::default() });
    }

    #[test]
    fn completion_and_resume_position_follow_the_contiguous_prefix() {
        let mut tracker = SeqTracker::after(5);
        assert!(tracker.complete_through(5));
        assert!(!tracker.complete_through(6));
        tracker.observe(7);
        assert!(!tracker.complete_through(6));
        assert_eq!(tracker.last(), 7);
        tracker.observe(6);
        assert!(tracker.complete_through(7));
    }

    #[test]
    fn integrity_adds_up() {
        let mut total = Integrity { received: 1, lost: 2, duplicated: 3, out_of_order: 4 };
        total.add(&Integrity { received: 10, lost: 20, duplicated: 30, out_of_order: 40 });
        assert_eq!(total, Integrity { received: 11, lost: 22, duplicated: 33, out_of_order: 44 });
    }
}
