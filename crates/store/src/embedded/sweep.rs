//! Background retention sweep: physically deletes what reads already hide.
//!
//! Reads enforce retention exactly, and the writer trims by count on every
//! append. What neither covers is a channel that stops receiving messages:
//! its last `max_len` publications would stay on disk forever after they
//! expire by age, as would expired idempotency keys. The writer therefore
//! runs one bounded pass per second, walking `channels` and `idempotency`
//! with a cursor, so a pass costs about the same on a store with ten
//! channels or ten million; a full cycle just takes longer.

use std::ops::RangeFrom;

use fjall::OwnedWriteBatch;

use super::keys::{self, ChannelMeta, RememberedKey};
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
    /// One bounded pass. Deletes are written with OS-buffer durability: a
    /// delete lost to a power cut is simply redone by a later pass.
    pub fn sweep_pass(&mut self, shared: &Shared, now_ms: u64) -> Result<SweepReport, StoreError> {
        let mut batch = shared.db.batch();
        let mut report = SweepReport::default();
        self.sweep_channels(shared, now_ms, &mut batch, &mut report)?;
        self.sweep_idempotency_keys(shared, now_ms, &mut batch, &mut report)?;
        batch.commit().map_err(storage_error)?;
        Ok(report)
    }

    fn sweep_channels(
        &mut self,
        shared: &Shared,
        now_ms: u64,
        batch: &mut OwnedWriteBatch,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let mut scan = shared.channels.range(resume_at(&self.next_channel));
        while report.channels_visited < CHANNELS_PER_PASS {
            let Some(guard) = scan.next() else {
                self.next_channel.clear(); // cycle complete: start over next time
                return Ok(());
            };
            let (channel, value) = guard.into_inner().map_err(storage_error)?;
            report.channels_visited += 1;
            let finished = match ChannelMeta::decode(&channel, &value) {
                Ok(meta) => delete_expired_publications(shared, &channel, meta, now_ms, batch, report)?,
                Err(error) => {
                    tracing::warn!(%error, "retention sweep skips a channel");
                    true
                }
            };
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

/// Deletes the channel's oldest publications while they are out of its
/// retention, oldest first, stopping at the first one still kept (times
/// are nearly monotonic; reads filter exactly anyway). Returns whether the
/// channel is done, or the pass's delete budget ran out.
fn delete_expired_publications(
    shared: &Shared,
    channel: &[u8],
    meta: ChannelMeta,
    now_ms: u64,
    batch: &mut OwnedWriteBatch,
    report: &mut SweepReport,
) -> Result<bool, StoreError> {
    let Ok(name) = std::str::from_utf8(channel) else {
        tracing::warn!("retention sweep skips a channel whose name is not UTF-8");
        return Ok(true);
    };
    let first_kept_offset = meta.retention.first_kept_offset(meta.head);
    let first_kept_time_ms = meta.retention.first_kept_time_ms(now_ms);
    for guard in shared.publications.prefix(keys::channel_prefix(name)) {
        if report.publications_deleted >= DELETES_PER_PASS {
            return Ok(false);
        }
        let (key, value) = guard.into_inner().map_err(storage_error)?;
        let offset = keys::offset_of_publication_key(name, &key)?;
        let time_ms = keys::time_of_publication_value(name, offset, &value)?;
        if offset >= first_kept_offset && time_ms >= first_kept_time_ms {
            break;
        }
        batch.remove(&shared.publications, key);
        report.publications_deleted += 1;
    }
    Ok(true)
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
