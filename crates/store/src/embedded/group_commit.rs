//! One group commit being assembled: offsets, idempotency, count trimming,
//! all turned into a single fjall write batch.
//!
//! Nothing here touches the writer's cache of channel bounds: the new
//! bounds are handed back and only adopted once the batch is on disk, so a
//! failed batch consumes no offset.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use fanfare_protocol::{ChannelName, Publication};
use fjall::OwnedWriteBatch;

use super::Shared;
use super::keys::{self, Bounds, ChannelMeta, RememberedKey};
use crate::history::duration_ms;
use crate::{AppendRequest, Appended, DeleteTargets, Retention, StoreError};

/// Old publications one batch deletes per channel beyond one per append:
/// enough to keep up in steady state and to catch up, a slice at a time,
/// after `max_len` was lowered.
const EXTRA_TRIM_PER_BATCH: u64 = 1024;

/// The appends of one batch, grouped by channel.
pub(super) struct GroupCommit<'a> {
    shared: &'a Shared,
    cached: &'a HashMap<ChannelName, Bounds>,
    channels: HashMap<ChannelName, ChannelAppends>,
    /// Idempotency keys first used in this batch, by stored key: a second
    /// request with the same key in the same batch is a duplicate too.
    new_keys: HashMap<Vec<u8>, RememberedKey>,
    written: u64,
    duplicates: u64,
}

struct ChannelAppends {
    before: Bounds,
    head: u64,
    /// The latest request's; it decides the trim and is stored for the sweep.
    retention: Retention,
    /// New publications (and delete records), ascending by offset.
    publications: Vec<Publication>,
    /// Publications stored before this batch that a delete in it
    /// tombstoned or an edit in it gave new data, as they are now.
    rewritten: BTreeMap<u64, Publication>,
}

impl<'a> GroupCommit<'a> {
    pub fn new(shared: &'a Shared, cached: &'a HashMap<ChannelName, Bounds>) -> Self {
        let (channels, new_keys) = (HashMap::new(), HashMap::new());
        Self { shared, cached, channels, new_keys, written: 0, duplicates: 0 }
    }

    /// Publications this batch writes (duplicates excluded).
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Gives the request its offset, or recognises it as a duplicate. An
    /// error here (unreadable metadata) fails this request only.
    pub fn plan(&mut self, request: &AppendRequest) -> Result<Appended, StoreError> {
        if let Some(targets) = &request.delete {
            return self.plan_delete(request, targets);
        }
        if let Some(target) = request.update {
            return self.plan_edit(request, target);
        }
        let stored_key =
            request.idempotency_key.as_deref().map(|k| keys::idempotency_key(&request.channel, k));
        if let Some(stored_key) = &stored_key
            && let Some(first) = self.find_remembered(stored_key, request.time_ms)?
        {
            self.duplicates += 1;
            let publication =
                Publication::new(first.offset, first.time_ms, request.event.clone(), request.data.clone())
                    .with_author(request.author.clone())
                    .with_priority(request.priority);
            return Ok(self.appended(publication, true));
        }
        let publication = Publication::new(0, request.time_ms, request.event.clone(), request.data.clone())
            .with_author(request.author.clone())
            .with_priority(request.priority);
        let publication = self.push(request, publication)?;
        let offset = publication.offset;
        if let Some(stored_key) = stored_key {
            let expires_ms = request.time_ms.saturating_add(duration_ms(request.idempotency_window));
            self.new_keys.insert(stored_key, RememberedKey { offset, time_ms: request.time_ms, expires_ms });
        }
        Ok(self.appended(publication, false))
    }

    /// Gives `publication` the channel's next offset in this batch.
    fn push(
        &mut self,
        request: &AppendRequest,
        mut publication: Publication,
    ) -> Result<Publication, StoreError> {
        let channel = self.channel_appends(&request.channel)?;
        channel.head += 1;
        channel.retention = request.retention;
        publication.offset = channel.head;
        channel.publications.push(publication.clone());
        self.written += 1;
        Ok(publication)
    }

