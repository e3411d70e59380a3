//! [`MemoryStore`]: history kept in process memory, for tests and for
//! deployments that accept losing history on restart.
//!
//! Channels are spread over shards, each a `Mutex<HashMap>`, so appends and
//! reads of different channels rarely meet on a lock; no lock covers all
//! channels. The epoch is random per instance: a restarted process has lost
//! every stream, and clients must be told so.

mod members;

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use fanfare_protocol::{ChannelName, Epoch, Publication, StreamPosition};
use parking_lot::Mutex;
use rand::Rng;
use rand::distr::Alphanumeric;

mod cursors;
mod resume;

use crate::history::duration_ms;
use crate::{
    AppendReceipt, AppendRequest, Appended, DeleteTargets, HistoryPage, HistoryQuery, HistoryStore,
    StoreError, unix_time_ms,
};

/// Enough shards that two busy channels rarely share one on a many-core
/// machine, few enough that an idle store costs nothing.
const SHARD_COUNT: usize = 32;

/// Length of a generated epoch; 62^12 values make a collision between two
/// process lifetimes practically impossible.
const EPOCH_LEN: usize = 12;

/// History in memory. Appends complete immediately.
pub struct MemoryStore {
    epoch: Epoch,
    shards: Box<[Mutex<HashMap<ChannelName, ChannelLog>>]>,
    shard_hasher: RandomState,
    /// Read cursors ([`crate::CursorStore`], `memory/cursors.rs`).
    cursors: cursors::MemoryCursors,
    /// Channel members and each user's channels ([`crate::MemberStore`]).
    memberships: Mutex<members::Memberships>,
    /// Where users resume channels ([`crate::ResumePoints`], `memory/resume.rs`).
    resume_points: Mutex<resume::MemoryResumePoints>,
}

impl MemoryStore {
    /// A store with a fresh random epoch and no channels.
    pub fn new() -> Self {
        let shards = (0..SHARD_COUNT).map(|_| Mutex::new(HashMap::new())).collect();
        Self {
            epoch: random_epoch(),
            shards,
            shard_hasher: RandomState::new(),
            cursors: Default::default(),
            memberships: Mutex::default(),
            resume_points: Mutex::default(),
        }
    }

    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    fn shard_of(&self, channel: &ChannelName) -> &Mutex<HashMap<ChannelName, ChannelLog>> {
        let index = self.shard_hasher.hash_one(channel) as usize % self.shards.len();
        &self.shards[index]
    }

