//! Background retention sweep: physically deletes what reads already hide.
//!
//! Reads enforce retention exactly, and the writer trims by count on every
//! append. What neither covers is a channel that stops receiving messages:
//! its last `max_len` publications would stay on disk forever after they
//! expire by age, as would expired idempotency keys. The writer therefore
//! runs one bounded pass per second, walking `channels` and `idempotency`
//! with a cursor, so a pass costs about the same on a store with ten
//! channels or ten million; a full cycle just takes longer.

use std::collections::HashMap;
use std::ops::RangeFrom;

use fanfare_protocol::ChannelName;
use fjall::{OwnedWriteBatch, PersistMode};

use super::keys::{self, Bounds, ChannelMeta, RememberedKey};
use super::{Shared, storage_error};
use crate::StoreError;

/// Channels examined per pass.
const CHANNELS_PER_PASS: usize = 256;
/// Idempotency keys examined per pass.
const KEYS_PER_PASS: usize = 1024;
/// Publications deleted per pass, so one pass never stalls appends long.
const DELETES_PER_PASS: usize = 4096;

/// What one sweep pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub channels_visited: usize,
    pub publications_deleted: usize,
    pub idempotency_keys_deleted: usize,
}

/// Where the next pass resumes in each keyspace (empty: at the start).
#[derive(Debug, Default)]
pub(super) struct SweepCursor {
    next_channel: Vec<u8>,
    next_idempotency_key: Vec<u8>,
}

impl SweepCursor {
    /// One bounded pass. It runs on the writer thread, between group
    /// commits, and keeps the writer's `cached` bounds in step with the
    /// tails it advances. Its batch is as durable as the appends (`persist`),
    /// so a tail on disk never claims deletes that a power cut took back.
    pub fn sweep_pass(
        &mut self,
        shared: &Shared,
        cached: &mut HashMap<ChannelName, Bounds>,
        persist: PersistMode,
        now_ms: u64,
    ) -> Result<SweepReport, StoreError> {
        let mut batch = shared.db.batch().durability(Some(persist));
        let mut report = SweepReport::default();
        let mut new_tails = Vec::new();
        self.sweep_channels(shared, now_ms, &mut batch, &mut report, &mut new_tails)?;
        self.sweep_idempotency_keys(shared, now_ms, &mut batch, &mut report)?;
        batch.commit().map_err(storage_error)?;
        for (channel, tail) in new_tails {
            if let Some(bounds) = cached.get_mut(&channel) {
                bounds.tail = tail;
            }
        }
        Ok(report)
    }

    fn sweep_channels(
        &mut self,
        shared: &Shared,
        now_ms: u64,
        batch: &mut OwnedWriteBatch,
        report: &mut SweepReport,
        new_tails: &mut Vec<(ChannelName, u64)>,
    ) -> Result<(), StoreError> {
        let mut scan = shared.channels.range(resume_at(&self.next_channel));
        while report.channels_visited < CHANNELS_PER_PASS {
            let Some(guard) = scan.next() else {
                self.next_channel.clear(); // cycle complete: start over next time
                return Ok(());
            };
            let (channel, value) = guard.into_inner().map_err(storage_error)?;
            report.channels_visited += 1;
            let (Ok(meta), Some(name)) = (ChannelMeta::decode(&channel, &value), channel_name(&channel))
            else {
                tracing::warn!(channel = %String::from_utf8_lossy(&channel), "retention sweep skips a corrupt channel");
                self.next_channel = key_after(&channel);
                continue;
            };
            let (tail, finished) = delete_expired_publications(shared, &name, meta, now_ms, batch, report)?;
            if tail != meta.tail {
                batch.insert(&shared.channels, &*channel, ChannelMeta { tail, ..meta }.encode());
                new_tails.push((name, tail));
            }
            if !finished {
                self.next_channel = channel.to_vec(); // budget spent: resume inside this channel
                return Ok(());
            }
            self.next_channel = key_after(&channel);
        }
        Ok(())
    }

    fn sweep_idempotency_keys(
        &mut self,
        shared: &Shared,
        now_ms: u64,
        batch: &mut OwnedWriteBatch,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let mut scan = shared.idempotency.range(resume_at(&self.next_idempotency_key));
        for _ in 0..KEYS_PER_PASS {
            let Some(guard) = scan.next() else {
                self.next_idempotency_key.clear();
                return Ok(());
            };
            let (key, value) = guard.into_inner().map_err(storage_error)?;
            // An undecodable key can never match correctly again: drop it too.
            let expired = RememberedKey::decode(&key, &value).map_or(true, |r| r.expires_ms <= now_ms);
            if expired {
                batch.remove(&shared.idempotency, key.clone());
                report.idempotency_keys_deleted += 1;
            }
            self.next_idempotency_key = key_after(&key);
        }
        Ok(())
    }
}

/// Deletes the channel's oldest publications, from its tail up, while they
/// are out of its retention, stopping at the first one still kept (times
/// are nearly monotonic; reads filter exactly anyway). Returns the new tail
/// and whether the channel is done (or the pass's delete budget ran out).
fn delete_expired_publications(
    shared: &Shared,
    channel: &ChannelName,
    meta: ChannelMeta,
    now_ms: u64,
    batch: &mut OwnedWriteBatch,
    report: &mut SweepReport,
) -> Result<(u64, bool), StoreError> {
    if meta.tail > meta.head {
        return Ok((meta.tail, true)); // nothing stored
    }
    let name = channel.as_str();
    let first_kept_offset = meta.retention.first_kept_offset(meta.head);
    let first_kept_time_ms = meta.retention.first_kept_time_ms(now_ms);
    let stored = keys::publication_key(name, meta.tail)..=keys::publication_key(name, meta.head);
    let mut tail = meta.tail;
    for guard in shared.publications.range(stored) {
        if report.publications_deleted >= DELETES_PER_PASS {
            return Ok((tail, false));
        }
        let (key, value) = guard.into_inner().map_err(storage_error)?;
        let offset = keys::offset_of_publication_key(name, &key)?;
        let time_ms = keys::time_of_publication_value(name, offset, &value)?;
        if offset >= first_kept_offset && time_ms >= first_kept_time_ms {
            return Ok((offset, true));
        }
        batch.remove(&shared.publications, key);
        report.publications_deleted += 1;
        tail = offset + 1;
    }
    Ok((meta.head + 1, true)) // everything stored has expired
}

/// The channel name of a `channels` key, if it is one.
fn channel_name(key: &[u8]) -> Option<ChannelName> {
    ChannelName::new(std::str::from_utf8(key).ok()?).ok()
}

fn resume_at(cursor: &[u8]) -> RangeFrom<Vec<u8>> {
    cursor.to_vec()..
}

/// The smallest key greater than `key`.
fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}
