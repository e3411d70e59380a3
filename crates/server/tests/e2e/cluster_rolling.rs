//! Growing a cluster and restarting it node by node under traffic, behind a
//! TCP load balancer, as an operator does: native clients lose nothing and
//! see nothing twice, presence is exact at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanfare_client::Client;
use fanfare_testkit::RedisServer;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::watch;

use crate::cluster_failures::{
    Followed, Node, api_get, client_options, follow, history, presence_users, spread,
};
use crate::support::{API_KEY, WAIT, eventually, http};

/// A TCP load balancer on a free port: each new connection goes to the next
/// of the current backends, round robin; no stickiness, no health checks
/// (the test takes a node out before it stops it, as an operator's
/// balancer does once `/ready` fails).
struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let list = backends.clone();
        let task = tokio::spawn(async move {
            let mut turn = 0usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = {
                    let list = list.lock();
                    turn += 1;
                    (!list.is_empty()).then(|| list[turn % list.len()])
                };
                let Some(target) = target else { continue };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, backends, task }
    }

    fn route_to(&self, nodes: &[&Node]) {
        *self.backends.lock() = nodes.iter().map(|node| node.addr()).collect();
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes `n = 1, 2, …` to the channels in turn through the balancer
/// every `every`, each with the idempotency key `n`, retrying a request
/// that fails (its node may be stopping) until it is acknowledged: every
/// publication exactly once. Returns the last acknowledged offset of each
/// channel when told to stop.
fn publish_through(
    base: String,
    channels: Vec<String>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut tops = vec![0; channels.len()];
        let mut ticks = tokio::time::interval(every);
        for n in 0u64.. {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => return tops,
            }
            let which = (n as usize) % channels.len();
            let body = json!({"channel": channels[which], "data": n, "idempotency_key": n.to_string()});
            let deadline = Instant::now() + WAIT;
            loop {
                // A fresh connection each time: a pooled one could stay on a stopped node.
                // (No root certificates: plain HTTP, and loading them costs milliseconds.)
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .tls_certs_only([])
                    .build()
                    .unwrap();
                let sent =
                    client.post(format!("{base}/api/publish")).bearer_auth(API_KEY).json(&body).send().await;
                if let Ok(response) = sent
                    && response.status().is_success()
                {
                    let reply: serde_json::Value = response.json().await.unwrap();
                    tops[which] = reply["offset"].as_u64().unwrap();
                    break;
                }
                assert!(Instant::now() < deadline, "publication {n} was not acknowledged within {WAIT:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        tops
    })
}

async fn ready(node: &Node) {
    eventually("the new node ready", || async {
        http().get(format!("{}/ready", node.base())).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_and_a_rolling_restart_lose_nothing_duplicate_nothing_and_leave_presence_exact() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    const CHANNELS: usize = 4;
    const FOLLOWERS: usize = 24;
    const MEMBERS: usize = 9;
    let balancer = Balancer::start().await;
    let mut nodes = vec![Node::spawn(&redis.url()).await, Node::spawn(&redis.url()).await];
    balancer.route_to(&nodes.iter().collect::<Vec<_>>());

    // Raw followers through the balancer (they count every frame, so a
    // duplicate shows), and presence members with the Rust client.
    let channels: Vec<String> = (0..CHANNELS).map(|c| format!("big:roll{c}")).collect();
    let (stop_following, follow_stop) = watch::channel(None);
    let mut followers = Vec::new();
    for f in 0..FOLLOWERS {
        let seen: Arc<Mutex<Followed>> = Arc::default();
        let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
        let channel = channels[f % CHANNELS].clone();
        tokio::spawn(follow(vec![balancer.ws_url()], channel, follow_stop.clone(), seen.clone(), subscribed));
        tokio::time::timeout(WAIT, is_subscribed).await.unwrap().unwrap();
        followers.push((f % CHANNELS, seen));
    }
    let mut members = Vec::new();
    for m in 0..MEMBERS {
        let client = Client::connect(client_options(balancer.ws_url(), Vec::new(), &format!("member{m}")))
            .await
            .unwrap();
        let subscription = client.subscribe("team:roll", None).await.unwrap();
        members.push((client, subscription));
    }
    let (stop_publishing, stop) = watch::channel(false);
    let publisher = publish_through(balancer.base(), channels.clone(), Duration::from_millis(10), stop);
    let seen_at_least = |n: u64| {
        let followers = &followers;
        move || {
            let ok = followers.iter().all(|(_, s)| s.lock().offsets.last().copied().unwrap_or(0) >= n);
            async move { ok }
        }
    };
    eventually("the followers seeing the stream", seen_at_least(5)).await;

    // Scale up: a third node joins the balancer.
    nodes.push(Node::spawn(&redis.url()).await);
    ready(&nodes[2]).await;
    balancer.route_to(&nodes.iter().collect::<Vec<_>>());

    // Rolling restart: each node in turn leaves the balancer, drains
    // (SIGTERM), and a new node takes its place.
    let mut turnovers = Vec::new();
    for index in 0..nodes.len() {
        let started = Instant::now();
        let others: Vec<&Node> =
            nodes.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, n)| n).collect();
        balancer.route_to(&others);
        nodes[index].stop().await;
        let replacement = Node::spawn(&redis.url()).await;
        ready(&replacement).await;
        nodes[index] = replacement;
        balancer.route_to(&nodes.iter().collect::<Vec<_>>());
        turnovers.push(started.elapsed());
        let progress = followers.iter().map(|(_, s)| s.lock().offsets.last().copied().unwrap_or(0)).max();
        eventually("the stream going on after a turnover", seen_at_least(progress.unwrap_or(0))).await;
    }
    eprintln!("turnover (out of the balancer → SIGTERM → replacement ready): {}", spread(turnovers));
    let resumes: usize = followers.iter().map(|(_, s)| s.lock().recovered.len()).sum();
    eprintln!("{resumes} resubscribes of {FOLLOWERS} raw followers, all to be recovered");

    stop_publishing.send(true).unwrap();
    let tops = tokio::time::timeout(WAIT, publisher).await.unwrap().unwrap();
    stop_following.send(Some(*tops.iter().max().unwrap())).unwrap();
    let base = nodes[0].base();
    for (channel, seen) in &followers {
        let top = tops[*channel];
        eventually("every follower reaching its channel's top", || async {
            seen.lock().offsets.last().copied().unwrap_or(0) >= top
        })
        .await;
        let (_, kept) = history(&base, &channels[*channel]).await;
        let seen = seen.lock();
        let first = seen.offsets[0];
        let wanted: Vec<u64> = kept.iter().copied().filter(|&o| o >= first && o <= top).collect();
        let got: Vec<u64> = seen.offsets.iter().copied().filter(|&o| o <= top).collect();
        assert_eq!(got, wanted, "a follower of {} lost or repeated a publication", channels[*channel]);
        assert!(!seen.closes.is_empty(), "a follower never met a restart: the test would prove nothing");
        assert!(
            seen.closes.iter().all(|&code| code == 4500),
            "closes other than the drain's: {:?}",
            seen.closes
        );
        assert!(seen.recovered.iter().all(|&r| r), "a resubscribe was not recovered: {:?}", seen.recovered);
        assert!(seen.epochs.windows(2).all(|w| w[0] == w[1]), "the epoch changed");
    }

    let mut expected: Vec<String> = (0..MEMBERS).map(|m| format!("member{m}")).collect();
    expected.sort();
    for node in &nodes {
        eventually("presence exact on every node", || async {
            presence_users(&node.base(), "team:roll").await == expected
        })
        .await;
    }
    let (_, listed) = api_get(&base, "/api/nodes").await;
    assert_eq!(listed["nodes"].as_array().unwrap().len(), 3, "the stopped nodes left the registry: {listed}");
    drop(members);
}
