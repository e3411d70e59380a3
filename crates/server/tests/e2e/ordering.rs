//! Order: several publishers at once, over HTTP and from clients, and every
//! subscriber sees the same gap-free offsets.

use fanfare_client::{PublishOptions, SubscriptionEvent};
use serde_json::json;

use fanfare::config::StoreKind;

use crate::support::{RawConn, TestServer, WAIT, metric_value, offsets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_http_and_client_publishers_give_every_subscriber_one_gap_free_order() {
    let server = TestServer::with_config("[namespaces.room]\npublish = \"anyone\"\n").await;
    let watchers: Vec<_> = futures_util::future::join_all((0..3).map(|_| server.client())).await;
    let mut subs = Vec::new();
    for watcher in &watchers {
        subs.push(watcher.subscribe("room:1", None).await.unwrap());
    }
    const PER_PUBLISHER: usize = 50;
    let mut publishers = Vec::new();
    for p in 0..3 {
        let http = crate::support::http();
        let url = server.url("/api/publish");
        publishers.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                let body = json!({"channel": "room:1", "data": {"from": format!("http-{p}"), "i": i}});
                let response =
                    http.post(&url).bearer_auth(crate::support::API_KEY).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for p in 0..3 {
        let client = server.client().await;
        publishers.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                let data = json!({"from": format!("client-{p}"), "i": i});
                client.publish("room:1", &data, PublishOptions::default()).await.unwrap();
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let total = 6 * PER_PUBLISHER;
    let expected: Vec<u64> = (1..=total as u64).collect();
    let mut payloads = Vec::new();
    for sub in &mut subs {
        let mut offsets = Vec::new();
        let mut data = Vec::new();
        while offsets.len() < total {
            match tokio::time::timeout(WAIT, sub.next()).await.unwrap().unwrap() {
                SubscriptionEvent::Publication { publication, .. } => {
                    offsets.push(publication.offset);
                    data.push(publication.data.as_str().to_string());
                }
                SubscriptionEvent::Subscribed { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(offsets, expected);
        payloads.push(data);
    }
    assert!(
        payloads.windows(2).all(|w| w[0] == w[1]),
        "every subscriber saw the same message at each offset"
    );
}

/// With `tcp_nodelay = false` (Nagle's algorithm on, for throughput) a
/// burst of publications arrives complete and in order, as with the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nagle_on_a_burst_still_arrives_complete_and_in_order() {
    let server = TestServer::with_settings("", |settings| settings.tcp_nodelay = false).await;
    assert!(!server.app.settings.tcp_nodelay);
    let client = server.client().await;
    let mut sub = client.subscribe("burst", None).await.unwrap();
    const PUBLICATIONS: u64 = 200;
    let http = crate::support::http();
    let url = server.url("/api/publish");
    let sent: Vec<_> = (0..PUBLICATIONS)
        .map(|i| {
            let request = http.post(&url).bearer_auth(crate::support::API_KEY);
            tokio::spawn(request.json(&json!({"channel": "burst", "data": {"i": i}})).send())
        })
        .collect();
    for publish in sent {
        assert_eq!(publish.await.unwrap().unwrap().status(), 200);
    }
    let mut offsets = Vec::new();
    while offsets.len() < PUBLICATIONS as usize {
        match tokio::time::timeout(WAIT, sub.next()).await.unwrap().unwrap() {
            SubscriptionEvent::Publication { publication, .. } => offsets.push(publication.offset),
            SubscriptionEvent::Subscribed { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(offsets, (1..=PUBLICATIONS).collect::<Vec<_>>());
}

/// A connection that sends many publishes without waiting (pipelining)
/// gets its replies in command order, with consecutive offsets; a command
/// sent after them is answered after them. The publishes do not wait for
/// each other's fsync, so they are committed, fanned out and written
/// together: many frames per socket write, on the default store.
#[tokio::test]
async fn pipelined_publishes_are_answered_in_order_and_committed_together() {
    let config = "[namespaces.room]\npublish = \"anyone\"\n";
    let server = TestServer::with_settings(config, |settings| {
        settings.store.kind = StoreKind::Embedded(settings.data_dir.join("store"));
        settings.limits.max_commands_per_second = 100_000;
    })
    .await;
    let mut watcher = RawConn::connected(&server, None).await;
    watcher.command(json!({"type": "subscribe", "channel": "room:p"})).await;
    let mut publisher = RawConn::connected(&server, None).await;
    let mut next_offset = 1;
    for round in 0..30 {
        // The first round holds more publishes than may wait at once (64).
        let count = if round == 0 { 150 } else { 40 };
        let first_id = 1_000 * (round + 1);
        for n in 0..count {
            let command = json!({"id": first_id + n, "type": "publish", "channel": "room:p", "data": n});
            publisher.send_text(&command.to_string()).await;
        }
        publisher.send_text(&json!({"id": first_id + count, "type": "ping"}).to_string()).await;
        for n in 0..=count {
            let reply = publisher.next_json().await.expect("a reply");
            assert_eq!(reply["id"], first_id + n, "replies in command order: {reply}");
            if n < count {
                assert_eq!(reply["result"]["offset"], next_offset, "{reply}");
                next_offset += 1;
            }
        }
        let seen = offsets(&watcher.publications("room:p", count as usize).await);
        assert_eq!(seen, (next_offset - count..next_offset).collect::<Vec<_>>());
    }
    let metrics = server.metrics().await;
    let writes = metric_value(&metrics, "fanfare_ws_writes_total");
    let frames = metric_value(&metrics, "fanfare_ws_frames_written_total");
    assert!(writes >= 64.0, "writes {writes}");
    assert!(frames >= 4.0 * writes, "{frames} frames in {writes} writes: pipelined publishes coalesce");
}
