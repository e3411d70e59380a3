//! A subscriber that never reads is disconnected as a slow consumer
//! ("reconnect and recover") and does not hold back anyone else.

use fanfare_client::SubscriptionEvent;
use serde_json::json;

use crate::support::{RawConn, TestServer, WAIT, eventually, metric_value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_disconnected_and_the_fast_one_gets_everything() {
    let server = TestServer::with_config(
        "[limits]\noutbox_frames = 32\noutbox_bytes = 262144\n[namespaces.big]\nhistory_size = 10\n",
    )
    .await;
    let mut slow = RawConn::connected(&server, None).await;
    slow.command(json!({"type": "subscribe", "channel": "big:feed"})).await;
    let fast = server.client().await;
    let mut fast_sub = fast.subscribe("big:feed", None).await.unwrap();

    // 16 KiB messages: kernel socket buffers fill after a few MiB, then the
    // slow connection's outbox fills and overflows.
    let payload = "x".repeat(16 * 1024);
    const COUNT: u64 = 600;
    let reader = tokio::spawn(async move {
        let mut last = 0;
        while last < COUNT {
            match tokio::time::timeout(WAIT, fast_sub.next()).await.unwrap().unwrap() {
                SubscriptionEvent::Publication { publication, .. } => {
                    assert_eq!(publication.offset, last + 1, "no gap, no duplicate");
                    last = publication.offset;
                }
                SubscriptionEvent::Subscribed { .. } => {}
                other => panic!("fast subscriber got {other:?}"),
            }
        }
    });
    for _ in 0..COUNT {
        assert_eq!(server.publish("big:feed", json!(payload)).await.0, 200);
    }
    tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();

    // Before the slow client reads a byte, the server has let it go: its
    // socket is full, but its overflowed outbox ends the connection.
    let released = async {
        loop {
            let (_, channels) = server.get("/api/channels?prefix=big:").await;
            if channels["channels"][0]["subscribers"] == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, released)
        .await
        .expect("the slow subscription is released without waiting for the client");

    let (code, disconnect) = slow.until_closed().await;
    assert_eq!(code, 4501, "closed as a slow consumer");
    let disconnect = disconnect.expect("a disconnect push precedes the close");
    assert_eq!(disconnect["reconnect"], true);
    let metrics = server.metrics().await;
    assert!(metrics.contains("fanfare_slow_consumer_disconnects_total"), "{metrics}");
    eventually("the admin page's list of slow consumers", || async {
        let (_, listed) = server.get("/api/admin/slow_consumers").await;
        let first = &listed["slow_consumers"][0];
        first["protocol"] == "native" && first["connection"].as_str().is_some_and(|c| !c.is_empty())
    })
    .await;
}

/// Frames a client has not read yet, once its socket is full, wait in its
/// outbox and show in the outbox gauges; read, they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_waiting_for_a_reader_show_as_outbox_depth() {
    let server = TestServer::with_config("[limits]\noutbox_frames = 4096\noutbox_bytes = 33554432\n").await;
    let mut slow = RawConn::connected(&server, None).await;
    slow.command(json!({"type": "subscribe", "channel": "feed"})).await;
    let payload = "x".repeat(16 * 1024);
    let mut published = 0;
    loop {
        assert_eq!(server.publish("feed", json!(payload)).await.0, 200);
        published += 1;
        let metrics = server.metrics().await;
        let largest = metric_value(&metrics, "fanfare_outbox_frames_max");
        if largest >= 1.0 {
            assert!(metric_value(&metrics, "fanfare_outbox_frames") >= largest);
            break;
        }
        assert!(published < 1500, "the socket never filled: 24 MiB unread and the outbox still empty");
    }
    assert_eq!(slow.publications("feed", published).await.len(), published);
    let metrics = server.metrics().await;
    assert_eq!(metric_value(&metrics, "fanfare_outbox_frames"), 0.0, "read, the outbox is empty");
    server.stop().await;
}
