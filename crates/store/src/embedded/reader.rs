//! Reads of the embedded store: history pages and positions.
//!
//! A page is read from one fjall snapshot: the channel's head (from
//! `channels`) and its publications are written by the same atomic batch,
//! so within a snapshot every offset up to the head is present unless
//! retention removed it, and nothing above the head is visible. Reads never
//! go through the writer's queue.
//!
//! The head is read first, on the caller's task; it tells how large the
//! rest of the read can be, which decides where the rest runs.

use std::ops::RangeInclusive;

use fanfare_protocol::{ChannelName, Publication};
use fjall::{Guard, Readable, Snapshot};

use super::keys::{self, Bounds, ChannelMeta};
use super::{Shared, storage_error};
use crate::{HistoryPage, HistoryQuery, StoreError};

/// Reads expected to return at most this many publications run directly on
/// the caller's task; see `EmbeddedStore::read` for why.
const DIRECT_READ_MAX_PUBLICATIONS: u64 = 64;

/// Whether a read of `query` against a channel with these bounds is small
/// enough to run on the caller's task.
pub(super) fn is_small(query: &HistoryQuery, bounds: Bounds) -> bool {
    let offsets = offsets_to_scan(query, bounds);
    let scanned = offsets.end().saturating_add(1).saturating_sub(*offsets.start());
    scanned.min(u64::try_from(query.limit).unwrap_or(u64::MAX)) <= DIRECT_READ_MAX_PUBLICATIONS
}

/// The page of `query`, read from the same `snapshot` the channel's
/// `bounds` were read from.
pub(super) fn read_page(
    shared: &Shared,
    snapshot: &Snapshot,
    bounds: Bounds,
    channel: &ChannelName,
    query: &HistoryQuery,
    now_ms: u64,
) -> Result<HistoryPage, StoreError> {
    let offsets = offsets_to_scan(query, bounds);
    let mut publications = Vec::new();
    if !offsets.is_empty() && query.limit > 0 {
        let name = channel.as_str();
        let keys =
            keys::publication_key(name, *offsets.start())..=keys::publication_key(name, *offsets.end());
        let scan = snapshot.range(&shared.publications, keys);
        let first_kept_time_ms = query.retention.first_kept_time_ms(now_ms);
        publications = if query.reverse {
            collect_kept(scan.rev(), name, first_kept_time_ms, query.limit)?
        } else {
            collect_kept(scan, name, first_kept_time_ms, query.limit)?
        };
    }
    Ok(HistoryPage::new(shared.epoch.clone(), bounds.head, publications))
}

pub(super) fn read_position(shared: &Shared, channel: &ChannelName) -> Result<u64, StoreError> {
    Ok(read_bounds(&shared.db.snapshot(), shared, channel)?.head)
}

/// What the query asks for, starting no lower than the tail: below it
/// there is nothing but tombstones to wade through.
fn offsets_to_scan(query: &HistoryQuery, bounds: Bounds) -> RangeInclusive<u64> {
    let offsets = query.offsets_to_scan(bounds.head);
    (*offsets.start()).max(bounds.tail)..=*offsets.end()
}

/// The channel's bounds as of the snapshot.
pub(super) fn read_bounds(
    snapshot: &Snapshot,
    shared: &Shared,
    channel: &ChannelName,
) -> Result<Bounds, StoreError> {
    let key = channel.as_str().as_bytes();
    match snapshot.get(&shared.channels, key).map_err(storage_error)? {
        Some(value) => Ok(ChannelMeta::decode(key, &value)?.bounds()),
        None => Ok(Bounds::NEW_CHANNEL),
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