    fn append_now(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        let mut shard = self.shard_of(&request.channel).lock();
        let log = shard.entry(request.channel.clone()).or_default();
        let (publication, duplicate) = match (&request.delete, request.update) {
            (Some(_), _) => (log.delete(request, unix_time_ms())?, false),
            (None, Some(_)) => (log.edit(request, unix_time_ms())?, false),
            (None, None) => log.append(request, unix_time_ms()),
        };
        Ok(Appended { epoch: self.epoch.clone(), publication, duplicate })
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// A random epoch of [`EPOCH_LEN`] alphanumerics.
pub(crate) fn random_epoch() -> Epoch {
    let text: String = rand::rng().sample_iter(Alphanumeric).take(EPOCH_LEN).map(char::from).collect();
    Epoch::new(&text)
}

/// One channel's stream. `head` outlives the publications: offsets never
/// restart within an epoch, even after everything was trimmed.
#[derive(Default)]
struct ChannelLog {
    head: u64,
    /// Contiguous by offset: `publications[i].offset == front.offset + i`.
    publications: VecDeque<Publication>,
    idempotency: RememberedKeys,
}

impl ChannelLog {
    /// Appends (or recognises a duplicate) and trims to the retention.
    fn append(&mut self, request: AppendRequest, now_ms: u64) -> (Publication, bool) {
        self.idempotency.forget_expired(request.time_ms);
        if let Some(key) = &request.idempotency_key
            && let Some(first) = self.idempotency.find(key, request.time_ms)
        {
            let publication = Publication::new(first.offset, first.time_ms, request.event, request.data)
                .with_author(request.author)
                .with_priority(request.priority);
            return (publication, true);
        }
        self.head += 1;
        let publication = Publication::new(self.head, request.time_ms, request.event, request.data)
            .with_author(request.author)
            .with_priority(request.priority);
        self.push(publication.clone(), &request.retention, now_ms);
        if let Some(key) = request.idempotency_key {
            let expires_ms = request.time_ms.saturating_add(duration_ms(request.idempotency_window));
            self.idempotency
                .remember(key, Remembered { offset: self.head, time_ms: request.time_ms, expires_ms });
        }
        (publication, false)
    }

    /// Tombstones the request's targets and appends the delete record
    /// (see `HistoryStore`, "Deletes").
    fn delete(&mut self, request: AppendRequest, now_ms: u64) -> Result<Publication, StoreError> {
        let offsets = match &request.delete {
            Some(DeleteTargets::Offsets(offsets)) => offsets.clone(),
            Some(DeleteTargets::IdempotencyKey(key)) => {
                self.idempotency.find(key, request.time_ms).map(|r| r.offset).into_iter().collect()
            }
            _ => Vec::new(),
        };
        let head = self.head;
        let mut deleted = Vec::new();
        for publication in &mut self.publications {
            if request.targets(&offsets, publication)
                && request.retains(head, publication.offset, publication.time_ms)
            {
                deleted.push(publication.offset);
                *publication = publication.clone().into_tombstone();
            }
        }
        if deleted.is_empty() {
            return Err(StoreError::NothingToDelete);
        }
        self.head += 1;
        let record =
            Publication::delete_record(self.head, request.time_ms, deleted).with_author(request.author);
        self.push(record.clone(), &request.retention, now_ms);
        Ok(record)
    }

    /// Replaces the target's data and appends the update record (see
    /// `HistoryStore`, "Edits").
    fn edit(&mut self, request: AppendRequest, now_ms: u64) -> Result<Publication, StoreError> {
        let head = self.head;
        let target = self.publications.iter_mut().find(|p| request.edits(head, p));
        let Some(target) = target else { return Err(StoreError::NothingToEdit) };
        *target = target.clone().edited_to(request.data.clone());
        let record = request.update_record(head + 1, target.offset);
        self.head += 1;
        self.push(record.clone(), &request.retention, now_ms);
        Ok(record)
    }

    fn push(&mut self, publication: Publication, retention: &crate::Retention, now_ms: u64) {
        self.publications.push_back(publication);
        self.trim(retention.first_kept_offset(self.head), retention.first_kept_time_ms(now_ms));
    }

    /// Drops publications that no read could return any more. Age is cut
    /// from the front only: times are nearly monotonic, and reads filter
    /// exactly anyway.
    fn trim(&mut self, first_kept_offset: u64, first_kept_time_ms: u64) {
        while self
            .publications
            .front()
            .is_some_and(|p| p.offset < first_kept_offset || p.time_ms < first_kept_time_ms)
        {
            self.publications.pop_front();
        }
    }

    fn read(&self, query: &HistoryQuery, now_ms: u64) -> Vec<Publication> {
        let Some(front) = self.publications.front() else { return Vec::new() };
        let offsets = query.offsets_to_scan(self.head);
        if offsets.is_empty() || query.limit == 0 {
            return Vec::new();
        }
        let start = usize::try_from(offsets.start().saturating_sub(front.offset)).unwrap_or(usize::MAX);
        let first_kept_time_ms = query.retention.first_kept_time_ms(now_ms);
        let kept = self.publications.range(start.min(self.publications.len())..);
        let kept = kept.filter(|p| p.time_ms >= first_kept_time_ms).cloned();
        if query.reverse { kept.rev().take(query.limit).collect() } else { kept.take(query.limit).collect() }
    }
}

/// What a channel remembers of an idempotency key.
#[derive(Debug, Clone, Copy)]
struct Remembered {
    offset: u64,
    time_ms: u64,
    expires_ms: u64,
}

/// Idempotency keys of one channel. `by_expiry` is in insertion order, which
/// is expiry order as long as the window is constant and the clock moves
/// forward; a key that breaks the order only lives a little longer.
#[derive(Default)]
struct RememberedKeys {
    by_key: HashMap<String, Remembered>,
    by_expiry: VecDeque<(u64, String)>,
}

impl RememberedKeys {
    fn find(&self, key: &str, now_ms: u64) -> Option<Remembered> {
        self.by_key.get(key).copied().filter(|r| now_ms < r.expires_ms)
    }

    fn remember(&mut self, key: String, remembered: Remembered) {
        self.by_expiry.push_back((remembered.expires_ms, key.clone()));
        self.by_key.insert(key, remembered);
    }

    /// Amortised O(1) per append: each key is pushed and popped once.
    fn forget_expired(&mut self, now_ms: u64) {
        while let Some((expires_ms, _)) = self.by_expiry.front()
            && *expires_ms <= now_ms
        {
            let Some((expires_ms, key)) = self.by_expiry.pop_front() else { break };
            // The key may have been remembered again since; only forget the
            // entry this queue slot stands for.
            if self.by_key.get(&key).is_some_and(|r| r.expires_ms == expires_ms) {
                self.by_key.remove(&key);
            }
        }
    }
}

#[async_trait::async_trait]
impl HistoryStore for MemoryStore {
    async fn enqueue(&self, request: AppendRequest) -> Result<AppendReceipt, StoreError> {
        Ok(AppendReceipt::ready(self.append_now(request)))
    }

    async fn read(&self, channel: &ChannelName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let shard = self.shard_of(channel).lock();
        let (top_offset, publications) = match shard.get(channel) {
            Some(log) => (log.head, log.read(&query, unix_time_ms())),
            None => (0, Vec::new()),
        };
        Ok(HistoryPage::new(self.epoch.clone(), top_offset, publications))
    }

    async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, StoreError> {
        let head = self.shard_of(channel).lock().get(channel).map_or(0, |log| log.head);
        Ok(StreamPosition::new(self.epoch.clone(), head))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fanfare_protocol::JsonData;

    use super::*;
    use crate::Retention;

    #[test]
    fn expired_idempotency_keys_are_forgotten_so_memory_stays_bounded() {
        let mut log = ChannelLog::default();
        let keyed = |key: String, time_ms| AppendRequest {
            channel: ChannelName::new("chat:keys").unwrap(),
            event: None,
            data: JsonData::parse("1".into()).unwrap(),
            time_ms,
            idempotency_key: Some(key),
            idempotency_window: Duration::from_secs(1),
            retention: Retention::default(),
            durability: crate::Durability::Fsync,
            exclude: 0,
            author: None,
            delete: None,
            update: None,
            priority: false,
        };
        for n in 0..100 {
            log.append(keyed(format!("k{n}"), 10_000 + n), 10_000);
        }
        assert_eq!(log.idempotency.by_key.len(), 100);
        log.append(keyed("late".into(), 11_050), 11_050);
        assert_eq!(log.idempotency.by_key.len(), 50, "keys older than their window are gone");
        assert_eq!(log.idempotency.by_expiry.len(), 50);
    }
}
