//! The [`HistoryStore`] trait and the types it speaks.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanfare_protocol::{ChannelName, Epoch, JsonData, Publication, StreamPosition, UserId};
use tokio::sync::oneshot;

use crate::StoreError;

/// How long a channel keeps its publications. A publication is readable
/// while it is among the newest `max_len` of its channel *and* younger than
/// `max_age`; reads enforce both exactly, physical deletion may lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_len: u64,
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self { max_len: 1000, max_age: Duration::from_secs(24 * 3600) }
    }
}

impl Retention {
    /// The oldest offset still kept by count in a channel whose newest
    /// offset is `top` (`top + 1` when `max_len` is 0: nothing is kept).
    pub fn first_kept_offset(&self, top: u64) -> u64 {
        top.saturating_sub(self.max_len) + 1
    }

    /// Publications stamped before this time (ms since the Unix epoch) have
    /// expired at `now_ms`.
    pub fn first_kept_time_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(duration_ms(self.max_age))
    }
}

/// When an append counts as written: what its receipt waits for.
///
/// Chosen per append (the server takes it from the channel's namespace),
/// so channels that need the disk and channels that do not share one store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Once the write is synced to disk: survives a power loss.
    #[default]
    Fsync,
    /// Once the write reached the operating system: survives a process
    /// crash (the page cache outlives the process), not a power loss or a
    /// kernel crash.
    Buffered,
}

/// One publication to append.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub channel: ChannelName,
    /// The event name, kept with the publication (Pusher events have one).
    pub event: Option<String>,
    pub data: JsonData,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// A publish with a key already seen on this channel within
    /// `idempotency_window` is not appended again: the store answers with
    /// the first publication's position and `duplicate: true`.
    ///
    /// Precisely: the first publication remembers its key until its own
    /// `time_ms + idempotency_window`; a later request with the key is a
    /// duplicate when its `time_ms` is before that instant. Stores judge by
    /// the requests' clocks, never their own, so tests need no sleeping.
    pub idempotency_key: Option<String>,
    pub idempotency_window: Duration,
    pub retention: Retention,
    /// What the receipt waits for. A store that writes several appends
    /// together syncs the group when any of them asks for [`Durability::Fsync`].
    pub durability: Durability,
    /// A connection id that must not receive the publication (the Pusher
    /// `socket_id` exclusion), or 0. A store that publishes live frames
    /// ([`HistoryStore::publishes_live`]) passes it on in the frame and
    /// keeps it with the publication, because a node that lost the frame
    /// fills the gap from history and must still skip that connection
    /// ([`HistoryPage::exclusions`]). Other stores ignore it.
    pub exclude: u64,
    /// Who published it (kept with the publication, see
    /// [`Publication::author`]); for a delete, who deleted.
    pub author: Option<UserId>,
    /// Makes the request a delete ([`HistoryStore#deletes`]): instead of
    /// `event` and `data` (ignored), the store tombstones these targets
    /// and appends a delete record listing them. Its `idempotency_key` is
    /// ignored too: a delete finds its targets, it is not keyed itself.
    pub delete: Option<DeleteTargets>,
    /// Makes the request an edit ([`HistoryStore#edits`]) of the message at
    /// this offset: `data` becomes its newest version and the store appends
    /// an update record carrying it. `event` and `idempotency_key` are
    /// ignored. Never set together with `delete`.
    pub update: Option<u64>,
    /// A publication of a shaped namespace's priority lane: every store
    /// keeps the flag with it ([`Publication::priority`]) and gives it
    /// back in reads and live frames.
    pub priority: bool,
}

/// What a delete deletes, within one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteTargets {
    /// These offsets.
    Offsets(Vec<u64>),
    /// The publication first appended with this idempotency key, while the
    /// key is remembered (its window, judged by the delete's `time_ms`).
    IdempotencyKey(String),
    /// Every retained publication of this author (a purge).
    Author(UserId),
}

impl AppendRequest {
    /// A durable append of `data` to `channel`, accepted now, with the
    /// defaults: no event name, no idempotency key (a 5-minute window if
    /// one is set), [`Retention::default`], [`Durability::Fsync`], no
    /// connection excluded.
    pub fn new(channel: ChannelName, data: JsonData) -> Self {
        Self {
            channel,
            event: None,
            data,
            time_ms: unix_time_ms(),
            idempotency_key: None,
            idempotency_window: Duration::from_secs(300),
            retention: Retention::default(),
            durability: Durability::Fsync,
            exclude: 0,
            author: None,
            delete: None,
            update: None,
            priority: false,
        }
    }

    /// An edit of the message at `target` in `channel` to `data`, accepted
    /// now, with the defaults of [`AppendRequest::new`].
    pub fn edit(channel: ChannelName, target: u64, data: JsonData) -> Self {
        Self { update: Some(target), ..Self::new(channel, data) }
    }

