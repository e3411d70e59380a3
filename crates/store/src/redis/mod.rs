//! [`RedisStore`]: history and offsets in one shared Redis, the authority
//! for every node of a cluster (`redis://…`).
//!
//! Keys of a channel share its hash tag (`fanfare:{<channel>}:…`, see
//! `fanfare_protocol::cluster`): `meta` (HASH `e` epoch, `s` top offset,
//! `g` generation), `stream` (entry `0-<offset>`, field `p` the stored
//! tail, then `x` the excluded connection if the append had one), `keys`
//! (HASH idempotency key → `offset time expires`), `key_expiry` (ZSET
//! key → expiry, for lazy cleanup) and `deleted` (ZSET of tombstones,
//! member `<offset> <tail>`, score the offset: a stream cannot rewrite an
//! entry, so a deleted one is `XDEL`ed and its tombstone kept here, cut by
//! count and expiring with the stream). One instance record,
//! `fanfare:instance` (HASH `run_id`, `replid`, `gen`, `epoch`, `since`),
//! holds the generation and the epoch new channels get, so every node and
//! every channel of one generation agree on one epoch.
//!
//! An append (`append.lua` after `channel_state.lua`, one script call per
//! group of appends to one channel):
//! 1. Check the connection's generation against the instance record's; a
//!    mismatch (or a missing record: `FLUSHALL`) answers `STALEGEN`, and the
//!    store observes the instance again on that connection and retries once.
//! 2. Read `meta`. Missing: the instance's epoch (renewed first if it is
//!    older than `meta_ttl`, so a channel whose meta expired never comes back
//!    under its old epoch), top 0, and the stream and keys are deleted (a
//!    stream that outlived its meta is not trusted). Written under an older
//!    generation: the generation's epoch, and the offsets go on after the
//!    highest one still held (never reissue an offset under an old epoch).
//!    Under a newer one: `STALEGEN`, as in step 1.
//! 3. Per item, judge the idempotency key by the request's clock (a
//!    duplicate answers the first publication's offset and time, appends
//!    and publishes nothing); otherwise take the next offset and `XADD`
//!    it with `MAXLEN ~ max_len` (reads cut the count exactly).
//!    A delete (an item with targets) instead finds them — the listed
//!    offsets, the offset its idempotency key remembers while the key's
//!    window lasts, or a scan of the retained stream for the author's
//!    tails — keeps the retained messages among them, `XDEL`s each and
//!    adds its tombstone to `deleted`, then appends its delete record
//!    (mark `X<offsets>`) at the next offset like a publication; finding
//!    none answers `N` (`StoreError::NothingToDelete`) and takes no
//!    offset. Deletes share the script with the channel's appends, so
//!    they take their offsets in enqueue order with them.
//! 4. Set the TTLs: stream and keys expire after `max_age` (the keys after
//!    the idempotency window if longer) plus slack, the meta after
//!    `max(max_age, meta_ttl)`, so an idle channel keeps its epoch.
//! 5. `PUBLISH` one `P` live frame with every fresh item, in offset order,
//!    inside the same script: pub/sub order is offset order for every node.
//!
//! A read (`read.lua` after `channel_state.lua`) runs steps 1–2 too, so an
//! unknown channel's position is `(epoch, 0)` and stays so, then scans the
//! stream and the tombstones between the offsets
//! [`HistoryQuery::offsets_to_scan`] names, merged in offset order,
//! skipping publications older than `max_age`, up to `limit`.
//!
//! The writer (`writer.rs`) owns the connection: each round it drains the
//! queue and sends every group as one pipeline of `EVALSHA`s, so appends to
//! a thousand channels cost one round trip; one connection and one pipeline
//! keep each channel's groups in enqueue order.
//!
//! # Generations: epochs that tell the truth across restarts
//! A Redis restart without persistence, or with AOF `everysec` after a
//! `kill -9`, or a failover to a lagging replica, may lose acknowledged
//! appends while a channel's meta survives with a lower top offset than
//! clients saw. Reissuing those offsets under the old epoch would make a
//! resuming client silently skip publications. So every new connection
//! (start and each reconnect), before it writes:
//! 1. reads `INFO server` (`run_id`), `INFO replication` (`role`,
//!    `master_replid`, `master_replid2`), `INFO persistence`
//!    (`aof_enabled`) and `CONFIG GET appendfsync` (refused → unknown,
//!    counted as not `always`);
//! 2. runs `observe.lua` on `fanfare:instance`: absent → generation
//!    `max(1, now_ms)`; same `run_id` and replication id → the stored
//!    generation; changed → kept only if AOF is on with `appendfsync
//!    always` and this is not a promoted replica, otherwise `max(stored +
//!    1, now_ms)`. A promoted replica is one whose `master_replid2` is set
//!    (not all zeros, or the stored replication id): a restarted primary has
//!    none. (Only comparing it with the stored id misses failovers: a primary
//!    changes its replication id when its first replica attaches.) A new
//!    generation gets a new random epoch;
//! 3. passes that generation to every script on that connection, so every
//!    channel written or read after a bump gets the new epoch (step 2
//!    above), its offsets going on.
//!
//! A restart always breaks the TCP connections, so one generation per
//! connection is sound; that is why this store does not use redis'
//! `ConnectionManager`, whose silent reconnect would keep a stale one.
//!
//! # Failures
//! A lost connection fails the groups in flight with
//! [`StoreError::Unavailable`] with `maybe_applied: true` (a reply lost
//! after the script ran means the append exists and was published: the one
//! exception to "a failed append consumes no offset"; a retry with the
//! same idempotency key is answered as a duplicate), and
//! groups queued while disconnected with `maybe_applied: false`. The writer
//! reconnects with exponential backoff and jitter (`reconnect_min_delay` →
//! `reconnect_max_delay`), observes the instance again and goes on.
//!
//! # Limits
//! - One primary at one URL: no Sentinel discovery yet (a failover needs
//!   the URL to follow the primary, e.g. a DNS name), and no Redis Cluster:
//!   the scripts read `fanfare:instance` beside the channel's keys, which
//!   Cluster would refuse as a cross-slot access.
//! - Connect directly: a proxy that keeps client connections open across a
//!   Redis restart hides the restart from step 1 (only a lost instance
//!   record or a newer generation would still be noticed).
//! - Redis must not evict (`maxmemory-policy noeviction`): an evicted meta
//!   comes back under the current epoch and could reissue offsets.
//! - Every node must use the same `meta_ttl` (it is the epoch period).

