//! The Pusher HTTP API as a Pusher server SDK uses it: requests signed with
//! `sign_api_request`, against a real server, observed by native and Pusher
//! WebSocket clients; and webhooks to a receiver on 127.0.0.1:0.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fanfare::config::{AppSettings, StoreKind, WebhookKind, WebhookSettings};
use fanfare::pusher::apps::Apps;
use fanfare::pusher::webhooks::{WebhookOptions, WebhookStores, Webhooks};
use fanfare_protocol::pusher::{ApiRequest, sign, sign_api_request, verify_webhook};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{RawConn, TestServer, WAIT, http, metric_value};

pub(crate) const APPS: &str = r#"
[[pusher.apps]]
id = "app-1"
key = "key-1"
secret = "secret-1"
max_event_bytes = 100

[[pusher.apps]]
id = "app-2"
key = "key-2"
secret = "secret-2"
channel_prefix = "two:"

[[pusher.apps]]
id = "app-off"
key = "key-off"
secret = "secret-off"
channel_prefix = "off:"
enabled = false
"#;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A Pusher server SDK for one app.
pub(crate) struct Sdk<'a> {
    pub server: &'a TestServer,
    pub app_id: &'a str,
    pub key: &'a str,
    pub secret: &'a str,
}

fn sdk<'a>(server: &'a TestServer, app_id: &'a str) -> Sdk<'a> {
    let (key, secret) = match app_id {
        "app-2" => ("key-2", "secret-2"),
        "app-off" => ("key-off", "secret-off"),
        _ => ("key-1", "secret-1"),
    };
    Sdk { server, app_id, key, secret }
}

impl Sdk<'_> {
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let body = body.to_string();
        let query = self.signed_query("POST", path, &[], body.as_bytes(), now());
        self.send("POST", path, &query, body).await
    }

    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let query = self.signed_query("GET", path, params, b"", now());
        self.send("GET", path, &query, String::new()).await
    }

    /// The query a server SDK sends: the parameters plus the auth ones.
    fn signed_query(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &[u8],
        timestamp: u64,
    ) -> Vec<(String, String)> {
        let full_path = format!("/apps/{}{path}", self.app_id);
        let mut query: Vec<(String, String)> =
            params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let request = ApiRequest { method, path: &full_path, query: &query, body };
        query.extend(sign_api_request(request, self.key, self.secret, timestamp));
        query
    }

    async fn send(&self, method: &str, path: &str, query: &[(String, String)], body: String) -> (u16, Value) {
        let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
        let url = self.server.url(&format!("/apps/{}{path}?{encoded}", self.app_id));
        let request = match method {
            "POST" => http().post(url).header("Content-Type", "application/json").body(body),
            _ => http().get(url),
        };
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    pub async fn trigger(&self, channels: &[&str], name: &str, data: &str) -> (u16, Value) {
        self.post("/events", json!({"name": name, "channels": channels, "data": data})).await
    }
}

/// A Pusher protocol client on a raw WebSocket, as pusher-js speaks it.
pub(crate) struct PusherConn {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
}

impl PusherConn {
    pub async fn open(server: &TestServer, key: &str) -> Self {
        Self::open_at(server.addr, key).await
    }

    /// Connects to `addr` (a server, or a proxy in front of one).
    pub async fn open_at(addr: std::net::SocketAddr, key: &str) -> Self {
        let url = format!("ws://{addr}/app/{key}?protocol=7&client=js&version=8.6.0");
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut conn = Self { socket, socket_id: String::new() };
        let established = conn.next_event("pusher:connection_established").await;
        let data: Value = serde_json::from_str(established["data"].as_str().unwrap()).unwrap();
        conn.socket_id = data["socket_id"].as_str().unwrap().to_owned();
        conn
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket.send(Message::text(frame.to_string())).await.unwrap();
    }

