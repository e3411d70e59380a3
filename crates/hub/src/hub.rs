//! The [`Hub`]: the one place publications, subscriptions and presence meet.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fanfare_protocol::native::{HistoryParams, HistoryResult, Member, PublishResult};
use fanfare_protocol::{ChannelName, JsonData, Stamp, StreamPosition, UserId};
use fanfare_store::{AppendRequest, Appended, DeleteTargets, HistoryQuery, HistoryStore};
use tokio::sync::{mpsc, oneshot};

use crate::HubError;
use crate::cluster::{self, Cluster, ClusterEngines, ClusterOptions, DisconnectReport};
use crate::connections::Connections;
use crate::encode::{Encoded, Message};
use crate::events::{EventSink, HubEvent};
use crate::options::{ChannelOptions, ChannelPolicy, HubOptions};
use crate::publish::{JobItem, PipelineQueues, PublishJob, Reply, run_pipeline};
use crate::registry::{ConnId, Delivered, FanOut, Outgoing, Registry};
use crate::telemetry::HubMetrics;

/// A publication to make.
#[derive(Debug, Clone)]
pub struct Publish {
    pub channel: ChannelName,
    /// The event name (Pusher events have one; native publications may).
    pub event: Option<String>,
    pub data: JsonData,
    pub idempotency_key: Option<String>,
    /// Skip history: no offset, no recovery, never stored.
    pub ephemeral: bool,
    /// A connection that must not receive it (the Pusher `socket_id`
    /// exclusion, or the sender of a client event).
    pub exclude: Option<ConnId>,
    /// The sender's user id, shown to Pusher clients on ephemeral
    /// publications (client events on presence channels), in the JSON
    /// type the sender joined with.
    pub user_id: Option<UserId>,
    /// Who publishes it, kept with a durable publication so a purge can
    /// find it (the native connection's authenticated user; `None` for
    /// the HTTP API and anonymous connections). Not sent on the wire.
    pub author: Option<UserId>,
    /// Published in the priority lane of a shaped namespace (the server, a
    /// moderator, a host): never sampled out, and ahead of the ordinary
    /// publications waiting for the pipeline. Ignored elsewhere.
    pub priority: bool,
}

impl Publish {
    /// A durable publication of `data`, with no event name.
    pub fn new(channel: ChannelName, data: JsonData) -> Self {
        Self {
            channel,
            event: None,
            data,
            idempotency_key: None,
            ephemeral: false,
            exclude: None,
            user_id: None,
            author: None,
            priority: false,
        }
    }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Durable(Appended),
    Ephemeral,
}

/// The pending outcome of a submitted publication ([`Hub::submit`]).
pub struct PublishReceipt(Receipt);

enum Receipt {
    Ready(Option<Result<Published, HubError>>),
    Waiting(oneshot::Receiver<Result<Appended, HubError>>),
}

impl Future for PublishReceipt {
    type Output = Result<Published, HubError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Receipt::Ready(outcome) => Poll::Ready(outcome.take().unwrap_or(Err(HubError::ShuttingDown))),
            Receipt::Waiting(answer) => Pin::new(answer).poll(cx).map(|answer| match answer {
                Ok(outcome) => outcome.map(Published::Durable),
                Err(_) => Err(HubError::ShuttingDown),
            }),
        }
    }
}

/// The reply to a publish, on every protocol and the HTTP API.
impl From<Published> for PublishResult {
    fn from(published: Published) -> Self {
        match published {
            Published::Durable(appended) => {
                PublishResult { epoch: Some(appended.epoch), offset: Some(appended.publication.offset) }
            }
            Published::Ephemeral => PublishResult::default(),
        }
    }
}

/// A channel in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub channel: ChannelName,
    pub subscribers: usize,
}

pub(crate) struct Shared {
    pub store: Arc<dyn HistoryStore>,
    pub registry: Registry,
    pub policy: ChannelPolicy,
    pub options: HubOptions,
    pub metrics: HubMetrics,
    pub events: EventSink,
    /// Every connection of this node, by id and user.
    pub connections: Connections,
    /// The cluster this node is part of; `None` for a single node.
    pub cluster: Option<Cluster>,
    /// Reactions counted in each channel's open window.
    pub reactions: crate::reactions::Reactions,
    /// Where appends of observed channels go (`appends.rs`).
    pub appends: crate::appends::AppendSink,
}

