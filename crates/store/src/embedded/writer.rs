//! The embedded store's single writer: one OS thread that owns every write.
//!
//! It waits for commands on the bounded queue, takes everything waiting at
//! that moment (up to `max_batch` commands, each carrying one append or a
//! caller's group of them), writes the appends as ONE fjall batch, syncs
//! it to disk once if any of them asked for fsync (group commit: one fsync
//! for the whole batch), and only then completes the receipts, in queue
//! order. Being the only writer is what makes offsets simple: the next
//! offset of a channel is its cached head plus one, with no lock and no
//! read-modify-write race.
//!
//! Between batches, at most once per [`SWEEP_INTERVAL`], it runs one bounded
//! retention sweep (see `sweep.rs`), also when idle, so channels that stopped
//! receiving messages still lose their expired history.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fanfare_protocol::ChannelName;
use fjall::{OwnedWriteBatch, PersistMode};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::group_commit::GroupCommit;
use super::keys::Bounds;
use super::last_stop;
use super::sweep::{SweepCursor, SweepReport};
use super::{Shared, storage_error};
use crate::{AppendRequest, Appended, Durability, StoreError, unix_time_ms};

/// How often the writer spends one bounded pass deleting expired data.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Sweeps acknowledge nothing, so they never wait for the disk: a deletion
/// a power loss takes back is simply made again by a later pass (reads
/// filter by retention anyway). The next synced batch syncs them too.
const SWEEP_PERSIST: PersistMode = PersistMode::Buffer;

/// Channels whose bounds the writer caches. Past this many the cache is
/// dropped and refilled from the `channels` keyspace on demand, which keeps
/// memory bounded on servers with millions of short-lived channels.
const BOUNDS_CACHE_LIMIT: usize = 1 << 18;

/// What the store asks of its writer.
pub(super) enum Command {
    /// Appends committed in the same group, answered together in order.
    Append { requests: Vec<AppendRequest>, reply: oneshot::Sender<Vec<Result<Appended, StoreError>>> },
    /// Run one retention sweep pass now and report what it deleted.
    Sweep { reply: oneshot::Sender<Result<SweepReport, StoreError>> },
    /// Stop taking commands, finish the queued ones, sync everything and
    /// record a clean stop, then answer.
    Close { reply: oneshot::Sender<Result<(), StoreError>> },
}

/// How a group commit reaches the disk before its receipts resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitSync {
    /// An append in it asked for fsync: the whole batch is synced.
    Sync,
    /// Buffered appends only, the first such batch of the run: synced once,
    /// with the run record's unsynced flag (see `last_stop.rs`, step 4).
    SyncRecordingUnsynced,
    /// Buffered appends only: the write to the OS is enough.
    Buffer,
}

impl CommitSync {
    fn of(any_fsync: bool, unsynced_recorded: bool) -> Self {
        match (any_fsync, unsynced_recorded) {
            (true, _) => Self::Sync,
            (false, false) => Self::SyncRecordingUnsynced,
            (false, true) => Self::Buffer,
        }
    }

    /// How far fjall persists the batch before `commit` returns.
    fn persist_mode(self) -> PersistMode {
        match self {
            Self::Sync | Self::SyncRecordingUnsynced => PersistMode::SyncData,
            Self::Buffer => PersistMode::Buffer,
        }
    }
}