    /// Tombstones the targets found, stored or new in this batch, and
    /// appends the delete record (see `HistoryStore`, "Deletes").
    fn plan_delete(
        &mut self,
        request: &AppendRequest,
        targets: &DeleteTargets,
    ) -> Result<Appended, StoreError> {
        let offsets = match targets {
            DeleteTargets::Offsets(offsets) => offsets.clone(),
            DeleteTargets::IdempotencyKey(key) => {
                let stored_key = keys::idempotency_key(&request.channel, key);
                self.find_remembered(&stored_key, request.time_ms)?.map(|r| r.offset).into_iter().collect()
            }
            DeleteTargets::Author(_) => Vec::new(),
        };
        let shared = self.shared;
        let channel = self.channel_appends(&request.channel)?;
        let head = channel.head;
        let mut deleted = Vec::new();
        let first_kept = request.retention.first_kept_offset(head);
        for stored in stored_candidates(shared, &request.channel, channel, &offsets, first_kept)? {
            if request.targets(&offsets, &stored) && request.retains(head, stored.offset, stored.time_ms) {
                deleted.push(stored.offset);
                channel.rewritten.insert(stored.offset, stored.into_tombstone());
            }
        }
        for fresh in &mut channel.publications {
            if request.targets(&offsets, fresh) && request.retains(head, fresh.offset, fresh.time_ms) {
                deleted.push(fresh.offset);
                *fresh = fresh.clone().into_tombstone();
            }
        }
        if deleted.is_empty() {
            return Err(StoreError::NothingToDelete);
        }
        let record =
            Publication::delete_record(0, request.time_ms, deleted).with_author(request.author.clone());
        let record = self.push(request, record)?;
        Ok(self.appended(record, false))
    }

    /// Gives the target, stored or new in this batch, the request's data
    /// and appends the update record (see `HistoryStore`, "Edits").
    fn plan_edit(&mut self, request: &AppendRequest, target: u64) -> Result<Appended, StoreError> {
        let shared = self.shared;
        let channel = self.channel_appends(&request.channel)?;
        let head = channel.head;
        let edited = request.data.clone();
        if let Some(fresh) = channel.publications.iter_mut().find(|p| request.edits(head, p)) {
            *fresh = fresh.clone().edited_to(edited);
        } else {
            let first_kept = request.retention.first_kept_offset(head);
            let stored = stored_candidates(shared, &request.channel, channel, &[target], first_kept)?;
            let Some(stored) = stored.into_iter().find(|p| request.edits(head, p)) else {
                return Err(StoreError::NothingToEdit);
            };
            channel.rewritten.insert(target, stored.edited_to(edited));
        }
        let record = self.push(request, request.update_record(0, target))?;
        Ok(self.appended(record, false))
    }

    /// The fjall batch that makes this group durable, and the bounds the
    /// writer adopts once it is committed.
    pub fn into_batch(self) -> (OwnedWriteBatch, Vec<(ChannelName, Bounds)>) {
        let shared = self.shared;
        let mut batch = shared.db.batch();
        let mut bounds = Vec::with_capacity(self.channels.len());
        for (channel, appends) in self.channels {
            let tail = write_channel_appends(shared, &mut batch, &channel, &appends);
            let meta = ChannelMeta { head: appends.head, tail, retention: appends.retention };
            batch.insert(&shared.channels, channel.as_str().as_bytes(), meta.encode());
            bounds.push((channel, Bounds { head: appends.head, tail }));
        }
        for (stored_key, remembered) in self.new_keys {
            batch.insert(&shared.idempotency, stored_key, remembered.encode());
        }
        (batch, bounds)
    }

    fn appended(&self, publication: Publication, duplicate: bool) -> Appended {
        Appended { epoch: self.shared.epoch.clone(), publication, duplicate }
    }

    /// A key counts while the request's time is before its expiry; an
    /// expired key is simply overwritten by the new append.
    fn find_remembered(&self, stored_key: &[u8], now_ms: u64) -> Result<Option<RememberedKey>, StoreError> {
        let remembered = match self.new_keys.get(stored_key) {
            Some(remembered) => Some(*remembered),
            None => match self.shared.idempotency.get(stored_key).map_err(super::storage_error)? {
                Some(value) => Some(RememberedKey::decode(stored_key, &value)?),
                None => None,
            },
        };
        Ok(remembered.filter(|r| now_ms < r.expires_ms))
    }

