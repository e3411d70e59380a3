//! Recent publications of watched channels, kept by this node so that a
//! storm of resuming clients (a node died; its clients all come here at
//! once) is served from memory instead of becoming a storm of reads on the
//! cluster's engine.
//!
//! The receiver (`receive.rs`) mirrors each live channel here: its cursor
//! (the last offset fanned out, within its epoch) and the newest
//! publications up to it, contiguous. A subscribe on this node then:
//! 1. registers its subscriber (catch-up mode) first, as always;
//! 2. asks the cache. A channel that is live here answers with its cursor
//!    as the subscription's position, and — for a resume from `(epoch,
//!    offset)` — the publications after `offset`, if the cache holds every
//!    one of them in that epoch and within the recovery limit;
//! 3. otherwise (the channel is starting or healing here, the bus is down,
//!    or the gap is older than the cache) reads the store, as a single
//!    node does.
//!
//! Why the cursor is a sound position: every publication after it has not
//! been fanned out yet, so it reaches the subscriber registered in step 1
//! live (or through its catch-up buffer); those up to it are in the cache.
//! It may trail the store's top by the frames in flight, never lead it.
//!
//! The cache keeps publications without their exclusions (the Pusher
//! `socket_id` a publisher left out): it answers only subscribes, and a
//! replay to a subscribe ignores exclusions (`subscribe.rs` says why).
//! Heals never read it; they read the store, which keeps them.
//!
//! Bounded: at most [`PER_CHANNEL`] publications per channel (fewer when
//! the channel's history keeps fewer) and [`TOTAL`] in all; past that the
//! channels cached longest ago lose their publications first.

use std::collections::{HashMap, VecDeque};

use fanfare_protocol::cluster::LivePublication;
use fanfare_protocol::{ChannelName, Epoch, Publication, StreamPosition};
use metrics::{Counter, counter};
use parking_lot::Mutex;

/// Publications kept per channel.
pub(crate) const PER_CHANNEL: usize = 256;

/// Publications kept for all channels together.
pub(crate) const TOTAL: usize = 200_000;

/// What the cache answers a subscribe.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Recent {
    /// The channel's position here: its epoch and cursor.
    pub position: StreamPosition,
    /// For a resume: the publications after its offset, up to the cursor.
    pub replay: Vec<Publication>,
}

struct Channel {
    cursor: StreamPosition,
    /// Contiguous, ending at the cursor.
    publications: VecDeque<Publication>,
    keep: usize,
}

#[derive(Default)]
struct State {
    channels: HashMap<ChannelName, Channel>,
    /// Channels in the order they were last given publications, for
    /// eviction (may name a channel twice, or one that is gone).
    order: VecDeque<ChannelName>,
    total: usize,
}

pub(crate) struct RecentCache {
    state: Mutex<State>,
    hits: Counter,
    misses: Counter,
}

impl Default for RecentCache {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            hits: counter!("fanfare_cluster_recent_cache_total", "outcome" => "hit"),
            misses: counter!("fanfare_cluster_recent_cache_total", "outcome" => "miss"),
        }
    }
}

impl RecentCache {
    /// The channel is live here from `cursor` on, with nothing cached yet.
    pub fn start(&self, channel: &ChannelName, cursor: StreamPosition, keep: u64) {
        let keep = usize::try_from(keep).unwrap_or(usize::MAX).min(PER_CHANNEL);
        let mut state = self.state.lock();
        if let Some(old) =
            state.channels.insert(channel.clone(), Channel { cursor, publications: VecDeque::new(), keep })
        {
            state.total -= old.publications.len();
        }
    }

    /// The channel is not live here (forgotten, healing, or lost).
    pub fn forget(&self, channel: &ChannelName) {
        let mut state = self.state.lock();
        if let Some(old) = state.channels.remove(channel) {
            state.total -= old.publications.len();
        }
    }

