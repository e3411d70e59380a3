//! Recovery: a client that comes back with its last position gets exactly
//! what it missed, in order, then live — or an explicit "not recovered".

use fanfare_client::SubscriptionEvent;
use fanfare_hub::CloseReason;
use fanfare_protocol::CloseCode;
use serde_json::json;

use crate::support::{RawConn, TestServer, WAIT, offsets};

#[tokio::test]
async fn resubscribing_with_last_position_replays_missed_messages_in_order_then_live() {
    let server = TestServer::start().await;
    let mut first = RawConn::connected(&server, None).await;
    let reply = first.command(json!({"type": "subscribe", "channel": "news"})).await;
    assert_eq!(reply["result"]["offset"], 0, "a channel that never had a message still has a position");
    let epoch = reply["result"]["epoch"].as_str().unwrap().to_string();
    for n in 1..=3 {
        server.publish("news", json!({"n": n})).await;
    }
    let seen = first.publications("news", 3).await;
    assert_eq!(offsets(&seen), [1, 2, 3]);
    drop(first);

    for n in 4..=8 {
        assert_eq!(server.publish("news", json!({"n": n})).await.0, 200);
    }
    let mut again = RawConn::connected(&server, None).await;
    let reply = again
        .command(json!({"type": "subscribe", "channel": "news", "since": {"epoch": epoch, "offset": 3}}))
        .await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    assert_eq!(reply["result"]["offset"], 8);
    server.publish("news", json!({"n": 9})).await;
    let replayed = again.publications("news", 6).await;
    assert_eq!(offsets(&replayed), [4, 5, 6, 7, 8, 9]);
    assert_eq!(replayed[0]["data"], json!({"n": 4}));
}

#[tokio::test]
async fn a_position_older_than_history_is_answered_with_recovered_false() {
    let server = TestServer::with_config("[namespaces.short]\nhistory_size = 3\n").await;
    for n in 1..=10 {
        server.publish("short:x", json!(n)).await;
    }
    let (_, page) = server.get("/api/history?channel=short:x").await;
    let epoch = page["epoch"].as_str().unwrap().to_string();
    let mut conn = RawConn::connected(&server, None).await;
    let reply = conn
        .command(json!({"type": "subscribe", "channel": "short:x", "since": {"epoch": epoch, "offset": 2}}))
        .await;
    assert_eq!(reply["result"]["recovered"], false);
    assert_eq!(reply["result"]["offset"], 10);
    server.publish("short:x", json!(11)).await;
    let live = conn.publications("short:x", 1).await;
    assert_eq!(offsets(&live), [11], "nothing replayed, then live");
}

#[tokio::test]
async fn another_epoch_is_not_recovered() {
    let server = TestServer::start().await;
    server.publish("e", json!(1)).await;
    let mut conn = RawConn::connected(&server, None).await;
    let reply = conn
        .command(json!({"type": "subscribe", "channel": "e", "since": {"epoch": "gone", "offset": 0}}))
        .await;
    assert_eq!(reply["result"]["recovered"], false);
}

#[tokio::test]
async fn a_gap_larger_than_the_recovery_limit_is_not_recovered() {
    let server = TestServer::with_config("[namespaces.lim]\nrecovery_limit = 2\n").await;
    let mut epoch = String::new();
    for n in 1..=5 {
        epoch = server.publish("lim:a", json!(n)).await.1["epoch"].as_str().unwrap().to_string();
    }
    let mut conn = RawConn::connected(&server, None).await;
    let within = conn
        .command(json!({"type": "subscribe", "channel": "lim:a", "since": {"epoch": epoch, "offset": 3}}))
        .await;
    assert_eq!(within["result"]["recovered"], true);
    let mut other = RawConn::connected(&server, None).await;
    let beyond = other
        .command(json!({"type": "subscribe", "channel": "lim:a", "since": {"epoch": epoch, "offset": 1}}))
        .await;
    assert_eq!(beyond["result"]["recovered"], false);
}

#[tokio::test]
async fn the_rust_client_resumes_by_itself_after_the_server_drops_it() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut sub = client.subscribe("live", None).await.unwrap();
    assert!(matches!(next(&mut sub).await, SubscriptionEvent::Subscribed { .. }));
    for n in 1..=3 {
        server.publish("live", json!(n)).await;
    }
    // Cut every connection with a "reconnect and recover" code, publish
    // while the client is away, and expect every message exactly once.
    server.app.hub.connections().close_all(|| CloseReason::new(CloseCode::SlowConsumer));
    for n in 4..=10 {
        server.publish("live", json!(n)).await;
    }
    let mut received = Vec::new();
    let mut recovered = None;
    while received.len() < 10 {
        match next(&mut sub).await {
            SubscriptionEvent::Publication { publication, .. } => received.push(publication.offset),
            SubscriptionEvent::Subscribed { recovered: r, .. } => recovered = r,
            _ => {}
        }
    }
    assert_eq!(received, (1..=10).collect::<Vec<_>>());
    assert_eq!(recovered, Some(true));
}

async fn next(sub: &mut fanfare_client::Subscription) -> SubscriptionEvent {
    tokio::time::timeout(WAIT, sub.next()).await.expect("timed out").expect("subscription ended")
}