mod cursors;
mod instance;
mod members;
mod reads;
mod resume;
mod scripts;
mod telemetry;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fanfare_protocol::{ChannelName, StreamPosition};
use parking_lot::RwLock;
use redis::RedisError;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::{
    AppendReceipt, AppendRequest, GroupReceipt, HistoryPage, HistoryQuery, HistoryStore, StoreError,
};
use instance::Link;
use telemetry::RedisMetrics;
use writer::{Job, Message, Writer};

/// The `backend` of this store's errors.
const BACKEND: &str = "redis";

/// How a [`RedisStore`] queues, batches, times out and reconnects.
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    /// Append groups (an `enqueue` or an `enqueue_many`) that may wait for
    /// the writer; `enqueue` waits for room beyond. Default 4096.
    pub queue_capacity: usize,
    /// Groups sent in one pipeline at most (a channel's groups in it are
    /// merged into one script call). Default 4096.
    pub max_pipeline_groups: usize,
    /// How long a channel's meta (its epoch and top offset) outlives its
    /// last append or read, at least. Default 24 h.
    pub meta_ttl: Duration,
    /// Default 2 s.
    pub connect_timeout: Duration,
    /// A reply slower than this counts as a lost connection. Default 5 s.
    pub response_timeout: Duration,
    /// First delay between reconnect attempts, doubled up to
    /// `reconnect_max_delay`, with jitter. Defaults 100 ms and 1 s: a node
    /// back on its Redis is ready within about a second.
    pub reconnect_min_delay: Duration,
    pub reconnect_max_delay: Duration,
    /// An idle connection is checked this often. Default 1 s.
    pub ping_interval: Duration,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_pipeline_groups: 4096,
            meta_ttl: Duration::from_secs(24 * 3600),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(1),
            ping_interval: Duration::from_secs(1),
        }
    }
}

/// History in one shared Redis primary (see the module doc for keys,
/// scripts, generations and limits).
///
/// Publishes every fresh append as a live frame itself
/// ([`HistoryStore::publishes_live`]). An append is acknowledged when Redis
/// answers, which is after Redis' own persistence policy: the
/// [`Durability`](crate::Durability) of a request cannot be stronger than
/// the instance's `appendfsync` (only `always` survives a crash; the
/// generation rule turns every weaker loss into a new epoch). Redis
/// replication is asynchronous, so no setting survives a failover to a
/// lagging replica: that too is a new epoch.
pub struct RedisStore {
    queue: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    closed: AtomicBool,
}