    /// The next frame, or `Err(close code)`.
    pub async fn next(&mut self) -> Result<Value, u16> {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next()).await.expect("timed out waiting");
            match message {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(frame))) => return Err(frame.map_or(1005, |f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(1006),
            }
        }
    }

    pub async fn next_event(&mut self, event: &str) -> Value {
        loop {
            let frame =
                self.next().await.unwrap_or_else(|code| panic!("closed ({code}) waiting for {event}"));
            if frame["event"] == event {
                return frame;
            }
        }
    }

    pub async fn subscribe(&mut self, channel: &str, auth: &str, channel_data: Option<&str>) {
        let mut data = json!({"channel": channel, "auth": auth});
        if let Some(channel_data) = channel_data {
            data["channel_data"] = json!(channel_data);
        }
        self.send(json!({"event": "pusher:subscribe", "data": data})).await;
        loop {
            let frame = self.next_event_of(channel).await;
            match frame["event"].as_str().unwrap() {
                "pusher_internal:subscription_succeeded" => return,
                "pusher:subscription_error" => panic!("subscription refused: {frame}"),
                _ => {}
            }
        }
    }

    /// The next frame about `channel`.
    pub async fn next_event_of(&mut self, channel: &str) -> Value {
        loop {
            let frame = self.next().await.unwrap_or_else(|code| panic!("closed ({code})"));
            if frame["channel"] == channel || frame["event"] == "pusher:error" {
                return frame;
            }
        }
    }

    /// Joins a presence channel of app-1 as `user`.
    pub async fn join_presence(&mut self, channel: &str, user: &str) {
        let channel_data = json!({"user_id": user, "user_info": {"name": user}}).to_string();
        let signature = sign("secret-1", &format!("{}:{channel}:{channel_data}", self.socket_id));
        self.subscribe(channel, &format!("key-1:{signature}"), Some(&channel_data)).await;
    }

    /// Signs in to app-1 as `user`.
    pub async fn sign_in(&mut self, user: &str) {
        let user_data = json!({"id": user}).to_string();
        let signature = sign("secret-1", &format!("{}::user::{user_data}", self.socket_id));
        let data = json!({"auth": format!("key-1:{signature}"), "user_data": user_data});
        self.send(json!({"event": "pusher:signin", "data": data})).await;
        self.next_event("pusher:signin_success").await;
    }
}

pub(crate) async fn native_subscriber(server: &TestServer, channel: &str) -> RawConn {
    let mut conn = RawConn::connected(server, None).await;
    let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    conn
}

#[tokio::test]
async fn a_signed_trigger_reaches_native_and_pusher_subscribers_with_its_event_name() {
    let server = TestServer::with_config(APPS).await;
    let mut native = native_subscriber(&server, "news").await;
    let mut pusher = PusherConn::open(&server, "key-1").await;
    pusher.subscribe("news", "", None).await;

    let (status, body) = sdk(&server, "app-1").trigger(&["news"], "greet", "{\"hi\":1}").await;
    assert_eq!((status, body), (200, json!({})));

    let publication = &native.publications("news", 1).await[0];
    assert_eq!(publication["event"], "greet");
    assert_eq!(publication["data"], "{\"hi\":1}");
    assert_eq!(publication["offset"], 1);
    let event = pusher.next_event("greet").await;
    assert_eq!(event["channel"], "news");
    assert_eq!(event["data"], "{\"hi\":1}");

    let (_, history) = server.get("/api/history?channel=news").await;
    assert_eq!(history["publications"][0]["event"], "greet", "stored in history: {history}");
}

#[tokio::test]
async fn a_forged_signature_an_old_timestamp_or_a_tampered_body_is_refused_with_401() {
    let server = TestServer::with_config(APPS).await;
    let app = sdk(&server, "app-1");
    let body = json!({"name": "e", "channels": ["news"], "data": "x"}).to_string();

    let mut forged = app.signed_query("POST", "/events", &[], body.as_bytes(), now());
    forged.last_mut().unwrap().1 = "0".repeat(64);
    let (status, error) = app.send("POST", "/events", &forged, body.clone()).await;
    assert_eq!(status, 401);
    assert!(error["error"].as_str().unwrap().contains("auth_signature"), "{error}");

    let old = app.signed_query("POST", "/events", &[], body.as_bytes(), now() - 700);
    assert_eq!(app.send("POST", "/events", &old, body.clone()).await.0, 401);

    let signed = app.signed_query("POST", "/events", &[], body.as_bytes(), now());
    let tampered = body.replace("news", "sport");
    assert_eq!(app.send("POST", "/events", &signed, tampered).await.0, 401);

    let wrong_secret = Sdk { secret: "not-the-secret", ..sdk(&server, "app-1") };
    assert_eq!(wrong_secret.trigger(&["news"], "e", "x").await.0, 401);
    let unsigned = http().post(server.url("/apps/app-1/events")).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    // The right request still works, and nothing refused was published.
    assert_eq!(app.send("POST", "/events", &signed, body).await.0, 200);
    let (_, history) = server.get("/api/history?channel=sport").await;
    assert_eq!(history["top_offset"], 0);
}

