//! How the previous run of the store ended, and whether its epoch survives.
//!
//! A buffered append is acknowledged once fjall has handed it to the OS,
//! before it is on disk. A process crash (`kill -9`) keeps the OS page
//! cache, so such appends survive it; a power loss or kernel crash may take
//! them back, and the next appends would get their offsets again under the
//! same epoch — a client holding one of those positions would then resume
//! past publications it never saw. The store cannot tell from its data
//! whether that happened, so it keeps a record of each run, the `run` key
//! (`keys::RunRecord`), and decides from that:
//!
//! 1. **Open** reads the record the previous run left and classifies the
//!    stop ([`LastStop`]).
//! 2. **Decide.** The epoch is lost only if the previous run did not close
//!    cleanly, *and* it acknowledged appends before syncing them, *and* the
//!    machine has restarted since (the boot id differs, or is unknown).
//!    Then the store takes a new epoch; channels keep what survived and
//!    continue after it, under the new epoch. A plain process crash keeps
//!    the epoch, so it costs no client a `recovered: false`.
//! 3. **Start the run.** Before any append, open writes a fresh record,
//!    synced: running, this boot, nothing unsynced yet.
//! 4. **First unsynced append.** The writer syncs the first group commit of
//!    the run that would otherwise stay unsynced, and sets the record's
//!    unsynced flag in that same batch: the flag is on disk before any
//!    unsynced append is acknowledged, at the cost of one fsync per run.
//! 5. **Close** (or drop) syncs everything and records the clean stop in
//!    one synced batch.

use fanfare_protocol::Epoch;
use fjall::{Database, Keyspace, OwnedWriteBatch, PersistMode};

use super::keys::{self, RunRecord};
use super::{Shared, storage_error};
use crate::StoreError;
use crate::memory::random_epoch;

/// Where the kernel publishes an id that is new on every boot.
const KERNEL_BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// How the previous run of the store's directory ended, as found by `open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastStop {
    /// A new directory: there was no previous run.
    FirstStart,
    /// The previous run closed the store, with everything synced to disk.
    Clean,
    /// The previous run ended without closing the store: a crash, `kill -9`,
    /// a power loss.
    Unclean,
    /// The directory holds no record of it: last written by a version of
    /// Fanfare that kept none.
    Unrecorded,
}

/// Which boot of the machine the store runs in. A process crash keeps the
/// OS page cache, a machine restart does not; the boot id tells them apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BootId {
    /// The kernel's (`/proc/sys/kernel/random/boot_id` on Linux); unknown
    /// where that cannot be read.
    #[default]
    Kernel,
    /// This value: for tests that play a machine restart.
    Fixed(&'static str),
    /// Never known: every unclean stop counts as a possible restart.
    Unknown,
}

impl BootId {
    pub(super) fn read(self) -> Option<String> {
        match self {
            Self::Kernel => std::fs::read_to_string(KERNEL_BOOT_ID).ok(),
            Self::Fixed(id) => Some(id.to_owned()),
            Self::Unknown => None,
        }
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
    }
}

/// What opening found and decided.
pub(super) struct RunStart {
    pub epoch: Epoch,
    pub last_stop: LastStop,
    pub boot_id: Option<String>,
}

/// Steps 1–3: reads the previous run's record, keeps or replaces the epoch,
/// and records this run as started, synced, before any append can run.
pub(super) fn start_run(
    db: &Database,
    store: &Keyspace,
    boot_id: Option<String>,
) -> Result<RunStart, StoreError> {
    check_format(store)?;
    let stored_epoch = match store.get(keys::EPOCH_KEY).map_err(storage_error)? {
        Some(value) => Some(Epoch::new(&keys::decode_epoch(&value)?)),
        None => None,
    };
    let previous = match store.get(keys::RUN_KEY).map_err(storage_error)? {
        Some(value) => Some(RunRecord::decode(&value)?),
        None => None,
    };
    let last_stop = match (&stored_epoch, &previous) {
        (None, _) => LastStop::FirstStart,
        (Some(_), None) => LastStop::Unrecorded,
        (Some(_), Some(record)) if record.closed_cleanly => LastStop::Clean,
        (Some(_), Some(_)) => LastStop::Unclean,
    };
    let lost = epoch_is_lost(previous.as_ref(), boot_id.as_deref());
    let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
    let epoch = match &stored_epoch {
        Some(epoch) if !lost => epoch.clone(),
        _ => {
            let epoch = random_epoch();
            batch.insert(store, keys::EPOCH_KEY, epoch.as_str());
            batch.insert(store, keys::FORMAT_KEY, keys::FORMAT_VERSION.to_be_bytes());
            epoch
        }
    };
    let running = RunRecord { closed_cleanly: false, unsynced_appends: false, boot_id: boot_id.clone() };
    batch.insert(store, keys::RUN_KEY, running.encode());
    batch.commit().map_err(storage_error)?;
    log_last_stop(last_stop, previous.as_ref(), stored_epoch.as_ref().filter(|_| lost), &epoch);
    Ok(RunStart { epoch, last_stop, boot_id })
}

/// Step 2: whether acknowledged appends of the previous run may be gone.
fn epoch_is_lost(previous: Option<&RunRecord>, boot_id_now: Option<&str>) -> bool {
    let Some(previous) = previous else { return false }; // a new directory, or an older version's
    if previous.closed_cleanly || !previous.unsynced_appends {
        return false;
    }
    match (previous.boot_id.as_deref(), boot_id_now) {
        (Some(then), Some(now)) => then != now,
        _ => true, // cannot tell a process crash from a restart: assume the worse
    }
}

