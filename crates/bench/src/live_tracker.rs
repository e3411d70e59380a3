//! What one viewer of the `live` scenario saw, in a few counters, and the
//! same summed over viewers ([`LiveTally`]).
//!
//! A shaped namespace does not send every publication: it samples
//! ordinary ones out and says so on the next one it sends (`skipped: N`,
//! the publications of the channel between the previous delivery of this
//! subscription and this one). So instead of [`SeqTracker`]'s gap-free
//! run, a viewer checks each delivery's offset gap against its `skipped`:
//!
//! - gap = offset − previous offset − 1; a gap larger than `skipped` is
//!   *unreported* (publications missing that nobody said were sampled
//!   out: a loss), a smaller one *overreported*; with shaping off every
//!   gap is unreported;
//! - priority publications (the tool sends them with the event
//!   [`PRIORITY_EVENT`](crate::driver::PRIORITY_EVENT)) are tracked by
//!   their payload's sequence number, which has no gaps, so a missing,
//!   repeated or reordered one shows in a [`SeqTracker`];
//! - ordinary deliveries are counted per wall-clock second, for the
//!   busiest second against the budget.
//!
//! At the end `ordinary + skipped` of every viewer should equal the
//! ordinary publications published while it watched.

use serde::{Deserialize, Serialize};

use crate::driver::Shaping;
use crate::payload::{self, Payload};
use crate::tracker::{Integrity, SeqTracker};

/// A count per viewer, summed, with its smallest and largest value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    pub viewers: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
}

impl Spread {
    pub fn one(value: u64) -> Self {
        Self { viewers: 1, sum: value, min: value, max: value }
    }

    pub fn add(&mut self, other: &Spread) {
        if other.viewers == 0 {
            return;
        }
        self.min = if self.viewers == 0 { other.min } else { self.min.min(other.min) };
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.viewers += other.viewers;
    }

    pub fn mean(&self) -> f64 {
        if self.viewers == 0 { 0.0 } else { self.sum as f64 / self.viewers as f64 }
    }
}

/// What the viewers saw, summed (a worker sends its own to the parent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTally {
    /// Ordinary publications received, per viewer.
    pub ordinary: Spread,
    /// Ordinary publications received plus `skipped`, per viewer.
    pub ordinary_accounted: Spread,
    /// Most ordinary publications received in one wall-clock second.
    pub busiest_second: Spread,
    /// Priority publications received (distinct), per viewer.
    pub priority: Spread,
    /// Of the priority lane, by its sequence numbers.
    pub priority_integrity: Integrity,
    /// Priority publications the server marked `"priority":true`.
    pub priority_flagged: u64,
    /// Ordinary publications the server marked as priority (wrong).
    pub ordinary_flagged: u64,
    /// Offsets missing that no `skipped` accounted for.
    pub unreported: u64,
    /// `skipped` beyond the offset gap it came with.
    pub overreported: u64,
    /// Deliveries at or below an offset already received.
    pub repeated: u64,
    /// The sum of the counts of every reaction aggregate, per viewer.
    pub reactions_received: Spread,
    pub aggregates: u64,
    pub reactions_sent: u64,
    pub reactions_acked: u64,
    pub reactions_refused: u64,
}

impl LiveTally {
    pub fn add(&mut self, other: &LiveTally) {
        self.ordinary.add(&other.ordinary);
        self.ordinary_accounted.add(&other.ordinary_accounted);
        self.busiest_second.add(&other.busiest_second);
        self.priority.add(&other.priority);
        self.priority_integrity.add(&other.priority_integrity);
        self.priority_flagged += other.priority_flagged;
        self.ordinary_flagged += other.ordinary_flagged;
        self.unreported += other.unreported;
        self.overreported += other.overreported;
        self.repeated += other.repeated;
        self.reactions_received.add(&other.reactions_received);
        self.aggregates += other.aggregates;
        self.reactions_sent += other.reactions_sent;
        self.reactions_acked += other.reactions_acked;
        self.reactions_refused += other.reactions_refused;
    }
}

/// One viewer's counters.
#[derive(Debug, Clone)]
pub struct LiveTracker {
    last_offset: u64,
    priority: SeqTracker,
    ordinary: u64,
    skipped: u64,
    priority_flagged: u64,
    ordinary_flagged: u64,
    unreported: u64,
    overreported: u64,
    repeated: u64,
    /// The wall-clock second being counted, and its ordinary deliveries.
    second: u64,
    in_second: u64,
    busiest_second: u64,
    reactions_received: u64,
    aggregates: u64,
    pub reactions_sent: u64,
    pub reactions_acked: u64,
    pub reactions_refused: u64,
}

impl LiveTracker {
    /// A viewer whose subscription starts after offset `after`.
    pub fn after(after: u64) -> Self {
        Self {
            last_offset: after,
            priority: SeqTracker::after(0),
            ordinary: 0,
            skipped: 0,
            priority_flagged: 0,
            ordinary_flagged: 0,
            unreported: 0,
            overreported: 0,
            repeated: 0,
            second: 0,
            in_second: 0,
            busiest_second: 0,
            reactions_received: 0,
            aggregates: 0,
            reactions_sent: 0,
            reactions_acked: 0,
            reactions_refused: 0,
        }
    }

