//! A cluster of nodes on one Redis: one order per channel, recovery on any
//! node, presence and listings cluster-wide, healing of lost live frames.
//!
//! Each test starts a private `redis-server` on a free port (skipped with
//! a printed reason outside CI when the binary is missing) and nodes
//! in-process on port 0.

use std::collections::HashSet;

use fanfare_testkit::RedisServer;
use serde_json::{Value, json};

use crate::support::{RawConn, TestServer, eventually, offsets};

/// A namespace that keeps enough history for the long tests.
const LONG_HISTORY: &str = "[namespaces.big]\nhistory_size = 20000\nrecovery_limit = 20000\n";

async fn nodes(redis: &RedisServer, count: usize, extra: &str) -> Vec<TestServer> {
    let mut nodes = Vec::new();
    for _ in 0..count {
        nodes.push(TestServer::in_cluster(&redis.url(), extra).await);
    }
    nodes
}

async fn subscribe(conn: &mut RawConn, channel: &str) -> Value {
    let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
    assert!(reply.get("result").is_some(), "subscribe failed: {reply}");
    reply["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_on_three_nodes_give_every_subscriber_one_gap_free_order_equal_to_history() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 3, LONG_HISTORY).await;
    let mut subscribers = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let mut conn = RawConn::connected(node, None).await;
            subscribe(&mut conn, "big:feed").await;
            subscribers.push(conn);
        }
    }
    const PER_NODE: usize = 3334;
    let total = PER_NODE * nodes.len();
    let publishing = nodes.iter().enumerate().map(|(i, node)| async move {
        for n in 0..PER_NODE {
            let (status, body) = node.publish("big:feed", json!({"node": i, "n": n})).await;
            assert_eq!(status, 200, "{body}");
        }
    });
    futures_util::future::join_all(publishing).await;

    let mut expected: Vec<Value> = Vec::new();
    while expected.len() < total {
        let since = expected.len();
        let (_, page) =
            nodes[0].get(&format!("/api/history?channel=big:feed&since={since}&limit=1000")).await;
        let publications = page["publications"].as_array().unwrap();
        assert!(!publications.is_empty(), "history ends at {since}: {page}");
        expected.extend(publications.iter().cloned());
    }
    assert_eq!(offsets(&expected), (1..=total as u64).collect::<Vec<_>>());
    for (index, conn) in subscribers.iter_mut().enumerate() {
        let seen = conn.publications("big:feed", total).await;
        assert_eq!(offsets(&seen), offsets(&expected), "subscriber {index}: not the history's order");
        let data: Vec<&Value> = seen.iter().map(|p| &p["data"]).collect();
        let wanted: Vec<&Value> = expected.iter().map(|p| &p["data"]).collect();
        assert!(data == wanted, "subscriber {index} saw other data at some offset");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_drops_from_one_node_resumes_on_another_with_exactly_what_it_missed() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 3, "").await;
    let mut first = RawConn::connected(&nodes[0], None).await;
    let position = subscribe(&mut first, "news").await;
    let epoch = position["epoch"].as_str().unwrap().to_owned();
    for n in 1..=3 {
        nodes[1].publish("news", json!(n)).await;
    }
    assert_eq!(offsets(&first.publications("news", 3).await), [1, 2, 3]);
    drop(first);
    for n in 4..=9 {
        assert_eq!(nodes[1].publish("news", json!(n)).await.0, 200);
    }
    let mut again = RawConn::connected(&nodes[2], None).await;
    let since = json!({"epoch": epoch, "offset": 3});
    let reply = again.command(json!({"type": "subscribe", "channel": "news", "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    nodes[0].publish("news", json!(10)).await;
    let replayed = again.publications("news", 7).await;
    assert_eq!(offsets(&replayed), [4, 5, 6, 7, 8, 9, 10], "missed ones, then live, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_publications_and_idempotency_keys_work_across_nodes() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let config = "[namespaces.room]\npublish = \"anyone\"\n";
    let nodes = nodes(&redis, 2, config).await;
    let mut watcher = RawConn::connected(&nodes[0], None).await;
    subscribe(&mut watcher, "room:a").await;
    let mut typer = RawConn::connected(&nodes[1], None).await;
    let reply = typer
        .command(json!({"type": "publish", "channel": "room:a", "data": {"typing": true}, "ephemeral": true}))
        .await;
    assert!(reply.get("result").is_some(), "{reply}");
    let pushed = watcher.next_json().await.unwrap();
    assert_eq!(pushed["data"], json!({"typing": true}), "{pushed}");
    assert!(pushed.get("offset").is_none(), "ephemeral: no offset");

    let keyed = json!({"channel": "room:a", "data": 1, "idempotency_key": "k1"});
    let (_, first) = nodes[0].post("/api/publish", keyed.clone()).await;
    let (_, second) = nodes[1].post("/api/publish", keyed).await;
    assert_eq!(first["offset"], second["offset"], "one publication for one key, whichever node");
    let seen = watcher.publications("room:a", 1).await;
    assert_eq!(offsets(&seen), [first["offset"].as_u64().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_listings_and_counts_are_cluster_wide() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let config = "[namespaces.team]\npresence = true\njoin_leave = true\n";
    let nodes = nodes(&redis, 2, config).await;
    let alice = crate::support::token("alice", json!({}));
    let bob = crate::support::token("bob", json!({}));
    let mut alice_a = RawConn::connected(&nodes[0], Some(&alice)).await;
    subscribe(&mut alice_a, "team:x").await;
    let mut bob_b = RawConn::connected(&nodes[1], Some(&bob)).await;
    let reply = subscribe(&mut bob_b, "team:x").await;
    let _ = reply;
    let join = alice_a.next_json().await.unwrap();
    assert_eq!((join["type"].as_str(), join["user"].as_str()), (Some("join"), Some("bob")), "{join}");
    let mut alice_b = RawConn::connected(&nodes[1], Some(&alice)).await;
    subscribe(&mut alice_b, "team:x").await;

    let (_, members) = nodes[1].get("/api/presence?channel=team:x").await;
    let users: Vec<&str> =
        members["members"].as_array().unwrap().iter().map(|m| m["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["alice", "bob"], "alice on two nodes is one member");
    eventually("three subscriptions listed", || async {
        let (_, listing) = nodes[0].get("/api/channels?prefix=team:").await;
        listing["channels"] == json!([{"channel": "team:x", "subscribers": 3}])
    })
    .await;

    drop(alice_a);
    drop(alice_b);
    let leave = bob_b.next_json().await.unwrap();
    assert_eq!((leave["type"].as_str(), leave["user"].as_str()), (Some("leave"), Some("alice")), "{leave}");
    let (_, members) = nodes[0].get("/api/presence?channel=team:x").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_listed_and_a_disconnect_reaches_every_node() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 3, "").await;
    let (status, listed) = nodes[0].get("/api/nodes").await;
    assert_eq!(status, 200, "{listed}");
    let ids: HashSet<&str> =
        listed["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{listed}");
    assert!(ids.contains(listed["node"].as_str().unwrap()));

    let carol = crate::support::token("carol", json!({}));
    let mut conns = Vec::new();
    for node in &nodes {
        conns.push(RawConn::connected(node, Some(&carol)).await);
    }
    let (status, reply) = nodes[1].post("/api/disconnect", json!({"user": "carol"})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["disconnected"], 3, "{reply}");
    assert!(reply.get("unreached").is_none(), "{reply}");
    for conn in &mut conns {
        assert_eq!(conn.until_closed().await.0, 4003);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_whose_live_frame_was_lost_is_healed_from_history() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 2, "").await;
    let mut conn = RawConn::connected(&nodes[0], None).await;
    subscribe(&mut conn, "heal").await;
    nodes[1].publish("heal", json!(1)).await;
    assert_eq!(offsets(&conn.publications("heal", 1).await), [1]);
    // Offset 2 enters history without its live frame, as a lost PUBLISH would leave it.
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(redis.cli(&["HINCRBY", "fanfare:{heal}:meta", "s", "1"]), "2");
    let tail = format!("{time} - 8\n\"silent\"");
    redis.cli(&["XADD", "fanfare:{heal}:stream", "0-2", "p", &tail]);
    nodes[1].publish("heal", json!(3)).await;
    let seen = conn.publications("heal", 2).await;
    assert_eq!(offsets(&seen), [2, 3], "the gap is healed before 3 is delivered");
    assert_eq!(seen[0]["data"], json!("silent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_a_node_that_watches_the_channel_is_served_from_its_recent_cache() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 2, "").await;
    let mut resident = RawConn::connected(&nodes[1], None).await;
    subscribe(&mut resident, "hot").await;
    let mut leaving = RawConn::connected(&nodes[0], None).await;
    let epoch = subscribe(&mut leaving, "hot").await["epoch"].as_str().unwrap().to_owned();
    nodes[0].publish("hot", json!(1)).await;
    assert_eq!(offsets(&leaving.publications("hot", 1).await), [1]);
    drop(leaving);
    for n in 2..=5 {
        nodes[0].publish("hot", json!(n)).await;
    }
    assert_eq!(offsets(&resident.publications("hot", 5).await), [1, 2, 3, 4, 5]);
    let hits = || async {
        let text = nodes[1].metrics().await;
        text.lines()
            .find(|l| l.starts_with("fanfare_cluster_recent_cache_total{outcome=\"hit\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = hits().await;
    let mut back = RawConn::connected(&nodes[1], None).await;
    let since = json!({"epoch": epoch, "offset": 1});
    let reply = back.command(json!({"type": "subscribe", "channel": "hot", "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    assert_eq!(reply["result"]["offset"], 5);
    nodes[0].publish("hot", json!(6)).await;
    assert_eq!(offsets(&back.publications("hot", 5).await), [2, 3, 4, 5, 6]);
    assert!(hits().await > before, "the resume did not use the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_metrics_are_exported() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 1, "").await;
    let mut conn = RawConn::connected(&nodes[0], None).await;
    subscribe(&mut conn, "m").await;
    nodes[0].publish("m", json!(1)).await;
    conn.publications("m", 1).await;
    let text = nodes[0].metrics().await;
    for name in
        ["fanfare_bus_frames_received_total", "fanfare_redis_roundtrip_seconds_bucket", "fanfare_bus_up"]
    {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing from /metrics");
    }
}