    /// Publications fanned out, consecutive after the channel's cursor.
    pub fn push(&self, channel: &ChannelName, epoch: &Epoch, items: &[LivePublication]) {
        let mut state = self.state.lock();
        let State { channels, order, total } = &mut *state;
        let Some(entry) = channels.get_mut(channel) else { return };
        let (Some(first), Some(last)) = (items.first(), items.last()) else { return };
        if entry.cursor.epoch != *epoch || first.publication.offset != entry.cursor.offset + 1 {
            // Not a continuation: start over from the new cursor.
            *total -= entry.publications.len();
            entry.publications.clear();
        } else if entry.keep > 0 {
            for item in items {
                if let Some(deleted) = item.publication.deletes() {
                    tombstone(&mut entry.publications, deleted);
                }
                if let Some(target) = item.publication.updates {
                    edit(&mut entry.publications, target, &item.publication.data);
                }
                entry.publications.push_back(item.publication.clone());
                *total += 1;
            }
            while entry.publications.len() > entry.keep {
                entry.publications.pop_front();
                *total -= 1;
            }
            order.push_back(channel.clone());
        }
        entry.cursor = StreamPosition::new(epoch.clone(), last.publication.offset);
        evict(&mut state);
    }

    /// Step 2: the subscription's position (and replay), or `None` to read
    /// the store.
    pub fn plan(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
        recovery_limit: u64,
    ) -> Option<Recent> {
        let answer = self.lookup(channel, since, recovery_limit);
        match answer {
            Some(_) => self.hits.increment(1),
            None => self.misses.increment(1),
        }
        answer
    }

    fn lookup(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
        recovery_limit: u64,
    ) -> Option<Recent> {
        let state = self.state.lock();
        let entry = state.channels.get(channel)?;
        let position = entry.cursor.clone();
        let Some(since) = since else { return Some(Recent { position, replay: Vec::new() }) };
        if since.epoch != position.epoch || since.offset > position.offset {
            return None;
        }
        if position.offset - since.offset > recovery_limit {
            return None;
        }
        let oldest = entry.publications.front().map_or(position.offset + 1, |p| p.offset);
        if oldest > since.offset + 1 {
            return None;
        }
        let replay = entry.publications.iter().filter(|p| p.offset > since.offset).cloned().collect();
        Some(Recent { position, replay })
    }
}

/// Turns the cached publications a delete record deleted into tombstones,
/// as the store did: a resume served from here must not get their data.
fn tombstone(publications: &mut VecDeque<Publication>, deleted: &[u64]) {
    let Some(oldest) = publications.front().map(|p| p.offset) else { return };
    for &offset in deleted {
        // Contiguous offsets: the publication at `offset` is at its distance
        // from the oldest.
        let index = offset.checked_sub(oldest).and_then(|i| usize::try_from(i).ok());
        if let Some(publication) = index.and_then(|i| publications.get_mut(i))
            && publication.offset == offset
            && publication.deletion.is_none()
        {
            *publication = publication.clone().into_tombstone();
        }
    }
}

/// Gives the cached message an update record edited its newest data, as
/// the store did: a resume served from here gets what history would.
fn edit(publications: &mut VecDeque<Publication>, target: u64, data: &fanfare_protocol::JsonData) {
    let Some(oldest) = publications.front().map(|p| p.offset) else { return };
    let index = target.checked_sub(oldest).and_then(|i| usize::try_from(i).ok());
    if let Some(publication) = index.and_then(|i| publications.get_mut(i))
        && publication.offset == target
        && publication.is_message()
    {
        *publication = publication.clone().edited_to(data.clone());
    }
}

