//! [`EmbeddedStore`]: history on local disk in fjall, the zero-configuration
//! store of a single node.
//!
//! - `keys.rs`: how records are laid out in fjall's keyspaces.
//! - `writer.rs`: the one writer thread and its group commit loop, fed by
//!   a bounded queue; `group_commit.rs` assembles one batch.
//! - `reader.rs`: snapshot reads; small ones on the caller's task, large
//!   ones on tokio's blocking pool.
//! - `sweep.rs`: the bounded background deletion of expired data.
//! - `last_stop.rs`: the clean-shutdown record, and whether the epoch
//!   survives an unclean stop.
//! - `cursors.rs`: read cursors ([`crate::CursorStore`]), written beside
//!   the history writer, not through it.
//! - `members.rs`, `member_keys.rs`: channel members and each user's
//!   channels ([`crate::MemberStore`]).
//! - `resume.rs`: where users resume channels ([`crate::ResumePoints`]),
//!   written like cursors.
//! - `migrate.rs`: brings a directory of an older format up to date on open.
//!
//! The epoch is generated once, when the data directory is created, and
//! stored with the data, so offsets and epoch survive restarts and crashes;
//! a new (or wiped) directory starts a new epoch, and so does a directory
//! that may have lost acknowledged buffered appends (see `last_stop.rs`).

mod cursors;
mod group_commit;
mod keys;
mod last_stop;
mod member_keys;
mod members;
mod migrate;
mod reader;
mod resume;
mod sweep;
#[cfg(test)]
mod tests;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition};
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use self::last_stop::{BootId, LastStop};
pub use self::sweep::SweepReport;
use self::writer::{Command, Writer};
use crate::{
    AppendReceipt, AppendRequest, GroupReceipt, HistoryPage, HistoryQuery, HistoryStore, StoreError,
    unix_time_ms,
};

const BACKEND: &str = "embedded";

/// How the store runs. Durability is not here: each append brings its own
/// ([`AppendRequest::durability`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Appends waiting for the writer; `enqueue` waits for room beyond it,
    /// which is how a full disk pushes back on publishers.
    pub queue_capacity: usize,
    /// Most appends in one group commit.
    pub max_batch: usize,
    /// Most large reads (over 64 publications) running at once on tokio's
    /// blocking pool; more wait.
    pub read_concurrency: usize,
    /// Where the store learns which boot of the machine it runs in, to tell
    /// a process crash from a machine restart after an unclean stop.
    pub boot_id: BootId,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self { queue_capacity: 16_384, max_batch: 4_096, read_concurrency: 16, boot_id: BootId::Kernel }
    }
}

impl EmbeddedOptions {
    fn validate(&self) -> Result<(), StoreError> {
        let at_least_one = |option, value: usize| match value {
            0 => Err(StoreError::Config { option, reason: "must be at least 1" }),
            _ => Ok(()),
        };
        at_least_one("queue_capacity", self.queue_capacity)?;
        at_least_one("max_batch", self.max_batch)?;
        at_least_one("read_concurrency", self.read_concurrency)
    }
}

/// Counters since the store was opened, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Group commits written (each one fjall batch).
    pub commits: u64,
    /// Group commits synced to disk: those with an append that asked for
    /// fsync, and the first buffered one of the run (see `LastStop`).
    pub fsyncs: u64,
    /// Publications appended.
    pub appended: u64,
    /// Appends answered as duplicates of an earlier idempotency key.
    pub duplicates: u64,
    /// Group commits that failed, each failing all its appends.
    pub failed_commits: u64,
}

