//! Publish rate limits and slow mode against a real server: each limit
//! just under and just over (the documented code, `retry_after_ms`),
//! buckets refilling, slow mode changed live through the HTTP API, the
//! limits of a cluster held across its nodes, and Pusher client events
//! under the same limits. A refused publication reaches nobody.

use std::time::Duration;

use fanfare_testkit::RedisServer;
use serde_json::{Value, json};

use crate::pusher_api::PusherConn;
use crate::support::{RawConn, TestServer, metric_value, token};

const NAMESPACES: &str = r#"
[namespaces.conn]
publish = "anyone"
publish_rate_per_connection = "2/10s"

[namespaces.user]
publish = "anyone"
publish_rate_per_user = "2/10s"

[namespaces.room]
publish = "anyone"
publish_rate_per_channel = "2/10s"

[namespaces.slow]
publish = "anyone"
slow_mode = "10s"

[namespaces.quick]
publish = "anyone"
publish_rate_per_user = "2/2s"

[namespaces.show]
publish = "anyone"
"#;

async fn connected_as(server: &TestServer, user: &str) -> RawConn {
    RawConn::connected(server, Some(&token(user, json!({})))).await
}

async fn publish(conn: &mut RawConn, channel: &str, n: u64) -> Value {
    conn.command(json!({"type": "publish", "channel": channel, "data": {"n": n}})).await
}

/// The error of a refused publish: its code and `retry_after_ms`.
fn refusal(reply: &Value) -> (String, u64) {
    let error = &reply["error"];
    assert_eq!(error["retry"], true, "{reply}");
    let wait = error["retry_after_ms"].as_u64().unwrap_or_else(|| panic!("{reply}"));
    (error["code"].as_str().unwrap().to_owned(), wait)
}

fn published(reply: &Value) -> bool {
    reply["result"]["offset"].is_u64()
}

#[tokio::test]
async fn each_limit_admits_up_to_its_rate_then_refuses_with_its_code_and_wait() {
    let server = TestServer::with_config(NAMESPACES).await;
    let mut ann = connected_as(&server, "ann").await;
    let mut ann_again = connected_as(&server, "ann").await;
    let mut bob = connected_as(&server, "bob").await;

    // Per connection: ann's other connection has buckets of its own.
    assert!(published(&publish(&mut ann, "conn:a", 1).await));
    assert!(published(&publish(&mut ann, "conn:b", 2).await), "one bucket over the namespace");
    let (code, wait) = refusal(&publish(&mut ann, "conn:a", 3).await);
    assert_eq!(code, "rate_limited");
    assert!((2500..=5000).contains(&wait), "one token per 5 s: {wait}");
    assert!(published(&publish(&mut ann_again, "conn:a", 4).await));

    // Per user: every connection of ann shares it; bob has his own.
    assert!(published(&publish(&mut ann, "user:a", 1).await));
    assert!(published(&publish(&mut ann_again, "user:b", 2).await));
    assert_eq!(refusal(&publish(&mut ann, "user:a", 3).await).0, "rate_limited");
    assert_eq!(refusal(&publish(&mut ann_again, "user:c", 3).await).0, "rate_limited");
    assert!(published(&publish(&mut bob, "user:a", 4).await));

    // Per channel: whoever publishes; another channel has its own.
    assert!(published(&publish(&mut ann, "room:a", 1).await));
    assert!(published(&publish(&mut bob, "room:a", 2).await));
    assert_eq!(refusal(&publish(&mut ann_again, "room:a", 3).await).0, "rate_limited");
    assert!(published(&publish(&mut bob, "room:b", 4).await));

    // Slow mode: one per user per 10 s in each channel.
    assert!(published(&publish(&mut ann, "slow:a", 1).await));
    let (code, wait) = refusal(&publish(&mut ann_again, "slow:a", 2).await);
    assert_eq!(code, "slow_mode");
    assert!((5000..=10_000).contains(&wait), "{wait}");
    assert!(published(&publish(&mut bob, "slow:a", 3).await));
    assert!(published(&publish(&mut ann, "slow:b", 4).await));

    let metrics = server.metrics().await;
    for (limit, refused) in [
        ("publish_per_connection", 1.0),
        ("publish_per_user", 2.0),
        ("publish_per_channel", 1.0),
        ("slow_mode", 1.0),
    ] {
        let name = format!("fanfare_rate_limited_total{{limit=\"{limit}\"}}");
        assert_eq!(metric_value(&metrics, &name), refused, "{name}");
    }
}