/// What the store, its writer and its readers share.
pub(crate) struct Shared {
    /// The writer's current connection; `None` while reconnecting.
    link: RwLock<Option<Link>>,
    /// Readers that met a connection error wake the writer to check it.
    suspect: Notify,
    metrics: RedisMetrics,
    meta_ttl: Duration,
    /// The generation of the previous connection, to count changes.
    last_generation: AtomicU64,
}

impl Shared {
    fn current(&self) -> Option<Link> {
        self.link.read().clone()
    }

    fn install(&self, link: Link) {
        let generation = link.generation();
        let before = self.last_generation.swap(generation, Ordering::AcqRel);
        if before != 0 && before != generation {
            self.metrics.generation_changes.increment(1);
            tracing::warn!(before, generation, "redis instance generation changed: channels get new epochs");
        }
        *self.link.write() = Some(link);
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`),
    /// observes the instance, loads the scripts and starts the writer.
    /// Fails if Redis is unreachable now; later outages are survived.
    pub async fn open(url: &str, options: RedisStoreOptions) -> Result<Self, StoreError> {
        if options.queue_capacity == 0 || options.max_pipeline_groups == 0 {
            return Err(StoreError::Config {
                option: "queue_capacity",
                reason: "the queue and the pipeline need room for one group",
            });
        }
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Config { option: "url", reason: "not a valid redis:// URL" })?;
        let shared = Arc::new(Shared {
            link: RwLock::new(None),
            suspect: Notify::new(),
            metrics: RedisMetrics::register(),
            meta_ttl: options.meta_ttl,
            last_generation: AtomicU64::new(0),
        });
        let link = instance::connect(&client, &options).await.map_err(|e| redis_error(e, false))?;
        shared.install(link.clone());
        let (queue, rx) = mpsc::channel(options.queue_capacity);
        let writer = Writer { rx, shared: shared.clone(), client, options, link: Some(link) };
        tokio::spawn(writer.run());
        Ok(Self { queue, shared, closed: AtomicBool::new(false) })
    }

    fn check_open(&self) -> Result<(), StoreError> {
        match self.closed.load(Ordering::Acquire) {
            true => Err(StoreError::Closed),
            false => Ok(()),
        }
    }

    async fn submit(&self, requests: Vec<AppendRequest>) -> Result<GroupReceipt, StoreError> {
        let count = requests.len();
        self.check_open()?;
        let (job, rx) = Job::new(requests);
        self.queue.send(Message::Append(job)).await.map_err(|_| StoreError::Closed)?;
        Ok(GroupReceipt::waiting(rx, count))
    }
}

#[async_trait::async_trait]
impl HistoryStore for RedisStore {
    async fn enqueue(&self, request: AppendRequest) -> Result<AppendReceipt, StoreError> {
        Ok(AppendReceipt::only_of(self.submit(vec![request]).await?))
    }

    async fn enqueue_many(&self, requests: Vec<AppendRequest>) -> GroupReceipt {
        let count = requests.len();
        if count == 0 {
            return GroupReceipt::each(Vec::new());
        }
        self.submit(requests).await.unwrap_or_else(|error| GroupReceipt::failed(error, count))
    }

    async fn read(&self, channel: &ChannelName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.check_open()?;
        reads::read(&self.shared, channel, Some(&query)).await
    }

    async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, StoreError> {
        self.check_open()?;
        let page = reads::read(&self.shared, channel, None).await?;
        Ok(StreamPosition::new(page.epoch, page.top_offset))
    }

    fn publishes_live(&self) -> bool {
        true
    }

    async fn ready(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && self.shared.link.read().is_some()
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        let (done, finished) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = finished.await;
        }
        Ok(())
    }
}

/// A Redis error as a store error: connection trouble (I/O, timeouts, a
/// server still loading its data) is [`StoreError::Unavailable`].
fn redis_error(error: RedisError, maybe_applied: bool) -> StoreError {
    let transient = error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading);
    if transient {
        StoreError::unavailable(BACKEND, maybe_applied, Some(Arc::new(error)))
    } else {
        StoreError::storage(BACKEND, error)
    }
}