/// Step 4: adds the unsynced flag to the batch the writer is about to sync.
pub(super) fn record_unsynced_appends(shared: &Shared, batch: &mut OwnedWriteBatch) {
    let record = RunRecord { closed_cleanly: false, unsynced_appends: true, boot_id: shared.boot_id.clone() };
    batch.insert(&shared.store, keys::RUN_KEY, record.encode());
}

/// Step 5: syncs everything written so far (every append, whatever it asked
/// for) together with the record of a clean stop: fjall's journal is one
/// append-only file (older ones were synced when it rotated), so syncing
/// this batch syncs every batch before it. If this fails, the record still
/// says "running" and the next open reports an unclean stop.
pub(super) fn record_clean_stop(shared: &Shared) -> Result<(), StoreError> {
    let record = RunRecord { closed_cleanly: true, unsynced_appends: false, boot_id: shared.boot_id.clone() };
    let mut batch = shared.db.batch().durability(Some(PersistMode::SyncAll));
    batch.insert(&shared.store, keys::RUN_KEY, record.encode());
    batch.commit().map_err(storage_error)
}

fn check_format(store: &Keyspace) -> Result<(), StoreError> {
    if let Some(format) = store.get(keys::FORMAT_KEY).map_err(storage_error)?
        && keys::decode_format(&format)? != keys::FORMAT_VERSION
    {
        let reason = "written by an unknown version of Fanfare";
        return Err(keys::corrupt(keys::STORE, "format".into(), reason));
    }
    Ok(())
}

/// The lines `docs/operations.md` (§5.4) tells operators to look for;
/// `lost` is the epoch given up, if it was.
fn log_last_stop(last_stop: LastStop, previous: Option<&RunRecord>, lost: Option<&Epoch>, epoch: &Epoch) {
    match (last_stop, lost) {
        (LastStop::FirstStart, _) => {}
        (LastStop::Clean, _) => tracing::info!("history store: the last stop was clean"),
        (LastStop::Unrecorded, _) => {
            tracing::info!("history store: no record of the last stop (written by an older version)")
        }
        (LastStop::Unclean, Some(lost)) => tracing::warn!(
            old_epoch = %lost,
            new_epoch = %epoch,
            "history store: the last stop was not clean and the machine has restarted since; \
             buffered publications acknowledged before it may be lost, so the store starts a new \
             epoch (clients resuming from the old one are told recovered: false)"
        ),
        (LastStop::Unclean, None) => {
            let why = match previous.is_some_and(|record| record.unsynced_appends) {
                true => "the machine has not restarted, so the OS kept the buffered writes",
                false => "every acknowledged publication had been synced to disk",
            };
            tracing::warn!("history store: the last stop was not clean; nothing acknowledged is lost: {why}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(closed_cleanly: bool, unsynced_appends: bool, boot_id: Option<&str>) -> RunRecord {
        RunRecord { closed_cleanly, unsynced_appends, boot_id: boot_id.map(str::to_owned) }
    }

    #[test]
    fn a_clean_stop_keeps_the_epoch_whatever_was_buffered_and_wherever_it_booted() {
        for unsynced in [false, true] {
            for boot_then in [Some("a"), None] {
                let previous = record(true, unsynced, boot_then);
                assert!(!epoch_is_lost(Some(&previous), Some("b")));
                assert!(!epoch_is_lost(Some(&previous), None));
            }
        }
    }

    #[test]
    fn an_unclean_stop_of_a_run_that_synced_every_append_keeps_the_epoch_even_after_a_restart() {
        assert!(!epoch_is_lost(Some(&record(false, false, Some("a"))), Some("b")));
        assert!(!epoch_is_lost(Some(&record(false, false, None)), None));
    }

    #[test]
    fn an_unclean_stop_with_buffered_appends_keeps_the_epoch_when_the_machine_did_not_restart() {
        assert!(!epoch_is_lost(Some(&record(false, true, Some("a"))), Some("a")));
    }

    #[test]
    fn an_unclean_stop_with_buffered_appends_and_a_restart_since_loses_the_epoch() {
        assert!(epoch_is_lost(Some(&record(false, true, Some("a"))), Some("b")));
    }

    #[test]
    fn an_unknown_boot_id_counts_as_a_restart_after_an_unclean_buffered_stop() {
        assert!(epoch_is_lost(Some(&record(false, true, None)), Some("b")));
        assert!(epoch_is_lost(Some(&record(false, true, Some("a"))), None));
    }

    #[test]
    fn a_directory_with_no_record_keeps_its_epoch() {
        assert!(!epoch_is_lost(None, Some("b")));
    }

    #[test]
    fn the_kernel_boot_id_is_read_and_fixed_ones_are_taken_as_given() {
        if std::path::Path::new(KERNEL_BOOT_ID).exists() {
            let id = BootId::Kernel.read().expect("a boot id");
            assert_eq!(id.len(), 36, "a UUID: {id}");
            assert_eq!(BootId::Kernel.read(), Some(id), "the same for the whole boot");
        }
        assert_eq!(BootId::Fixed(" b-1\n").read().as_deref(), Some("b-1"));
        assert_eq!(BootId::Fixed("").read(), None);
        assert_eq!(BootId::Unknown.read(), None);
    }
}