impl Shared {
    pub fn count_fan_out(&self, channel: &ChannelName, result: FanOut) {
        self.metrics.of(channel).deliveries.increment(result.delivered);
        if result.overflowed > 0 {
            self.metrics.slow_consumer_disconnects.increment(result.overflowed);
        }
    }

    /// [`Shared::count_fan_out`] for fresh publications, and what shaping
    /// sampled out of them.
    pub fn count_delivered(&self, channel: &ChannelName, delivered: Delivered) {
        self.count_fan_out(channel, delivered.fan_out);
        if delivered.sampled_out > 0 {
            self.metrics.of(channel).sampled_out.increment(delivered.sampled_out);
        }
    }
}

pub struct Hub {
    pub(crate) shared: Arc<Shared>,
    pipelines: Vec<Pipeline>,
}

/// The way into one publish pipeline: its ordinary and its priority queue.
struct Pipeline {
    ordinary: mpsc::Sender<PublishJob>,
    priority: mpsc::Sender<PublishJob>,
}

impl Pipeline {
    /// Queues a job (priority jobs ahead of ordinary ones waiting); an
    /// error when the pipeline has stopped.
    async fn send(&self, job: PublishJob, priority: bool) -> Result<(), HubError> {
        let queue = if priority { &self.priority } else { &self.ordinary };
        queue.send(job).await.map_err(|_| HubError::ShuttingDown)
    }
}

impl Hub {
    /// Builds a single node's hub and starts its publish pipelines on the
    /// current Tokio runtime.
    pub fn new(store: Arc<dyn HistoryStore>, policy: ChannelPolicy, options: HubOptions) -> Self {
        Self::build(store, policy, options, None)
    }

    /// Builds the hub of a cluster node: durable publications are fanned
    /// out from the cluster bus (the store publishes them as it assigns
    /// their offsets), and presence, occupancy, listings and disconnects
    /// go through the cluster's engines (`cluster/`).
    pub fn clustered(
        store: Arc<dyn HistoryStore>,
        policy: ChannelPolicy,
        options: HubOptions,
        engines: ClusterEngines,
        cluster_options: ClusterOptions,
    ) -> Self {
        Self::build(store, policy, options, Some((engines, cluster_options)))
    }

    fn build(
        store: Arc<dyn HistoryStore>,
        policy: ChannelPolicy,
        options: HubOptions,
        cluster: Option<(ClusterEngines, ClusterOptions)>,
    ) -> Self {
        let registry = Registry::new(options.shards);
        let metrics = HubMetrics::register(&options.metric_namespaces);
        let publish_queue = options.publish_queue;
        let (watch_tx, watch_rx) = mpsc::channel(cluster::WATCH_QUEUE);
        let (leaves_tx, leaves_rx) = cluster::leave_queue();
        let cluster = cluster.map(|(engines, options)| Cluster {
            engines,
            options,
            watcher: watch_tx,
            leaves: leaves_tx,
            occupancy: Default::default(),
            requests: Default::default(),
            recent: Default::default(),
            holds: Default::default(),
            bus_up: true.into(),
            started_at_ms: now_ms(),
        });
        let events = EventSink::new();
        let connections = Connections::default();
        let reactions = Default::default();
        let shared = Arc::new(Shared {
            store,
            registry,
            policy,
            options,
            metrics,
            events,
            connections,
            cluster,
            reactions,
            appends: crate::appends::AppendSink::new(),
        });
        cluster::start(&shared, watch_rx, leaves_rx);
        let pipelines = (0..shared.registry.shard_count())
            .map(|_| {
                let (ordinary, ordinary_rx) = mpsc::channel(publish_queue);
                let (priority, priority_rx) = mpsc::channel(publish_queue);
                let queues = PipelineQueues { ordinary: ordinary_rx, priority: priority_rx };
                tokio::spawn(run_pipeline(shared.clone(), queues));
                Pipeline { ordinary, priority }
            })
            .collect();
        Self { shared, pipelines }
    }