#[tokio::test]
async fn a_refused_publication_reaches_nobody_and_takes_no_offset() {
    let server = TestServer::with_config(NAMESPACES).await;
    let mut viewer = RawConn::connected(&server, None).await;
    let subscribed = viewer.command(json!({"type": "subscribe", "channel": "room:stage"})).await;
    assert!(subscribed.get("result").is_some(), "{subscribed}");
    let mut ann = connected_as(&server, "ann").await;
    let replies = [
        publish(&mut ann, "room:stage", 1).await,
        publish(&mut ann, "room:stage", 2).await,
        publish(&mut ann, "room:stage", 3).await,
    ];
    assert!(published(&replies[0]) && published(&replies[1]));
    assert_eq!(refusal(&replies[2]).0, "rate_limited");
    let (status, _) = server.publish("room:stage", json!({"n": "from the server"})).await;
    assert_eq!(status, 200, "the HTTP API is not limited");
    let seen = viewer.publications("room:stage", 3).await;
    let data: Vec<&Value> = seen.iter().map(|p| &p["data"]["n"]).collect();
    assert_eq!(data, [&json!(1), &json!(2), &json!("from the server")]);
    let offsets: Vec<u64> = seen.iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [1, 2, 3], "no offset went to the refused one");
}

#[tokio::test]
async fn a_bucket_refills_at_its_rate() {
    let server = TestServer::with_config(NAMESPACES).await;
    let mut ann = connected_as(&server, "ann").await;
    assert!(published(&publish(&mut ann, "quick:a", 1).await));
    assert!(published(&publish(&mut ann, "quick:a", 2).await));
    let (_, wait) = refusal(&publish(&mut ann, "quick:a", 3).await);
    assert!(wait <= 1000, "a token per second: {wait}");
    // What is under test is time passing: wait what the server said.
    tokio::time::sleep(Duration::from_millis(wait + 10)).await;
    assert!(published(&publish(&mut ann, "quick:a", 4).await), "refilled");
    assert_eq!(refusal(&publish(&mut ann, "quick:a", 5).await).0, "rate_limited", "by one token only");
}

#[tokio::test]
async fn slow_mode_set_live_through_the_api_takes_effect_at_once() {
    let server = TestServer::with_config(NAMESPACES).await;
    let mut ann = connected_as(&server, "ann").await;
    for n in 0..3 {
        assert!(published(&publish(&mut ann, "show:main", n).await), "no slow mode yet");
    }
    let (status, answer) = server.get("/api/moderation/slow_mode?channel=show:main").await;
    assert_eq!(
        (status, answer),
        (200, json!({"channel": "show:main", "interval_ms": 0, "set_by": "namespace"}))
    );

    let set = json!({"channel": "show:main", "interval_ms": 60_000});
    let (status, answer) = server.post("/api/moderation/slow_mode", set).await;
    assert_eq!(
        (status, answer),
        (200, json!({"channel": "show:main", "interval_ms": 60_000, "set_by": "channel"}))
    );
    assert!(published(&publish(&mut ann, "show:main", 10).await), "the first in the new interval");
    let (code, wait) = refusal(&publish(&mut ann, "show:main", 11).await);
    assert_eq!(code, "slow_mode");
    assert!(wait > 55_000, "{wait}");
    assert!(published(&publish(&mut ann, "show:other", 12).await), "only that channel");

    let (status, _) =
        server.post("/api/moderation/slow_mode", json!({"channel": "show:main", "interval_ms": null})).await;
    assert_eq!(status, 200);
    assert!(published(&publish(&mut ann, "show:main", 13).await), "back to the namespace's: off");

    let (status, _) =
        server.post("/api/moderation/slow_mode", json!({"channel": "slow:x", "interval_ms": 0})).await;
    assert_eq!(status, 200);
    for n in 0..3 {
        assert!(
            published(&publish(&mut ann, "slow:x", n).await),
            "0 turns the namespace's slow mode off here"
        );
    }
}

