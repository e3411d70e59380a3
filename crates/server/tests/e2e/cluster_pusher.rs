//! Pusher compatibility across the nodes of a cluster: webhooks exactly
//! once per cluster-wide transition (the hold cancelled by a reopening on
//! another node), the HTTP API's channel listings and members exact across
//! nodes, `terminate_connections` on every node, dead letters kept in
//! Redis and listed by every node.
//!
//! Each test starts a private `redis-server` (skipped with a printed reason
//! outside CI when it is missing) and in-process nodes on port 0. The
//! pusher-js side of the same guarantees is `clients/js/test/cluster.test.mjs`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use fanfare_testkit::{CutLink, RedisServer};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::pusher_api::{PusherConn, Sdk, receiver, webhooks_keeping};
use crate::support::{TestServer, eventually, http};

fn app_toml(webhook: Option<&str>) -> String {
    let mut toml = String::from(
        "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\nclient_events = true\n",
    );
    if let Some(url) = webhook {
        toml.push_str(&format!(
            "[[pusher.apps.webhooks]]\nurl = \"{url}\"\nevents = [\"channel_occupied\", \"channel_vacated\", \"member_added\", \"member_removed\"]\n"
        ));
    }
    toml
}

fn sdk(server: &TestServer) -> Sdk<'_> {
    Sdk { server, app_id: "app-1", key: "key-1", secret: "secret-1" }
}

/// A webhook event: `(name, channel, user_id)`.
type Hook = (String, String, Option<String>);

/// Every webhook event received, in arrival order.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Hook>>>);

impl Hooks {
    async fn start() -> (String, Self) {
        async fn receive(State(hooks): State<Hooks>, body: Bytes) -> &'static str {
            let body: Value = serde_json::from_slice(&body).unwrap();
            let mut seen = hooks.0.lock();
            for event in body["events"].as_array().unwrap() {
                let user = event["user_id"].as_str().map(str::to_owned);
                let (name, channel) = (event["name"].as_str().unwrap(), event["channel"].as_str().unwrap());
                seen.push((name.to_owned(), channel.to_owned(), user));
            }
            "ok"
        }
        let hooks = Hooks::default();
        let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hooks)
    }

    fn count(&self, name: &str) -> usize {
        self.0.lock().iter().filter(|(n, ..)| n == name).count()
    }

    fn names(&self) -> Vec<String> {
        self.0.lock().iter().map(|(n, ..)| n.clone()).collect()
    }

    /// Waits until `name` was received `count` times.
    async fn wait_for(&self, name: &str, count: usize) {
        eventually(&format!("{count} × {name}: {:?}", self.names()), || async { self.count(name) >= count })
            .await;
    }
}

async fn nodes(redis: &RedisServer, count: usize, toml: &str, hold: Duration) -> Vec<TestServer> {
    let mut nodes = Vec::new();
    for _ in 0..count {
        nodes.push(TestServer::in_cluster_with(&redis.url(), toml, |o| o.event_hold = hold).await);
    }
    nodes
}

/// The members of `presence-room` as the HTTP API lists them on `node`.
async fn users(node: &TestServer, channel: &str) -> Vec<Value> {
    let (status, body) = sdk(node).get(&format!("/channels/{channel}/users"), &[]).await;
    assert_eq!(status, 200, "{body}");
    body["users"].as_array().unwrap().clone()
}

