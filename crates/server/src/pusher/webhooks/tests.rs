//! Webhooks against a real HTTP receiver on 127.0.0.1:0, fed with hub
//! events by hand (or by a real hub), with short timings.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fanfare_hub::{
    ChannelOptions, Hub, HubEvent, HubOptions, Outbox, OutboxLimits, Protocol, Subscribe, Subscriber,
};
use fanfare_protocol::pusher::verify_webhook;
use fanfare_protocol::{ChannelName, Frame};
use fanfare_store::MemoryStore;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{WebhookEvent, WebhookOptions, Webhooks};
use crate::config::{AppSettings, WebhookKind, WebhookSettings};
use crate::pusher::apps::Apps;

const WAIT: Duration = Duration::from_secs(10);

/// One POST as the receiver saw it.
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// `(name, channel)` of each event.
    fn names(&self) -> Vec<(String, String)> {
        let body = self.json();
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_owned(), e["channel"].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// A webhook receiver: answers each POST with the next planned status
/// (200 once the plan is used up) and reports what it received.
struct Receiver {
    url: String,
    posts: mpsc::Receiver<Received>,
}

#[derive(Clone)]
struct ReceiverState {
    statuses: Arc<Mutex<VecDeque<u16>>>,
    posts: mpsc::Sender<Received>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> Self {
        let (tx, posts) = mpsc::channel(100);
        let state =
            ReceiverState { statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())), posts: tx };
        let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, posts }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.posts.recv()).await.expect("no webhook arrived").unwrap()
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = state.statuses.lock().pop_front().unwrap_or(200);
    let _ = state.posts.send(Received { headers, body }).await;
    StatusCode::from_u16(status).unwrap()
}

fn fast() -> WebhookOptions {
    WebhookOptions {
        hold: Duration::from_millis(200),
        batch_window: Duration::from_millis(20),
        retry_initial: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(40),
        retry_for: Duration::from_millis(150),
        ..WebhookOptions::default()
    }
}

fn app(id: &str, prefix: &str, url: &str, events: &[WebhookKind]) -> AppSettings {
    let webhook = WebhookSettings { url: url.parse().unwrap(), events: events.iter().copied().collect() };
    AppSettings {
        channel_prefix: prefix.to_owned(),
        webhooks: vec![webhook],
        ..AppSettings::new(id, format!("key-{id}"), format!("secret-{id}"))
    }
}

/// Webhooks for `apps`, fed by hand through the returned sender.
fn start(
    apps: Vec<AppSettings>,
    dir: &tempfile::TempDir,
    options: WebhookOptions,
) -> (Webhooks, mpsc::Sender<HubEvent>) {
    let (tx, rx) = mpsc::channel(100);
    let apps = Arc::new(Apps::new(apps).unwrap());
    let stores = super::WebhookStores::in_data_dir(dir.path());
    (Webhooks::start_with(apps, Some(rx), stores, options, crate::webhooks::Routes::default()), tx)
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn occupied(name: &str) -> HubEvent {
    HubEvent::ChannelOccupied { channel: channel(name) }
}

fn vacated(name: &str) -> HubEvent {
    HubEvent::ChannelVacated { channel: channel(name) }
}

fn pair(name: &str, channel: &str) -> (String, String) {
    (name.to_owned(), channel.to_owned())
}

const ALL: [WebhookKind; 7] = WebhookKind::ALL;

#[tokio::test]
async fn a_batch_is_one_signed_post_whose_events_carry_unique_ids() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (_webhooks, hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, fast());
    hub.send(occupied("news")).await.unwrap();
    hub.send(HubEvent::MemberAdded { channel: channel("presence-room"), user: "alice".into() })
        .await
        .unwrap();

    let post = receiver.next().await;
    assert_eq!(post.headers["content-type"], "application/json");
    assert_eq!(post.headers["x-pusher-key"], "key-a");
    let signature = post.headers["x-pusher-signature"].to_str().unwrap();
    assert!(verify_webhook("secret-a", &post.body, signature), "signed with the app secret");
    assert!(!verify_webhook("secret-b", &post.body, signature));

    let body = post.json();
    assert!(body["time_ms"].as_u64().unwrap() > 1_600_000_000_000);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{body}");
    assert_eq!(events[0]["name"], "channel_occupied");
    assert_eq!(events[0]["channel"], "news");
    assert_eq!(
        events[1],
        json!({
            "name": "member_added", "channel": "presence-room", "user_id": "alice", "id": events[1]["id"]
        })
    );
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().all(|id| id.len() == 36 && id.as_bytes()[14] == b'4'), "UUID v4: {ids:?}");
}