    /// Whether a stored publication is what this edit targets: a message
    /// (edited or not) at the edit's offset, still retained in a channel
    /// whose newest offset is `head`.
    pub fn edits(&self, head: u64, publication: &Publication) -> bool {
        self.update == Some(publication.offset)
            && publication.is_message()
            && self.retains(head, publication.offset, publication.time_ms)
    }

    /// The update record of this edit at `offset` (its author the editor).
    pub fn update_record(&self, offset: u64, target: u64) -> Publication {
        Publication::update_record(offset, self.time_ms, target, self.data.clone())
            .with_author(self.author.clone())
            .with_priority(self.priority)
    }

    /// A delete of `targets` in `channel`, accepted now, with the defaults
    /// of [`AppendRequest::new`] (retention applies to the delete record
    /// and decides which targets are still there to delete).
    pub fn delete(channel: ChannelName, targets: DeleteTargets) -> Self {
        Self { delete: Some(targets), ..Self::new(channel, JsonData::null()) }
    }

    /// Whether a stored publication is what this delete targets (the
    /// offset and key targets are resolved to offsets by the caller).
    pub fn targets(&self, offsets: &[u64], publication: &Publication) -> bool {
        if publication.deletion.is_some() {
            return false; // tombstones stay, delete records are never deleted
        }
        match &self.delete {
            Some(DeleteTargets::Author(author)) => publication.author.as_ref() == Some(author),
            Some(_) => offsets.contains(&publication.offset),
            None => false,
        }
    }

    /// Whether a publication of `offset` and `time_ms` in a channel whose
    /// newest offset is `head` is still retained at this request's time.
    pub fn retains(&self, head: u64, offset: u64, time_ms: u64) -> bool {
        offset >= self.retention.first_kept_offset(head)
            && time_ms >= self.retention.first_kept_time_ms(self.time_ms)
    }
}

/// The outcome of an append. For a delete, `publication` is the delete
/// record (its [`Publication::deletes`] the offsets tombstoned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub epoch: Epoch,
    /// The publication as stored (for a duplicate: the original one's offset
    /// and time, with the data of this request).
    pub publication: Publication,
    /// True when the idempotency key matched an earlier publication; nothing
    /// was appended and nothing should be fanned out.
    pub duplicate: bool,
}

impl Appended {
    pub fn position(&self) -> StreamPosition {
        StreamPosition::new(self.epoch.clone(), self.publication.offset)
    }
}

/// A history read. `since` is exclusive: only offsets greater than it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    pub since: Option<u64>,
    pub limit: usize,
    /// Newest first: the newest `limit` publications after `since`.
    pub reverse: bool,
    pub retention: Retention,
}

impl HistoryQuery {
    /// The offsets a read of a channel whose newest offset is `top` has to
    /// look at: after `since`, still kept by count, up to `top`. Age and
    /// `limit` are applied while scanning.
    pub fn offsets_to_scan(&self, top: u64) -> RangeInclusive<u64> {
        let after_since = self.since.map_or(1, |since| since.saturating_add(1));
        after_since.max(self.retention.first_kept_offset(top))..=top
    }
}

/// A page of history with the channel's position at the time of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub epoch: Epoch,
    /// The offset of the channel's newest publication (0 if none ever).
    pub top_offset: u64,
    /// Ascending by offset, or descending when the query said `reverse`.
    pub publications: Vec<Publication>,
    /// The publications of this page whose append excluded a connection,
    /// in the order of `publications`; most have none, so this stays
    /// short. Filled by stores that publish live frames (Redis): a cluster
    /// node heals a lost frame from history and must still skip the
    /// excluded connection. Empty from single-node stores (memory,
    /// embedded), whose publications are never healed.
    pub exclusions: Vec<Exclusion>,
}

impl HistoryPage {
    /// A page whose publications excluded no connection (or whose store
    /// does not keep exclusions).
    pub fn new(epoch: Epoch, top_offset: u64, publications: Vec<Publication>) -> Self {
        Self { epoch, top_offset, publications, exclusions: Vec::new() }
    }
}

/// A publication that one connection must not receive: the
/// [`AppendRequest::exclude`] it was appended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exclusion {
    pub offset: u64,
    /// The excluded connection's id (never 0).
    pub conn: u64,
}

/// The pending answer to [`HistoryStore::enqueue`]: resolves once the
/// append is durable (or has failed).
pub struct AppendReceipt(Receipt);

enum Receipt {
    Ready(Option<Result<Appended, StoreError>>),
    Waiting(oneshot::Receiver<Result<Appended, StoreError>>),
    /// The only append of a group (a store that answers groups only).
    OnlyOf(GroupReceipt),
}

