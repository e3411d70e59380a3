//! Webhooks that survive restarts (the real binary): on a single node, a
//! batch in retry when the process is killed, and a `channel_vacated`
//! still held when it is stopped, are delivered by the next start; in a
//! cluster, a killed node's batch in retry is delivered by the node that
//! claims it, and a stopped node's by another. Each with the event ids it
//! had.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::cluster_failures::Node;
use crate::process::{signal, spawn};

const WAIT: Duration = Duration::from_secs(20);

/// A receiver that answers 500 while `failing`, reporting every POST.
struct Receiver {
    url: String,
    failing: Arc<AtomicBool>,
    posts: mpsc::UnboundedReceiver<(u16, Value)>,
}

impl Receiver {
    async fn start() -> Self {
        type Shared = (Arc<AtomicBool>, mpsc::UnboundedSender<(u16, Value)>);
        async fn receive(
            axum::extract::State((failing, posts)): axum::extract::State<Shared>,
            body: Bytes,
        ) -> StatusCode {
            let status = if failing.load(Ordering::SeqCst) { 500 } else { 200 };
            let _ = posts.send((status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
            StatusCode::from_u16(status).unwrap()
        }
        let failing = Arc::new(AtomicBool::new(true));
        let (tx, posts) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state((failing.clone(), tx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, failing, posts }
    }

    /// The next POST's status and events.
    async fn next(&mut self) -> (u16, Vec<Value>) {
        let (status, body) =
            tokio::time::timeout(WAIT, self.posts.recv()).await.expect("a POST in time").unwrap();
        (status, body["events"].as_array().cloned().unwrap_or_default())
    }

    /// POSTs until one is answered 200; its events.
    async fn next_delivered(&mut self) -> Vec<Value> {
        loop {
            if let (200, events) = self.next().await {
                return events;
            }
        }
    }
}

/// The Pusher app and its webhook, as TOML tables.
fn app_toml(hook_url: &str) -> String {
    format!(
        "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n\n\
         [[pusher.apps.webhooks]]\nurl = \"{hook_url}\"\nevents = [\"channel_occupied\", \"channel_vacated\"]\n"
    )
}

fn write_config(path: &Path, hook_url: &str) {
    std::fs::write(path, format!("api_key = \"0123456789abcdef0123\"\n\n{}", app_toml(hook_url))).unwrap();
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Pusher connection subscribed to `channel`.
async fn subscribed(addr: std::net::SocketAddr, channel: &str) -> Socket {
    let url = format!("ws://{addr}/app/key-1?protocol=7&client=js&version=8.6.0");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    socket.send(Message::text(subscribe.to_string())).await.unwrap();
    let succeeded = async {
        while let Some(Ok(message)) = socket.next().await {
            if message.to_text().unwrap_or("").contains("pusher_internal:subscription_succeeded") {
                return;
            }
        }
        panic!("the socket closed before the subscription succeeded");
    };
    tokio::time::timeout(WAIT, succeeded).await.unwrap();
    socket
}

fn names_and_ids(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["id"].as_str().unwrap().to_owned()))
        .collect()
}

/// A node (the real binary) with the app's webhook to `receiver`
/// (answering 500), and a subscriber whose `channel_occupied` was refused
/// once.
struct OneNode {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    data: std::path::PathBuf,
    child: tokio::process::Child,
    socket: Socket,
    /// The refused POST's events.
    refused: Vec<Value>,
}

async fn one_node_one_refused(receiver: &mut Receiver) -> OneNode {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fanfare.toml");
    write_config(&config, &receiver.url);
    let data = dir.path().join("data");
    let (child, addr, _log) = spawn(&config, &data).await;
    let socket = subscribed(addr, "news").await;
    let (status, refused) = receiver.next().await;
    assert_eq!((status, refused[0]["name"].as_str()), (500, Some("channel_occupied")));
    OneNode { _dir: dir, config, data, child, socket, refused }
}

#[tokio::test]
async fn a_batch_in_retry_when_the_process_is_killed_is_delivered_after_the_restart() {
    let mut receiver = Receiver::start().await;
    let OneNode { _dir, config, data, mut child, socket: _socket, refused } =
        one_node_one_refused(&mut receiver).await;
    child.start_kill().unwrap();
    tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap();

    receiver.failing.store(false, Ordering::SeqCst);
    let (mut child, _addr, _log) = spawn(&config, &data).await;
    let delivered = receiver.next_delivered().await;
    assert_eq!(names_and_ids(&delivered), names_and_ids(&refused), "the same event, with its id");
    let pending = data.join("webhooks/pending");
    crate::support::eventually("the journal emptied", || async {
        std::fs::read_dir(&pending).unwrap().count() == 0
    })
    .await;
    signal(&child, "-TERM");
    assert!(tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap().success());
}

#[tokio::test]
async fn a_held_vacated_event_at_a_clean_stop_is_delivered_after_the_restart() {
    let mut receiver = Receiver::start().await;
    let OneNode { _dir, config, data, mut child, socket, refused } =
        one_node_one_refused(&mut receiver).await;
    // The channel empties: channel_vacated is held for 3 s, and the stop
    // comes before it is sent.
    drop(socket);
    signal(&child, "-TERM");
    assert!(tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap().success());

    receiver.failing.store(false, Ordering::SeqCst);
    let (mut child, _addr, _log) = spawn(&config, &data).await;
    let mut delivered = Vec::new();
    while delivered.len() < 2 {
        delivered.extend(names_and_ids(&receiver.next_delivered().await));
    }
    delivered.sort();
    let occupied = names_and_ids(&refused).remove(0);
    assert_eq!(delivered[0], occupied, "channel_occupied, with the id of its refused POST");
    assert_eq!(delivered[1].0, "channel_vacated");
    signal(&child, "-TERM");
    assert!(tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap().success());
}

/// Until a delivered POST carries `event` (its name and id).
async fn until_delivered(receiver: &mut Receiver, event: &(String, String)) {
    loop {
        if names_and_ids(&receiver.next_delivered().await).contains(event) {
            return;
        }
    }
}

/// Two nodes with the app's webhook to `receiver` (answering 500), and a
/// subscriber on the first, whose `channel_occupied` was refused once.
async fn two_nodes_one_refused(redis: &fanfare_testkit::RedisServer, receiver: &mut Receiver) -> Cluster {
    let first = Node::spawn_with(&redis.url(), &app_toml(&receiver.url)).await;
    let second = Node::spawn_with(&redis.url(), &app_toml(&receiver.url)).await;
    let socket = subscribed(first.addr(), "news").await;
    let (status, refused) = receiver.next().await;
    assert_eq!((status, refused[0]["name"].as_str()), (500, Some("channel_occupied")));
    let occupied = names_and_ids(&refused).remove(0);
    Cluster { first, second, socket, occupied }
}

struct Cluster {
    first: Node,
    second: Node,
    socket: Socket,
    /// The refused event's name and id.
    occupied: (String, String),
}

#[tokio::test]
async fn a_killed_nodes_batch_in_retry_is_delivered_by_the_node_that_claims_it() {
    let Some(redis) = fanfare_testkit::RedisServer::start_or_skip() else { return };
    let mut receiver = Receiver::start().await;
    let Cluster { first: mut victim, second: mut survivor, socket: _socket, occupied } =
        two_nodes_one_refused(&redis, &mut receiver).await;
    assert_eq!(redis.cli(&["EXISTS", "fanfare:{webhooks}:journal_released"]), "0");
    victim.kill().await;

    receiver.failing.store(false, Ordering::SeqCst);
    // The survivor claims the victim once its lease (2 s) runs out.
    until_delivered(&mut receiver, &occupied).await;
    survivor.stop().await;
}

#[tokio::test]
async fn a_stopped_nodes_batch_in_retry_is_delivered_by_another_node() {
    let Some(redis) = fanfare_testkit::RedisServer::start_or_skip() else { return };
    let mut receiver = Receiver::start().await;
    let Cluster { first: mut leaving, second: mut staying, socket, occupied } =
        two_nodes_one_refused(&redis, &mut receiver).await;
    drop(socket);
    leaving.stop().await;

    receiver.failing.store(false, Ordering::SeqCst);
    // Released at the stop; the other node adopts within 5 s.
    until_delivered(&mut receiver, &occupied).await;
    staying.stop().await;
}