    pub fn connections(&self) -> &Connections {
        &self.shared.connections
    }

    /// This node's id in its cluster (`None` for a single node).
    pub fn node_id(&self) -> Option<&fanfare_cluster::NodeId> {
        self.shared.cluster.as_ref().map(|c| c.node())
    }

    /// Channel lifecycle events (for webhooks), through a queue of
    /// `capacity`; subscription counts only `with_counts`. Only the first
    /// caller gets the receiver.
    pub fn events(&self, capacity: usize, with_counts: bool) -> Option<mpsc::Receiver<HubEvent>> {
        self.shared.events.listen(capacity, with_counts)
    }

    /// The publications this node appends in observed channels, through a
    /// queue of `capacity` (`appends.rs`). Only the first caller gets it.
    pub fn observe_appends(&self, capacity: usize) -> Option<mpsc::Receiver<crate::ObservedAppend>> {
        self.shared.appends.listen(capacity)
    }

    pub fn channel_options(&self, channel: &ChannelName) -> ChannelOptions {
        (self.shared.policy)(channel)
    }

    /// Publishes: a durable publication returns once it is in history with
    /// its offset (and queued to every local subscriber); an ephemeral one
    /// once it is queued to every local subscriber.
    pub async fn publish(&self, publish: Publish) -> Result<Published, HubError> {
        self.submit(publish).await.await
    }

    /// Publishes several publications of one request (or one connection)
    /// together; the outcomes are in the order given. A channel's durable
    /// publications among them are appended as one store group, in the
    /// order given, so they get consecutive offsets and reach each
    /// subscriber together; different channels proceed concurrently.
    /// Ephemeral ones are fanned out at once.
    pub async fn publish_many(&self, publishes: Vec<Publish>) -> Vec<Result<Published, HubError>> {
        futures_util::future::join_all(self.submit_many(publishes).await).await
    }

    /// Hands a publication to its pipeline and returns its receipt without
    /// waiting for the store: awaiting this waits only for room in the
    /// pipeline's queue. Receipts of one channel resolve in submission
    /// order.
    pub async fn submit(&self, publish: Publish) -> PublishReceipt {
        let mut receipts = self.submit_many(vec![publish]).await;
        receipts.pop().unwrap_or(PublishReceipt(Receipt::Ready(Some(Err(HubError::ShuttingDown)))))
    }

    /// [`Hub::submit`] for several publications at once, grouped into one
    /// job per channel (see [`Hub::publish_many`]); receipts in the order
    /// given.
    pub async fn submit_many(&self, publishes: Vec<Publish>) -> Vec<PublishReceipt> {
        let (time_ms, accepted_at) = (now_ms(), Instant::now());
        let mut receipts = Vec::with_capacity(publishes.len());
        let mut jobs: Vec<(PublishJob, bool)> = Vec::new();
        for publish in publishes {
            if publish.ephemeral {
                let outcome = self.publish_ephemeral(&publish, time_ms).await.map(|()| Published::Ephemeral);
                receipts.push(PublishReceipt(Receipt::Ready(Some(outcome))));
                continue;
            }
            let (reply, answer) = oneshot::channel();
            receipts.push(PublishReceipt(Receipt::Waiting(answer)));
            let item = self.job_item(publish, time_ms, reply);
            let priority = item.request.priority;
            match jobs.iter_mut().find(|(job, p)| job.channel == item.request.channel && *p == priority) {
                Some((job, _)) => job.items.push(item),
                None => jobs.push((
                    PublishJob { channel: item.request.channel.clone(), items: vec![item], accepted_at },
                    priority,
                )),
            }
        }
        for (job, priority) in jobs {
            let pipeline = &self.pipelines[self.shared.registry.shard_of(&job.channel)];
            // A pipeline that has stopped drops the job: its receipts answer `ShuttingDown`.
            let _ = pipeline.send(job, priority).await;
        }
        receipts
    }

