//! Format migrations of the data directory, run by `open` before anything
//! else reads it.
//!
//! Format 2 → 3 rewrites every publication value in the format-3 layout
//! (`keys.rs`): a message with no author. It runs in batches of
//! [`BATCH`] values; a format-3 value starts with [`keys::VALUE_MARKER`],
//! which no format-2 value does, so a migration interrupted by a crash
//! resumes where it stopped on the next open. Only once every value is
//! rewritten is the format key set to 3, synced with the last batch.

use fjall::{Database, Keyspace, PersistMode};

use super::keys::{self, PUBLICATIONS};
use super::storage_error;
use crate::StoreError;

/// Values rewritten per write batch, so memory stays bounded on a large
/// directory.
const BATCH: usize = 10_000;

/// Brings a directory written in an older format up to
/// [`keys::FORMAT_VERSION`]; returns how many values it rewrote. A new
/// directory (no format stored yet) and a current one are left alone; an
/// unknown format is refused.
pub(super) fn to_current(
    db: &Database,
    publications: &Keyspace,
    store: &Keyspace,
) -> Result<u64, StoreError> {
    let format = match store.get(keys::FORMAT_KEY).map_err(storage_error)? {
        Some(value) => keys::decode_format(&value)?,
        None => return Ok(0),
    };
    match format {
        keys::FORMAT_VERSION => Ok(0),
        2 => {
            tracing::info!("history store: migrating the data directory from format 2 to 3");
            let rewritten = rewrite_v2_publications(db, publications)?;
            let mut done = db.batch().durability(Some(PersistMode::SyncAll));
            done.insert(store, keys::FORMAT_KEY, keys::FORMAT_VERSION.to_be_bytes());
            done.commit().map_err(storage_error)?;
            tracing::info!(rewritten, "history store: migrated to format 3");
            Ok(rewritten)
        }
        _ => Err(keys::corrupt(keys::STORE, "format".into(), "written by an unknown version of Fanfare")),
    }
}

fn rewrite_v2_publications(db: &Database, publications: &Keyspace) -> Result<u64, StoreError> {
    let mut rewritten = 0;
    let mut pending: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
    let mut resume_after: Option<Vec<u8>> = None;
    loop {
        let scan: Box<dyn Iterator<Item = fjall::Guard>> =
            match &resume_after {
                None => Box::new(publications.iter()),
                Some(last) => Box::new(publications.range::<Vec<u8>, _>((
                    std::ops::Bound::Excluded(last.clone()),
                    std::ops::Bound::Unbounded,
                ))),
            };
        for guard in scan {
            let (key, value) = guard.into_inner().map_err(storage_error)?;
            resume_after = Some(key.to_vec());
            if value.first() == Some(&keys::VALUE_MARKER) {
                continue; // rewritten by an interrupted earlier run
            }
            let (channel, offset) = split_key(&key)?;
            let publication = keys::decode_v2_publication(&channel, offset, &value)?;
            pending.push((key.to_vec(), keys::publication_value(&publication)));
            if pending.len() == BATCH {
                break;
            }
        }
        if pending.is_empty() {
            return Ok(rewritten);
        }
        let full = pending.len() == BATCH;
        let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
        for (key, value) in pending.drain(..) {
            batch.insert(publications, key, value);
            rewritten += 1;
        }
        batch.commit().map_err(storage_error)?;
        if !full {
            return Ok(rewritten);
        }
    }
}

/// The channel name and offset of a publication key (`channel 0x00 offset`).
fn split_key(key: &[u8]) -> Result<(String, u64), StoreError> {
    let bad = || keys::corrupt(PUBLICATIONS, String::from_utf8_lossy(key).into_owned(), "bad key");
    let split = key.len().checked_sub(9).ok_or_else(bad)?;
    let channel = std::str::from_utf8(&key[..split]).map_err(|_| bad())?.to_owned();
    let offset = keys::offset_of_publication_key(&channel, key)?;
    Ok((channel, offset))
}