/// The same user joins on two nodes at the same instant and leaves on both
/// at the same instant, 20 times: each round gives exactly one
/// `member_added` and one `member_removed` (and one occupied / vacated),
/// whichever node the engine picked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_joining_and_leaving_on_two_nodes_at_once_gives_one_webhook_each_way_per_round() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let (url, hooks) = Hooks::start().await;
    let hold = Duration::from_millis(200);
    let nodes = nodes(&redis, 2, &app_toml(Some(&url)), hold).await;
    const ROUNDS: usize = 20;
    for round in 1..=ROUNDS {
        let (mut a, mut b) =
            tokio::join!(PusherConn::open(&nodes[0], "key-1"), PusherConn::open(&nodes[1], "key-1"));
        tokio::join!(a.join_presence("presence-room", "alice"), b.join_presence("presence-room", "alice"));
        hooks.wait_for("member_added", round).await;
        hooks.wait_for("channel_occupied", round).await;
        drop((a, b));
        hooks.wait_for("member_removed", round).await;
        hooks.wait_for("channel_vacated", round).await;
    }
    // Nothing more comes: wait out a hold and a batch window.
    tokio::time::sleep(hold * 2 + Duration::from_millis(300)).await;
    let seen = hooks.0.lock().clone();
    for (opening, closing) in [("member_added", "member_removed"), ("channel_occupied", "channel_vacated")] {
        let names: Vec<&str> =
            seen.iter().map(|(n, ..)| n.as_str()).filter(|n| *n == opening || *n == closing).collect();
        let expected: Vec<&str> = (0..ROUNDS).flat_map(|_| [opening, closing]).collect();
        assert_eq!(names, expected, "one {opening} and one {closing} per round, in turn");
    }
    assert!(seen.iter().all(|(_, channel, _)| channel == "presence-room"));
    assert!(
        seen.iter().filter(|(n, ..)| n.starts_with("member")).all(|(.., u)| u.as_deref() == Some("alice"))
    );
}

/// The bug a per-node hold had: a user (and the channel's only subscriber)
/// leaves on one node and is back on another within the hold. The node
/// that decided the leave held `member_removed`; the other sent
/// `member_added` at once, and the held removal followed: the backend saw
/// her gone while she was there. Now the reopening cancels the hold on
/// whichever node it is, and neither is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_to_another_node_within_the_hold_sends_no_webhook() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let (url, hooks) = Hooks::start().await;
    let hold = Duration::from_millis(1500);
    let nodes = nodes(&redis, 2, &app_toml(Some(&url)), hold).await;
    let mut conn = PusherConn::open(&nodes[0], "key-1").await;
    conn.join_presence("presence-room", "alice").await;
    hooks.wait_for("member_added", 1).await;
    hooks.wait_for("channel_occupied", 1).await;
    for flicker in 1..=4 {
        // Gone everywhere (the engine decided the last leave), then back on the other node.
        drop(conn);
        eventually("alice gone", || async { users(&nodes[0], "presence-room").await.is_empty() }).await;
        conn = PusherConn::open(&nodes[flicker % 2], "key-1").await;
        conn.join_presence("presence-room", "alice").await;
    }
    tokio::time::sleep(hold + Duration::from_millis(500)).await;
    let mut names = hooks.names();
    names.sort();
    assert_eq!(names, ["channel_occupied", "member_added"], "the flickers sent nothing");
    drop(conn);
    hooks.wait_for("member_removed", 1).await;
    hooks.wait_for("channel_vacated", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hooks.names().len(), 4, "{:?}", hooks.names());
}

