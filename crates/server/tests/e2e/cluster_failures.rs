//! A cluster on Redis when things fail: a node killed mid-stream under a
//! thousand clients, the same user on two nodes at once, Redis restarted
//! with each kind of persistence, one node's link to Redis cut, a node
//! paused past its lease, and publishing while Redis is down.
//!
//! Each test has a `redis-server` of its own (skipped with a printed reason
//! outside CI when the binary is missing). Nodes run in this process, or as
//! processes of the built binary where one must die or pause. Every wait is
//! for an event or a condition, bounded; the figures each test measures are
//! printed with `eprintln!` (`--no-capture` shows them).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fanfare_client::{Backoff, Client, ClientOptions, SubscriptionEvent};
use fanfare_testkit::{CutLink, Persistence, RedisServer};
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::watch;

use crate::support::{API_KEY, JWT_SECRET, RawConn, TestServer, WAIT, http, metric_value, offsets, token};

/// Namespaces every node of these tests has: `team` with presence and
/// join/leave, `big` with history enough for every stream here.
const NAMESPACES: &str = "[namespaces.team]\npresence = true\njoin_leave = true\n\n\
                          [namespaces.big]\nhistory_size = 20000\nrecovery_limit = 20000\n";

/// The lease of every node here, and the heartbeat renewing it.
const LEASE: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------
// Nodes as processes of the real binary.

/// `fanfare serve` as a process, on a free port, in the cluster at a URL.
pub(crate) struct Node {
    child: Child,
    addr: SocketAddr,
    _stdout: Lines<BufReader<ChildStdout>>,
    _dir: tempfile::TempDir,
}

impl Node {
    pub(crate) async fn spawn(redis_url: &str) -> Node {
        Self::spawn_with(redis_url, "").await
    }

    /// [`spawn`](Self::spawn) with `extra` TOML tables at the end (Pusher apps …).
    pub(crate) async fn spawn_with(redis_url: &str, extra: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\napi_key = \"{API_KEY}\"\n\
             shutdown_grace = \"1s\"\n\n[auth]\nallow_anonymous = true\njwt_algorithm = \"HS256\"\n\
             jwt_secret = \"{JWT_SECRET}\"\n\n{NAMESPACES}\n[cluster]\nurl = \"{redis_url}\"\n\
             node_lease = \"2s\"\nheartbeat = \"500ms\"\n\n{extra}",
            data = dir.path().display()
        );
        let path = dir.path().join("fanfare.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fanfare"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env_remove("FANFARE_API_KEY")
            .env_remove("FANFARE_CONFIG")
            .env("FANFARE_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = crate::support::listening_addr(&mut lines, drop).await;
        Node { child, addr, _stdout: lines, _dir: dir }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    /// `kill -<signal>` (`STOP`, `CONT`).
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill").arg(format!("-{signal}")).arg(&pid).status().unwrap();
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// `SIGTERM` (the graceful drain), and waits until the process is gone.
    pub(crate) async fn stop(&mut self) {
        self.signal("TERM");
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("a stopped node exits").unwrap();
    }

    /// `SIGKILL`, and waits until the process is gone.
    pub(crate) async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("a killed node exits").unwrap();
    }
}

// ---------------------------------------------------------------------------
// HTTP and WebSocket helpers by address, for processes and in-process nodes.

fn base_of(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

pub(crate) async fn api_get(base: &str, path: &str) -> (u16, Value) {
    let response = http().get(format!("{base}{path}")).bearer_auth(API_KEY).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Publishes `1, 2, 3 …` to `channel` through `base`'s HTTP API every
/// `every` until the sender is set; the counter holds the last offset
/// acknowledged, and the task answers it when it stops.
fn publish_steadily(
    base: String,
    channel: &'static str,
    every: Duration,
) -> (watch::Sender<bool>, Arc<std::sync::atomic::AtomicU64>, tokio::task::JoinHandle<u64>) {
    let (stop, mut stopped) = watch::channel(false);
    let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = published.clone();
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped.changed() => return counter.load(Ordering::SeqCst),
            }
            let next = counter.load(Ordering::SeqCst) + 1;
            let (status, reply) = api_publish(&base, channel, json!(next)).await;
            assert_eq!(status, 200, "{reply}");
            counter.store(reply["offset"].as_u64().unwrap(), Ordering::SeqCst);
        }
    });
    (stop, published, task)
}

