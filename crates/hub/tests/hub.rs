//! The hub against a real (memory) store: order, recovery, slow consumers
//! and presence, without sockets.

use std::sync::Arc;
use std::time::Duration;

use fanfare_hub::{
    ChannelOptions, CloseReason, Hub, HubOptions, Outbox, OutboxLimits, Protocol, Publish, Subscribe,
    Subscriber,
};
use fanfare_protocol::native::{ServerMessage, encode_reply};
use fanfare_protocol::{ChannelName, CloseCode, Frame, JsonData, StreamPosition};
use fanfare_store::{
    AppendReceipt, AppendRequest, Durability, HistoryPage, HistoryQuery, HistoryStore, MemoryStore,
    StoreError,
};

fn hub_with(options: ChannelOptions) -> Arc<Hub> {
    Arc::new(Hub::new(
        Arc::new(MemoryStore::new()),
        Arc::new(move |_: &ChannelName| options),
        HubOptions::default(),
    ))
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn subscriber(conn: u64, user: &str, limits: OutboxLimits) -> Subscriber {
    let outbox = Arc::new(Outbox::new(limits));
    Subscriber { conn, user: user.into(), info: None, protocol: Protocol::Native, outbox }
}

async fn publish(hub: &Hub, name: &str, n: u64) {
    let data = JsonData::parse(n.to_string()).unwrap();
    hub.publish(Publish::new(channel(name), data)).await.unwrap();
}

/// Reads what an outbox holds right now, decoded.
async fn drain(outbox: &Outbox) -> Vec<ServerMessage> {
    if outbox.is_empty() {
        return Vec::new();
    }
    let mut frames: Vec<Frame> = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), outbox.drain(&mut frames)).await.unwrap();
    frames.iter().map(|f| ServerMessage::decode(f.as_str()).unwrap()).collect()
}

fn offsets(messages: &[ServerMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Publication { publication, .. } => Some(publication.offset),
            _ => None,
        })
        .collect()
}

