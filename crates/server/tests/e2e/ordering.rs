//! Order: several publishers at once, over HTTP and from clients, and every
//! subscriber sees the same gap-free offsets.

use fanfare_client::{PublishOptions, SubscriptionEvent};
use serde_json::json;

use crate::support::{TestServer, WAIT};

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
