//! What `/metrics` labels, and that its number of series stays what the
//! configuration says however many channels, users and namespaces clients
//! bring.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::{RawConn, TestServer, metric_value, token};

const CONFIG: &str = "[namespaces.chat]\npublish = \"anyone\"\n[namespaces.room]\npresence = true\n";

#[tokio::test]
async fn publications_and_deliveries_are_labelled_by_configured_namespace_app_prefix_or_other() {
    let app = "[[pusher.apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\nchannel_prefix = \"acme:\"\n";
    let server = TestServer::with_config(&format!("{CONFIG}{app}")).await;
    let mut conn = RawConn::connected(&server, None).await;
    for channel in ["chat:a", "elsewhere:b", "plain", "acme:news"] {
        conn.command(json!({"type": "subscribe", "channel": channel})).await;
        server.publish(channel, json!(1)).await;
        assert_eq!(conn.publications(channel, 1).await.len(), 1);
    }
    let metrics = server.metrics().await;
    let value = |series: &str| metric_value(&metrics, series);
    assert_eq!(value("fanfare_publications_total{kind=\"durable\",namespace=\"chat\"}"), 1.0);
    assert_eq!(value("fanfare_publications_total{kind=\"durable\",namespace=\"other\"}"), 2.0);
    assert_eq!(value("fanfare_publications_total{kind=\"durable\",namespace=\"room\"}"), 0.0);
    assert_eq!(value("fanfare_deliveries_total{namespace=\"chat\"}"), 1.0);
    assert_eq!(value("fanfare_deliveries_total{namespace=\"other\"}"), 2.0);
    assert_eq!(value("fanfare_deliveries_total{namespace=\"acme\"}"), 1.0, "the Pusher app's prefix");
    server.stop().await;
}

/// Every series of a scrape: the text before the value.
fn series(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

/// One of everything first (so every series that can exist does), then
/// 10,000 channels in as many unconfigured namespaces and 1,000 users in
/// presence channels of their own: not one series more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_channels_users_and_namespaces_add_no_series() {
    let server = TestServer::with_config(CONFIG).await;
    let mut first = RawConn::connected(&server, Some(&token("user-0", json!({})))).await;
    for channel in ["chat:x", "room:x", "ns-0:x"] {
        first.command(json!({"type": "subscribe", "channel": channel})).await;
        server.publish(channel, json!(0)).await;
        assert_eq!(first.publications(channel, 1).await.len(), 1);
    }
    let before = series(&server.metrics().await);

    for batch in 0..10 {
        let channels: Vec<String> = (0..1000).map(|n| format!("ns-{batch}-{n}:c-{n}")).collect();
        let (status, reply) = server.post("/api/broadcast", json!({"channels": channels, "data": 1})).await;
        assert_eq!(status, 200, "{reply}");
    }
    let mut users = Vec::new();
    for n in 1..=1000 {
        let mut conn = RawConn::connected(&server, Some(&token(&format!("user-{n}"), json!({})))).await;
        let reply = conn.command(json!({"type": "subscribe", "channel": format!("room:user-{n}")})).await;
        assert!(reply.get("result").is_some(), "{reply}");
        users.push(conn);
    }
    let after = series(&server.metrics().await);
    let new: Vec<&String> = after.difference(&before).collect();
    assert!(new.is_empty(), "{} new series, such as {:?}", new.len(), &new[..new.len().min(10)]);
    assert!(after.len() < 400, "{} series in all", after.len());
    server.stop().await;
}