    /// The channel's entry in this batch, its bounds loaded on first touch.
    fn channel_appends(&mut self, channel: &ChannelName) -> Result<&mut ChannelAppends, StoreError> {
        Ok(match self.channels.entry(channel.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let before = load_bounds(self.shared, self.cached, channel)?;
                let retention = Retention::default();
                entry.insert(ChannelAppends {
                    before,
                    head: before.head,
                    retention,
                    publications: Vec::new(),
                    rewritten: BTreeMap::new(),
                })
            }
        })
    }
}

/// The channel's bounds: from the writer's cache, else from the `channels`
/// keyspace (a channel never written has none stored yet).
fn load_bounds(
    shared: &Shared,
    cached: &HashMap<ChannelName, Bounds>,
    channel: &ChannelName,
) -> Result<Bounds, StoreError> {
    if let Some(bounds) = cached.get(channel) {
        return Ok(*bounds);
    }
    let key = channel.as_str().as_bytes();
    match shared.channels.get(key).map_err(super::storage_error)? {
        Some(value) => Ok(ChannelMeta::decode(key, &value)?.bounds()),
        None => Ok(Bounds::NEW_CHANNEL),
    }
}

/// The publications stored before this batch that a delete or an edit may
/// target, as this batch left them: the listed offsets (point reads), or
/// for a purge every stored one (one scan of the channel's range).
fn stored_candidates(
    shared: &Shared,
    channel: &ChannelName,
    appends: &ChannelAppends,
    offsets: &[u64],
    first_kept: u64,
) -> Result<Vec<Publication>, StoreError> {
    let name = channel.as_str();
    let (tail, stored_head) = (appends.before.tail, appends.before.head);
    let stored = |offset: &u64| (tail..=stored_head).contains(offset);
    let mut found = Vec::new();
    if offsets.is_empty() {
        let from = tail.max(first_kept);
        if from > stored_head {
            return Ok(found);
        }
        let range = keys::publication_key(name, from)..=keys::publication_key(name, stored_head);
        for guard in shared.publications.range(range) {
            let (key, value) = guard.into_inner().map_err(super::storage_error)?;
            let offset = keys::offset_of_publication_key(name, &key)?;
            match appends.rewritten.get(&offset) {
                Some(rewritten) => found.push(rewritten.clone()),
                None => found.push(keys::decode_publication(name, offset, &value)?),
            }
        }
        return Ok(found);
    }
    for &offset in offsets.iter().filter(|o| stored(o)) {
        if let Some(rewritten) = appends.rewritten.get(&offset) {
            found.push(rewritten.clone());
        } else if let Some(value) =
            shared.publications.get(keys::publication_key(name, offset)).map_err(super::storage_error)?
        {
            found.push(keys::decode_publication(name, offset, &value)?);
        }
    }
    Ok(found)
}

/// Inserts the channel's new publications and point-deletes the old ones
/// that fell out of `max_len`, from the tail up; returns the new tail.
/// Offsets written and trimmed in the same batch are simply not written:
/// one batch must never insert and delete the same key.
fn write_channel_appends(
    shared: &Shared,
    batch: &mut OwnedWriteBatch,
    channel: &ChannelName,
    appends: &ChannelAppends,
) -> u64 {
    let name = channel.as_str();
    let keep_from = appends.retention.first_kept_offset(appends.head);
    for publication in appends.publications.iter().filter(|p| p.offset >= keep_from) {
        let key = keys::publication_key(name, publication.offset);
        batch.insert(&shared.publications, key, keys::publication_value(publication));
    }
    // Rewrites of offsets this batch trims are simply not written.
    for (&offset, publication) in appends.rewritten.range(keep_from..) {
        let key = keys::publication_key(name, offset);
        batch.insert(&shared.publications, key, keys::publication_value(publication));
    }
    let before = appends.before;
    let stale_until = keep_from.min(before.head + 1); // exclusive: old offsets no longer kept
    let budget = appends.publications.len() as u64 + EXTRA_TRIM_PER_BATCH;
    let trim_until = stale_until.min(before.tail.saturating_add(budget));
    for offset in before.tail..trim_until {
        batch.remove(&shared.publications, keys::publication_key(name, offset));
    }
    if trim_until == stale_until { keep_from.max(before.tail) } else { trim_until }
}