/// Drops the oldest cached channels' publications until under [`TOTAL`].
fn evict(state: &mut State) {
    while state.total > TOTAL {
        let Some(name) = state.order.pop_front() else { return };
        if let Some(entry) = state.channels.get_mut(&name) {
            state.total -= entry.publications.len();
            entry.publications.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::JsonData;

    use super::*;

    fn chan(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    fn items(offsets: std::ops::RangeInclusive<u64>) -> Vec<LivePublication> {
        let data = JsonData::parse("1".into()).unwrap();
        offsets
            .map(|offset| LivePublication {
                publication: Publication::new(offset, 0, None, data.clone()),
                exclude: 0,
            })
            .collect()
    }

    fn at(offset: u64) -> StreamPosition {
        StreamPosition::new(Epoch::new("e"), offset)
    }

    fn replayed(recent: Option<Recent>) -> Option<Vec<u64>> {
        recent.map(|r| r.replay.iter().map(|p| p.offset).collect())
    }

    #[test]
    fn a_resume_within_the_cache_is_served_from_it_up_to_the_cursor() {
        let cache = RecentCache::default();
        cache.start(&chan("a"), at(10), 100);
        cache.push(&chan("a"), &Epoch::new("e"), &items(11..=15));
        assert_eq!(replayed(cache.plan(&chan("a"), Some(&at(12)), 1000)), Some(vec![13, 14, 15]));
        assert_eq!(replayed(cache.plan(&chan("a"), Some(&at(10)), 1000)), Some(vec![11, 12, 13, 14, 15]));
        assert_eq!(replayed(cache.plan(&chan("a"), Some(&at(15)), 1000)), Some(vec![]));
        assert_eq!(cache.plan(&chan("a"), None, 1000).unwrap().position, at(15));
    }

    #[test]
    fn what_the_cache_cannot_answer_exactly_goes_to_the_store() {
        let cache = RecentCache::default();
        cache.start(&chan("a"), at(10), 100);
        cache.push(&chan("a"), &Epoch::new("e"), &items(11..=15));
        assert!(cache.plan(&chan("a"), Some(&at(9)), 1000).is_none(), "older than the cache");
        assert!(cache.plan(&chan("a"), Some(&at(16)), 1000).is_none(), "ahead of this node");
        let other = StreamPosition::new(Epoch::new("old"), 12);
        assert!(cache.plan(&chan("a"), Some(&other), 1000).is_none(), "another epoch");
        assert!(cache.plan(&chan("a"), Some(&at(11)), 2).is_none(), "beyond the recovery limit");
        assert!(cache.plan(&chan("b"), None, 1000).is_none(), "not live here");
    }

    #[test]
    fn a_delete_record_turns_its_cached_targets_into_tombstones() {
        let cache = RecentCache::default();
        cache.start(&chan("a"), at(10), 100);
        cache.push(&chan("a"), &Epoch::new("e"), &items(11..=13));
        let record =
            LivePublication { publication: Publication::delete_record(14, 0, vec![3, 11, 13]), exclude: 0 };
        cache.push(&chan("a"), &Epoch::new("e"), std::slice::from_ref(&record));
        let replay = cache.plan(&chan("a"), Some(&at(10)), 1000).unwrap().replay;
        let kinds: Vec<(u64, bool)> = replay.iter().map(|p| (p.offset, p.is_tombstone())).collect();
        assert_eq!(kinds, [(11, true), (12, false), (13, true), (14, false)]);
        assert_eq!(replay[0], Publication::tombstone(11, 0), "no data left");
        assert_eq!(replay[3], record.publication, "the record itself is kept as it came");
    }

    #[test]
    fn a_gap_or_a_forget_empties_the_channel_and_the_cache_stays_bounded() {
        let cache = RecentCache::default();
        cache.start(&chan("a"), at(0), 3);
        cache.push(&chan("a"), &Epoch::new("e"), &items(1..=5));
        assert_eq!(replayed(cache.plan(&chan("a"), Some(&at(2)), 1000)), Some(vec![3, 4, 5]), "keeps 3");
        assert!(cache.plan(&chan("a"), Some(&at(1)), 1000).is_none());
        cache.push(&chan("a"), &Epoch::new("e"), &items(8..=8));
        assert!(cache.plan(&chan("a"), Some(&at(5)), 1000).is_none(), "6 and 7 are not here");
        assert_eq!(cache.plan(&chan("a"), None, 1000).unwrap().position, at(8));
        cache.forget(&chan("a"));
        assert!(cache.plan(&chan("a"), None, 1000).is_none());
        assert_eq!(cache.state.lock().total, 0);
    }

    #[test]
    fn an_update_record_gives_its_cached_target_the_new_data() {
        let cache = RecentCache::default();
        cache.start(&chan("a"), at(10), 100);
        cache.push(&chan("a"), &Epoch::new("e"), &items(11..=12));
        let data = fanfare_protocol::JsonData::parse("\"new\"".to_owned()).unwrap();
        let record =
            LivePublication { publication: Publication::update_record(13, 0, 11, data.clone()), exclude: 0 };
        cache.push(&chan("a"), &Epoch::new("e"), std::slice::from_ref(&record));
        let replay = cache.plan(&chan("a"), Some(&at(10)), 1000).unwrap().replay;
        assert_eq!((replay[0].offset, &replay[0].data, replay[0].edited), (11, &data, true));
        assert!(!replay[1].edited);
        assert_eq!(replay[2], record.publication, "the record itself is kept as it came");
    }
}