#[tokio::test]
async fn a_channel_vacated_and_occupied_again_within_the_hold_sends_neither() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let options = fast();
    let hold = options.hold;
    let (_webhooks, hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, options);
    hub.send(occupied("news")).await.unwrap();
    assert_eq!(receiver.next().await.names(), [pair("channel_occupied", "news")]);

    // A reload: vacated and occupied again at once. Then it really goes.
    hub.send(vacated("news")).await.unwrap();
    hub.send(occupied("news")).await.unwrap();
    let left_at = Instant::now();
    hub.send(vacated("news")).await.unwrap();

    // Had the flicker been sent, its events would come first.
    let post = receiver.next().await;
    assert_eq!(post.names(), [pair("channel_vacated", "news")]);
    assert!(left_at.elapsed() >= hold, "vacated was held for {hold:?}");
}

#[tokio::test]
async fn a_member_who_leaves_and_comes_back_within_the_hold_is_not_reported() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (_webhooks, hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, fast());
    let member = |added: bool, user: &str| {
        let (channel, user) = (channel("presence-room"), user.to_owned());
        match added {
            true => HubEvent::MemberAdded { channel, user },
            false => HubEvent::MemberRemoved { channel, user },
        }
    };
    hub.send(member(false, "alice")).await.unwrap();
    hub.send(member(true, "alice")).await.unwrap();
    hub.send(member(false, "bob")).await.unwrap();

    let post = receiver.next().await;
    let body = post.json();
    assert_eq!(post.names(), [pair("member_removed", "presence-room")], "{body}");
    assert_eq!(body["events"][0]["user_id"], "bob");
}

#[tokio::test]
async fn only_the_kinds_an_endpoint_asked_for_are_sent() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (_webhooks, hub) =
        start(vec![app("a", "", &receiver.url, &[WebhookKind::MemberAdded])], &dir, fast());
    hub.send(occupied("presence-room")).await.unwrap();
    hub.send(HubEvent::SubscriptionCount { channel: channel("news"), count: 3 }).await.unwrap();
    hub.send(HubEvent::MemberAdded { channel: channel("presence-room"), user: "u".into() }).await.unwrap();
    assert_eq!(receiver.next().await.names(), [pair("member_added", "presence-room")]);
}

#[tokio::test]
async fn channels_go_to_the_app_of_their_prefix_without_it_and_others_nowhere() {
    let mut main = Receiver::start(&[]).await;
    let mut acme = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let apps = vec![app("main", "", &main.url, &ALL), app("acme", "acme:", &acme.url, &ALL)];
    let (_webhooks, hub) = start(apps, &dir, fast());
    hub.send(occupied("chat:room")).await.unwrap(); // a native channel: no app's
    hub.send(occupied("acme:news")).await.unwrap();
    hub.send(occupied("news")).await.unwrap();
    assert_eq!(acme.next().await.names(), [pair("channel_occupied", "news")]);
    let post = main.next().await;
    assert_eq!(post.names(), [pair("channel_occupied", "news")]);
    assert_eq!(post.headers["x-pusher-key"], "key-main");
}

#[tokio::test]
async fn subscription_counts_skip_presence_channels_and_keep_the_latest_per_batch() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let options = WebhookOptions { batch_window: Duration::from_millis(200), ..fast() };
    let (_webhooks, hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, options);
    let count = |name: &str, count| HubEvent::SubscriptionCount { channel: channel(name), count };
    hub.send(count("news", 1)).await.unwrap();
    hub.send(count("presence-room", 2)).await.unwrap();
    hub.send(count("news", 2)).await.unwrap();
    let body = receiver.next().await.json();
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["events"][0]["subscription_count"], 2);
    assert_eq!(body["events"][0]["channel"], "news");
}

#[tokio::test]
async fn client_events_and_cache_misses_come_from_the_gateway() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (webhooks, _hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, fast());
    webhooks.send(
        "a",
        WebhookEvent::ClientEvent {
            channel: "presence-room".into(),
            event: "client-typing".into(),
            data: "{\"on\":true}".into(),
            socket_id: "1.2".into(),
            user_id: Some("alice".into()),
        },
    );
    webhooks.send("a", WebhookEvent::CacheMiss { channel: "cache-prices".into() });
    webhooks.send("no-such-app", WebhookEvent::CacheMiss { channel: "cache-x".into() });
    let body = receiver.next().await.json();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{body}");
    assert_eq!(events[0]["name"], "client_event");
    assert_eq!(events[0]["event"], "client-typing");
    assert_eq!(events[0]["data"], "{\"on\":true}");
    assert_eq!(events[0]["socket_id"], "1.2");
    assert_eq!(events[0]["user_id"], "alice");
    assert_eq!(events[1]["name"], "cache_miss");
    assert_eq!(events[1]["channel"], "cache-prices");
}

