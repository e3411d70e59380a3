//! One group commit being assembled: offsets, idempotency, count trimming,
//! all turned into a single fjall write batch.
//!
//! Nothing here touches the writer's head cache: the new heads are handed
//! back and only adopted once the batch is on disk, so a failed batch
//! consumes no offset.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use fanfare_protocol::{ChannelName, Publication};
use fjall::OwnedWriteBatch;

use super::Shared;
use super::keys::{self, ChannelMeta, RememberedKey};
use crate::history::duration_ms;
use crate::{AppendRequest, Appended, Retention, StoreError};

/// The appends of one batch, grouped by channel.
pub(super) struct GroupCommit<'a> {
    shared: &'a Shared,
    cached_heads: &'a HashMap<ChannelName, u64>,
    channels: HashMap<ChannelName, ChannelAppends>,
    /// Idempotency keys first used in this batch, by stored key: a second
    /// request with the same key in the same batch is a duplicate too.
    new_keys: HashMap<Vec<u8>, RememberedKey>,
    written: u64,
    duplicates: u64,
}

struct ChannelAppends {
    head_before: u64,
    head: u64,
    /// The latest request's; it decides the trim and is stored for the sweep.
    retention: Retention,
    /// `(offset, encoded value)`, ascending.
    publications: Vec<(u64, Vec<u8>)>,
}

impl<'a> GroupCommit<'a> {
    pub fn new(shared: &'a Shared, cached_heads: &'a HashMap<ChannelName, u64>) -> Self {
        Self {
            shared,
            cached_heads,
            channels: HashMap::new(),
            new_keys: HashMap::new(),
            written: 0,
            duplicates: 0,
        }
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
        let stored_key =
            request.idempotency_key.as_deref().map(|k| keys::idempotency_key(&request.channel, k));
        if let Some(stored_key) = &stored_key
            && let Some(first) = self.find_remembered(stored_key, request.time_ms)?
        {
            self.duplicates += 1;
            let publication =
                Publication { offset: first.offset, time_ms: first.time_ms, data: request.data.clone() };
            return Ok(self.appended(publication, true));
        }
        let channel = self.channel_appends(&request.channel)?;
        channel.head += 1;
        channel.retention = request.retention;
        let offset = channel.head;
        channel.publications.push((offset, keys::publication_value(request.time_ms, &request.data)));
        self.written += 1;
        if let Some(stored_key) = stored_key {
            let expires_ms = request.time_ms.saturating_add(duration_ms(request.idempotency_window));
            self.new_keys.insert(stored_key, RememberedKey { offset, time_ms: request.time_ms, expires_ms });
        }
        let publication = Publication { offset, time_ms: request.time_ms, data: request.data.clone() };
        Ok(self.appended(publication, false))
    }

    /// The fjall batch that makes this group durable, and the heads the
    /// writer adopts once it is committed.
    pub fn into_batch(self) -> (OwnedWriteBatch, Vec<(ChannelName, u64)>) {
        let shared = self.shared;
        let mut batch = shared.db.batch();
        let mut heads = Vec::with_capacity(self.channels.len());
        for (channel, appends) in self.channels {
            write_channel_appends(shared, &mut batch, &channel, &appends);
            let meta = ChannelMeta { head: appends.head, retention: appends.retention };
            batch.insert(&shared.channels, channel.as_str().as_bytes(), meta.encode());
            heads.push((channel, appends.head));
        }
        for (stored_key, remembered) in self.new_keys {
            batch.insert(&shared.idempotency, stored_key, remembered.encode());
        }
        (batch, heads)
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

    /// The channel's entry in this batch, its head loaded on first touch.
    fn channel_appends(&mut self, channel: &ChannelName) -> Result<&mut ChannelAppends, StoreError> {
        Ok(match self.channels.entry(channel.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let head = load_head(self.shared, self.cached_heads, channel)?;
                let retention = Retention::default();
                entry.insert(ChannelAppends { head_before: head, head, retention, publications: Vec::new() })
            }
        })
    }
}

/// The channel's newest offset: from the writer's cache, else from the
/// `channels` keyspace (0 for a channel never written).
fn load_head(
    shared: &Shared,
    cached_heads: &HashMap<ChannelName, u64>,
    channel: &ChannelName,
) -> Result<u64, StoreError> {
    if let Some(head) = cached_heads.get(channel) {
        return Ok(*head);
    }
    let key = channel.as_str().as_bytes();
    match shared.channels.get(key).map_err(super::storage_error)? {
        Some(value) => Ok(ChannelMeta::decode(key, &value)?.head),
        None => Ok(0),
    }
}

/// Inserts the channel's new publications and point-deletes those that fell
/// out of `max_len`. Offsets written and trimmed in the same batch are
/// simply not written: one batch must never insert and delete one key.
fn write_channel_appends(
    shared: &Shared,
    batch: &mut OwnedWriteBatch,
    channel: &ChannelName,
    appends: &ChannelAppends,
) {
    let name = channel.as_str();
    let keep_from = appends.retention.first_kept_offset(appends.head);
    for (offset, value) in appends.publications.iter().filter(|(offset, _)| *offset >= keep_from) {
        batch.insert(&shared.publications, keys::publication_key(name, *offset), value.as_slice());
    }
    let kept_before_from = appends.retention.first_kept_offset(appends.head_before);
    let trim_until = keep_from.min(appends.head_before + 1);
    for offset in kept_before_from..trim_until {
        batch.remove(&shared.publications, keys::publication_key(name, offset));
    }
}
