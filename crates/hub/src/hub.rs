//! The [`Hub`]: the one place publications, subscriptions and presence meet.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fanfare_protocol::native::{HistoryParams, HistoryResult, Member, PublishResult};
use fanfare_protocol::{ChannelName, JsonData, StreamPosition, UserId};
use fanfare_store::{AppendRequest, Appended, HistoryQuery, HistoryStore};
use tokio::sync::{mpsc, oneshot};

use crate::HubError;
use crate::connections::Connections;
use crate::encode::{Encoded, Message};
use crate::events::{EventSink, HubEvent};
use crate::options::{ChannelOptions, ChannelPolicy, HubOptions};
use crate::publish::{JobItem, PublishJob, Reply, run_pipeline};
use crate::registry::{ConnId, FanOut, Registry};
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
}

impl Shared {
    pub fn count_fan_out(&self, result: FanOut) {
        self.metrics.deliveries.increment(result.delivered);
        if result.overflowed > 0 {
            self.metrics.slow_consumer_disconnects.increment(result.overflowed);
        }
    }
}

pub struct Hub {
    pub(crate) shared: Arc<Shared>,
    pipelines: Vec<mpsc::Sender<PublishJob>>,
    connections: Connections,
}

impl Hub {
    /// Builds the hub and starts its publish pipelines on the current
    /// Tokio runtime.
    pub fn new(store: Arc<dyn HistoryStore>, policy: ChannelPolicy, options: HubOptions) -> Self {
        let registry = Registry::new(options.shards);
        let metrics = HubMetrics::register();
        let shared = Arc::new(Shared { store, registry, policy, options, metrics, events: EventSink::new() });
        let pipelines = (0..shared.registry.shard_count())
            .map(|_| {
                let (tx, rx) = mpsc::channel(options.publish_queue);
                tokio::spawn(run_pipeline(shared.clone(), rx));
                tx
            })
            .collect();
        Self { shared, pipelines, connections: Connections::default() }
    }

    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Channel lifecycle events (for webhooks), through a queue of
    /// `capacity`; subscription counts only `with_counts`. Only the first
    /// caller gets the receiver.
    pub fn events(&self, capacity: usize, with_counts: bool) -> Option<mpsc::Receiver<HubEvent>> {
        self.shared.events.listen(capacity, with_counts)
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
        let mut jobs: Vec<PublishJob> = Vec::new();
        for publish in publishes {
            if publish.ephemeral {
                self.publish_ephemeral(&publish, time_ms);
                receipts.push(PublishReceipt(Receipt::Ready(Some(Ok(Published::Ephemeral)))));
                continue;
            }
            let (reply, answer) = oneshot::channel();
            receipts.push(PublishReceipt(Receipt::Waiting(answer)));
            let item = self.job_item(publish, time_ms, reply);
            match jobs.iter_mut().find(|job| job.channel == item.request.channel) {
                Some(job) => job.items.push(item),
                None => jobs.push(PublishJob {
                    channel: item.request.channel.clone(),
                    items: vec![item],
                    accepted_at,
                }),
            }
        }
        for job in jobs {
            let pipeline = &self.pipelines[self.shared.registry.shard_of(&job.channel)];
            // A pipeline that has stopped drops the job: its receipts answer `ShuttingDown`.
            let _ = pipeline.send(job).await;
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
        };
        JobItem { request, exclude: publish.exclude, reply }
    }

    fn publish_ephemeral(&self, publish: &Publish, time_ms: u64) {
        self.shared.metrics.ephemeral_publications.increment(1);
        let Some(chan) = self.shared.registry.get(&publish.channel) else { return };
        let message = Message::Ephemeral {
            time_ms,
            event: publish.event.as_deref(),
            data: &publish.data,
            user: publish.user_id.as_ref(),
        };
        let encoded = Encoded::new(&publish.channel, message);
        let result =
            chan.state.lock().fan_out(None, &encoded, publish.exclude, self.shared.options.catch_up_buffer);
        self.shared.count_fan_out(result);
    }

    /// The channel's current position in the store.
    pub async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, HubError> {
        Ok(self.shared.store.position(channel).await?)
    }

    /// How many connections on this node are subscribed to the channel.
    pub fn subscriber_count(&self, channel: &ChannelName) -> usize {
        self.shared.registry.get(channel).map_or(0, |c| c.state.lock().entries.len())
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
        let page = self.shared.store.read(channel, query).await?;
        Ok(HistoryResult { epoch: page.epoch, top_offset: page.top_offset, publications: page.publications })
    }

    /// The members of a channel on this node.
    pub fn presence(&self, channel: &ChannelName) -> Result<Vec<Member>, HubError> {
        if !self.channel_options(channel).presence {
            return Err(HubError::PresenceDisabled);
        }
        Ok(self.shared.registry.get(channel).map(|c| c.state.lock().presence.members()).unwrap_or_default())
    }

    /// Channels with at least one subscriber on this node, by name.
    pub fn channels(&self, prefix: &str) -> Vec<ChannelInfo> {
        self.shared
            .registry
            .channels(prefix)
            .into_iter()
            .map(|(channel, subscribers)| ChannelInfo { channel, subscribers })
            .collect()
    }

    /// Removes a connection's subscription, with presence leave.
    pub fn unsubscribe(&self, conn: ConnId, channel: &ChannelName) -> Result<(), HubError> {
        let options = self.channel_options(channel);
        let shared = &self.shared;
        let (found, dropped) = shared.registry.detach(channel, conn, |state, entry| {
            if entry.joined && state.presence.leave(entry.sub.user.as_str()) {
                shared.events.emit(HubEvent::MemberRemoved {
                    channel: channel.clone(),
                    user: entry.sub.user.to_string(),
                });
                if options.join_leave {
                    let encoded = Encoded::new(channel, Message::Leave(&entry.sub.user));
                    shared.count_fan_out(state.fan_out(None, &encoded, None, shared.options.catch_up_buffer));
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
            self.shared.events.emit(HubEvent::ChannelVacated { channel: channel.clone() });
        }
        Ok(())
    }

    /// Whether the store takes writes.
    pub async fn ready(&self) -> bool {
        self.shared.store.ready().await
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