/// Listings, counts and members through the HTTP API of any node are the
/// cluster's, and follow a change on another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_listings_counts_and_members_are_exact_across_nodes() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 3, &app_toml(None), Duration::from_millis(200)).await;
    let mut conns = Vec::new();
    for node in [0, 0, 1] {
        let mut conn = PusherConn::open(&nodes[node], "key-1").await;
        conn.subscribe("news", "", None).await;
        conns.push(conn);
    }
    for (node, user) in [(0, "u1"), (1, "u2"), (2, "u1")] {
        let mut conn = PusherConn::open(&nodes[node], "key-1").await;
        conn.join_presence("presence-room", user).await;
        conns.push(conn);
    }
    let presence = json!({"presence-room": {"user_count": 2, "subscription_count": 3}});
    for node in &nodes {
        let api = sdk(node);
        eventually("the cluster's counts", || async {
            let (_, body) = api.get("/channels", &[("info", "subscription_count")]).await;
            body == json!({"channels": {"news": {"subscription_count": 3}, "presence-room": {"subscription_count": 3}}})
        })
        .await;
        let params = [("filter_by_prefix", "presence-"), ("info", "user_count,subscription_count")];
        assert_eq!(api.get("/channels", &params).await, (200, json!({ "channels": presence })));
        assert_eq!(
            api.get("/channels", &[("filter_by_prefix", "ne")]).await.1,
            json!({"channels": {"news": {}}})
        );
        let (_, news) = api.get("/channels/news", &[("info", "subscription_count")]).await;
        assert_eq!(news, json!({"occupied": true, "subscription_count": 3}));
        let (_, room) =
            api.get("/channels/presence-room", &[("info", "user_count,subscription_count")]).await;
        assert_eq!(room, json!({"occupied": true, "user_count": 2, "subscription_count": 3}));
        assert_eq!(users(node, "presence-room").await, [json!({"id": "u1"}), json!({"id": "u2"})]);
    }
    // u1 leaves node 0 but stays on node 2; u2 leaves: one member left.
    conns.remove(4); // u2 on node 1
    conns.remove(3); // u1 on node 0
    conns.remove(2); // the news subscriber on node 1
    let api = sdk(&nodes[1]);
    eventually("counts after the leaves", || async {
        let (_, room) =
            api.get("/channels/presence-room", &[("info", "user_count,subscription_count")]).await;
        let (_, news) = api.get("/channels/news", &[("info", "subscription_count")]).await;
        room == json!({"occupied": true, "user_count": 1, "subscription_count": 1})
            && news == json!({"occupied": true, "subscription_count": 2})
    })
    .await;
    assert_eq!(users(&nodes[0], "presence-room").await, [json!({"id": "u1"})]);
    drop(conns);
    eventually("nothing occupied", || async { api.get("/channels", &[]).await.1 == json!({"channels": {}}) })
        .await;
    assert_eq!(api.get("/channels/news", &[]).await.1, json!({"occupied": false}));
}

/// `terminate_connections` on one node closes the user's signed-in
/// connections on every node, and nobody else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_connections_closes_the_users_connections_on_every_node() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let nodes = nodes(&redis, 3, &app_toml(None), Duration::from_millis(200)).await;
    let mut bobs = Vec::new();
    for node in [0, 1] {
        let mut bob = PusherConn::open(&nodes[node], "key-1").await;
        bob.sign_in("bob").await;
        bobs.push(bob);
    }
    let mut carol = PusherConn::open(&nodes[1], "key-1").await;
    carol.sign_in("carol").await;
    carol.subscribe("news", "", None).await;

    let (status, body) = sdk(&nodes[2]).post("/users/bob/terminate_connections", json!({})).await;
    assert_eq!((status, body), (200, json!({})));
    for (index, bob) in bobs.iter_mut().enumerate() {
        let closed = loop {
            match bob.next().await {
                Ok(_) => continue,
                Err(code) => break code,
            }
        };
        assert_ne!(closed, 1006, "bob's connection {index} was closed by the server, not dropped");
    }
    assert_eq!(sdk(&nodes[2]).trigger(&["news"], "still-here", "1").await.0, 200);
    assert_eq!(carol.next_event_of("news").await["event"], "still-here", "carol stays connected");
}

/// A node that stops cleanly releases the closings it holds at once
/// instead of taking them with it: its last member's `member_removed` and
/// the channel's `channel_vacated` come well before the hold would end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopping_sends_its_held_webhooks_before_it_goes() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let (url, hooks) = Hooks::start().await;
    let hold = Duration::from_secs(20);
    let mut nodes = nodes(&redis, 2, &app_toml(Some(&url)), hold).await;
    let mut conn = PusherConn::open(&nodes[0], "key-1").await;
    conn.join_presence("presence-room", "alice").await;
    hooks.wait_for("member_added", 1).await;
    let started = tokio::time::Instant::now();
    nodes.remove(0).stop().await;
    hooks.wait_for("member_removed", 1).await;
    hooks.wait_for("channel_vacated", 1).await;
    assert!(started.elapsed() < hold / 2, "released after {:?}", started.elapsed());
    assert!(users(&nodes[0], "presence-room").await.is_empty());
    drop(conn);
}