/// History in fjall on local disk, with group commit.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    /// `None` once dropping: the writer drains what is queued and exits.
    queue: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    read_slots: Arc<Semaphore>,
    last_stop: LastStop,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` and starts its writer thread.
    /// Blocking: it recovers fjall's journal, so call it at start-up or from
    /// `spawn_blocking`.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        options.validate()?;
        let (shared, last_stop) = Shared::open(dir, options.boot_id)?;
        let shared = Arc::new(shared);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StoreError::storage(BACKEND, e))?;
        let (queue, commands) = mpsc::channel(options.queue_capacity);
        let writer = Writer::new(shared.clone(), options.max_batch);
        let writer = std::thread::Builder::new()
            .name("fanfare-store-writer".into())
            .spawn(move || writer.run(runtime, commands))
            .map_err(|e| StoreError::storage(BACKEND, e))?;
        tracing::info!(dir = %dir.display(), epoch = %shared.epoch, "embedded history store open");
        let read_slots = Arc::new(Semaphore::new(options.read_concurrency));
        Ok(Self { shared, queue: Some(queue), writer: Some(writer), read_slots, last_stop })
    }

    pub fn epoch(&self) -> &Epoch {
        &self.shared.epoch
    }

    /// How the previous run of this directory ended (also logged by `open`).
    pub fn last_stop(&self) -> LastStop {
        self.last_stop
    }

    pub fn stats(&self) -> EmbeddedStats {
        self.shared.counters.snapshot()
    }

    /// Runs one bounded retention sweep pass now (the writer also runs one
    /// every second on its own) and reports what it deleted.
    pub async fn sweep_expired(&self) -> Result<SweepReport, StoreError> {
        let (reply, report) = oneshot::channel();
        self.send(Command::Sweep { reply }).await?;
        report.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking appends, completes every queued one, syncs everything
    /// to disk and records a clean stop. Idempotent. Dropping the store does
    /// the same (blocking), and also releases the data directory. An error
    /// means the final sync failed: the next open reports an unclean stop.
    pub async fn close(&self) -> Result<(), StoreError> {
        let (reply, closed) = oneshot::channel();
        match self.send(Command::Close { reply }).await {
            Ok(()) => closed.await.map_err(|_| StoreError::Closed)?,
            Err(_) => Ok(()), // already closed
        }
    }

    #[cfg(test)]
    fn fail_next_commits(&self, count: u64) {
        self.shared.injected_failures.store(count, Ordering::Relaxed);
    }

    async fn send(&self, command: Command) -> Result<(), StoreError> {
        let queue = self.queue.as_ref().ok_or(StoreError::Closed)?;
        queue.send(command).await.map_err(|_| StoreError::Closed)
    }

    /// Runs a large read on tokio's blocking pool, at most
    /// `read_concurrency` at once, so extra ones wait cheaply as futures
    /// instead of starting hundreds of threads on a small machine.
    async fn run_blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let slot = self.read_slots.clone().acquire_owned().await.map_err(|_| StoreError::Closed)?;
        let shared = self.shared.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            read(&shared)
        });
        task.await.map_err(|e| StoreError::storage(BACKEND, e))?
    }
}

impl Drop for EmbeddedStore {
    /// Drains and flushes like [`EmbeddedStore::close`], then waits for the
    /// writer so the data directory can be opened again right away.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the history store writer panicked");
        }
    }
}

#[async_trait::async_trait]
impl HistoryStore for EmbeddedStore {
    async fn enqueue(&self, request: AppendRequest) -> Result<AppendReceipt, StoreError> {
        let (reply, receipt) = oneshot::channel();
        self.send(Command::Append { requests: vec![request], reply }).await?;
        Ok(AppendReceipt::only_of(GroupReceipt::waiting(receipt, 1)))
    }

    /// One command for the whole group, so the writer commits it in one
    /// batch and answers it at once.
    async fn enqueue_many(&self, requests: Vec<AppendRequest>) -> GroupReceipt {
        let count = requests.len();
        let (reply, receipt) = oneshot::channel();
        match self.send(Command::Append { requests, reply }).await {
            Ok(()) => GroupReceipt::waiting(receipt, count),
            Err(error) => GroupReceipt::failed(error, count),
        }
    }

    /// Where reads run, measured with `examples/read_storm.rs` (15,000
    /// clients each reading a position and 50 publications, 2 cores): all on
    /// the blocking pool, ~23,000 resubscribes/s; all on the caller's task,
    /// ~43,000/s. Recent history is in fjall's memtables, block cache or the
    /// OS page cache, so a small read takes microseconds and the hand-off to
    /// another thread costs more than the read. A large read, though, can
    /// take milliseconds (more so from a cold disk) and would stall every
    /// other task on the caller's worker, fan-out included. So: the head is
    /// read on the caller's task, which tells how many publications the page
    /// can hold; up to 64 the page is read right there, beyond that on the
    /// blocking pool, from the same snapshot.
    async fn read(&self, channel: &ChannelName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let snapshot = self.shared.db.snapshot();
        let bounds = reader::read_bounds(&snapshot, &self.shared, channel)?;
        if reader::is_small(&query, bounds) {
            return reader::read_page(&self.shared, &snapshot, bounds, channel, &query, unix_time_ms());
        }
        let channel = channel.clone();
        self.run_blocking(move |shared| {
            reader::read_page(shared, &snapshot, bounds, &channel, &query, unix_time_ms())
        })
        .await
    }

    /// One point read, on the caller's task (see `read`).
    async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, StoreError> {
        let head = reader::read_position(&self.shared, channel)?;
        Ok(StreamPosition::new(self.shared.epoch.clone(), head))
    }

    async fn ready(&self) -> bool {
        let open = self.queue.as_ref().is_some_and(|queue| !queue.is_closed());
        open && self.shared.healthy.load(Ordering::Relaxed)
    }

    async fn close(&self) -> Result<(), StoreError> {
        EmbeddedStore::close(self).await
    }
}

/// What the store handle, the writer thread and the reads share.
struct Shared {
    db: Database,
    publications: Keyspace,
    channels: Keyspace,
    idempotency: Keyspace,
    /// Read cursors (`cursors.rs`).
    cursors: Keyspace,
    /// Held by a cursor mark or forget across its read and write.
    cursor_lock: parking_lot::Mutex<()>,
    /// Where users resume channels (`resume.rs`).
    resume_points: Keyspace,
    /// Held by a resume-point save, claim or forget across its reads and writes.
    resume_lock: parking_lot::Mutex<()>,
    /// The `store` keyspace: epoch, format, and the record of this run.
    store: Keyspace,
    /// Channel members and each user's channels (`members.rs`).
    memberships: members::MemberKeyspaces,
    epoch: Epoch,
    /// This boot of the machine, kept in the run record (`None`: unknown).
    boot_id: Option<String>,
    counters: Counters,
    /// False after a failed commit (fjall refuses writes after a failed
    /// journal write or fsync), true again after a successful one.
    healthy: AtomicBool,
    #[cfg(test)]
    injected_failures: AtomicU64,
}

impl Shared {
    fn open(dir: &Path, boot_id: BootId) -> Result<(Self, LastStop), StoreError> {
        let db = Database::builder(dir).open().map_err(storage_error)?;
        let keyspace = |name| db.keyspace(name, KeyspaceCreateOptions::default).map_err(storage_error);
        let store = keyspace(keys::STORE)?;
        let publications = keyspace(keys::PUBLICATIONS)?;
        migrate::to_current(&db, &publications, &store)?;
        let run = last_stop::start_run(&db, &store, boot_id.read())?;
        let shared = Self {
            publications,
            channels: keyspace(keys::CHANNELS)?,
            idempotency: keyspace(keys::IDEMPOTENCY)?,
            cursors: keyspace(keys::CURSORS)?,
            cursor_lock: parking_lot::Mutex::new(()),
            resume_points: keyspace(resume::RESUME_POINTS)?,
            resume_lock: parking_lot::Mutex::new(()),
            memberships: members::MemberKeyspaces::open(&db)?,
            store,
            db,
            epoch: run.epoch,
            boot_id: run.boot_id,
            counters: Counters::default(),
            healthy: AtomicBool::new(true),
            #[cfg(test)]
            injected_failures: AtomicU64::new(0),
        };
        Ok((shared, run.last_stop))
    }

    /// A failure the tests asked for, in place of the next commit.
    fn take_injected_failure(&self) -> Option<fjall::Error> {
        #[cfg(test)]
        if self
            .injected_failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Some(fjall::Error::Io(std::io::Error::other("injected commit failure")));
        }
        None
    }
}

fn storage_error(error: fjall::Error) -> StoreError {
    StoreError::storage(BACKEND, error)
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    fsyncs: AtomicU64,
    appended: AtomicU64,
    duplicates: AtomicU64,
    failed_commits: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> EmbeddedStats {
        EmbeddedStats {
            commits: self.commits.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            appended: self.appended.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
        }
    }
}