#[tokio::test]
async fn slow_mode_requests_that_are_wrong_are_refused_with_a_clear_error() {
    let server = TestServer::with_config(NAMESPACES).await;
    let cases = [
        (json!({"channel": "show:a", "interval_ms": 86_400_001u64}), 400, "bad_request"),
        (json!({"channel": "show:a"}), 400, "bad_request"),
        (json!({"channel": "bad channel", "interval_ms": 1}), 400, "bad_request"),
        (json!({"channel": "show:a", "interval_ms": "10s"}), 400, "bad_request"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = server.post("/api/moderation/slow_mode", body.clone()).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    let unauthorized = crate::support::http()
        .get(server.url("/api/moderation/slow_mode?channel=show:a"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test]
async fn in_a_cluster_a_users_bucket_and_slow_mode_hold_across_nodes() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let a = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let b = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let (mut on_a, mut on_b) = (connected_as(&a, "ann").await, connected_as(&b, "ann").await);
    assert!(published(&publish(&mut on_a, "user:x", 1).await));
    assert!(published(&publish(&mut on_a, "user:x", 2).await));
    assert_eq!(refusal(&publish(&mut on_b, "user:x", 3).await).0, "rate_limited", "the other node knows");

    let (status, _) =
        a.post("/api/moderation/slow_mode", json!({"channel": "show:live", "interval_ms": 30_000})).await;
    assert_eq!(status, 200);
    let (_, seen) = b.get("/api/moderation/slow_mode?channel=show:live").await;
    assert_eq!(seen["interval_ms"], 30_000);
    assert!(published(&publish(&mut on_b, "show:live", 1).await));
    assert_eq!(refusal(&publish(&mut on_a, "show:live", 2).await).0, "slow_mode", "one slot for the cluster");
}

#[tokio::test]
async fn pusher_client_events_are_under_the_namespace_limits() {
    let apps =
        "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\nclient_events = true\n";
    let server = TestServer::with_config(&format!("{apps}\n[namespaces.\"\"]\nslow_mode = \"10s\"\n")).await;
    let mut ann = PusherConn::open(&server, "key-1").await;
    ann.join_presence("presence-stage", "ann").await;
    let mut bob = PusherConn::open(&server, "key-1").await;
    bob.join_presence("presence-stage", "bob").await;

    let event = |n: u64| json!({"event": "client-comment", "channel": "presence-stage", "data": {"n": n}});
    ann.send(event(1)).await;
    ann.send(event(2)).await;
    let error = ann.next_event("pusher:error").await;
    assert_eq!(error["data"]["code"], 4301, "{error}");
    assert!(error["data"]["message"].as_str().unwrap().starts_with("slow mode"), "{error}");
    let wait = error["data"]["retry_after_ms"].as_u64().unwrap();
    assert!((5000..=10_000).contains(&wait), "{wait}");
    assert_eq!(data_of(&bob.next_event("client-comment").await)["n"], 1);
    bob.send(event(3)).await;
    let relayed = data_of(&ann.next_event("client-comment").await);
    assert_eq!(relayed["n"], 3, "bob has a slot of his own; ann's second never went out");
}

/// A Pusher event's data, decoded when it came as a JSON string.
fn data_of(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
        other => other.clone(),
    }
}

#[tokio::test]
async fn in_a_cluster_a_pusher_apps_api_limits_are_the_apps_across_nodes() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let app = "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\nmax_backend_events_per_second = 3\n";
    let (a, b) =
        (TestServer::in_cluster(&redis.url(), app).await, TestServer::in_cluster(&redis.url(), app).await);
    let sdk = |server| crate::pusher_api::Sdk { server, app_id: "app-1", key: "key-1", secret: "secret-1" };
    assert_eq!(sdk(&a).trigger(&["x", "y"], "e", "1").await.0, 200);
    assert_eq!(sdk(&b).trigger(&["x"], "e", "2").await.0, 200, "the third of the second");
    let (status, body) = sdk(&b).trigger(&["x"], "e", "3").await;
    assert_eq!(status, 429, "{body}");
    let (status, _) = sdk(&a).trigger(&["x"], "e", "4").await;
    assert_eq!(status, 429, "the app's second is spent on every node");
}
