//! Content rules per namespace against a real server: a publisher, a
//! bystander subscribed to the same channel, and for the pre-publish hook a
//! real HTTP server on 127.0.0.1:0 that answers by the text it is shown.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fanfare_protocol::pusher::{sign, verify_webhook};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::pusher_api::PusherConn;
use crate::support::{RawConn, TestServer, WAIT};

const HOOK_SECRET: &str = "hook-secret-for-the-tests";

/// The user's moderation service: answers by the start of `data.text` (or
/// of `data` itself when it is a string): `reject…`, `rewrite…`, `wait…`
/// (until the test releases it), `fail…` (HTTP 500), anything else allow.
struct HookService {
    url: String,
    /// Every request body, with whether its signature was valid.
    requests: mpsc::UnboundedReceiver<(Value, bool)>,
    release: Arc<Semaphore>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct HookState {
    requests: mpsc::UnboundedSender<(Value, bool)>,
    release: Arc<Semaphore>,
}

impl HookService {
    async fn start() -> Self {
        let (tx, requests) = mpsc::unbounded_channel();
        let release = Arc::new(Semaphore::new(0));
        let state = HookState { requests: tx, release: release.clone() };
        let app = axum::Router::new().route("/moderate", axum::routing::post(answer)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/moderate", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, requests, release, task }
    }

    async fn next_request(&mut self) -> (Value, bool) {
        tokio::time::timeout(WAIT, self.requests.recv()).await.expect("no hook request").unwrap()
    }
}

impl Drop for HookService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(state): State<HookState>, headers: HeaderMap, body: String) -> (StatusCode, String) {
    let signature = headers.get("x-fanfare-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let signed = verify_webhook(HOOK_SECRET, body.as_bytes(), signature);
    let request: Value = serde_json::from_str(&body).unwrap();
    let _ = state.requests.send((request.clone(), signed));
    let text = request["data"]["text"].as_str().or(request["data"].as_str()).unwrap_or_default().to_owned();
    let reply = |value: Value| (StatusCode::OK, value.to_string());
    if text.starts_with("reject") {
        reply(json!({"action": "reject", "reason": "not today"}))
    } else if text.starts_with("rewrite") {
        reply(json!({"action": "rewrite", "data": {"text": "rewritten by the hook"}}))
    } else if text.starts_with("wait") {
        state.release.acquire().await.unwrap().forget();
        reply(json!({"action": "allow"}))
    } else if text.starts_with("fail") {
        (StatusCode::INTERNAL_SERVER_ERROR, "down".into())
    } else {
        reply(json!({"action": "allow", "note": "fields the server does not know are ignored"}))
    }
}

/// Namespace `chat` (anyone publishes) with `content` (TOML lines) added.
async fn server_with(content: &str) -> TestServer {
    TestServer::with_config(&format!(
        "[namespaces.chat]\npublish = \"anyone\"\n[namespaces.chat.content]\n{content}\n"
    ))
    .await
}

async fn subscribed(server: &TestServer, channel: &str) -> RawConn {
    let mut conn = RawConn::connected(server, None).await;
    let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    conn
}

async fn publish(conn: &mut RawConn, channel: &str, data: Value) -> Value {
    conn.command(json!({"type": "publish", "channel": channel, "data": data})).await
}

/// The data of the next `n` publications `conn` receives on `channel`.
async fn received(conn: &mut RawConn, channel: &str, n: usize) -> Vec<Value> {
    conn.publications(channel, n).await.into_iter().map(|p| p["data"].clone()).collect()
}

fn rejected(reply: &Value) -> &str {
    assert_eq!(reply["error"]["code"], "content_rejected", "{reply}");
    assert_eq!(reply["error"]["retry"], false, "{reply}");
    reply["error"]["message"].as_str().unwrap()
}

async fn counter(server: &TestServer, series: &str) -> f64 {
    let metrics = server.metrics().await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_blocked_word_is_rejected_with_content_rejected_and_the_bystander_sees_nothing_of_it() {
    let server =
        server_with("blocklist = [\"darn\", \"big deal\"]\nblocklist_patterns = ['(?i)fr[e3]{2}\\s+money']")
            .await;
    let mut bystander = subscribed(&server, "chat:room").await;
    let mut publisher = RawConn::connected(&server, None).await;

    let reply = publish(&mut publisher, "chat:room", json!({"text": "oh DARN it"})).await;
    assert_eq!(rejected(&reply), "the message contains blocked text: \"DARN\"");
    let reply = publish(&mut publisher, "chat:room", json!({"nested": ["fine", "get FR33 money"]})).await;
    assert_eq!(rejected(&reply), "the message contains blocked text: \"FR33 money\"");
    let reply = publish(&mut publisher, "chat:room", json!({"text": "darned good, undarnable"})).await;
    assert!(reply.get("result").is_some(), "whole words only: {reply}");

    assert_eq!(received(&mut bystander, "chat:room", 1).await, [json!({"text": "darned good, undarnable"})]);
    assert_eq!(counter(&server, "fanfare_content_rejected_total{rule=\"blocklist\"}").await, 2.0);
    let (_, history) = server.get("/api/history?channel=chat:room").await;
    assert_eq!(history["publications"].as_array().unwrap().len(), 1, "{history}");
}

#[tokio::test]
async fn masked_words_reach_subscribers_and_history_as_stars_and_the_backend_is_trusted() {
    let server = server_with("blocklist = [\"darn\", \"ärger\"]\nblocklist_action = \"mask\"").await;
    let mut bystander = subscribed(&server, "chat:room").await;
    let mut publisher = RawConn::connected(&server, None).await;

    let data = json!({"text": "Darn this ÄRGER", "darn": 12345678901234567890_u64, "by": "darn"});
    let reply = publish(&mut publisher, "chat:room", data).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let masked = json!({"text": "**** this *****", "darn": 12345678901234567890_u64, "by": "****"});
    assert_eq!(received(&mut bystander, "chat:room", 1).await, std::slice::from_ref(&masked));
    let (_, history) = server.get("/api/history?channel=chat:room").await;
    assert_eq!(history["publications"][0]["data"], masked);

    let (status, body) = server.publish("chat:room", json!({"text": "darn, says the backend"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(received(&mut bystander, "chat:room", 1).await, [json!({"text": "darn, says the backend"})]);
    assert_eq!(counter(&server, "fanfare_content_masked_total").await, 1.0);
}

#[tokio::test]
async fn links_are_stripped_in_one_namespace_and_rejected_in_another() {
    let server = TestServer::with_config(
        "[channel_defaults]\npublish = \"anyone\"\n\
         [namespaces.chat.content]\nlinks = \"strip\"\n\
         [namespaces.support.content]\nlinks = \"reject\"\n",
    )
    .await;
    let mut bystander = subscribed(&server, "chat:room").await;
    let mut publisher = RawConn::connected(&server, None).await;

    let reply =
        publish(&mut publisher, "chat:room", json!("see https://spam.example.com/win and example.net!"))
            .await;
    assert!(reply.get("result").is_some(), "{reply}");
    assert_eq!(received(&mut bystander, "chat:room", 1).await, [json!("see  and !")]);

    let reply =
        publish(&mut publisher, "support:ticket", json!({"text": "mail me at alice@example.com"})).await;
    assert!(reply.get("result").is_some(), "an e-mail address is not a link: {reply}");
    let reply = publish(&mut publisher, "support:ticket", json!({"text": "go to www.example.org/x"})).await;
    assert_eq!(rejected(&reply), "links are not allowed in this channel: \"www.example.org/x\"");
    let reply = publish(&mut publisher, "news:today", json!("https://example.com")).await;
    assert!(reply.get("result").is_some(), "no rules outside those namespaces: {reply}");
}

/// `chat` with the hook of `hook`, `failure` and `timeout`.
async fn server_with_hook(hook: &HookService, failure: &str, timeout: &str) -> TestServer {
    server_with(&format!(
        "blocklist = [\"darn\"]\nblocklist_action = \"mask\"\n[namespaces.chat.content.hook]\n\
         url = \"{}\"\nfailure = \"{failure}\"\ntimeout = \"{timeout}\"\nsecret = \"{HOOK_SECRET}\"\n",
        hook.url
    ))
    .await
}

#[tokio::test]
async fn the_hook_is_asked_with_a_signed_request_and_allows_rejects_and_rewrites() {
    let mut hook = HookService::start().await;
    let server = server_with_hook(&hook, "closed", "5s").await;
    let mut bystander = subscribed(&server, "chat:room").await;
    let token = crate::support::token("alice", json!({}));
    let mut alice = RawConn::connected(&server, Some(&token)).await;

    let reply = alice
        .command(json!({"type": "publish", "channel": "chat:room", "event": "said", "data": {"text": "hello darn"}}))
        .await;
    assert!(reply.get("result").is_some(), "{reply}");
    let (request, signed) = hook.next_request().await;
    assert!(signed, "X-Fanfare-Signature is the HMAC of the body: {request}");
    assert_eq!(request["namespace"], "chat");
    assert_eq!(request["channel"], "chat:room");
    assert_eq!(request["event"], "said");
    assert_eq!(
        request["data"],
        json!({"text": "hello ****"}),
        "the hook sees the data after the local rules"
    );
    assert_eq!((&request["user"], &request["protocol"]), (&json!("alice"), &json!("native")));
    assert!(request["connection"].as_str().is_some_and(|c| !c.is_empty()), "{request}");
    assert!(request["time_ms"].as_u64().unwrap() > 0);

    let reply = publish(&mut alice, "chat:room", json!({"text": "reject me"})).await;
    assert_eq!(rejected(&reply), "the moderation hook rejected the message: not today");
    let reply = publish(&mut alice, "chat:room", json!({"text": "rewrite me"})).await;
    assert!(reply.get("result").is_some(), "{reply}");

    let seen = received(&mut bystander, "chat:room", 2).await;
    assert_eq!(seen, [json!({"text": "hello ****"}), json!({"text": "rewritten by the hook"})]);
    assert_eq!(counter(&server, "fanfare_content_rejected_total{rule=\"hook\"}").await, 1.0);
    assert!(server.metrics().await.contains("fanfare_content_hook_seconds_bucket{outcome=\"rewrite\""));
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_rejects_when_failing_closed() {
    let hook = HookService::start().await;
    let server = server_with_hook(&hook, "closed", "200ms").await;
    let mut bystander = subscribed(&server, "chat:room").await;
    let mut publisher = RawConn::connected(&server, None).await;

    let reply = publish(&mut publisher, "chat:room", json!({"text": "wait forever"})).await;
    assert_eq!(
        rejected(&reply),
        "the moderation hook could not check the message (no answer within 200ms); it was not published"
    );
    let reply = publish(&mut publisher, "chat:room", json!({"text": "fail please"})).await;
    assert!(rejected(&reply).contains("answered HTTP 500"), "{reply}");
    let reply = publish(&mut publisher, "chat:room", json!({"text": "fine"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    assert_eq!(received(&mut bystander, "chat:room", 1).await, [json!({"text": "fine"})]);
    assert_eq!(counter(&server, "fanfare_content_rejected_total{rule=\"hook_failure\"}").await, 2.0);
    assert_eq!(counter(&server, "fanfare_content_hook_failures_total{cause=\"timeout\"}").await, 1.0);
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_publishes_when_failing_open() {
    let hook = HookService::start().await;
    let server = server_with_hook(&hook, "open", "200ms").await;
    let mut bystander = subscribed(&server, "chat:room").await;
    let mut publisher = RawConn::connected(&server, None).await;

    let reply = publish(&mut publisher, "chat:room", json!({"text": "wait, darn"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let reply = publish(&mut publisher, "chat:room", json!({"text": "fail, darn"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let seen = received(&mut bystander, "chat:room", 2).await;
    assert_eq!(seen, [json!({"text": "wait, ****"}), json!({"text": "fail, ****"})], "still masked");
    assert_eq!(counter(&server, "fanfare_content_hook_failures_total{cause=\"status\"}").await, 1.0);
}

#[tokio::test]
async fn a_slow_hook_holds_its_connections_next_publication_but_no_other_connection() {
    let mut hook = HookService::start().await;
    let server = server_with_hook(&hook, "closed", "10s").await;
    let mut bystander = subscribed(&server, "chat:room").await;
    let mut slow = RawConn::connected(&server, None).await;
    let mut other = RawConn::connected(&server, None).await;

    for (id, text) in [(101, "wait for me"), (102, "after the wait")] {
        let command = json!({"id": id, "type": "publish", "channel": "chat:room", "data": {"text": text}});
        slow.send_text(&command.to_string()).await;
    }
    assert_eq!(hook.next_request().await.0["data"]["text"], "wait for me");
    let reply = publish(&mut other, "chat:room", json!({"text": "meanwhile"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    assert_eq!(received(&mut bystander, "chat:room", 1).await, [json!({"text": "meanwhile"})]);

    hook.release.add_permits(1);
    for id in [101, 102] {
        let reply = slow.next_json().await.unwrap();
        assert_eq!(reply["id"], id, "replies in command order: {reply}");
        assert!(reply.get("result").is_some(), "{reply}");
    }
    let seen = received(&mut bystander, "chat:room", 2).await;
    assert_eq!(seen, [json!({"text": "wait for me"}), json!({"text": "after the wait"})], "in command order");
}

#[tokio::test]
async fn pusher_client_events_are_masked_or_refused_with_4303() {
    let server = TestServer::with_config(
        "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\nchannel_prefix = \"acme:\"\n\
         client_events = true\n\
         [namespaces.acme.content]\nblocklist = [\"darn\"]\nblocklist_action = \"mask\"\nlinks = \"reject\"\n",
    )
    .await;
    let mut pair = Vec::new();
    for _ in 0..2 {
        let mut conn = PusherConn::open(&server, "key-1").await;
        let auth = format!("key-1:{}", sign("secret-1", &format!("{}:private-chat", conn.socket_id)));
        conn.subscribe("private-chat", &auth, None).await;
        pair.push(conn);
    }
    let (mut bob, mut alice) = (pair.pop().unwrap(), pair.pop().unwrap());
    let event = |data: Value| json!({"event": "client-message", "channel": "private-chat", "data": data});

    alice.send(event(json!("visit https://spam.example.com"))).await;
    let error = alice.next_event("pusher:error").await;
    assert_eq!(error["data"]["code"], 4303, "{error}");
    assert_eq!(
        error["data"]["message"],
        "links are not allowed in this channel: \"https://spam.example.com\""
    );

    alice.send(event(json!({"text": "darn it"}))).await;
    alice.send(event(json!(r#"{"text":"darn, as a string"}"#))).await;
    let first = bob.next_event_of("private-chat").await;
    assert_eq!(first["event"], "client-message", "the refused event was not relayed: {first}");
    assert_eq!(decoded(&first), json!({"text": "**** it"}));
    let second = bob.next_event_of("private-chat").await;
    assert_eq!(decoded(&second), json!({"text": "****, as a string"}), "{second}");
}

/// A Pusher event's `data`, decoded from the JSON string it travels as.
fn decoded(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
        other => other.clone(),
    }
}