async fn api_publish(base: &str, channel: &str, data: Value) -> (u16, Value) {
    let body = json!({ "channel": channel, "data": data });
    let response =
        http().post(format!("{base}/api/publish")).bearer_auth(API_KEY).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Publishes with an idempotency key, retrying while the answer is a
/// retryable error (as docs/api.md tells clients to), up to [`WAIT`].
async fn publish_retrying(base: &str, channel: &str, data: Value, key: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    let body = json!({ "channel": channel, "data": data, "idempotency_key": key });
    loop {
        let sent = http().post(format!("{base}/api/publish")).bearer_auth(API_KEY).json(&body).send().await;
        if let Ok(response) = sent {
            let status = response.status().as_u16();
            let reply: Value = response.json().await.unwrap_or(Value::Null);
            if status == 200 {
                return reply;
            }
            assert_eq!(reply["error"]["retry"], true, "a publish failed for good: {status} {reply}");
        }
        assert!(Instant::now() < deadline, "publishing did not work again within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready_status(base: &str) -> u16 {
    match http().get(format!("{base}/ready")).timeout(Duration::from_secs(2)).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Waits until `/ready` answers `status`; returns how long that took.
async fn until_ready_is(base: &str, status: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if ready_status(base).await == status {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "/ready did not answer {status} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The whole history of a channel: its epoch and every offset it holds.
pub(crate) async fn history(base: &str, channel: &str) -> (String, Vec<u64>) {
    let mut all = Vec::new();
    loop {
        let since = all.last().copied().unwrap_or(0);
        let (status, page) =
            api_get(base, &format!("/api/history?channel={channel}&since={since}&limit=1000")).await;
        assert_eq!(status, 200, "{page}");
        let publications = page["publications"].as_array().unwrap();
        all.extend(offsets(publications));
        if publications.is_empty() || all.last().copied() == page["top_offset"].as_u64() {
            return (page["epoch"].as_str().unwrap().to_owned(), all);
        }
    }
}

pub(crate) async fn presence_users(base: &str, channel: &str) -> Vec<String> {
    let (status, reply) = api_get(base, &format!("/api/presence?channel={channel}")).await;
    assert_eq!(status, 200, "{reply}");
    reply["members"].as_array().unwrap().iter().map(|m| m["user"].as_str().unwrap().to_owned()).collect()
}

/// A raw WebSocket to `ws_url`, `connect`ed (anonymous without a token).
async fn raw(ws_url: &str, token: Option<&str>) -> RawConn {
    let (socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut conn = RawConn::from_socket(socket);
    let reply = conn.command(json!({"type": "connect", "token": token})).await;
    assert!(reply.get("result").is_some(), "connect failed: {reply}");
    conn
}

async fn subscribe(conn: &mut RawConn, channel: &str, since: Option<Value>) -> Value {
    let reply = conn.command(json!({"type": "subscribe", "channel": channel, "since": since})).await;
    assert!(reply.get("result").is_some(), "subscribe failed: {reply}");
    reply["result"].clone()
}

/// Waits until `check` holds, polling; fails after `within`.
async fn until<F: FnMut() -> bool>(what: &str, within: Duration, mut check: F) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// The figures of a distribution, for the report.
pub(crate) fn spread(mut values: Vec<Duration>) -> String {
    if values.is_empty() {
        return "none".into();
    }
    values.sort();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} min={:?} p50={:?} p90={:?} p99={:?} max={:?}",
        values.len(),
        values[0],
        at(0.5),
        at(0.9),
        at(0.99),
        values[values.len() - 1]
    )
}

// ---------------------------------------------------------------------------
// A raw subscriber that follows a channel to a given top, resubscribing
// with its last position whenever the server closes it.

#[derive(Debug, Default, Clone)]
pub(crate) struct Followed {
    /// Every publication pushed, in order, duplicates included.
    pub offsets: Vec<u64>,
    pub epochs: Vec<String>,
    /// Close codes, in order.
    pub closes: Vec<u16>,
    /// `recovered` of every resubscribe.
    pub recovered: Vec<bool>,
}

/// Follows `channel` on the first of `ws_urls` from its current position
/// until an offset at or past the top sent on `stop` has been pushed,
/// recording what it sees in `progress`. Whenever the connection ends it
/// reconnects (to the next URL when one refuses) and resubscribes from the
/// last publication it got.
pub(crate) async fn follow(
    ws_urls: Vec<String>,
    channel: String,
    mut stop: watch::Receiver<Option<u64>>,
    progress: Arc<Mutex<Followed>>,
    subscribed: tokio::sync::oneshot::Sender<()>,
) {
    let mut subscribed = Some(subscribed);
    let mut position: Option<(String, u64)> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut url = 0;
    loop {
        assert!(Instant::now() < deadline, "a follower of {channel} never finished");
        let ws_url = &ws_urls[url % ws_urls.len()];
        let Ok(Ok((socket, _))) =
            tokio::time::timeout(Duration::from_secs(2), tokio_tungstenite::connect_async(ws_url)).await
        else {
            url += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut conn = RawConn::from_socket(socket);
        let connected = conn.command(json!({"type": "connect"})).await;
        assert!(connected.get("result").is_some(), "{connected}");
        let since = position.as_ref().map(|(epoch, offset)| json!({"epoch": epoch, "offset": offset}));
        let reply = conn.command(json!({"type": "subscribe", "channel": channel, "since": since})).await;
        let Some(result) = reply.get("result") else {
            assert_eq!(reply["error"]["retry"], true, "a resubscribe failed for good: {reply}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if since.is_some() {
            progress.lock().recovered.push(result["recovered"] == true);
        }
        if result["recovered"] != true {
            position =
                Some((result["epoch"].as_str().unwrap().to_owned(), result["offset"].as_u64().unwrap()));
        }
        if let Some(subscribed) = subscribed.take() {
            let _ = subscribed.send(());
        }
        loop {
            let top = *stop.borrow();
            if let (Some(top), Some((_, at))) = (top, &position)
                && *at >= top
            {
                return;
            }
            let frame = tokio::select! {
                frame = conn.next() => frame,
                _ = stop.changed() => continue,
            };
            match frame {
                Ok(message) if message["type"] == "publication" && message["channel"] == channel.as_str() => {
                    let offset = message["offset"].as_u64().unwrap();
                    let epoch = message["epoch"].as_str().unwrap_or_default().to_owned();
                    let mut seen = progress.lock();
                    seen.offsets.push(offset);
                    seen.epochs.push(epoch.clone());
                    position = Some((epoch, offset));
                }
                Ok(_) => {}
                Err(closed) => {
                    progress.lock().closes.push(closed.code);
                    break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1. kill -9 of a node under 1,000 clients.

/// What one of the thousand clients saw.
#[derive(Debug, Default)]
struct ClientLog {
    offsets: Vec<u64>,
    epochs: Vec<String>,
    /// Every `Subscribed`: when, and `recovered`.
    subscribed: Vec<(Instant, Option<bool>)>,
    ended: bool,
}

/// A join or leave the observer saw: when, which, whose.
type PresencePush = (Instant, &'static str, String);

pub(crate) fn client_options(url: String, fallback: Vec<String>, user: &str) -> ClientOptions {
    ClientOptions {
        token: Some(token(user, json!({}))),
        fallback_urls: fallback,
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(400) },
        ..ClientOptions::new(url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_nothing_for_1000_clients_and_its_members_leave_once() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    const CLIENTS: usize = 1000;
    const CHANNELS: usize = 20;
    const VICTIM: usize = 2;
    const GONE_MEMBERS: usize = 30;
    const STAYING_MEMBERS: usize = 10;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Node::spawn(&redis.url()).await);
    }
    let urls: Vec<String> = nodes.iter().map(Node::ws_url).collect();
    let survivor = nodes[0].base();

    // The observer of presence, on a survivor, and the members: some on
    // the node that will die (without fallback: they never come back), some
    // on the survivors.
    let observer = Client::connect(client_options(urls[0].clone(), Vec::new(), "observer")).await.unwrap();
    let mut room = observer.subscribe("team:room", None).await.unwrap();
    let mut members = Vec::new();
    for i in 0..GONE_MEMBERS {
        let client =
            Client::connect(client_options(urls[VICTIM].clone(), Vec::new(), &format!("gone{i:02}")))
                .await
                .unwrap();
        members.push((client.subscribe("team:room", None).await.unwrap(), client));
    }
    for i in 0..STAYING_MEMBERS {
        let url = urls[i % 2].clone();
        let client = Client::connect(client_options(url, Vec::new(), &format!("stay{i:02}"))).await.unwrap();
        members.push((client.subscribe("team:room", None).await.unwrap(), client));
    }
    let presence_log: Arc<Mutex<Vec<PresencePush>>> = Arc::default();
    let observing = {
        let log = presence_log.clone();
        tokio::spawn(async move {
            while let Some(event) = room.next().await {
                let entry = match event {
                    SubscriptionEvent::Join(member) => ("join", member.user.to_string()),
                    SubscriptionEvent::Leave { user } => ("leave", user),
                    _ => continue,
                };
                log.lock().push((Instant::now(), entry.0, entry.1));
            }
        })
    };
    until("every member's join seen by the observer", WAIT, || {
        presence_log.lock().iter().filter(|(_, kind, _)| *kind == "join").count()
            == GONE_MEMBERS + STAYING_MEMBERS
    })
    .await;

    // A thousand clients, each on one channel, spread over the three nodes,
    // each knowing the other nodes' URLs.
    let started = Instant::now();
    let connected = futures_util::stream::iter(0..CLIENTS)
        .map(|i| {
            let node = i % 3;
            let fallback = (1..3).map(|k| urls[(node + k) % 3].clone()).collect();
            let options = client_options(urls[node].clone(), fallback, &format!("reader{i:04}"));
            async move {
                let client = Client::connect(options).await.unwrap();
                let subscription =
                    client.subscribe(&format!("big:s{:02}", i % CHANNELS), None).await.unwrap();
                (i, client, subscription)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    eprintln!("1000 clients connected and subscribed in {:?}", started.elapsed());
    let logs: Vec<Arc<Mutex<ClientLog>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let mut clients = Vec::new();
    for (i, client, mut subscription) in connected {
        let log = logs[i].clone();
        tokio::spawn(async move {
            while let Some(event) = subscription.next().await {
                let mut log = log.lock();
                match event {
                    SubscriptionEvent::Publication { epoch, publication, .. } => {
                        log.offsets.push(publication.offset);
                        log.epochs.push(epoch.map(|e| e.as_str().to_owned()).unwrap_or_default());
                    }
                    SubscriptionEvent::Subscribed { recovered, .. } => {
                        log.subscribed.push((Instant::now(), recovered));
                    }
                    SubscriptionEvent::Unsubscribed { .. } => log.ended = true,
                    _ => {}
                }
            }
        });
        clients.push((i, client));
    }

    // Raw followers on the node that will die: they see every frame the
    // servers send (the client drops duplicates; these count them).
    const RAW_FOLLOWERS: usize = 20;
    let (follow_stop_tx, follow_stop) = watch::channel(None);
    let mut followers = Vec::new();
    for f in 0..RAW_FOLLOWERS {
        let seen: Arc<Mutex<Followed>> = Arc::default();
        let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
        let urls = vec![urls[VICTIM].clone(), urls[0].clone(), urls[1].clone()];
        let channel = format!("big:s{:02}", f % CHANNELS);
        tokio::spawn(follow(urls, channel, follow_stop.clone(), seen.clone(), subscribed));
        is_subscribed.await.unwrap();
        followers.push(seen);
    }

    // A publisher per channel, steady (every 100 ms), through a survivor.
    let (stop_tx, stop) = watch::channel(false);
    let publishers: Vec<_> = (0..CHANNELS)
        .map(|c| {
            let (base, mut stop) = (survivor.clone(), stop.clone());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_millis(100));
                let mut last = 0;
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = stop.changed() => return last,
                    }
                    let (status, reply) =
                        api_publish(&base, &format!("big:s{c:02}"), json!({"n": last})).await;
                    assert_eq!(status, 200, "{reply}");
                    last = reply["offset"].as_u64().unwrap();
                }
            })
        })
        .collect();
    until("every client seeing the stream", WAIT * 2, || {
        logs.iter().all(|log| log.lock().offsets.len() >= 3)
    })
    .await;

    let killed = Instant::now();
    nodes[VICTIM].kill().await;
    let victims: Vec<usize> = (0..CLIENTS).filter(|i| i % 3 == VICTIM).collect();
    until("every client of the dead node resubscribed elsewhere", WAIT * 2, || {
        victims.iter().all(|&i| logs[i].lock().subscribed.len() >= 2)
    })
    .await;
    let reconnects: Vec<Duration> =
        victims.iter().map(|&i| logs[i].lock().subscribed[1].0.duration_since(killed)).collect();
    eprintln!("reconnect (kill -9 → resubscribed on another node): {}", spread(reconnects));
    until("a leave for every member of the dead node", WAIT, || {
        presence_log.lock().iter().filter(|(_, kind, _)| *kind == "leave").count() >= GONE_MEMBERS
    })
    .await;
    let leaves: Vec<Duration> = presence_log
        .lock()
        .iter()
        .filter(|(_, kind, _)| *kind == "leave")
        .map(|(at, _, _)| at.duration_since(killed))
        .collect();
    eprintln!("lease expiry (kill -9 → leave push): {}", spread(leaves.clone()));
    let bound = LEASE + HEARTBEAT * 2 + Duration::from_millis(1500);
    assert!(leaves.iter().all(|&leave| leave <= bound), "a leave came later than {bound:?}: {leaves:?}");

    // Publish a little more after the turnover, then stop and compare.
    let tops_then: Vec<u64> =
        logs.iter().map(|log| log.lock().offsets.last().copied().unwrap_or(0)).collect();
    until("publications after the turnover", WAIT, || {
        logs.iter()
            .zip(&tops_then)
            .all(|(log, then)| log.lock().offsets.last().copied().unwrap_or(0) >= then + 3)
    })
    .await;
    stop_tx.send(true).unwrap();
    let mut tops = Vec::new();
    for publisher in publishers {
        tops.push(publisher.await.unwrap());
    }
    until("every client reaching its channel's top", WAIT * 2, || {
        (0..CLIENTS).all(|i| logs[i].lock().offsets.last().copied().unwrap_or(0) >= tops[i % CHANNELS])
    })
    .await;
    let mut expected = Vec::new();
    for c in 0..CHANNELS {
        expected.push(history(&survivor, &format!("big:s{c:02}")).await);
    }
    follow_stop_tx.send(Some(*tops.iter().max().unwrap())).unwrap();
    until("every raw follower reaching its channel's top", WAIT * 2, || {
        followers
            .iter()
            .enumerate()
            .all(|(f, seen)| seen.lock().offsets.last().copied().unwrap_or(0) >= tops[f % CHANNELS])
    })
    .await;
    for (f, seen) in followers.iter().enumerate() {
        let seen = seen.lock();
        let (epoch, wanted) = &expected[f % CHANNELS];
        assert_eq!(&seen.offsets, wanted, "raw follower {f}: every frame sent, once, equal to history");
        assert!(seen.epochs.iter().all(|e| e == epoch));
        assert_eq!(seen.recovered, [true], "raw follower {f}: one resume, recovered");
    }
    eprintln!(
        "{RAW_FOLLOWERS} raw followers of the dead node resumed elsewhere with no gap and no duplicate frame"
    );
    let published: u64 = tops.iter().sum();
    let mut lost = 0;
    let mut duplicated = 0;
    for (i, log) in logs.iter().enumerate() {
        let log = log.lock();
        let (epoch, wanted) = &expected[i % CHANNELS];
        assert_eq!(
            wanted,
            &(1..=tops[i % CHANNELS]).collect::<Vec<_>>(),
            "history of channel {}",
            i % CHANNELS
        );
        let unique: std::collections::BTreeSet<u64> = log.offsets.iter().copied().collect();
        duplicated += log.offsets.len() - unique.len();
        lost += wanted.iter().filter(|offset| !unique.contains(offset)).count();
        assert_eq!(&log.offsets, wanted, "client {i}: not exactly the history");
        assert!(log.epochs.iter().all(|e| e == epoch), "client {i}: another epoch");
        let resubscribes: Vec<Option<bool>> = log.subscribed.iter().skip(1).map(|(_, r)| *r).collect();
        assert!(resubscribes.iter().all(|r| *r == Some(true)), "client {i}: {resubscribes:?}");
        assert!(!log.ended, "client {i} stopped");
    }
    eprintln!(
        "{published} publications on {CHANNELS} channels, {} deliveries checked: lost {lost}, duplicated {duplicated}",
        logs.iter().map(|l| l.lock().offsets.len()).sum::<usize>()
    );

    // Presence: one leave per member of the dead node, none for the others,
    // and the listing exact.
    let log = presence_log.lock().clone();
    let mut leaves_by_user: BTreeMap<String, usize> = BTreeMap::new();
    for (_, kind, user) in &log {
        if *kind == "leave" {
            *leaves_by_user.entry(user.clone()).or_default() += 1;
        }
    }
    let gone: BTreeMap<String, usize> = (0..GONE_MEMBERS).map(|i| (format!("gone{i:02}"), 1)).collect();
    assert_eq!(leaves_by_user, gone, "exactly one leave per member of the dead node, none for the others");
    let mut present: Vec<String> = (0..STAYING_MEMBERS).map(|i| format!("stay{i:02}")).collect();
    present.insert(0, "observer".into());
    present.sort();
    for node in &nodes[..2] {
        assert_eq!(presence_users(&node.base(), "team:room").await, present);
    }
    observing.abort();
    drop(members);
    drop(clients);
}

// ---------------------------------------------------------------------------
// 2. The same user joining and leaving on two nodes at the same instant.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_user_joining_and_leaving_on_two_nodes_at_once_is_announced_once_each_time() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    const ROUNDS: usize = 100;
    let a = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let b = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let mut observer = raw(&a.ws_url(), Some(&token("observer", json!({})))).await;
    subscribe(&mut observer, "team:twin", None).await;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let user = token(&format!("twin{round:03}"), json!({}));
        let (url_a, url_b) = (a.ws_url(), b.ws_url());
        let (mut on_a, mut on_b) = tokio::join!(raw(&url_a, Some(&user)), raw(&url_b, Some(&user)));
        let subscribe = json!({"type": "subscribe", "channel": "team:twin"});
        let (ra, rb) = tokio::join!(on_a.command(subscribe.clone()), on_b.command(subscribe));
        assert!(ra.get("result").is_some() && rb.get("result").is_some(), "{ra} {rb}");
        let unsubscribe = json!({"type": "unsubscribe", "channel": "team:twin"});
        let (ra, rb) = tokio::join!(on_a.command(unsubscribe.clone()), on_b.command(unsubscribe));
        assert!(ra.get("result").is_some() && rb.get("result").is_some(), "{ra} {rb}");
    }
    // Sentinels: a join and a leave on each node after every round. Each
    // node applies and announces leaves in order, so once both sentinels'
    // leaves are seen, every earlier announcement has been made.
    for (node, name) in [(&a, "sentinel-a"), (&b, "sentinel-b")] {
        let mut conn = raw(&node.ws_url(), Some(&token(name, json!({})))).await;
        subscribe(&mut conn, "team:twin", None).await;
        let reply = conn.command(json!({"type": "unsubscribe", "channel": "team:twin"})).await;
        assert!(reply.get("result").is_some(), "{reply}");
    }
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut sentinels_left = 0;
    while sentinels_left < 2 {
        let push = observer.next_json().await.expect("the observer was closed");
        let Some(user) = push["user"].as_str() else { continue };
        match push["type"].as_str() {
            Some("join") => counts.entry(user.to_owned()).or_default().0 += 1,
            Some("leave") => {
                let entry = counts.entry(user.to_owned()).or_default();
                assert!(entry.0 > 0, "{user} left before it joined");
                entry.1 += 1;
                sentinels_left += usize::from(user.starts_with("sentinel"));
            }
            _ => {}
        }
    }
    eprintln!("{ROUNDS} rounds of a twin join and leave on two nodes in {:?}", started.elapsed());
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c != (1, 1)).collect();
    assert!(twice.is_empty(), "users not announced exactly once each way: {twice:?}");
    assert_eq!(counts.len(), ROUNDS + 2, "every round announced: {counts:?}");
    for node in [&a, &b] {
        assert_eq!(presence_users(&base_of(node), "team:twin").await, ["observer"]);
    }
}

// ---------------------------------------------------------------------------
// 3. Redis restarted under a node: epochs tell the truth.

/// What a node and its clients saw across a Redis restart.
struct AfterRestart {
    before: String,
    /// The epoch history has after the restart and one more publication.
    after: String,
    /// A fresh subscribe resuming from the last position seen before.
    resumed: Value,
    /// What the subscriber connected throughout got next: a publication or
    /// a close code.
    live: Result<Value, u16>,
    history: Vec<u64>,
}

/// Publishes 1..=5 (and `SAVE`s an RDB snapshot after 3 when `snapshot`),
/// kills Redis with `SIGKILL`, restarts it on the same port and directory,
/// publishes once more, and resumes from 5 on a fresh connection.
async fn restart_redis_under_a_node(persistence: Persistence, snapshot: bool) -> Option<AfterRestart> {
    let mut redis = RedisServer::start_with_or_skip(persistence)?;
    let node = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let base = base_of(&node);
    let mut live = raw(&node.ws_url(), None).await;
    subscribe(&mut live, "big:r", None).await;
    let mut before = String::new();
    for n in 1..=5 {
        let (status, reply) = api_publish(&base, "big:r", json!(n)).await;
        assert_eq!(status, 200, "{reply}");
        before = reply["epoch"].as_str().unwrap().to_owned();
        if snapshot && n == 3 {
            assert_eq!(redis.cli(&["SAVE"]), "OK");
        }
    }
    assert_eq!(offsets(&live.publications("big:r", 5).await), [1, 2, 3, 4, 5]);

    let restarted = Instant::now();
    redis.restart();
    let ready = until_ready_is(&base, 200, WAIT).await;
    let reply = publish_retrying(&base, "big:r", json!(6), "six").await;
    eprintln!(
        "{persistence:?}{}: ready {ready:?} and published {:?} after the restart; epoch {} → {}",
        if snapshot { " (older snapshot)" } else { "" },
        restarted.elapsed(),
        before,
        reply["epoch"]
    );
    let live = loop {
        match live.next().await {
            Ok(push) if push["type"] == "publication" => break Ok(push),
            Ok(_) => continue,
            Err(closed) => break Err(closed.code),
        }
    };
    match &live {
        Ok(push) => {
            eprintln!("  the connected subscriber got offset {} of epoch {}", push["offset"], push["epoch"])
        }
        Err(code) => eprintln!("  the connected subscriber was closed with {code}"),
    }
    let mut fresh = raw(&node.ws_url(), None).await;
    let since = json!({"epoch": before, "offset": 5});
    let resumed = subscribe(&mut fresh, "big:r", Some(since)).await;
    let (after, history) = history(&base, "big:r").await;
    node.stop().await;
    Some(AfterRestart { before, after, resumed, live, history })
}

/// What `/metrics` says of the engine while Redis is down and once it is
/// back: the store's and the node's gauges follow `/ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_ready_gauges_fall_while_redis_is_down_and_rise_when_it_is_back() {
    let Some(mut redis) = RedisServer::start_or_skip() else { return };
    let node = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let gauges = || async {
        let metrics = node.metrics().await;
        (metric_value(&metrics, "fanfare_store_up"), metric_value(&metrics, "fanfare_ready"))
    };
    assert_eq!(gauges().await, (1.0, 1.0));
    redis.kill();
    let down = Instant::now();
    loop {
        if gauges().await == (0.0, 0.0) {
            break;
        }
        assert!(down.elapsed() < WAIT, "the gauges still say up {:?} after Redis died", gauges().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("gauges down {:?} after Redis was killed", down.elapsed());
    redis.restart();
    let up = Instant::now();
    until_ready_is(&base_of(&node), 200, WAIT).await;
    assert_eq!(gauges().await, (1.0, 1.0), "back with /ready");
    eprintln!("gauges up {:?} after Redis restarted", up.elapsed());
    node.stop().await;
}

/// The checks shared by every restart that loses the stream.
fn assert_epoch_changed(outcome: &AfterRestart) {
    assert_ne!(outcome.after, outcome.before, "a new epoch");
    assert_eq!(outcome.resumed["recovered"], false, "never a silent gap: {}", outcome.resumed);
    assert_eq!(outcome.resumed["epoch"].as_str(), Some(outcome.after.as_str()));
    match &outcome.live {
        Err(code) => assert_eq!(*code, 4505, "closed with insufficient state"),
        Ok(push) => {
            assert_ne!(push["epoch"].as_str(), Some(outcome.before.as_str()), "explicitly new: {push}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_without_persistence_gives_a_new_epoch_and_no_silent_gap() {
    let Some(outcome) = restart_redis_under_a_node(Persistence::None, false).await else { return };
    assert_epoch_changed(&outcome);
    assert_eq!(outcome.history, [1], "the stream starts again under the new epoch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_with_aof_always_keeps_the_epoch_and_everything() {
    let Some(outcome) = restart_redis_under_a_node(Persistence::AofAlways, false).await else { return };
    assert_eq!(outcome.after, outcome.before, "same epoch");
    assert_eq!(outcome.history, [1, 2, 3, 4, 5, 6], "nothing lost");
    assert_eq!(outcome.resumed["recovered"], true, "{}", outcome.resumed);
    let live = outcome.live.expect("the connected subscriber is not closed");
    assert_eq!((live["offset"].as_u64(), live["epoch"].as_str()), (Some(6), Some(outcome.before.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_with_aof_everysec_gives_a_new_epoch() {
    let Some(outcome) = restart_redis_under_a_node(Persistence::AofEverySec, false).await else { return };
    assert_epoch_changed(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restored_from_an_older_snapshot_gives_a_new_epoch() {
    let Some(outcome) = restart_redis_under_a_node(Persistence::Rdb, true).await else { return };
    assert_epoch_changed(&outcome);
    assert_eq!(
        outcome.history,
        [1, 2, 3, 4],
        "the snapshot had 1..=3; offsets go on after them, under the new epoch"
    );
}

// ---------------------------------------------------------------------------
// 4. One node's link to Redis cut for 5 s while publishing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_for_5_s_notices_heals_and_its_subscribers_miss_nothing() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    const FOLLOWERS: usize = 4;
    let redis_addr: SocketAddr = format!("127.0.0.1:{}", redis.port()).parse().unwrap();
    let link = CutLink::start(redis_addr).await;
    let cut_off = TestServer::in_cluster(&link.redis_url(), NAMESPACES).await;
    let publisher = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let (cut_base, publisher_base) = (base_of(&cut_off), base_of(&publisher));

    let (stop_tx, stop) = watch::channel(None);
    let mut followers = Vec::new();
    for _ in 0..FOLLOWERS {
        let seen: Arc<Mutex<Followed>> = Arc::default();
        let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(follow(
            vec![cut_off.ws_url()],
            "big:cut".into(),
            stop.clone(),
            seen.clone(),
            subscribed,
        ));
        is_subscribed.await.unwrap();
        followers.push((task, seen));
    }
    let (publishing_tx, published, publishing_task) =
        // Every 2 ms: the 5 s cut leaves a gap of ~2,500, more than twice
        // the 1,024 frames of an outbox, so the heal must pace itself.
        publish_steadily(publisher_base.clone(), "big:cut", Duration::from_millis(2));
    let last_seen = |seen: &Mutex<Followed>| seen.lock().offsets.last().copied().unwrap_or(0);
    until("the followers seeing the stream", WAIT, || followers.iter().all(|(_, s)| last_seen(s) >= 20))
        .await;

    link.cut();
    let noticed = until_ready_is(&cut_base, 503, WAIT).await;
    let at_cut = last_seen(&followers[0].1);
    // The fault itself lasts 5 s: this sleep is its length, not a wait.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(noticed)).await;
    let delivered_while_cut = last_seen(&followers[0].1) - at_cut;
    let published_while_cut = published.load(Ordering::SeqCst) - at_cut;
    link.heal();
    let healed = Instant::now();
    let back = until_ready_is(&cut_base, 200, WAIT).await;
    let target = published.load(Ordering::SeqCst);
    let caught_up = until("the followers catching up with the publisher", WAIT * 2, || {
        followers.iter().all(|(_, s)| last_seen(s) >= target)
    })
    .await
        + back;
    publishing_tx.send(true).unwrap();
    let top = publishing_task.await.unwrap();
    stop_tx.send(Some(top)).unwrap();
    for (task, _) in &mut followers {
        tokio::time::timeout(WAIT * 2, task).await.expect("a follower never reached the top").unwrap();
    }
    let (epoch, wanted) = history(&base_of(&publisher), "big:cut").await;
    assert_eq!(wanted, (1..=top).collect::<Vec<_>>());
    eprintln!(
        "cut link: /ready 503 after {noticed:?}; while cut {published_while_cut} published, \
         {delivered_while_cut} delivered; /ready 200 {back:?} after the heal; every follower past offset \
         {target} {caught_up:?} after the heal; {top} publications in all (healed {:?} ago)",
        healed.elapsed()
    );
    for (i, (_, seen)) in followers.iter().enumerate() {
        let seen = seen.lock();
        // Closed (4505) or not, resumed or not: what it got equals history.
        assert!(seen.closes.iter().all(|&code| code == 4505), "follower {i}: {:?}", seen.closes);
        assert!(seen.recovered.iter().all(|&r| r), "follower {i}: a resume lost publications");
        assert_eq!(seen.offsets, wanted, "follower {i}: gap-free, no duplicates, equal to history");
        assert!(seen.epochs.iter().all(|e| *e == epoch));
        eprintln!("follower {i}: {} publications, closes {:?}", seen.offsets.len(), seen.closes);
    }
}

// ---------------------------------------------------------------------------
// 4b. One node silently partitioned from Redis (nothing closed) past its
//     lease: the probe must notice, a survivor removes its members, and
//     after the heal it records them again and heals its streams.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_silently_partitioned_from_redis_past_its_lease_notices_and_comes_back_whole() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    const FOLLOWERS: usize = 2;
    const MEMBERS: usize = 5;
    let redis_addr: SocketAddr = format!("127.0.0.1:{}", redis.port()).parse().unwrap();
    let link = CutLink::start(redis_addr).await;
    let stalled = TestServer::in_cluster(&link.redis_url(), NAMESPACES).await;
    let survivor = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let (stalled_base, survivor_base) = (base_of(&stalled), base_of(&survivor));

    let mut observer = raw(&survivor.ws_url(), Some(&token("observer", json!({})))).await;
    subscribe(&mut observer, "team:s", None).await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let mut conn = raw(&stalled.ws_url(), Some(&token(&format!("s{i}"), json!({})))).await;
        subscribe(&mut conn, "team:s", None).await;
        members.push(conn);
    }
    let users: Vec<String> = (0..MEMBERS).map(|i| format!("s{i}")).collect();
    expect_each_once(&mut observer, "join", &users).await;

    let (stop_tx, stop) = watch::channel(None);
    let mut followers = Vec::new();
    for _ in 0..FOLLOWERS {
        let seen: Arc<Mutex<Followed>> = Arc::default();
        let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(follow(
            vec![stalled.ws_url()],
            "big:stall".into(),
            stop.clone(),
            seen.clone(),
            subscribed,
        ));
        is_subscribed.await.unwrap();
        followers.push((task, seen));
    }
    let (publishing_tx, published, publishing_task) =
        publish_steadily(survivor_base.clone(), "big:stall", Duration::from_millis(10));
    let last_seen = |seen: &Mutex<Followed>| seen.lock().offsets.last().copied().unwrap_or(0);
    until("the followers seeing the stream", WAIT, || followers.iter().all(|(_, s)| last_seen(s) >= 10))
        .await;

    link.stall();
    let stalled_at = Instant::now();
    let noticing = {
        let base = stalled_base.clone();
        tokio::spawn(async move { until_ready_is(&base, 503, WAIT).await })
    };
    let leaves = expect_each_once(&mut observer, "leave", &users).await;
    let removed = stalled_at.elapsed();
    let noticed = noticing.await.unwrap();
    // The partition lasts 5 s in all: this sleep is its length, not a wait.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(stalled_at.elapsed())).await;
    link.heal();
    let healed = Instant::now();
    let coming_back = {
        let base = stalled_base.clone();
        tokio::spawn(async move { until_ready_is(&base, 200, WAIT * 2).await })
    };
    let joins = expect_each_once(&mut observer, "join", &users).await;
    let rejoined = healed.elapsed();
    let back = coming_back.await.unwrap();
    let target = published.load(Ordering::SeqCst);
    until("the followers catching up with the publisher", WAIT * 2, || {
        followers.iter().all(|(_, s)| last_seen(s) >= target)
    })
    .await;
    let caught_up = healed.elapsed();
    publishing_tx.send(true).unwrap();
    let top = publishing_task.await.unwrap();
    stop_tx.send(Some(top)).unwrap();
    for (task, _) in &mut followers {
        tokio::time::timeout(WAIT * 2, task).await.expect("a follower never reached the top").unwrap();
    }
    eprintln!(
        "silent partition: /ready 503 after {noticed:?}; its members' leaves after {} (all by {removed:?}); \
         after the heal /ready 200 in {back:?}, joins again {} (all by {rejoined:?}), followers past {target} \
         in {caught_up:?}; {top} publications",
        spread(leaves),
        spread(joins)
    );
    let (epoch, wanted) = history(&survivor_base, "big:stall").await;
    assert_eq!(wanted, (1..=top).collect::<Vec<_>>());
    for (i, (_, seen)) in followers.iter().enumerate() {
        let seen = seen.lock();
        assert!(seen.closes.iter().all(|&code| code == 4505), "follower {i}: {:?}", seen.closes);
        assert!(seen.recovered.iter().all(|&r| r), "follower {i}: a resume lost publications");
        assert!(seen.epochs.iter().all(|e| *e == epoch));
        assert_eq!(seen.offsets, wanted, "follower {i}: gap-free, no duplicates, equal to history");
        eprintln!("follower {i}: {} publications, closes {:?}", seen.offsets.len(), seen.closes);
    }
    let mut expected = vec!["observer".to_owned()];
    expected.extend(users);
    expected.sort();
    for base in [&survivor_base, &stalled_base] {
        assert_eq!(presence_users(base, "team:s").await, expected);
    }
    drop(members);
}

/// Reads presence pushes until every user in `users` had one of `kind`;
/// fails on a second one for a user, or on the other kind. Returns how
/// long each took.
async fn expect_each_once(observer: &mut RawConn, kind: &str, users: &[String]) -> Vec<Duration> {
    let start = Instant::now();
    let mut seen: HashMap<String, Duration> = HashMap::new();
    while seen.len() < users.len() {
        let push = observer.next_json().await.expect("the observer was closed");
        let (Some(kind_seen), Some(user)) = (push["type"].as_str(), push["user"].as_str()) else { continue };
        assert_eq!(kind_seen, kind, "{push}");
        assert!(users.iter().any(|u| u == user), "{push}");
        assert!(seen.insert(user.to_owned(), start.elapsed()).is_none(), "a second {kind} for {user}");
    }
    seen.into_values().collect()
}

// ---------------------------------------------------------------------------
// 5. A node paused longer than its lease.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paused_past_its_lease_has_its_members_removed_then_records_them_again() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    const MEMBERS: usize = 10;
    let survivor = Node::spawn(&redis.url()).await;
    let paused = Node::spawn(&redis.url()).await;
    let mut observer = raw(&survivor.ws_url(), Some(&token("observer", json!({})))).await;
    subscribe(&mut observer, "team:p", None).await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let mut conn = raw(&paused.ws_url(), Some(&token(&format!("m{i}"), json!({})))).await;
        subscribe(&mut conn, "team:p", None).await;
        members.push(conn);
    }
    let users: Vec<String> = (0..MEMBERS).map(|i| format!("m{i}")).collect();

    expect_each_once(&mut observer, "join", &users).await;

    paused.signal("STOP");
    let stopped = Instant::now();
    let leaves = expect_each_once(&mut observer, "leave", &users).await;
    eprintln!("paused node: leave pushes after SIGSTOP: {}", spread(leaves.clone()));
    assert!(leaves.iter().all(|&l| l >= LEASE - HEARTBEAT), "not before the lease expired: {leaves:?}");
    let mut expected = vec!["observer".to_owned()];
    assert_eq!(presence_users(&survivor.base(), "team:p").await, expected);

    paused.signal("CONT");
    let resumed = Instant::now();
    let joins = expect_each_once(&mut observer, "join", &users).await;
    eprintln!(
        "paused node: paused {:?}; join pushes after SIGCONT: {}",
        resumed.duration_since(stopped),
        spread(joins)
    );
    // A marker after everything: no other presence push before it.
    let (status, reply) = api_publish(&survivor.base(), "team:p", json!("marker")).await;
    assert_eq!(status, 200, "{reply}");
    let push = observer.next_json().await.expect("the observer was closed");
    assert_eq!(push["type"], "publication", "an extra presence push: {push}");
    expected.extend(users);
    expected.sort();
    for node in [&survivor, &paused] {
        assert_eq!(presence_users(&node.base(), "team:p").await, expected);
    }
    drop(members);
}

// ---------------------------------------------------------------------------
// 6. Publishing and subscribing while Redis is down.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_publish_and_subscribe_fail_retryably_and_nothing_is_wedged_after() {
    let Some(mut redis) = RedisServer::start_or_skip() else { return };
    let node = TestServer::in_cluster(&redis.url(), NAMESPACES).await;
    let base = base_of(&node);
    let mut before = raw(&node.ws_url(), None).await;
    subscribe(&mut before, "big:before", None).await;
    let (status, reply) = api_publish(&base, "big:before", json!(1)).await;
    assert_eq!(status, 200, "{reply}");
    let epoch = reply["epoch"].clone();
    assert_eq!(offsets(&before.publications("big:before", 1).await), [1]);
    let mut conn = raw(&node.ws_url(), None).await;

    redis.kill();
    let down = until_ready_is(&base, 503, WAIT).await;
    let asked = Instant::now();
    let (status, reply) = api_publish(&base, "big:down", json!(1)).await;
    let publish_answer = asked.elapsed();
    assert_eq!(status, 503, "{reply}");
    assert_eq!(
        (reply["error"]["code"].as_str(), reply["error"]["retry"].as_bool()),
        (Some("unavailable"), Some(true))
    );
    let asked = Instant::now();
    let refused = conn.command(json!({"type": "subscribe", "channel": "big:down"})).await;
    let subscribe_answer = asked.elapsed();
    assert_eq!(refused["error"]["retry"], true, "{refused}");
    assert!(
        matches!(refused["error"]["code"].as_str(), Some("unavailable")),
        "the protocol's code for a failed dependency: {refused}"
    );
    eprintln!(
        "redis down: /ready 503 after {down:?}; publish answered 503 in {publish_answer:?}, \
         subscribe refused in {subscribe_answer:?}: {refused}"
    );

    let restarted = Instant::now();
    redis.restart();
    let ready = until_ready_is(&base, 200, WAIT).await;
    // The same connection subscribes again, to the channel refused before.
    let reply = subscribe_retrying(&mut conn, "big:down").await;
    let subscribed = restarted.elapsed();
    let published = publish_retrying(&base, "big:down", json!("after"), "after").await;
    let pushed = conn.publications("big:down", 1).await;
    assert_eq!(pushed[0]["data"], "after");
    assert_eq!(pushed[0]["offset"], published["offset"]);
    assert_eq!(pushed[0]["epoch"], reply["epoch"]);
    eprintln!(
        "redis back: /ready 200 after {ready:?}, subscribed after {subscribed:?}, a publication delivered \
         {:?} after the restart",
        restarted.elapsed()
    );
    // Redis came back empty: the subscriber from before learns it.
    let (code, push) = before.until_closed().await;
    assert_eq!(code, 4505, "insufficient state: the stream of epoch {epoch} is gone");
    assert_eq!(push.expect("a disconnect push first")["reconnect"], true);
    node.stop().await;
}

/// Subscribes, retrying while the answer is a retryable error, up to [`WAIT`].
async fn subscribe_retrying(conn: &mut RawConn, channel: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
        if let Some(result) = reply.get("result") {
            return result.clone();
        }
        assert_eq!(reply["error"]["retry"], true, "{reply}");
        assert!(Instant::now() < deadline, "subscribing did not work again: {reply}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