#[tokio::test]
async fn an_unknown_app_is_404_and_a_disabled_app_403() {
    let server = TestServer::with_config(APPS).await;
    let unknown = Sdk { app_id: "app-9", ..sdk(&server, "app-1") };
    assert_eq!(unknown.trigger(&["news"], "e", "x").await.0, 404);
    let (status, body) = sdk(&server, "app-off").trigger(&["news"], "e", "x").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn invalid_triggers_are_refused_and_publish_nothing() {
    let server = TestServer::with_config(APPS).await;
    let app = sdk(&server, "app-1");
    let (status, _) = app.trigger(&["news"], "e", &"x".repeat(101)).await;
    assert_eq!(status, 413, "app-1 allows 100 bytes of data");
    assert_eq!(app.trigger(&["news"], "e", &"x".repeat(100)).await.0, 200);

    let many: Vec<String> = (0..101).map(|n| format!("c{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(app.trigger(&many, "e", "x").await.0, 400);
    assert_eq!(app.trigger(&many[..100], "e", "x").await.0, 200);

    for bad in [
        json!({"name": "e", "channels": ["a:b"], "data": "x"}),
        json!({"name": "e", "channels": [], "data": "x"}),
        json!({"name": "e", "data": "x"}),
        json!({"name": "pusher:e", "channels": ["news"], "data": "x"}),
        json!({"name": "e", "channels": ["news"], "data": "x", "socket_id": "nope"}),
        json!({"name": "e", "channels": ["news"], "data": "x", "info": "color"}),
        json!({"name": "e", "channels": ["news"]}),
    ] {
        let (status, body) = app.post("/events", bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    let (_, history) = server.get("/api/history?channel=news").await;
    assert_eq!(history["top_offset"], 1, "only the valid trigger was published");
}

#[tokio::test]
async fn socket_id_excludes_that_connection_only() {
    let server = TestServer::with_config(APPS).await;
    let mut sender = PusherConn::open(&server, "key-1").await;
    let mut other = PusherConn::open(&server, "key-1").await;
    sender.subscribe("news", "", None).await;
    other.subscribe("news", "", None).await;

    let body = json!({"name": "first", "channel": "news", "data": "1", "socket_id": sender.socket_id});
    assert_eq!(sdk(&server, "app-1").post("/events", body).await.0, 200);
    assert_eq!(sdk(&server, "app-1").trigger(&["news"], "second", "2").await.0, 200);

    assert_eq!(other.next_event_of("news").await["event"], "first");
    assert_eq!(other.next_event_of("news").await["event"], "second");
    assert_eq!(sender.next_event_of("news").await["event"], "second", "the sender never got the first");
}

#[tokio::test]
async fn a_prefixed_app_publishes_into_its_own_namespace() {
    let server = TestServer::with_config(APPS).await;
    let mut native = native_subscriber(&server, "two:news").await;
    let mut pusher = PusherConn::open(&server, "key-2").await;
    pusher.subscribe("news", "", None).await;
    assert_eq!(sdk(&server, "app-2").trigger(&["news"], "e", "for two").await.0, 200);

    assert_eq!(native.publications("two:news", 1).await[0]["data"], "for two");
    let event = pusher.next_event("e").await;
    assert_eq!(event["channel"], "news", "Pusher clients see the name without the prefix");
    let (_, history) = server.get("/api/history?channel=news").await;
    assert_eq!(history["top_offset"], 0, "app-1's channel of the same name is untouched");
}

/// The issue's benchmark in miniature, on the default (embedded, fsync)
/// store: a batch of 10 events for one channel is one store group, so it
/// gets consecutive offsets in batch order and reaches a subscriber in one
/// socket write. The write counters are per thread and published every 64
/// writes; the test runs on one thread, so 80 batches publish them.
#[tokio::test]
async fn a_batch_for_one_channel_gets_consecutive_offsets_and_reaches_a_subscriber_in_one_write() {
    let server = TestServer::with_settings(APPS, |settings| {
        settings.store.kind = StoreKind::Embedded(settings.data_dir.join("store"));
    })
    .await;
    let mut pusher = PusherConn::open(&server, "key-1").await;
    pusher.subscribe("live", "", None).await;
    for round in 0..80 {
        let batch: Vec<Value> = (0..10)
            .map(|n| json!({"name": format!("e{n}"), "channel": "live", "data": format!("{round}.{n}")}))
            .collect();
        let (status, _) = sdk(&server, "app-1").post("/batch_events", json!({"batch": batch})).await;
        assert_eq!(status, 200);
        for n in 0..10 {
            let event = pusher.next_event_of("live").await;
            assert_eq!(
                (event["event"].clone(), event["data"].clone()),
                (json!(format!("e{n}")), json!(format!("{round}.{n}")))
            );
        }
    }
    let (_, history) = server.get("/api/history?channel=live&since=790").await;
    let stored: Vec<(u64, String)> = history["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["offset"].as_u64().unwrap(), p["event"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(u64, String)> = (0..10).map(|n| (791 + n, format!("e{n}"))).collect();
    assert_eq!(stored, expected, "the last batch: consecutive offsets in batch order");
    let metrics = server.metrics().await;
    let writes = metric_value(&metrics, "fanfare_ws_writes_total");
    let frames = metric_value(&metrics, "fanfare_ws_frames_written_total");
    assert!(writes >= 64.0, "writes {writes}");
    assert!(frames >= 9.0 * writes, "{frames} frames in {writes} writes: a batch should be one write");
}

#[tokio::test]
async fn a_batch_publishes_every_event_and_reports_info_per_event() {
    let server = TestServer::with_config(APPS).await;
    let _subscriber = native_subscriber(&server, "news").await;
    let batch = json!({"batch": [
        {"name": "a", "channel": "sport", "data": "1"},
        {"name": "b", "channel": "news", "data": "2", "info": "subscription_count"},
    ]});
    let (status, body) = sdk(&server, "app-1").post("/batch_events", batch).await;
    assert_eq!((status, body), (200, json!({"batch": [{}, {"subscription_count": 1}]})));
    let without_info = json!({"batch": [{"name": "c", "channel": "news", "data": "3"}]});
    assert_eq!(sdk(&server, "app-1").post("/batch_events", without_info).await, (200, json!({})));
    let (_, history) = server.get("/api/history?channel=news").await;
    assert_eq!(history["top_offset"], 2);

    let eleven: Vec<Value> =
        (0..11).map(|n| json!({"name": "e", "channel": "x", "data": n.to_string()})).collect();
    assert_eq!(sdk(&server, "app-1").post("/batch_events", json!({"batch": eleven})).await.0, 400);
    let (_, history) = server.get("/api/history?channel=x").await;
    assert_eq!(history["top_offset"], 0);
}

#[tokio::test]
async fn a_trigger_with_info_reports_the_counts_of_its_channels() {
    let server = TestServer::with_config(APPS).await;
    let _news = native_subscriber(&server, "news").await;
    let mut member = PusherConn::open(&server, "key-1").await;
    member.join_presence("presence-room", "alice").await;
    let body = json!({
        "name": "e", "channels": ["news", "presence-room"], "data": "x",
        "info": "user_count,subscription_count",
    });
    let (status, body) = sdk(&server, "app-1").post("/events", body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"channels": {
            "news": {"subscription_count": 1},
            "presence-room": {"user_count": 1, "subscription_count": 1},
        }})
    );
}

#[tokio::test]
async fn channels_are_listed_per_app_without_prefix_and_filtered_by_prefix() {
    let server = TestServer::with_config(APPS).await;
    let mut subscribers = Vec::new();
    for channel in ["news", "sport", "two:news", "chat:room"] {
        subscribers.push(native_subscriber(&server, channel).await);
    }
    subscribers.push(native_subscriber(&server, "sport").await);
    let app = sdk(&server, "app-1");
    assert_eq!(app.get("/channels", &[]).await, (200, json!({"channels": {"news": {}, "sport": {}}})));
    assert_eq!(
        app.get("/channels", &[("filter_by_prefix", "sp")]).await.1,
        json!({"channels": {"sport": {}}})
    );
    let (_, counted) = app.get("/channels", &[("info", "subscription_count")]).await;
    assert_eq!(counted["channels"]["sport"]["subscription_count"], 2);
    assert_eq!(app.get("/channels", &[("info", "user_count")]).await.0, 400, "user_count needs presence-");
    assert_eq!(sdk(&server, "app-2").get("/channels", &[]).await.1, json!({"channels": {"news": {}}}));
}

#[tokio::test]
async fn channel_info_reports_occupation_counts_and_the_cached_event() {
    let server = TestServer::with_config(APPS).await;
    let _subscriber = native_subscriber(&server, "news").await;
    let app = sdk(&server, "app-1");
    let (status, body) = app.get("/channels/news", &[("info", "subscription_count")]).await;
    assert_eq!((status, body), (200, json!({"occupied": true, "subscription_count": 1})));
    assert_eq!(app.get("/channels/empty", &[]).await.1, json!({"occupied": false}));
    assert_eq!(app.get("/channels/news", &[("info", "user_count")]).await.0, 400);
    assert_eq!(app.get("/channels/news", &[("info", "cache")]).await.0, 400);
    assert_eq!(app.get("/channels/a:b", &[]).await.0, 400);

    assert_eq!(app.get("/channels/cache-prices", &[("info", "cache")]).await.1, json!({"occupied": false}));
    assert_eq!(app.trigger(&["cache-prices"], "price", "{\"eur\":3}").await.0, 200);
    let (_, body) = app.get("/channels/cache-prices", &[("info", "cache")]).await;
    assert_eq!(body["cache"]["data"], "{\"eur\":3}", "{body}");
    let ttl = body["cache"]["ttl"].as_u64().unwrap();
    assert!((1790..=1800).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn presence_members_are_listed_and_counted() {
    let server = TestServer::with_config(APPS).await;
    let mut alice = PusherConn::open(&server, "key-1").await;
    alice.join_presence("presence-room", "alice").await;
    let mut bob = PusherConn::open(&server, "key-1").await;
    bob.join_presence("presence-room", "bob").await;
    let app = sdk(&server, "app-1");
    let (status, body) = app.get("/channels/presence-room/users", &[]).await;
    assert_eq!((status, body), (200, json!({"users": [{"id": "alice"}, {"id": "bob"}]})));
    assert_eq!(app.get("/channels/presence-room", &[("info", "user_count")]).await.1["user_count"], 2);
    let listed = app.get("/channels", &[("filter_by_prefix", "presence-"), ("info", "user_count")]).await;
    assert_eq!(listed.1, json!({"channels": {"presence-room": {"user_count": 2}}}));
    assert_eq!(app.get("/channels/news/users", &[]).await.0, 400, "only presence channels have users");
}

#[tokio::test]
async fn terminate_connections_closes_the_users_signed_in_connections() {
    let server = TestServer::with_config(APPS).await;
    let mut bob = PusherConn::open(&server, "key-1").await;
    bob.sign_in("bob").await;
    let mut carol = PusherConn::open(&server, "key-1").await;
    carol.sign_in("carol").await;
    let (status, body) = sdk(&server, "app-1").post("/users/bob/terminate_connections", json!({})).await;
    assert_eq!((status, body), (200, json!({})));
    loop {
        if let Err(code) = bob.next().await {
            assert!(code >= 4000, "closed with {code}");
            break;
        }
    }
    carol.send(json!({"event": "pusher:ping", "data": {}})).await;
    carol.next_event("pusher:pong").await;
}

#[tokio::test]
async fn events_sent_to_a_user_reach_their_connections_and_are_not_stored() {
    let server = TestServer::with_config(APPS).await;
    let mut bob = PusherConn::open(&server, "key-1").await;
    bob.sign_in("bob").await;
    bob.subscribe("#server-to-user-bob", "", None).await;
    let (status, _) = sdk(&server, "app-1").trigger(&["#server-to-user-bob"], "note", "hello bob").await;
    assert_eq!(status, 200);
    let event = bob.next_event("note").await;
    assert_eq!(event["data"], "hello bob");
    let (_, history) = server.get("/api/history?channel=%23server-to-user-bob").await;
    assert_eq!(history["top_offset"], 0, "{history}");
}

/// A webhook receiver on 127.0.0.1:0 answering with the planned statuses
/// (then 200), reporting each POST.
pub(crate) async fn receiver(statuses: &[u16]) -> (String, mpsc::Receiver<(HeaderMap, Bytes)>) {
    type Shared = (Arc<parking_lot::Mutex<VecDeque<u16>>>, mpsc::Sender<(HeaderMap, Bytes)>);
    async fn receive(State((plan, posts)): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let status = plan.lock().pop_front().unwrap_or(200);
        let _ = posts.send((headers, body)).await;
        StatusCode::from_u16(status).unwrap()
    }
    let (tx, rx) = mpsc::channel(100);
    let plan = Arc::new(parking_lot::Mutex::new(statuses.iter().copied().collect()));
    let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state((plan, tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// Webhooks for app-1 on the server's hub (the server itself has none
/// configured, so the hub's events are free) with short timings, keeping
/// dead letters in the data directory.
fn webhooks_on(server: &TestServer, url: &str) -> Webhooks {
    webhooks_keeping(server, url, WebhookStores::in_data_dir(&server.app.settings.data_dir))
}

/// [`webhooks_on`], keeping dead letters and the journal in `stores`.
pub(crate) fn webhooks_keeping(server: &TestServer, url: &str, stores: WebhookStores) -> Webhooks {
    webhooks_with(server, url, stores, |_| {})
}

/// [`webhooks_keeping`], with `adjust` on the short timings.
pub(crate) fn webhooks_with(
    server: &TestServer,
    url: &str,
    stores: WebhookStores,
    adjust: impl FnOnce(&mut WebhookOptions),
) -> Webhooks {
    let webhook =
        WebhookSettings { url: url.parse().unwrap(), events: WebhookKind::ALL.into_iter().collect() };
    let app = AppSettings { webhooks: vec![webhook], ..AppSettings::new("app-1", "key-1", "secret-1") };
    let apps = Arc::new(Apps::new(vec![app]).unwrap());
    let mut options = WebhookOptions {
        hold: Duration::from_millis(200),
        batch_window: Duration::from_millis(20),
        retry_initial: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(40),
        retry_for: Duration::from_millis(150),
        ..WebhookOptions::default()
    };
    adjust(&mut options);
    Webhooks::start(apps, &server.app.hub, stores, options)
}

#[tokio::test]
async fn subscribing_sends_a_signed_channel_occupied_webhook() {
    let server = TestServer::with_config(APPS).await;
    let (url, mut posts) = receiver(&[]).await;
    let _webhooks = webhooks_on(&server, &url);
    let mut pusher = PusherConn::open(&server, "key-1").await;
    pusher.subscribe("news", "", None).await;

    let (headers, body) = tokio::time::timeout(WAIT, posts.recv()).await.unwrap().unwrap();
    assert_eq!(headers["x-pusher-key"], "key-1");
    assert!(verify_webhook("secret-1", &body, headers["x-pusher-signature"].to_str().unwrap()));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["events"][0]["name"], "channel_occupied");
    assert_eq!(body["events"][0]["channel"], "news");
    assert!(body["events"][0]["id"].is_string());
}

#[tokio::test]
async fn undeliverable_webhooks_are_listed_as_dead_letters() {
    let server = TestServer::with_config(APPS).await;
    let (url, _posts) = receiver(&[500; 1000]).await;
    let webhooks = webhooks_on(&server, &url);
    let _subscriber = native_subscriber(&server, "news").await;

    tokio::time::timeout(WAIT, async {
        while webhooks.dead_letters(1).await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no dead letter was written");

    let (status, body) = server.get("/api/webhooks/dead_letters?limit=10").await;
    assert_eq!(status, 200, "{body}");
    let letter = &body["dead_letters"][0];
    assert_eq!(letter["url"], url.as_str());
    assert_eq!(letter["app_id"], "app-1");
    assert_eq!(letter["events"][0]["name"], "channel_occupied");
    assert_eq!(letter["error"], "HTTP 500 Internal Server Error");

    let anonymous = http().get(server.url("/api/webhooks/dead_letters")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "the native API key is required");
    assert_eq!(server.get("/api/webhooks/dead_letters?limit=0").await.0, 400);
}