    /// One durable publication; whether it was a priority one.
    pub fn observe(&mut self, offset: u64, shaping: Shaping, payload: Option<Payload>) -> bool {
        self.observe_at(offset, shaping, payload, payload::now_us() / 1_000_000)
    }

    fn observe_at(&mut self, offset: u64, shaping: Shaping, payload: Option<Payload>, second: u64) -> bool {
        if offset <= self.last_offset {
            self.repeated += 1;
            return shaping.priority_event;
        }
        let gap = offset - self.last_offset - 1;
        self.unreported += gap.saturating_sub(shaping.skipped);
        self.overreported += shaping.skipped.saturating_sub(gap);
        self.skipped += shaping.skipped;
        self.last_offset = offset;
        if shaping.priority_event {
            if let Some(payload) = payload {
                self.priority.observe(payload.seq);
            }
            self.priority_flagged += u64::from(shaping.flagged_priority);
            return true;
        }
        self.ordinary += 1;
        self.ordinary_flagged += u64::from(shaping.flagged_priority);
        if second != self.second {
            self.second = second;
            self.in_second = 0;
        }
        self.in_second += 1;
        self.busiest_second = self.busiest_second.max(self.in_second);
        false
    }

    pub fn reactions(&mut self, total: u64) {
        self.reactions_received += total;
        self.aggregates += 1;
    }

    /// The last offset received: where a reconnect resumes, and what
    /// draining compares with its target.
    pub fn last(&self) -> u64 {
        self.last_offset
    }

    /// Resubscribed after a lost connection with `recovered: false`: the
    /// publications up to `top` will never come, and nobody said why.
    pub fn lost_up_to(&mut self, top: u64) {
        self.unreported += top.saturating_sub(self.last_offset);
        self.last_offset = self.last_offset.max(top);
    }

    pub fn finish(self) -> LiveTally {
        let last_seq = self.priority.last();
        let priority_integrity = self.priority.finish(last_seq);
        LiveTally {
            ordinary: Spread::one(self.ordinary),
            ordinary_accounted: Spread::one(self.ordinary + self.skipped),
            busiest_second: Spread::one(self.busiest_second),
            priority: Spread::one(priority_integrity.received),
            priority_integrity,
            priority_flagged: self.priority_flagged,
            ordinary_flagged: self.ordinary_flagged,
            unreported: self.unreported,
            overreported: self.overreported,
            repeated: self.repeated,
            reactions_received: Spread::one(self.reactions_received),
            aggregates: self.aggregates,
            reactions_sent: self.reactions_sent,
            reactions_acked: self.reactions_acked,
            reactions_refused: self.reactions_refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordinary(skipped: u64) -> Shaping {
        Shaping { skipped, ..Shaping::default() }
    }

    fn priority() -> Shaping {
        Shaping { flagged_priority: true, priority_event: true, ..Shaping::default() }
    }

    fn seq(seq: u64) -> Option<Payload> {
        Some(Payload { seq, sent_us: 1 })
    }

    #[test]
    fn skipped_counts_that_match_the_gaps_account_for_every_ordinary_publication() {
        let mut viewer = LiveTracker::after(10);
        viewer.observe_at(11, ordinary(0), seq(1), 5);
        viewer.observe_at(20, ordinary(8), seq(10), 5);
        assert!(viewer.observe_at(21, priority(), seq(1), 5));
        viewer.observe_at(30, ordinary(8), seq(19), 6);
        let tally = viewer.finish();
        assert_eq!((tally.ordinary.sum, tally.ordinary_accounted.sum), (3, 19));
        assert_eq!((tally.unreported, tally.overreported, tally.repeated), (0, 0, 0));
        assert_eq!((tally.priority.sum, tally.priority_flagged), (1, 1));
        assert_eq!(tally.busiest_second.max, 2, "two in second 5");
    }

    #[test]
    fn gaps_nobody_reported_are_losses_and_too_much_skipped_is_counted_too() {
        let mut viewer = LiveTracker::after(0);
        viewer.observe_at(5, ordinary(0), seq(5), 1);
        viewer.observe_at(6, ordinary(3), seq(6), 1);
        viewer.observe_at(6, ordinary(0), seq(6), 1);
        viewer.lost_up_to(10);
        assert_eq!(viewer.last(), 10);
        let tally = viewer.finish();
        assert_eq!((tally.unreported, tally.overreported, tally.repeated), (4 + 4, 3, 1));
    }

    #[test]
    fn the_priority_lane_is_checked_by_its_sequence() {
        let mut viewer = LiveTracker::after(0);
        viewer.observe_at(1, priority(), seq(1), 1);
        viewer.observe_at(2, priority(), seq(3), 1);
        viewer.observe_at(3, priority(), seq(2), 1);
        let tally = viewer.finish();
        assert_eq!(tally.priority.sum, 3);
        assert_eq!(tally.priority_integrity.out_of_order, 1);
    }

    #[test]
    fn spreads_keep_the_smallest_and_largest_viewer() {
        let mut total = Spread::default();
        for value in [5, 2, 9] {
            total.add(&Spread::one(value));
        }
        total.add(&Spread::default());
        assert_eq!(total, Spread { viewers: 3, sum: 16, min: 2, max: 9 });
        assert!((total.mean() - 16.0 / 3.0).abs() < 1e-9);
        let mut tally = LiveTally::default();
        tally.add(&LiveTracker::after(0).finish());
        assert_eq!(tally.ordinary.viewers, 1);
    }
}