    fn job_item(&self, publish: Publish, time_ms: u64, reply: Reply) -> JobItem {
        let options = self.channel_options(&publish.channel);
        let request = AppendRequest {
            channel: publish.channel,
            event: publish.event,
            data: publish.data,
            time_ms,
            idempotency_key: publish.idempotency_key,
            idempotency_window: options.idempotency_window,
            retention: options.history,
            durability: options.durability,
            exclude: publish.exclude.unwrap_or(0),
            author: publish.author,
            delete: None,
            update: None,
            priority: publish.priority && options.shaping.is_some(),
        };
        JobItem { request, exclude: publish.exclude, reply }
    }

    /// Deletes `targets` in `channel` (see `HistoryStore`, "Deletes"):
    /// the store tombstones them and appends a delete record, which is
    /// fanned out like a publication. It goes through the channel's
    /// publish pipeline, so it gets its offset in order with the
    /// publications submitted before and after it. Returns the record;
    /// [`HubError::Store`] with [`fanfare_store::StoreError::NothingToDelete`]
    /// when no target was found.
    pub async fn delete(
        &self,
        channel: ChannelName,
        targets: DeleteTargets,
        author: Option<UserId>,
    ) -> Result<Appended, HubError> {
        let options = self.channel_options(&channel);
        let request = AppendRequest {
            time_ms: now_ms(),
            idempotency_window: options.idempotency_window,
            retention: options.history,
            durability: options.durability,
            author,
            ..AppendRequest::delete(channel, targets)
        };
        self.run_record(request).await
    }

    /// Edits the message at `target` in `channel` to `data` (see
    /// `HistoryStore`, "Edits"): the store replaces its data and appends an
    /// update record, fanned out like a publication, in order with the
    /// publications around it (through the channel's publish pipeline).
    /// Returns the record; [`HubError::Store`] with
    /// [`fanfare_store::StoreError::NothingToEdit`] when there is no such
    /// message.
    pub async fn edit(
        &self,
        channel: ChannelName,
        target: u64,
        data: JsonData,
        author: Option<UserId>,
    ) -> Result<Appended, HubError> {
        let options = self.channel_options(&channel);
        let request = AppendRequest {
            time_ms: now_ms(),
            idempotency_window: options.idempotency_window,
            retention: options.history,
            durability: options.durability,
            author,
            ..AppendRequest::edit(channel.clone(), target, data)
        };
        self.run_record(request).await
    }

    /// Runs a delete or an edit through its channel's pipeline, in the
    /// priority lane: records never wait behind a shaped channel's batch.
    async fn run_record(&self, request: AppendRequest) -> Result<Appended, HubError> {
        let (reply, answer) = oneshot::channel();
        let job = PublishJob {
            channel: request.channel.clone(),
            items: vec![JobItem { request, exclude: None, reply }],
            accepted_at: Instant::now(),
        };
        let pipeline = &self.pipelines[self.shared.registry.shard_of(&job.channel)];
        pipeline.send(job, true).await?;
        answer.await.map_err(|_| HubError::ShuttingDown)?
    }

    async fn publish_ephemeral(&self, publish: &Publish, time_ms: u64) -> Result<(), HubError> {
        publish_ephemeral(&self.shared, publish, time_ms).await
    }

    /// The channel's current position in the store.
    pub async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, HubError> {
        Ok(self.shared.store.position(channel).await?)
    }

    /// How many connections are subscribed to the channel: on this node,
    /// or in a cluster on every node (as last reported by each; a change
    /// reaches the engine within milliseconds).
    pub async fn subscriber_count(&self, channel: &ChannelName) -> Result<usize, HubError> {
        match &self.shared.cluster {
            Some(cluster) => {
                let count = cluster.engines.occupancy.count(channel).await?;
                Ok(usize::try_from(count).unwrap_or(usize::MAX))
            }
            None => Ok(self.shared.registry.get(channel).map_or(0, |c| c.state.lock().entries.len())),
        }
    }

