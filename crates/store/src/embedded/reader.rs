//! Reads of the embedded store: history pages and positions.
//!
//! A page is read from one fjall snapshot: the channel's head (from
//! `channels`) and its publications are written by the same atomic batch,
//! so within a snapshot every offset up to the head is present unless
//! retention removed it, and nothing above the head is visible. Reads never
//! go through the writer's queue.

use fanfare_protocol::{ChannelName, Publication};
use fjall::{Guard, Readable};

use super::keys::{self, ChannelMeta};
use super::{Shared, storage_error};
use crate::{HistoryPage, HistoryQuery, StoreError};

pub(super) fn read_page(
    shared: &Shared,
    channel: &ChannelName,
    query: &HistoryQuery,
    now_ms: u64,
) -> Result<HistoryPage, StoreError> {
    let snapshot = shared.db.snapshot();
    let top_offset = read_head(&snapshot, shared, channel)?;
    let offsets = query.offsets_to_scan(top_offset);
    let mut publications = Vec::new();
    if !offsets.is_empty() && query.limit > 0 {
        let name = channel.as_str();
        let keys = keys::publication_key(name, *offsets.start())..=keys::publication_key(name, *offsets.end());
        let scan = snapshot.range(&shared.publications, keys);
        let first_kept_time_ms = query.retention.first_kept_time_ms(now_ms);
        publications = if query.reverse {
            collect_kept(scan.rev(), name, first_kept_time_ms, query.limit)?
        } else {
            collect_kept(scan, name, first_kept_time_ms, query.limit)?
        };
    }
    Ok(HistoryPage { epoch: shared.epoch.clone(), top_offset, publications })
}

pub(super) fn read_position(shared: &Shared, channel: &ChannelName) -> Result<u64, StoreError> {
    read_head(&shared.db.snapshot(), shared, channel)
}

/// The channel's newest offset as of the snapshot (0: never written).
fn read_head(snapshot: &fjall::Snapshot, shared: &Shared, channel: &ChannelName) -> Result<u64, StoreError> {
    let key = channel.as_str().as_bytes();
    match snapshot.get(&shared.channels, key).map_err(storage_error)? {
        Some(value) => Ok(ChannelMeta::decode(key, &value)?.head),
        None => Ok(0),
    }
}

/// Up to `limit` publications in scan order, skipping expired ones before
/// their JSON is even looked at.
fn collect_kept(
    scan: impl Iterator<Item = Guard>,
    channel: &str,
    first_kept_time_ms: u64,
    limit: usize,
) -> Result<Vec<Publication>, StoreError> {
    let mut kept = Vec::with_capacity(limit.min(128));
    for guard in scan {
        let (key, value) = guard.into_inner().map_err(storage_error)?;
        let offset = keys::offset_of_publication_key(channel, &key)?;
        if keys::time_of_publication_value(channel, offset, &value)? < first_kept_time_ms {
            continue;
        }
        kept.push(keys::decode_publication(channel, offset, &value)?);
        if kept.len() == limit {
            break;
        }
    }
    Ok(kept)
}