async fn subscribe(hub: &Hub, sub: Subscriber, name: &str, since: Option<StreamPosition>) -> Option<bool> {
    let request = Subscribe { subscriber: sub, channel: channel(name), since };
    hub.subscribe(request, |r, _| encode_reply(1, r)).await.unwrap().recovered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_produce_one_gap_free_order_for_every_subscriber() {
    let hub = hub_with(ChannelOptions::default());
    let a = subscriber(1, "", OutboxLimits { max_frames: 10_000, max_bytes: 1 << 24 });
    let b = subscriber(2, "", OutboxLimits { max_frames: 10_000, max_bytes: 1 << 24 });
    subscribe(&hub, a.clone(), "race", None).await;
    subscribe(&hub, b.clone(), "race", None).await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    publish(&hub, "race", t * 1000 + i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected: Vec<u64> = (1..=800).collect();
    assert_eq!(offsets(&drain(&a.outbox).await), expected);
    assert_eq!(offsets(&drain(&b.outbox).await), expected);
}

#[tokio::test]
async fn resubscribing_with_a_position_replays_the_gap_then_goes_live() {
    let hub = hub_with(ChannelOptions::default());
    let first = subscriber(1, "", OutboxLimits::default());
    subscribe(&hub, first.clone(), "room", None).await;
    publish(&hub, "room", 1).await;
    publish(&hub, "room", 2).await;
    let seen = drain(&first.outbox).await;
    let ServerMessage::Publication { epoch: Some(epoch), .. } = &seen[1] else { panic!("{seen:?}") };
    let epoch = epoch.clone();
    hub.unsubscribe(1, &channel("room")).unwrap();

    publish(&hub, "room", 3).await;
    publish(&hub, "room", 4).await;
    let again = subscriber(1, "", OutboxLimits::default());
    let recovered = subscribe(&hub, again.clone(), "room", Some(StreamPosition::new(epoch, 2))).await;
    publish(&hub, "room", 5).await;
    assert_eq!(recovered, Some(true));
    assert_eq!(offsets(&drain(&again.outbox).await), vec![3, 4, 5]);
}

#[tokio::test]
async fn a_position_older_than_history_is_not_recovered_and_nothing_is_replayed() {
    let mut options = ChannelOptions::default();
    options.history.max_len = 2;
    let hub = hub_with(options);
    for n in 1..=5 {
        publish(&hub, "short", n).await;
    }
    let epoch = hub.history(&channel("short"), Default::default()).await.unwrap().epoch;
    let sub = subscriber(1, "", OutboxLimits::default());
    let recovered = subscribe(&hub, sub.clone(), "short", Some(StreamPosition::new(epoch, 1))).await;
    assert_eq!(recovered, Some(false));
    assert!(offsets(&drain(&sub.outbox).await).is_empty());
}

#[tokio::test]
async fn a_slow_consumer_is_closed_and_the_fast_one_gets_everything() {
    let hub = hub_with(ChannelOptions::default());
    let slow = subscriber(1, "", OutboxLimits { max_frames: 5, max_bytes: 1 << 20 });
    let fast = subscriber(2, "", OutboxLimits { max_frames: 1000, max_bytes: 1 << 20 });
    subscribe(&hub, slow.clone(), "busy", None).await;
    subscribe(&hub, fast.clone(), "busy", None).await;
    for n in 0..50 {
        publish(&hub, "busy", n).await;
    }
    assert!(slow.outbox.is_closed());
    let mut frames = Vec::new();
    assert_eq!(
        slow.outbox.drain(&mut frames).await,
        Some(CloseReason::new(CloseCode::SlowConsumer)),
        "slow consumer is told to reconnect and recover"
    );
    assert_eq!(offsets(&drain(&fast.outbox).await), (1..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn presence_counts_a_user_with_two_connections_once() {
    let hub = hub_with(ChannelOptions { presence: true, join_leave: true, ..ChannelOptions::default() });
    let watcher = subscriber(1, "watcher", OutboxLimits::default());
    subscribe(&hub, watcher.clone(), "team", None).await;
    drain(&watcher.outbox).await;
    subscribe(&hub, subscriber(2, "alice", OutboxLimits::default()), "team", None).await;
    subscribe(&hub, subscriber(3, "alice", OutboxLimits::default()), "team", None).await;
    let users: Vec<String> =
        hub.presence(&channel("team")).await.unwrap().into_iter().map(|m| m.user.to_string()).collect();
    assert_eq!(users, ["alice", "watcher"]);
    hub.unsubscribe(2, &channel("team")).unwrap();
    hub.unsubscribe(3, &channel("team")).unwrap();
    let pushes = drain(&watcher.outbox).await;
    let joins = pushes.iter().filter(|m| matches!(m, ServerMessage::Join { .. })).count();
    let leaves = pushes.iter().filter(|m| matches!(m, ServerMessage::Leave { .. })).count();
    assert_eq!((joins, leaves), (1, 1), "{pushes:?}");
}

#[tokio::test]
async fn native_and_pusher_subscribers_of_one_channel_each_get_their_own_encoding() {
    let hub = hub_with(ChannelOptions::default());
    let native = subscriber(1, "", OutboxLimits::default());
    let mut pusher = subscriber(2, "", OutboxLimits::default());
    pusher.protocol = Protocol::Pusher { strip: 5 };
    subscribe(&hub, native.clone(), "acme:news", None).await;
    let request = Subscribe { subscriber: pusher.clone(), channel: channel("acme:news"), since: None };
    hub.subscribe(request, |_, _| Frame::from_string("{}".into())).await.unwrap();
    let data = JsonData::parse(r#"{"text":"hi"}"#.into()).unwrap();
    let publish = Publish { event: Some("chat".into()), ..Publish::new(channel("acme:news"), data) };
    hub.publish(publish).await.unwrap();

    let native_frames = drain(&native.outbox).await;
    let ServerMessage::Publication { publication, .. } = &native_frames[1] else {
        panic!("{native_frames:?}")
    };
    assert_eq!(publication.event.as_deref(), Some("chat"));
    let mut frames = Vec::new();
    pusher.outbox.drain(&mut frames).await;
    let event: serde_json::Value = serde_json::from_str(frames[1].as_str()).unwrap();
    assert_eq!(event["event"], "chat");
    assert_eq!(event["channel"], "news", "the app prefix is not part of the Pusher name");
    assert_eq!(event["data"], r#"{"text":"hi"}"#, "Pusher data is a JSON string");
}

/// A memory store that notes the durability each append asked for.
#[derive(Default)]
struct DurabilityRecordingStore {
    inner: MemoryStore,
    asked: parking_lot::Mutex<Vec<(String, Durability)>>,
}

#[async_trait::async_trait]
impl HistoryStore for DurabilityRecordingStore {
    async fn enqueue(&self, request: AppendRequest) -> Result<AppendReceipt, StoreError> {
        self.asked.lock().push((request.channel.as_str().to_owned(), request.durability));
        self.inner.enqueue(request).await
    }

    async fn read(&self, channel: &ChannelName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.inner.read(channel, query).await
    }

    async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, StoreError> {
        self.inner.position(channel).await
    }
}

#[tokio::test]
async fn each_publication_asks_the_store_for_its_channels_durability() {
    let store = Arc::new(DurabilityRecordingStore::default());
    let policy = |channel: &ChannelName| ChannelOptions {
        durability: match channel.namespace() {
            "comments" => Durability::Buffered,
            _ => Durability::Fsync,
        },
        ..ChannelOptions::default()
    };
    let hub = Hub::new(store.clone(), Arc::new(policy), HubOptions::default());
    publish(&hub, "comments:live", 1).await;
    publish(&hub, "chat:room", 2).await;
    let asked = store.asked.lock().clone();
    assert_eq!(
        asked,
        vec![("comments:live".to_owned(), Durability::Buffered), ("chat:room".to_owned(), Durability::Fsync)]
    );
}

/// A memory store whose appends become durable at once but are
/// acknowledged only when the test opens the gate: the window in which a
/// publication is readable but not yet fanned out.
struct GatedStore {
    inner: MemoryStore,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl HistoryStore for GatedStore {
    async fn enqueue(&self, request: AppendRequest) -> Result<AppendReceipt, StoreError> {
        let outcome = self.inner.enqueue(request).await?.await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gate = self.gate.clone();
        tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let _ = tx.send(outcome);
        });
        Ok(AppendReceipt::waiting(rx))
    }

    async fn read(&self, channel: &ChannelName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.inner.read(channel, query).await
    }

    async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, StoreError> {
        self.inner.position(channel).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_read_on_subscribe_but_fanned_out_after_is_delivered_once() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let store = Arc::new(GatedStore { inner: MemoryStore::new(), gate: gate.clone() });
    let options = ChannelOptions::default();
    let hub =
        Arc::new(Hub::new(store.clone(), Arc::new(move |_: &ChannelName| options), HubOptions::default()));
    let epoch = store.position(&channel("late")).await.unwrap().epoch;

    let in_flight = {
        let hub = hub.clone();
        tokio::spawn(async move { publish(&hub, "late", 1).await })
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while store.position(&channel("late")).await.unwrap().offset < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    let sub = subscriber(1, "", OutboxLimits::default());
    let since = Some(StreamPosition::new(epoch, 0));
    assert_eq!(subscribe(&hub, sub.clone(), "late", since).await, Some(true), "offset 1 is replayed");
    gate.add_permits(1_000);
    in_flight.await.unwrap();
    publish(&hub, "late", 2).await;
    assert_eq!(
        offsets(&drain(&sub.outbox).await),
        vec![1, 2],
        "1 is not delivered again by its late fan-out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribing_while_publications_are_in_flight_never_duplicates_or_skips() {
    // Subscribe again and again with the last seen position while a
    // publisher runs: every offset arrives exactly once, in order.
    let hub = hub_with(ChannelOptions::default());
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for n in 0..400 {
                publish(&hub, "storm", n).await;
            }
        })
    };
    let mut seen: Vec<u64> = Vec::new();
    let mut position: Option<StreamPosition> = None;
    let mut conn = 100;
    while seen.last().copied().unwrap_or(0) < 400 {
        conn += 1;
        let sub = subscriber(conn, "", OutboxLimits { max_frames: 100_000, max_bytes: 1 << 26 });
        let request =
            Subscribe { subscriber: sub.clone(), channel: channel("storm"), since: position.clone() };
        let result = hub.subscribe(request, |r, _| encode_reply(1, r)).await.unwrap();
        if position.is_none() {
            seen.extend(1..=result.offset);
        }
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        hub.unsubscribe(conn, &channel("storm")).unwrap();
        let got = offsets(&drain(&sub.outbox).await);
        seen.extend(got);
        position = Some(StreamPosition::new(result.epoch, seen.last().copied().unwrap_or(0)));
    }
    publisher.await.unwrap();
    assert_eq!(seen, (1..=400).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_gets_consecutive_offsets_in_batch_order_while_others_publish() {
    let hub = hub_with(ChannelOptions::default());
    let sub = subscriber(1, "", OutboxLimits { max_frames: 10_000, max_bytes: 1 << 24 });
    subscribe(&hub, sub.clone(), "batch", None).await;
    let others: Vec<_> = (0..4)
        .map(|t| {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    publish(&hub, "batch", 1_000 * (t + 1) + i).await;
                }
            })
        })
        .collect();
    let batch: Vec<Publish> = (0..10)
        .map(|n| {
            let name = if n == 4 { "batch-elsewhere" } else { "batch" };
            let ephemeral = n == 7;
            Publish { ephemeral, ..Publish::new(channel(name), JsonData::parse(n.to_string()).unwrap()) }
        })
        .collect();
    let outcomes = hub.publish_many(batch).await;
    for task in others {
        task.await.unwrap();
    }
    let offsets: Vec<Option<u64>> = outcomes
        .into_iter()
        .map(|outcome| match outcome.unwrap() {
            fanfare_hub::Published::Durable(appended) => Some(appended.publication.offset),
            fanfare_hub::Published::Ephemeral => None,
        })
        .collect();
    assert_eq!(offsets[4], Some(1), "the other channel's own order");
    assert_eq!(offsets[7], None, "ephemeral: no offset");
    let mine: Vec<u64> = [0, 1, 2, 3, 5, 6, 8, 9].iter().map(|&i| offsets[i].unwrap()).collect();
    let first = mine[0];
    assert_eq!(mine, (first..first + 8).collect::<Vec<_>>(), "consecutive, in batch order");
    let delivered = offsets_of(&drain(&sub.outbox).await);
    assert_eq!(delivered, (1..=208).collect::<Vec<_>>(), "one gap-free order for the subscriber");
}

/// Offsets of the durable publications (an ephemeral one reads as offset 0).
fn offsets_of(messages: &[ServerMessage]) -> Vec<u64> {
    offsets(messages).into_iter().filter(|&offset| offset != 0).collect()
}

#[tokio::test]
async fn covered_is_the_last_offset_queued_for_a_connection_its_own_exclusions_included() {
    let hub = hub_with(ChannelOptions::default());
    assert_eq!(hub.covered(1, &channel("cov")), None, "not subscribed");
    publish(&hub, "cov", 1).await;
    let sub = subscriber(1, "", OutboxLimits::default());
    subscribe(&hub, sub.clone(), "cov", None).await;
    assert_eq!(hub.covered(1, &channel("cov")), Some(1), "its start");
    publish(&hub, "cov", 2).await;
    assert_eq!(hub.covered(1, &channel("cov")), Some(2));
    // A publication it is excluded from (its own) is covered too: a resume
    // must not hand it back.
    let data = JsonData::parse("3".into()).unwrap();
    hub.publish(Publish { exclude: Some(1), ..Publish::new(channel("cov"), data) }).await.unwrap();
    assert_eq!(hub.covered(1, &channel("cov")), Some(3));
    assert_eq!(offsets(&drain(&sub.outbox).await), vec![2]);
}

#[tokio::test]
async fn a_live_subscription_given_nothing_yet_recovers_in_place_and_one_given_something_does_not() {
    let hub = hub_with(ChannelOptions::default());
    publish(&hub, "late", 1).await;
    let epoch = hub.history(&channel("late"), Default::default()).await.unwrap().epoch;
    publish(&hub, "late", 2).await;
    publish(&hub, "late", 3).await;
    let sub = subscriber(1, "", OutboxLimits::default());
    subscribe(&hub, sub.clone(), "late", None).await;
    drain(&sub.outbox).await;
    let since = StreamPosition::new(epoch.clone(), 1);
    let recovered = hub.recover_in_place(1, &channel("late"), &since).await.unwrap();
    assert_eq!(recovered, Some(epoch.clone()));
    publish(&hub, "late", 4).await;
    assert_eq!(offsets(&drain(&sub.outbox).await), vec![2, 3, 4], "the gap, then live, in order");
    assert_eq!(hub.covered(1, &channel("late")), Some(4));

    // Given something since it started: nothing more is replayed.
    let again = hub.recover_in_place(1, &channel("late"), &since).await.unwrap();
    assert_eq!(again, None);
    publish(&hub, "late", 5).await;
    assert_eq!(offsets(&drain(&sub.outbox).await), vec![5]);
}