#[tokio::test]
async fn a_failed_post_is_retried_with_the_same_body_until_accepted() {
    let mut receiver = Receiver::start(&[500, 503]).await;
    let dir = tempfile::tempdir().unwrap();
    let options = WebhookOptions { retry_for: Duration::from_secs(5), ..fast() };
    let (webhooks, hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, options);
    hub.send(occupied("news")).await.unwrap();
    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    assert_eq!(first.body, second.body, "a retry sends the same batch, ids included");
    assert_eq!(second.body, third.body);
    assert_eq!(first.headers["x-pusher-signature"], third.headers["x-pusher-signature"]);
    assert!(webhooks.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_batch_never_accepted_becomes_a_dead_letter() {
    let mut receiver = Receiver::start(&[500; 1000]).await;
    let dir = tempfile::tempdir().unwrap();
    let (webhooks, hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, fast());
    hub.send(occupied("news")).await.unwrap();
    let first = receiver.next().await;
    let letters = wait_for_dead_letters(&webhooks).await;
    let letter = &letters[0];
    assert_eq!(letter["app_id"], "a");
    assert_eq!(letter["url"], receiver.url.as_str());
    assert_eq!(letter["error"], "HTTP 500 Internal Server Error");
    assert!(letter["attempts"].as_u64().unwrap() >= 2, "{letter}");
    assert_eq!(letter["events"], first.json()["events"]);
    let on_disk = std::fs::read_to_string(dir.path().join("webhooks/dead_letters.jsonl")).unwrap();
    assert_eq!(on_disk.lines().count(), 1);
}

#[tokio::test]
async fn an_unreachable_receiver_also_ends_in_a_dead_letter() {
    // A port nothing listens on (bound, then closed).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let (webhooks, hub) = start(vec![app("a", "", &url, &ALL)], &dir, fast());
    hub.send(occupied("news")).await.unwrap();
    let letters = wait_for_dead_letters(&webhooks).await;
    assert!(letters[0]["error"].as_str().unwrap().starts_with("request failed"), "{}", letters[0]);
}

/// Waits (bounded) until the delivery task has written a dead letter.
async fn wait_for_dead_letters(webhooks: &Webhooks) -> Vec<Value> {
    tokio::time::timeout(WAIT, async {
        loop {
            let letters = webhooks.dead_letters(10).await.unwrap();
            if !letters.is_empty() {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no dead letter was written")
}

#[tokio::test]
async fn a_real_hub_reports_its_channels_and_counts_only_when_asked() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::new(
        Arc::new(MemoryStore::new()),
        Arc::new(|_: &ChannelName| ChannelOptions::default()),
        HubOptions::default(),
    );
    let events = [WebhookKind::ChannelOccupied, WebhookKind::SubscriptionCount];
    let apps = Arc::new(Apps::new(vec![app("a", "", &receiver.url, &events)]).unwrap());
    let _webhooks = Webhooks::start(apps, &hub, super::WebhookStores::in_data_dir(dir.path()), fast());

    let outbox = Arc::new(Outbox::new(OutboxLimits::default()));
    let subscriber =
        Subscriber { conn: 1, user: "".into(), info: None, protocol: Protocol::Pusher { strip: 0 }, outbox };
    let request = Subscribe { subscriber, channel: channel("news"), since: None };
    hub.subscribe(request, |_, _| Frame::from_string("{}".to_owned())).await.unwrap();

    let mut names = Vec::new();
    while names.len() < 2 {
        names.extend(receiver.next().await.names());
    }
    assert_eq!(names, [pair("channel_occupied", "news"), pair("subscription_count", "news")]);
}

#[tokio::test]
async fn beyond_the_most_held_events_a_vacated_channel_is_reported_at_once() {
    let mut receiver = Receiver::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let options = WebhookOptions { hold: Duration::from_secs(60), max_held: 0, ..fast() };
    let (_webhooks, hub) = start(vec![app("a", "", &receiver.url, &ALL)], &dir, options);
    hub.send(vacated("news")).await.unwrap();
    assert_eq!(receiver.next().await.names(), [pair("channel_vacated", "news")], "not held for 60 s");
}

fn counted(name: WebhookKind, channel: &str, count: Option<usize>) -> Arc<super::Event> {
    Arc::new(super::Event { subscription_count: count, ..super::Event::new(name, channel) })
}

#[test]
fn a_batch_keeps_the_latest_count_and_the_first_cache_miss_per_channel() {
    use crate::webhooks::BatchEvent;
    use WebhookKind::*;
    let batch = vec![
        counted(SubscriptionCount, "a", Some(1)),
        counted(CacheMiss, "c", None),
        counted(ChannelOccupied, "a", None),
        counted(SubscriptionCount, "b", Some(7)),
        counted(SubscriptionCount, "a", Some(2)),
        counted(CacheMiss, "c", None),
        counted(CacheMiss, "d", None),
    ];
    let kept: Vec<(WebhookKind, String, Option<usize>)> = super::Event::coalesce(batch)
        .iter()
        .map(|e| (e.name, e.channel.clone(), e.subscription_count))
        .collect();
    assert_eq!(
        kept,
        [
            (CacheMiss, "c".to_owned(), None),
            (ChannelOccupied, "a".to_owned(), None),
            (SubscriptionCount, "b".to_owned(), Some(7)),
            (SubscriptionCount, "a".to_owned(), Some(2)),
            (CacheMiss, "d".to_owned(), None),
        ]
    );
}
