//! The moderation webhook (`[[webhooks]]`) against a real receiver on
//! 127.0.0.1:0: every moderator's action, over the HTTP API and the native
//! `moderate` command, is one `moderation_action` event with its actor and
//! its request's fields; every refused publication (banned, muted,
//! slow_mode, rate_limited, content_rejected; native and Pusher) is one
//! `publication_rejected` event; bodies are signed with the endpoint's
//! secret; a failing receiver gets retries, then a dead letter that can be
//! replayed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fanfare_protocol::pusher::{sign, verify_webhook};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::pusher_api::PusherConn;
use crate::support::{RawConn, TestServer, WAIT, metric_value, token};

const SECRET: &str = "moderation-webhook-secret";

/// One POST as the receiver saw it.
struct Post {
    headers: HeaderMap,
    body: Bytes,
}

impl Post {
    fn events(&self) -> Vec<Value> {
        let body: Value = serde_json::from_slice(&self.body).unwrap();
        assert!(body["time_ms"].as_u64().is_some(), "{body}");
        body["events"].as_array().unwrap().clone()
    }
}

#[derive(Clone)]
struct ReceiverState {
    /// Statuses for the next POSTs; then `otherwise`.
    planned: Arc<Mutex<VecDeque<u16>>>,
    otherwise: Arc<Mutex<u16>>,
    posts: mpsc::Sender<Post>,
}

/// A webhook receiver that reports every POST it gets.
pub(crate) struct Receiver {
    pub(crate) url: String,
    state: ReceiverState,
    posts: mpsc::Receiver<Post>,
    /// Events received and not yet taken by `next_event`.
    pending: VecDeque<Value>,
}

impl Receiver {
    pub(crate) async fn start(planned: &[u16], otherwise: u16) -> Self {
        let (tx, posts) = mpsc::channel(1000);
        let state = ReceiverState {
            planned: Arc::new(Mutex::new(planned.iter().copied().collect())),
            otherwise: Arc::new(Mutex::new(otherwise)),
            posts: tx,
        };
        let app =
            axum::Router::new().route("/events", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state, posts, pending: VecDeque::new() }
    }

    async fn next_post(&mut self) -> Post {
        tokio::time::timeout(WAIT, self.posts.recv()).await.expect("no webhook arrived").unwrap()
    }

    /// The next event of the accepted POSTs (the receiver answered 2xx).
    async fn next_event(&mut self) -> Value {
        while self.pending.is_empty() {
            let post = self.next_post().await;
            self.pending.extend(post.events());
        }
        self.pending.pop_front().unwrap()
    }

    /// The next event named `name`, skipping others.
    pub(crate) async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let event = self.next_event().await;
            if event["name"] == name {
                return event;
            }
        }
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let planned = state.planned.lock().pop_front();
    let status = planned.unwrap_or_else(|| *state.otherwise.lock());
    let _ = state.posts.send(Post { headers, body }).await;
    StatusCode::from_u16(status).unwrap()
}

fn config(url: &str, events: &str) -> String {
    format!(
        r#"
[namespaces.live]
publish = "anyone"
slow_mode = "1m"

[namespaces.open]
publish = "anyone"

[namespaces.fast]
publish = "anyone"
publish_rate_per_connection = "1/1m"

[namespaces.clean]
publish = "anyone"
[namespaces.clean.content]
blocklist = ["casino"]

[[pusher.apps]]
id = "app-1"
key = "key-1"
secret = "secret-1"
channel_prefix = "clean:"
client_events = true

[[webhooks]]
url = "{url}"
secret = "{SECRET}"
events = {events}
timeout = "2s"
"#
    )
}

/// A server whose `[[webhooks]]` endpoint is `receiver`, with short
/// batches and retries.
async fn server_for(receiver: &Receiver, events: &str) -> TestServer {
    TestServer::with_webhooks(&config(&receiver.url, events), |options| {
        options.batch_window = Duration::from_millis(20);
        options.retry_initial = Duration::from_millis(20);
        options.retry_max_delay = Duration::from_millis(40);
        options.retry_for = Duration::from_millis(400);
    })
    .await
}