impl AppendReceipt {
    pub fn ready(outcome: Result<Appended, StoreError>) -> Self {
        Self(Receipt::Ready(Some(outcome)))
    }

    pub fn waiting(rx: oneshot::Receiver<Result<Appended, StoreError>>) -> Self {
        Self(Receipt::Waiting(rx))
    }

    /// The receipt of a group of one append.
    pub fn only_of(group: GroupReceipt) -> Self {
        Self(Receipt::OnlyOf(group))
    }
}

impl Future for AppendReceipt {
    type Output = Result<Appended, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Receipt::Ready(outcome) => Poll::Ready(outcome.take().unwrap_or(Err(StoreError::Closed))),
            Receipt::Waiting(rx) => Pin::new(rx).poll(cx).map(|r| r.unwrap_or(Err(StoreError::Closed))),
            Receipt::OnlyOf(group) => Pin::new(group)
                .poll(cx)
                .map(|outcomes| outcomes.into_iter().next().unwrap_or(Err(StoreError::Closed))),
        }
    }
}

/// The pending answer to [`HistoryStore::enqueue_many`]: resolves once
/// every append of the group is durable (or has failed), with one outcome
/// per request, in request order.
pub struct GroupReceipt(Group);

enum Group {
    /// One receipt per append, answered in order.
    Each { receipts: VecDeque<Result<AppendReceipt, StoreError>>, done: Vec<Result<Appended, StoreError>> },
    /// One answer for the whole group, from a store that commits it at once.
    Waiting { rx: oneshot::Receiver<Vec<Result<Appended, StoreError>>>, count: usize },
}

impl GroupReceipt {
    /// A group answered append by append (each entry an `enqueue` outcome).
    pub fn each(receipts: Vec<Result<AppendReceipt, StoreError>>) -> Self {
        let done = Vec::with_capacity(receipts.len());
        Self(Group::Each { receipts: receipts.into(), done })
    }

    /// A group of `count` appends that all failed with `error`.
    pub fn failed(error: StoreError, count: usize) -> Self {
        Self::each((0..count).map(|_| Err(error.clone())).collect())
    }

    /// A group of `count` appends answered at once through `rx`.
    pub fn waiting(rx: oneshot::Receiver<Vec<Result<Appended, StoreError>>>, count: usize) -> Self {
        Self(Group::Waiting { rx, count })
    }
}

impl Future for GroupReceipt {
    type Output = Vec<Result<Appended, StoreError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Group::Each { receipts, done } => {
                // Receipts of one caller resolve in order: wait for each in turn.
                while let Some(front) = receipts.front_mut() {
                    let outcome = match front {
                        Ok(receipt) => ready!(Pin::new(receipt).poll(cx)),
                        Err(error) => Err(error.clone()),
                    };
                    receipts.pop_front();
                    done.push(outcome);
                }
                Poll::Ready(std::mem::take(done))
            }
            Group::Waiting { rx, count } => Pin::new(rx)
                .poll(cx)
                .map(|outcomes| outcomes.unwrap_or_else(|_| vec![Err(StoreError::Closed); *count])),
        }
    }
}

