//! Publishing over HTTP: idempotency, ephemeral publications, broadcast,
//! history reads, channel listings.

use serde_json::json;

use crate::support::{RawConn, TestServer};

#[tokio::test]
async fn an_idempotent_publish_is_applied_once() {
    let server = TestServer::start().await;
    let body = json!({"channel": "orders", "data": {"id": 7}, "idempotency_key": "order-7"});
    let (_, first) = server.post("/api/publish", body.clone()).await;
    let (_, second) = server.post("/api/publish", body).await;
    assert_eq!(first["offset"], 1);
    assert_eq!(second, first, "the retry gets the first publication's position");
    let (_, history) = server.get("/api/history?channel=orders").await;
    assert_eq!(history["publications"].as_array().unwrap().len(), 1);
    let (_, other) = server
        .post("/api/publish", json!({"channel": "orders", "data": 8, "idempotency_key": "order-8"}))
        .await;
    assert_eq!(other["offset"], 2);
}

#[tokio::test]
async fn an_ephemeral_publication_reaches_subscribers_but_not_history() {
    let server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    conn.command(json!({"type": "subscribe", "channel": "typing"})).await;
    let (status, body) =
        server.post("/api/publish", json!({"channel": "typing", "data": "…", "ephemeral": true})).await;
    assert_eq!((status, body), (200, json!({})), "no epoch, no offset");
    let push = conn.publications("typing", 1).await;
    assert_eq!(push[0]["data"], "…");
    assert!(push[0].get("offset").is_none());
    let (_, history) = server.get("/api/history?channel=typing").await;
    assert_eq!(history["top_offset"], 0);
    assert_eq!(history["publications"], json!([]));
}

#[tokio::test]
async fn broadcast_publishes_to_each_channel_with_a_result_per_channel() {
    let server = TestServer::start().await;
    server.publish("b", json!("earlier")).await;
    let (status, body) =
        server.post("/api/broadcast", json!({"channels": ["a", "b"], "data": {"x": 1}})).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["channel"], "a");
    assert_eq!(results[0]["offset"], 1);
    assert_eq!(results[1]["channel"], "b");
    assert_eq!(results[1]["offset"], 2);
    let (status, _) = server.post("/api/broadcast", json!({"channels": [], "data": 1})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn history_reads_forward_from_since_and_backward_with_reverse() {
    let server = TestServer::start().await;
    for n in 1..=5 {
        server.publish("h", json!(n)).await;
    }
    let (_, page) = server.get("/api/history?channel=h&since=2&limit=2").await;
    let offsets: Vec<u64> =
        page["publications"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [3, 4]);
    assert_eq!(page["top_offset"], 5);
    let (_, page) = server.get("/api/history?channel=h&limit=2&reverse=true").await;
    let offsets: Vec<u64> =
        page["publications"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [5, 4]);
    assert_eq!(page["publications"][0]["data"], 5);
    assert!(page["publications"][0]["time"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn channels_are_listed_with_their_subscriber_counts() {
    let server = TestServer::start().await;
    let mut a = RawConn::connected(&server, None).await;
    let mut b = RawConn::connected(&server, None).await;
    a.command(json!({"type": "subscribe", "channel": "chat:one"})).await;
    b.command(json!({"type": "subscribe", "channel": "chat:one"})).await;
    b.command(json!({"type": "subscribe", "channel": "other"})).await;
    let (_, list) = server.get("/api/channels?prefix=chat:").await;
    assert_eq!(list, json!({"channels": [{"channel": "chat:one", "subscribers": 2}]}));
}

#[tokio::test]
async fn disconnecting_a_user_closes_their_connections_with_4003() {
    let server = TestServer::start().await;
    let token = crate::support::token("mallory", json!({}));
    let mut conn = RawConn::connected(&server, Some(&token)).await;
    let (status, body) = server.post("/api/disconnect", json!({"user": "mallory"})).await;
    assert_eq!((status, body), (200, json!({"disconnected": 1})));
    let (code, push) = conn.until_closed().await;
    assert_eq!(code, 4003);
    assert_eq!(push.unwrap()["reconnect"], false);
}