/// The event without what changes from run to run, and without the
/// action's answer.
fn request_fields(event: &Value) -> Value {
    let mut fields = event.as_object().unwrap().clone();
    for key in ["name", "id", "time_ms", "node", "actor", "outcome"] {
        fields.remove(key);
    }
    Value::Object(fields)
}

fn assert_action(event: &Value, actor: &str, request: &Value) {
    assert_eq!(event["name"], "moderation_action", "{event}");
    assert_eq!(event["actor"], actor, "{event}");
    assert_eq!(event["node"], Value::Null, "a single node: {event}");
    assert_eq!(event["id"].as_str().unwrap().len(), 36, "{event}");
    let mut request = request.clone();
    request.as_object_mut().unwrap().remove("type");
    assert_eq!(request_fields(event), request, "{event}");
}

async fn publish(conn: &mut RawConn, channel: &str, data: Value) -> Value {
    conn.command(json!({"type": "publish", "channel": channel, "data": data})).await
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("ok")
}

#[tokio::test]
async fn every_action_over_the_http_api_is_one_event_with_its_fields_and_outcome() {
    let mut receiver = Receiver::start(&[], 200).await;
    let server = server_for(&receiver, r#"["moderation"]"#).await;
    let mut bob = RawConn::connected(&server, Some(&token("bob", json!({})))).await;
    let reply = publish(&mut bob, "open:wall", json!({"text": "first"})).await;
    let first = reply["result"]["offset"].as_u64().unwrap();
    publish(&mut bob, "open:wall", json!({"text": "second"})).await;

    let actions = [
        json!({"action": "ban", "user": "bob", "channel": "live:stage", "duration_ms": 60000, "reason": "spam"}),
        json!({"action": "unban", "user": "bob", "channel": "live:stage"}),
        json!({"action": "mute", "user": "ann", "namespace": "live"}),
        json!({"action": "unmute", "user": "ann", "namespace": "live"}),
        json!({"action": "kick", "user": "carl", "channel": "live:stage"}),
        json!({"action": "slow_mode", "channel": "live:stage", "interval_ms": 5000}),
        json!({"action": "delete", "channel": "open:wall", "offset": first}),
    ];
    for action in &actions {
        let (status, answer) = server.post("/api/moderation", action.clone()).await;
        assert_eq!(status, 200, "{action}: {answer}");
        let event = receiver.next_named("moderation_action").await;
        assert_action(&event, "api", action);
        assert_eq!(event["outcome"], answer, "the outcome is the action's answer");
    }
    let (status, purged) =
        server.post("/api/moderation/purge", json!({"channel": "open:wall", "user": "bob"})).await;
    assert_eq!(status, 200, "{purged}");
    let event = receiver.next_named("moderation_action").await;
    assert_action(&event, "api", &json!({"action": "purge", "channel": "open:wall", "user": "bob"}));
    assert_eq!(event["outcome"]["deleted"], json!([first + 1]), "the first was deleted already: {event}");
    let (status, published) = server.publish("open:wall", json!("third")).await;
    assert_eq!(status, 200, "{published}");
    let third = published["offset"].as_u64().unwrap();
    let (status, _) =
        server.post("/api/moderation/delete", json!({"channel": "open:wall", "offset": third})).await;
    assert_eq!(status, 200);
    let event = receiver.next_named("moderation_action").await;
    assert_action(&event, "api", &json!({"action": "delete", "channel": "open:wall", "offset": third}));

    // What an action answered shows in its event.
    let _bob = RawConn::connected(&server, Some(&token("bob", json!({})))).await;
    let (status, _) =
        server.post("/api/moderation", json!({"action": "ban", "user": "bob", "channel": "open:wall"})).await;
    assert_eq!(status, 200);
    let ban = receiver.next_named("moderation_action").await;
    assert_eq!(ban["outcome"]["sanction"]["kind"], "ban", "{ban}");
    assert_eq!(ban["outcome"]["sanction"]["by"], "api", "{ban}");
    assert_eq!(ban["outcome"]["closed"], 1, "bob's connection: {ban}");

    // A refused action did nothing: no event.
    let (status, _) =
        server.post("/api/moderation", json!({"action": "delete", "channel": "open:wall"})).await;
    assert_eq!(status, 400);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), receiver.next_event()).await.is_err(),
        "a refused action is no event"
    );
}