    /// Reads a channel's history (`since` exclusive).
    pub async fn history(
        &self,
        channel: &ChannelName,
        params: HistoryParams,
    ) -> Result<HistoryResult, HubError> {
        let options = self.channel_options(channel);
        let max = self.shared.options.max_history_read;
        let query = HistoryQuery {
            since: params.since,
            limit: params.limit.unwrap_or(100).min(max),
            reverse: params.reverse,
            retention: options.history,
        };
        let started = std::time::Instant::now();
        let page = self.shared.store.read(channel, query).await;
        self.shared.metrics.read_latency.record(started.elapsed().as_secs_f64());
        let page = page?;
        Ok(HistoryResult { epoch: page.epoch, top_offset: page.top_offset, publications: page.publications })
    }

    /// The members of a channel (in a cluster: on every node).
    pub async fn presence(&self, channel: &ChannelName) -> Result<Vec<Member>, HubError> {
        if !self.channel_options(channel).presence {
            return Err(HubError::PresenceDisabled);
        }
        if let Some(cluster) = &self.shared.cluster {
            return Ok(cluster.engines.presence.members(channel).await?);
        }
        Ok(self.shared.registry.get(channel).map(|c| c.state.lock().presence.members()).unwrap_or_default())
    }

    /// Channels with at least one subscriber (in a cluster: on any node),
    /// by name.
    pub async fn channels(&self, prefix: &str) -> Result<Vec<ChannelInfo>, HubError> {
        let listed = match &self.shared.cluster {
            Some(cluster) => cluster
                .engines
                .occupancy
                .channels(prefix)
                .await?
                .into_iter()
                .map(|(channel, count)| (channel, usize::try_from(count).unwrap_or(usize::MAX)))
                .collect(),
            None => self.shared.registry.channels(prefix),
        };
        Ok(listed.into_iter().map(|(channel, subscribers)| ChannelInfo { channel, subscribers }).collect())
    }

    /// Closes every connection of `user` (in a cluster: on every node that
    /// answers in time; the report names the others).
    pub async fn disconnect_user(&self, user: &str) -> Result<DisconnectReport, HubError> {
        self.close_user(user, fanfare_protocol::CloseCode::Disconnected).await
    }

    /// Closes every connection of `user`, on every node, with `code`.
    pub async fn close_user(
        &self,
        user: &str,
        code: fanfare_protocol::CloseCode,
    ) -> Result<DisconnectReport, HubError> {
        if self.shared.cluster.is_some() {
            return Ok(cluster::disconnect_user(&self.shared, user, code).await?);
        }
        let reason = crate::CloseReason::new(code);
        Ok(DisconnectReport {
            disconnected: self.shared.connections.close_user(user, reason),
            unreached: Vec::new(),
        })
    }

    /// The live nodes of the cluster (empty for a single node).
    pub async fn nodes(&self) -> Result<Vec<fanfare_cluster::NodeInfo>, HubError> {
        match &self.shared.cluster {
            Some(cluster) => Ok(cluster.engines.registry.nodes().await?),
            None => Ok(Vec::new()),
        }
    }

    /// A clean stop of a cluster node, once its connections are closed:
    /// removes its members (announcing their leaves), its subscription
    /// counts and its lease, instead of letting the lease run out.
    pub async fn leave_cluster(&self) {
        cluster::leave(&self.shared).await;
    }

    /// Renews this node's lease and cleans up after dead nodes now,
    /// instead of at the next heartbeat (start-up, tests).
    pub async fn heartbeat(&self) {
        cluster::beat(&self.shared).await;
    }

    /// The highest offset of `channel` queued in `conn`'s outbox (or
    /// skipped by its subscription on purpose): `None` if `conn` is not
    /// subscribed there, or still catching up. Frames queued after this
    /// call come later on the wire, so a marker queued after it (a ping)
    /// that the client answers proves the client read up to here.
    pub fn covered(&self, conn: ConnId, channel: &ChannelName) -> Option<u64> {
        let chan = self.shared.registry.get(channel)?;
        let state = chan.state.lock();
        let entry = &state.entries[state.position_of(conn)?];
        entry.catch_up.is_none().then_some(entry.covered)
    }