/// A batch one node gives up on is kept in Redis: every node lists it, and
/// it outlives the node that wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_written_by_one_node_is_listed_by_every_node_and_outlives_it() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let mut nodes = nodes(&redis, 2, &app_toml(None), Duration::from_millis(100)).await;
    // The engines a cluster node opens keep dead letters in Redis; a
    // receiver that always fails makes one quickly.
    let engines = fanfare::engines::open(&nodes[0].app.settings).await.unwrap();
    let (url, _posts) = receiver(&[500; 1000]).await;
    let webhooks = webhooks_keeping(&nodes[0], &url, engines.webhook_stores);
    let mut conn = PusherConn::open(&nodes[0], "key-1").await;
    conn.subscribe("news", "", None).await;
    eventually("a dead letter in Redis", || async {
        redis.cli(&["LLEN", "fanfare:{webhooks}:dead_letters"]) == "1"
    })
    .await;
    drop((webhooks, conn));

    let writer = nodes.remove(0);
    let dir = writer.app.settings.data_dir.join("webhooks");
    assert!(!dir.exists(), "a cluster node writes no dead-letter file");
    writer.stop().await;
    let (status, body) = nodes[0].get("/api/webhooks/dead_letters?limit=10").await;
    assert_eq!(status, 200, "{body}");
    let letter = &body["dead_letters"][0];
    assert_eq!(letter["url"], url.as_str());
    assert_eq!(letter["app_id"], "app-1");
    assert_eq!(letter["events"][0]["name"], "channel_occupied");
}

/// An event triggered with a `socket_id` whose live frame one node never
/// got (its link to Redis was cut) reaches that node's subscribers from
/// history, and still not the excluded connection: history keeps the
/// exclusion. The position check is short so the heal does not wait for
/// the default 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_healed_from_history_still_skips_the_excluded_socket() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let link = CutLink::start(format!("127.0.0.1:{}", redis.port()).parse().unwrap()).await;
    let cut_off = TestServer::in_cluster_with(&link.redis_url(), &app_toml(None), |options| {
        options.position_check = Duration::from_millis(200);
    })
    .await;
    let publisher = TestServer::in_cluster(&redis.url(), &app_toml(None)).await;
    let mut sender = PusherConn::open(&cut_off, "key-1").await;
    let mut other = PusherConn::open(&cut_off, "key-1").await;
    sender.subscribe("news", "", None).await;
    other.subscribe("news", "", None).await;
    assert_eq!(sdk(&publisher).trigger(&["news"], "live", "0").await.0, 200);
    assert_eq!(other.next_event_of("news").await["event"], "live");
    assert_eq!(sender.next_event_of("news").await["event"], "live");

    link.cut();
    let ready = || async { http().get(cut_off.url("/ready")).send().await.is_ok_and(|r| r.status() == 503) };
    eventually("the cut-off node noticing the cut", ready).await;
    let body = json!({"name": "healed", "channel": "news", "data": "1", "socket_id": sender.socket_id});
    assert_eq!(sdk(&publisher).post("/events", body).await.0, 200);
    link.heal();

    assert_eq!(other.next_event_of("news").await["event"], "healed", "the lost frame was healed");
    assert_eq!(sdk(&publisher).trigger(&["news"], "after", "2").await.0, 200);
    assert_eq!(other.next_event_of("news").await["event"], "after");
    assert_eq!(sender.next_event_of("news").await["event"], "after", "the sender never got its own event");
}