#[tokio::test]
async fn every_action_of_the_native_moderate_command_names_the_moderator() {
    let mut receiver = Receiver::start(&[], 200).await;
    let server = server_for(&receiver, r#"["moderation", "rejections"]"#).await;
    let grants = json!({"moderate": ["live:*", "open:*", "live"]});
    let mut moderator = RawConn::connected(&server, Some(&token("mod-1", grants))).await;
    let reply = publish(&mut moderator, "open:wall", json!({"text": "to delete"})).await;
    let offset = reply["result"]["offset"].as_u64().unwrap();
    publish(&mut moderator, "open:wall", json!({"text": "to purge"})).await;
    let actions = [
        json!({"type": "moderate", "action": "ban", "user": "bob", "channel": "live:stage"}),
        json!({"type": "moderate", "action": "unban", "user": "bob", "channel": "live:stage"}),
        json!({"type": "moderate", "action": "mute", "user": "ann", "namespace": "live", "duration_ms": 1000}),
        json!({"type": "moderate", "action": "unmute", "user": "ann", "namespace": "live"}),
        json!({"type": "moderate", "action": "kick", "user": "carl", "channel": "live:stage"}),
        json!({"type": "moderate", "action": "slow_mode", "channel": "live:stage", "interval_ms": null}),
        json!({"type": "moderate", "action": "delete", "channel": "open:wall", "offset": offset}),
        json!({"type": "moderate", "action": "purge", "channel": "open:wall", "user": "mod-1"}),
    ];
    for action in &actions {
        let reply = moderator.command(action.clone()).await;
        assert!(reply.get("result").is_some(), "{action}: {reply}");
        let event = receiver.next_named("moderation_action").await;
        assert_action(&event, "mod-1", action);
        assert_eq!(event["outcome"], reply["result"], "{event}");
    }
    let refused = moderator
        .command(json!({"type": "moderate", "action": "kick", "user": "x", "channel": "chat:x"}))
        .await;
    assert_eq!(code(&refused), "permission_denied");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), receiver.next_named("moderation_action"))
            .await
            .is_err(),
        "an action refused for want of a grant is no event"
    );
}