    /// Removes a connection's subscription, with presence leave.
    pub fn unsubscribe(&self, conn: ConnId, channel: &ChannelName) -> Result<(), HubError> {
        let options = self.channel_options(channel);
        let shared = &self.shared;
        let clustered = shared.cluster.is_some();
        let (found, dropped) = shared.registry.detach(channel, conn, |state, entry| {
            if clustered {
                if entry.joined {
                    let (user, announce) = (entry.sub.user.clone(), options.join_leave);
                    cluster::queue_leave(
                        shared,
                        cluster::Leave { channel: channel.clone(), user, conn, announce },
                    );
                }
                return;
            }
            if entry.joined && state.presence.leave(entry.sub.user.as_str()) {
                shared.events.emit(HubEvent::MemberRemoved {
                    channel: channel.clone(),
                    user: entry.sub.user.to_string(),
                });
                if options.join_leave {
                    let encoded = Encoded::new(channel, Message::Leave(&entry.sub.user));
                    let result = state.fan_out(None, &encoded, None, shared.options.catch_up_buffer);
                    shared.count_fan_out(channel, result);
                }
            }
            let count = state.entries.len();
            if count > 0 {
                shared.events.emit(HubEvent::SubscriptionCount { channel: channel.clone(), count });
            }
        });
        if !found {
            return Err(HubError::NotSubscribed);
        }
        self.shared.metrics.subscriptions.decrement(1.0);
        if dropped {
            self.shared.metrics.channels.decrement(1.0);
        }
        if let Some(cluster) = &self.shared.cluster {
            cluster.occupancy.mark(channel);
            if dropped {
                // A full queue leaves it watched; the receiver's sweep retries.
                let _ = cluster.watcher.try_send(cluster::WatchCommand::Unwatch(channel.clone()));
            }
        } else if dropped {
            self.shared.events.emit(HubEvent::ChannelVacated { channel: channel.clone() });
        }
        Ok(())
    }

    /// Whether the cluster bus's link is up (always, for a single node).
    pub fn cluster_bus_up(&self) -> bool {
        self.shared.cluster.as_ref().is_none_or(|c| c.bus_up())
    }

    /// Whether the store takes writes and, in a cluster, the bus is up.
    /// The store answers (its own probe; a cluster's bus aside).
    pub async fn store_ready(&self) -> bool {
        self.shared.store.ready().await
    }

    pub async fn ready(&self) -> bool {
        let bus_up = self.shared.cluster.as_ref().is_none_or(|c| c.bus_up());
        bus_up && self.shared.store.ready().await
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Fans out an ephemeral publication: on this node, or in a cluster
/// through the bus to every node watching the channel.
pub(crate) async fn publish_ephemeral(
    shared: &Shared,
    publish: &Publish,
    time_ms: u64,
) -> Result<(), HubError> {
    shared.metrics.of(&publish.channel).ephemeral_publications.increment(1);
    if let Some(cluster) = &shared.cluster {
        // Every node watching the channel fans it out, this one included.
        let frame = fanfare_protocol::cluster::LiveFrame::Ephemeral {
            exclude: publish.exclude.unwrap_or(0),
            time_ms,
            event: publish.event.clone(),
            user: publish.user_id.clone(),
            data: publish.data.clone(),
        };
        return cluster
            .engines
            .bus
            .publish(&publish.channel, frame.encode())
            .await
            .map_err(HubError::Cluster);
    }
    let Some(chan) = shared.registry.get(&publish.channel) else { return Ok(()) };
    let message = Message::Ephemeral {
        time_ms,
        event: publish.event.as_deref(),
        data: &publish.data,
        user: publish.user_id.as_ref(),
    };
    let encoded = Encoded::new(&publish.channel, message).accepted_at(Stamp::now());
    // A shaped channel's held batch goes out with it, in the same write.
    let extra = Outgoing { offset: None, message: &encoded, except: publish.exclude };
    let result = chan.state.lock().flush_batch(&publish.channel, Some(extra), shared.options.catch_up_buffer);
    shared.count_delivered(&publish.channel, result);
    Ok(())
}