/// Where channels' publications get their offsets and are kept.
///
/// # Contract
/// - **Order.** Appends to one channel that one caller enqueues one after
///   the other get strictly increasing, gap-free offsets in that order; a
///   channel's first append gets 1. (The hub enqueues each channel's appends
///   from one task, so this is the channel's total order.)
/// - **Durability.** A receipt resolves `Ok` only once the publication is as
///   durable as its request's [`Durability`] asks; a publication whose
///   receipt resolved `Ok` is readable until retention drops it, unless a
///   power loss takes back a [`Durability::Buffered`] one (see Epoch).
/// - **Failure.** An append that fails consumes no offset.
/// - **Epoch.** `epoch` is stable for as long as the channel's stream is
///   intact; a store that loses or resets a stream must change its epoch.
///   That includes a store that may have lost acknowledged appends: their
///   offsets would otherwise be handed out again under the same epoch, and a
///   client holding one would silently skip what got them. An offset is
///   never given to two publications within one epoch. After a new epoch a
///   store may start channels again at 1 (a wiped store) or keep what it
///   still holds and continue after it (the embedded store after a power
///   loss); positions of the old epoch are not recoverable either way.
/// - **Position.** `position` works for channels that never had a
///   publication: `(epoch, 0)`.
/// - **Authors.** Every store keeps [`AppendRequest::author`] with the
///   publication and returns it in reads.
///
/// # Deletes
/// A request with [`AppendRequest::delete`] set goes through `enqueue`
/// like an append, so it takes its offset in order with the appends
/// around it. Atomically, the store:
/// 1. finds the targets: the listed offsets, the offset the idempotency
///    key was first appended at (while the key is remembered), or every
///    publication of the author; only publications still retained at the
///    request's `time_ms` that are messages count (already-deleted ones,
///    delete records and out-of-retention ones are skipped);
/// 2. if none is found, fails the request with
///    [`StoreError::NothingToDelete`]: nothing is appended, no offset is
///    consumed;
/// 3. else turns each into a tombstone (its offset and time stay; its data,
///    event and author are gone) and appends the *delete record* at the
///    next offset: the request's time and author, and
///    [`Publication::deletes`] the tombstoned offsets, ascending. A store
///    that publishes live frames publishes the record in the same step.
///
/// Reads (and so recovery) return tombstones in place of their targets;
/// the delete does not create a gap, every offset is still there. An
/// update record is a target like a message (by offset or author).
///
/// # Edits
/// A request with [`AppendRequest::update`] set goes through `enqueue`
/// like an append, in order with the appends around it. Atomically, the
/// store:
/// 1. finds the target: the message at that offset, retained at the
///    request's `time_ms` ([`AppendRequest::edits`]); tombstones, update
///    records and delete records are not edited;
/// 2. if there is none, fails the request with
///    [`StoreError::NothingToEdit`]: nothing is appended, no offset is
///    consumed;
/// 3. else replaces the target's data with the request's and marks it
///    [`Publication::edited`] (its offset, time, event, author and lane
///    stay), and appends the *update record* at the next offset
///    ([`AppendRequest::update_record`]: the request's time, author, lane
///    and data, [`Publication::updates`] the target). A store that
///    publishes live frames publishes the record in the same step.
#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Queues an append and returns a receipt that resolves once it is
    /// durable. Awaiting `enqueue` itself waits only for room in the
    /// store's bounded queue.
    async fn enqueue(&self, request: AppendRequest) -> Result<AppendReceipt, StoreError>;

    /// Queues several appends at once, in order, and returns one receipt
    /// for all of them. Appends to one channel in one group get
    /// consecutive offsets in request order. A store that commits in
    /// groups commits them in one group (so they become durable, and are
    /// answered, together); the default enqueues them one by one. An
    /// append that cannot be queued fails alone; the others still count.
    async fn enqueue_many(&self, requests: Vec<AppendRequest>) -> GroupReceipt {
        let mut receipts = Vec::with_capacity(requests.len());
        for request in requests {
            receipts.push(self.enqueue(request).await);
        }
        GroupReceipt::each(receipts)
    }

    /// Reads publications of a channel, filtered by retention.
    async fn read(&self, channel: &ChannelName, query: HistoryQuery) -> Result<HistoryPage, StoreError>;

    /// The channel's current position.
    async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, StoreError>;

    /// Whether the store itself publishes every append as a live frame
    /// (`fanfare_protocol::cluster`) to the channel's pub/sub, in the same
    /// atomic step that assigns its offset (the Redis store). Then the hub
    /// fans out durable publications from the cluster bus, not after the
    /// append; a store that does not (memory, embedded) leaves fan-out to
    /// the hub.
    fn publishes_live(&self) -> bool {
        false
    }

    /// Whether the store can take writes now (for `/ready`).
    async fn ready(&self) -> bool {
        true
    }

    /// Stops taking appends, completes every append already queued and makes
    /// it durable (synced to disk, whatever each append asked for). Part of
    /// graceful shutdown: the server calls it after the hub has stopped
    /// publishing, while other handles may still be alive (so relying on
    /// `Drop` alone would be fragile). A store that remembers how it stopped
    /// records a clean stop here. Later appends fail with
    /// [`StoreError::Closed`]. Idempotent; an error means the final flush
    /// failed and the stop is not clean.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, the clock of `time_ms` and `max_age`.
pub fn unix_time_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    duration_ms(since_epoch)
}

/// A duration in whole milliseconds, saturating instead of wrapping.
pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Convenience: enqueue a delete and wait for durability; the outcome's
/// publication is the delete record.
pub async fn delete(store: &dyn HistoryStore, request: AppendRequest) -> Result<Appended, StoreError> {
    debug_assert!(request.delete.is_some(), "a delete request");
    store.enqueue(request).await?.into_future().await
}

/// Convenience: enqueue an edit and wait for durability; the outcome's
/// publication is the update record.
pub async fn edit(store: &dyn HistoryStore, request: AppendRequest) -> Result<Appended, StoreError> {
    debug_assert!(request.update.is_some(), "an edit request");
    store.enqueue(request).await?.into_future().await
}

/// Convenience: enqueue and wait for durability.
pub async fn append(store: &dyn HistoryStore, request: AppendRequest) -> Result<Appended, StoreError> {
    store.enqueue(request).await?.into_future().await
}