#[tokio::test]
async fn every_refusal_code_of_a_publication_is_an_event_with_the_refused_data() {
    let mut receiver = Receiver::start(&[], 200).await;
    let server = server_for(&receiver, r#"["rejections"]"#).await;
    let mut bob = RawConn::connected(&server, Some(&token("bob", json!({})))).await;
    let mut ann = RawConn::connected(&server, Some(&token("ann", json!({})))).await;
    for action in [
        json!({"action": "ban", "user": "bob", "channel": "open:banned"}),
        json!({"action": "mute", "user": "bob", "channel": "open:muted"}),
    ] {
        assert_eq!(server.post("/api/moderation", action).await.0, 200);
    }
    let mut bob = match bob.until_closed().await.0 {
        4506 => RawConn::connected(&server, Some(&token("bob", json!({})))).await,
        other => panic!("the ban closes bob's connection, not {other}"),
    };
    assert_eq!(code(&publish(&mut ann, "live:slow", json!(1)).await), "ok");
    assert_eq!(code(&publish(&mut ann, "fast:x", json!(1)).await), "ok");

    let refusals = [
        ("open:banned", json!({"text": "let me in"}), "banned"),
        ("open:muted", json!({"text": "hear me"}), "muted"),
        ("live:slow", json!(2), "slow_mode"),
        ("fast:x", json!(2), "rate_limited"),
        ("clean:room", json!({"text": "cheap casino chips"}), "content_rejected"),
    ];
    for (channel, data, expected) in refusals {
        let conn = if matches!(expected, "banned" | "muted") { &mut bob } else { &mut ann };
        let reply = publish(conn, channel, data.clone()).await;
        assert_eq!(code(&reply), expected, "{reply}");
        let event = receiver.next_named("publication_rejected").await;
        let user = if matches!(expected, "banned" | "muted") { "bob" } else { "ann" };
        assert_eq!(
            (&event["channel"], &event["user"], &event["protocol"], &event["code"]),
            (&json!(channel), &json!(user), &json!("native"), &json!(expected)),
            "{event}"
        );
        assert_eq!(event["message"], reply["error"]["message"], "{event}");
        assert_eq!(event["data"], data, "the refused data: {event}");
        let rule = if expected == "content_rejected" { json!("blocklist") } else { Value::Null };
        assert_eq!(event.get("rule").cloned().unwrap_or(Value::Null), rule, "{event}");
        assert_eq!(
            event.get("retry_after_ms").cloned(),
            reply["error"].get("retry_after_ms").cloned(),
            "{event}"
        );
    }

    // Other refusals say nothing about the publisher's conduct: no event.
    let reply = publish(&mut ann, "chat:x", json!(1)).await;
    assert_eq!(code(&reply), "permission_denied", "{reply}");

    // A Pusher client event refused by the content rules.
    let mut pusher = PusherConn::open(&server, "key-1").await;
    let auth = format!("key-1:{}", sign("secret-1", &format!("{}:private-chat", pusher.socket_id)));
    pusher.subscribe("private-chat", &auth, None).await;
    let data = json!({"text": "casino night"});
    pusher.send(json!({"event": "client-message", "channel": "private-chat", "data": data})).await;
    assert_eq!(pusher.next_event("pusher:error").await["data"]["code"], 4303);
    let event = receiver.next_named("publication_rejected").await;
    assert_eq!(
        (&event["channel"], &event["user"], &event["protocol"], &event["code"], &event["event"]),
        (
            &json!("clean:private-chat"),
            &Value::Null,
            &json!("pusher"),
            &json!("content_rejected"),
            &json!("client-message")
        ),
        "{event}"
    );
    assert_eq!((&event["data"], &event["rule"]), (&data, &json!("blocklist")), "{event}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), receiver.next_event()).await.is_err(),
        "permission_denied was no event, nor were the bans (not asked for)"
    );
}

#[tokio::test]
async fn a_body_is_signed_with_the_endpoints_secret() {
    let mut receiver = Receiver::start(&[], 200).await;
    let server = server_for(&receiver, r#"["moderation"]"#).await;
    let (status, _) =
        server.post("/api/moderation", json!({"action": "kick", "user": "bob", "channel": "live:a"})).await;
    assert_eq!(status, 200);
    let post = receiver.next_post().await;
    assert_eq!(post.headers["content-type"], "application/json");
    let signature = post.headers["x-fanfare-signature"].to_str().unwrap();
    assert_eq!(signature.len(), 64);
    assert!(signature.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{signature}");
    assert!(verify_webhook(SECRET, &post.body, signature), "HMAC-SHA256 of the body with the secret");
    assert!(!verify_webhook("another-secret", &post.body, signature), "another secret does not verify");
    assert!(post.headers.get("x-pusher-signature").is_none());
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_same_body_until_it_accepts_it() {
    let mut receiver = Receiver::start(&[500, 503], 200).await;
    let server = server_for(&receiver, r#"["moderation"]"#).await;
    let (status, _) =
        server.post("/api/moderation", json!({"action": "kick", "user": "bob", "channel": "live:a"})).await;
    assert_eq!(status, 200);
    let first = receiver.next_post().await;
    let second = receiver.next_post().await;
    let third = receiver.next_post().await;
    assert_eq!(first.body, second.body, "a retry sends the same body");
    assert_eq!(second.body, third.body);
    assert_eq!(third.events()[0]["action"], "kick");
    // (The recorder is the process's: other tests count there too.)
    let metrics = server.metrics().await;
    let series = |outcome: &str| format!("fanfare_server_webhook_deliveries_total{{outcome=\"{outcome}\"}}");
    assert!(metric_value(&metrics, &series("retry")) >= 2.0, "{metrics}");
    assert!(metric_value(&metrics, &series("ok")) >= 1.0, "{metrics}");
}

#[tokio::test]
async fn a_receiver_that_always_fails_gets_a_dead_letter_that_can_be_replayed() {
    let mut receiver = Receiver::start(&[], 500).await;
    let server = server_for(&receiver, r#"["moderation"]"#).await;
    let action = json!({"action": "slow_mode", "channel": "live:a", "interval_ms": 2000});
    assert_eq!(server.post("/api/moderation", action).await.0, 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    let letter = loop {
        let (_, listed) = server.get("/api/webhooks/dead_letters").await;
        if let Some(letter) = listed["dead_letters"].as_array().and_then(|letters| letters.first()) {
            break letter.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter: {listed}");
        let _ = tokio::time::timeout(Duration::from_millis(100), receiver.posts.recv()).await;
    };
    assert_eq!(letter["url"], receiver.url.as_str(), "{letter}");
    assert!(letter.get("app_id").is_none(), "a [[webhooks]] endpoint belongs to no app: {letter}");
    assert!(letter["attempts"].as_u64().unwrap() >= 2, "{letter}");
    assert_eq!(letter["error"], "HTTP 500 Internal Server Error");
    assert_eq!(letter["events"][0]["action"], "slow_mode", "{letter}");
    let metrics = server.metrics().await;
    assert!(metric_value(&metrics, "fanfare_server_webhook_dead_letters_total") >= 1.0, "{metrics}");

    // The receiver is fixed: the letter is replayed, its event unchanged.
    *receiver.state.otherwise.lock() = 200;
    while receiver.posts.try_recv().is_ok() {}
    let id = letter["id"].as_str().unwrap();
    let (status, replayed) = server.post(&format!("/api/webhooks/dead_letters/{id}/replay"), json!({})).await;
    assert_eq!(status, 202, "{replayed}");
    let event = receiver.next_named("moderation_action").await;
    assert_eq!(event, letter["events"][0], "the same event, the same id");
}

#[tokio::test]
async fn in_a_cluster_each_node_sends_the_events_of_what_it_did_once() {
    let Some(redis) = fanfare_testkit::RedisServer::start_or_skip() else { return };
    let mut receiver = Receiver::start(&[], 200).await;
    let toml = config(&receiver.url, r#"["moderation", "rejections"]"#);
    let a = TestServer::in_cluster(&redis.url(), &toml).await;
    let b = TestServer::in_cluster(&redis.url(), &toml).await;
    let node = |server: &TestServer| json!(server.app.hub.node_id().unwrap().to_string());
    let mut bob = RawConn::connected(&b, Some(&token("bob", json!({})))).await;

    let ban = json!({"action": "ban", "user": "bob", "channel": "open:banned"});
    assert_eq!(a.post("/api/moderation", ban.clone()).await.0, 200);
    let event = receiver.next_event().await;
    assert_action(
        &{
            let mut event = event.clone();
            event["node"] = Value::Null;
            event
        },
        "api",
        &ban,
    );
    assert_eq!(event["node"], node(&a), "the node that ran it: {event}");
    assert_eq!(event["outcome"]["closed"], 1, "bob's connection on the other node: {event}");
    assert_eq!(bob.until_closed().await.0, 4506);

    let mut bob = RawConn::connected(&b, Some(&token("bob", json!({})))).await;
    assert_eq!(code(&publish(&mut bob, "open:banned", json!("hello?")).await), "banned");
    let event = receiver.next_event().await;
    assert_eq!(
        (&event["name"], &event["code"]),
        (&json!("publication_rejected"), &json!("banned")),
        "{event}"
    );
    assert_eq!(event["node"], node(&b), "the node of the connection: {event}");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), receiver.next_event()).await.is_err(),
        "no node sends another's event"
    );
}

#[tokio::test]
async fn a_delete_through_a_pusher_trigger_is_an_action_of_the_api() {
    use crate::pusher_api::Sdk;
    let mut receiver = Receiver::start(&[], 200).await;
    let server = server_for(&receiver, r#"["moderation"]"#).await;
    let (status, published) = server.publish("clean:wall", json!({"text": "oops"})).await;
    assert_eq!(status, 200, "{published}");
    let offset = published["offset"].as_u64().unwrap();
    let sdk = Sdk { server: &server, app_id: "app-1", key: "key-1", secret: "secret-1" };
    let (status, answer) =
        sdk.trigger(&["wall"], "fanfare:delete", &json!({"offset": offset}).to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let event = receiver.next_named("moderation_action").await;
    assert_action(&event, "api", &json!({"action": "delete", "channel": "clean:wall", "offset": offset}));
    assert_eq!(event["outcome"]["deleted"], json!([offset]), "{event}");
}