/// One `Append` command waiting for the group commit.
struct PendingAppend {
    requests: Vec<AppendRequest>,
    reply: oneshot::Sender<Vec<Result<Appended, StoreError>>>,
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    max_batch: usize,
    /// Whether the run record on disk already says that buffered appends
    /// were acknowledged unsynced in this run.
    unsynced_recorded: bool,
    /// Head and tail per channel, valid for every channel it holds because
    /// only this thread writes (appends and sweeps alike).
    bounds: HashMap<ChannelName, Bounds>,
    sweep_cursor: SweepCursor,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, max_batch: usize) -> Self {
        let (bounds, sweep_cursor) = (HashMap::new(), SweepCursor::default());
        Self { shared, max_batch, unsynced_recorded: false, bounds, sweep_cursor }
    }

    /// The thread's body. The small current-thread runtime exists only so
    /// the queue wait can time out for idle sweeps; all disk work is plain
    /// blocking code on this dedicated thread.
    pub fn run(mut self, runtime: Runtime, mut queue: mpsc::Receiver<Command>) {
        runtime.block_on(self.serve(&mut queue));
    }

    async fn serve(&mut self, queue: &mut mpsc::Receiver<Command>) {
        let mut commands = Vec::with_capacity(self.max_batch);
        let mut appends = Vec::with_capacity(self.max_batch);
        let mut closers = Vec::new();
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        loop {
            match tokio::time::timeout_at(next_sweep, queue.recv_many(&mut commands, self.max_batch)).await {
                Ok(0) => break, // every sender is gone (or closed) and the queue is drained
                Ok(_) => self.execute(&mut commands, &mut appends, queue, &mut closers),
                Err(_idle) => {}
            }
            if Instant::now() >= next_sweep && closers.is_empty() {
                self.sweep_quietly();
                next_sweep = Instant::now() + SWEEP_INTERVAL;
            }
        }
        let stopped = self.record_clean_stop();
        for closer in closers {
            let _ = closer.send(stopped.clone());
        }
    }

    /// Runs commands in queue order; consecutive appends form one group commit.
    fn execute(
        &mut self,
        commands: &mut Vec<Command>,
        appends: &mut Vec<PendingAppend>,
        queue: &mut mpsc::Receiver<Command>,
        closers: &mut Vec<oneshot::Sender<Result<(), StoreError>>>,
    ) {
        for command in commands.drain(..) {
            match command {
                Command::Append { requests, reply } => appends.push(PendingAppend { requests, reply }),
                Command::Sweep { reply } => {
                    self.commit_appends(appends);
                    let report = self.sweep_cursor.sweep_pass(
                        &self.shared,
                        &mut self.bounds,
                        SWEEP_PERSIST,
                        unix_time_ms(),
                    );
                    let _ = reply.send(report);
                }
                Command::Close { reply } => {
                    self.commit_appends(appends);
                    // Later sends fail with `Closed`; what is queued still runs.
                    queue.close();
                    closers.push(reply);
                }
            }
        }
        self.commit_appends(appends);
    }

    /// Plans, writes and syncs one batch, then answers every receipt in
    /// order. On failure every receipt of the batch fails and the bounds
    /// cache is left untouched, so the failed appends consume no offset.
    fn commit_appends(&mut self, appends: &mut Vec<PendingAppend>) {
        if appends.is_empty() {
            return;
        }
        let mut group = GroupCommit::new(&self.shared, &self.bounds);
        let outcomes: Vec<Vec<_>> = appends
            .iter()
            .map(|append| append.requests.iter().map(|request| group.plan(request)).collect())
            .collect();
        let (written, duplicates) = (group.written(), group.duplicates());
        let (batch, bounds) = group.into_batch();
        let any_fsync = appends
            .iter()
            .flat_map(|append| &append.requests)
            .any(|request| request.durability == Durability::Fsync);
        match self.write_batch(batch, written, any_fsync) {
            Ok(()) => {
                self.adopt_bounds(bounds);
                self.shared.counters.duplicates.fetch_add(duplicates, Ordering::Relaxed);
                for (append, outcome) in appends.drain(..).zip(outcomes) {
                    let _ = append.reply.send(outcome);
                }
            }
            Err(error) => {
                for append in appends.drain(..) {
                    let _ = append.reply.send(vec![Err(error.clone()); append.requests.len()]);
                }
            }
        }
    }

    /// Commits the batch, synced when any of its appends asked for fsync.
    /// Synced, fjall syncs its journal inside `commit` before the batch
    /// becomes visible to readers, so nothing is ever read that a power loss
    /// could take back. (Syncing the journal also syncs every earlier
    /// buffered batch: it is one append-only file.)
    fn write_batch(
        &mut self,
        mut batch: OwnedWriteBatch,
        written: u64,
        any_fsync: bool,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(()); // only duplicates or failed plans: nothing to make durable
        }
        let counters = &self.shared.counters;
        let sync = CommitSync::of(any_fsync, self.unsynced_recorded);
        if sync == CommitSync::SyncRecordingUnsynced {
            last_stop::record_unsynced_appends(&self.shared, &mut batch);
        }
        let batch = batch.durability(Some(sync.persist_mode()));
        let result = self.shared.take_injected_failure().map_or_else(|| batch.commit(), Err);
        if let Err(error) = result {
            tracing::error!(%error, "history store group commit failed; its appends are failed");
            counters.failed_commits.fetch_add(1, Ordering::Relaxed);
            self.shared.healthy.store(false, Ordering::Relaxed);
            return Err(storage_error(error));
        }
        self.shared.healthy.store(true, Ordering::Relaxed);
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.appended.fetch_add(written, Ordering::Relaxed);
        if sync != CommitSync::Buffer {
            counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.unsynced_recorded |= sync == CommitSync::SyncRecordingUnsynced;
        Ok(())
    }

    fn adopt_bounds(&mut self, bounds: Vec<(ChannelName, Bounds)>) {
        if self.bounds.len() + bounds.len() > BOUNDS_CACHE_LIMIT {
            self.bounds.clear();
        }
        self.bounds.extend(bounds);
    }

    /// A failed background sweep is logged and retried on the next pass;
    /// reads filter by retention anyway, so nothing user-visible depends on it.
    fn sweep_quietly(&mut self) {
        if let Err(error) =
            self.sweep_cursor.sweep_pass(&self.shared, &mut self.bounds, SWEEP_PERSIST, unix_time_ms())
        {
            tracing::warn!(%error, "history retention sweep failed");
        }
    }

    /// Makes everything written so far durable, buffered appends too (a
    /// graceful shutdown should lose nothing even on a power loss after it),
    /// and records the clean stop.
    fn record_clean_stop(&self) -> Result<(), StoreError> {
        let stopped = last_stop::record_clean_stop(&self.shared);
        if let Err(error) = &stopped {
            tracing::error!(%error, "history store could not sync on close; the next start will report an unclean stop");
        }
        stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_commit_syncs_when_any_append_in_it_asks_for_fsync() {
        assert_eq!(CommitSync::of(true, false), CommitSync::Sync);
        assert_eq!(CommitSync::of(true, true), CommitSync::Sync);
        assert_eq!(CommitSync::of(true, true).persist_mode(), PersistMode::SyncData);
    }

    #[test]
    fn only_the_first_buffered_group_commit_of_a_run_is_synced_recording_that_unsynced_ones_follow() {
        assert_eq!(CommitSync::of(false, false), CommitSync::SyncRecordingUnsynced);
        assert_eq!(CommitSync::of(false, false).persist_mode(), PersistMode::SyncData);
        assert_eq!(CommitSync::of(false, true), CommitSync::Buffer);
        assert_eq!(CommitSync::of(false, true).persist_mode(), PersistMode::Buffer);
    }
}
