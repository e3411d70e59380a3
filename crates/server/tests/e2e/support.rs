//! Starting real servers for the end-to-end tests, and talking to them over
//! real sockets: the Rust client, a raw WebSocket, and HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use fanfare::config::{self, ServeArgs};
use fanfare::server::{self, AppState};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const API_KEY: &str = "test-api-key-0123456789";
pub const JWT_SECRET: &str = "test-jwt-secret-that-is-long-enough";
/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server running in this process on 127.0.0.1:0.
pub struct TestServer {
    pub addr: SocketAddr,
    pub app: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Settings every test server shares; `extra` is appended TOML. The store
/// is `memory://` unless `extra` starts a `[cluster]`, whose Redis is then
/// the store.
fn toml_for(dir: &std::path::Path, extra: &str) -> String {
    let store = if extra.contains("[cluster]") { "" } else { "[store]\nurl = \"memory://\"" };
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{dir}"
api_key = "{API_KEY}"
shutdown_grace = "5s"
{store}
[auth]
allow_anonymous = true
jwt_algorithm = "HS256"
jwt_secret = "{JWT_SECRET}"
{extra}
"#,
        dir = dir.display()
    )
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config("").await
    }

    /// Starts with extra TOML (namespaces, limits …) after the shared part.
    pub async fn with_config(extra: &str) -> Self {
        Self::with_settings(extra, |_| {}).await
    }

    /// Starts with extra TOML, then `adjust` on the loaded settings (for
    /// top-level keys, which TOML appended after a table cannot set).
    pub async fn with_settings(extra: &str, adjust: impl FnOnce(&mut config::Settings)) -> Self {
        Self::with_engines(extra, adjust, |_| {}).await
    }

    /// [`with_settings`](Self::with_settings), then `adjust_engines` on the
    /// opened engines (a cluster node's timings).
    pub async fn with_engines(
        extra: &str,
        adjust: impl FnOnce(&mut config::Settings),
        adjust_engines: impl FnOnce(&mut fanfare::engines::Engines),
    ) -> Self {
        Self::start_with(extra, adjust, adjust_engines, |_| {}).await
    }

    /// [`with_config`](Self::with_config), with the server's webhook
    /// timings adjusted (short retries).
    pub async fn with_webhooks(
        extra: &str,
        adjust_webhooks: impl FnOnce(&mut fanfare::pusher::webhooks::WebhookOptions),
    ) -> Self {
        Self::start_with(extra, |_| {}, |_| {}, adjust_webhooks).await
    }

    async fn start_with(
        extra: &str,
        adjust: impl FnOnce(&mut config::Settings),
        adjust_engines: impl FnOnce(&mut fanfare::engines::Engines),
        adjust_webhooks: impl FnOnce(&mut fanfare::pusher::webhooks::WebhookOptions),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fanfare.toml");
        std::fs::write(&path, toml_for(dir.path(), extra)).unwrap();
        let args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        let mut settings = config::load(&args).unwrap();
        adjust(&mut settings);
        let mut engines = fanfare::engines::open(&settings).await.unwrap();
        adjust_engines(&mut engines);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = server::build_with(settings, API_KEY.to_string(), engines, adjust_webhooks).unwrap();
        app.hub.heartbeat().await;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        Self { addr, app, shutdown: Some(tx), task: Some(task), _dir: dir }
    }

    /// A node of the cluster on the Redis at `redis_url`, with a short lease
    /// (2 s, heartbeat 500 ms) so that failures show within a test, and
    /// extra TOML after the cluster settings.
    pub async fn in_cluster(redis_url: &str, extra: &str) -> Self {
        let cluster =
            format!("[cluster]\nurl = \"{redis_url}\"\nnode_lease = \"2s\"\nheartbeat = \"500ms\"\n");
        Self::with_config(&format!("{extra}\n{cluster}")).await
    }

    /// [`in_cluster`](Self::in_cluster) with the hub's cluster options
    /// adjusted (the webhook event hold).
    pub async fn in_cluster_with(
        redis_url: &str,
        extra: &str,
        adjust: impl FnOnce(&mut fanfare_hub::ClusterOptions),
    ) -> Self {
        let cluster =
            format!("[cluster]\nurl = \"{redis_url}\"\nnode_lease = \"2s\"\nheartbeat = \"500ms\"\n");
        Self::with_engines(
            &format!("{extra}\n{cluster}"),
            |_| {},
            |engines| {
                if let Some((_, options)) = engines.cluster.as_mut() {
                    adjust(options);
                }
            },
        )
        .await
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn client_options(&self) -> fanfare_client::ClientOptions {
        let mut options = fanfare_client::ClientOptions::new(self.ws_url());
        options.backoff =
            fanfare_client::Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200) };
        options
    }

    pub async fn client(&self) -> fanfare_client::Client {
        fanfare_client::Client::connect(self.client_options()).await.unwrap()
    }

    pub async fn client_as(&self, token: String) -> fanfare_client::Client {
        let mut options = self.client_options();
        options.token = Some(token);
        fanfare_client::Client::connect(options).await.unwrap()
    }

    /// `POST /api/publish` with the API key; returns (status, body).
    pub async fn publish(&self, channel: &str, data: Value) -> (u16, Value) {
        self.post("/api/publish", json!({ "channel": channel, "data": data })).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = http().post(self.url(path)).bearer_auth(API_KEY).json(&body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// The node's `/metrics` text.
    pub async fn metrics(&self) -> String {
        http().get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = http().get(self.url(path_and_query)).bearer_auth(API_KEY).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// Begins the graceful shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap().unwrap();
        }
    }

    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap()
    }
}

/// The address in the binary's `fanfare listening on …` line, read from its
/// stdout; the lines before it (the first start's banner) go to `before`.
pub async fn listening_addr(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    mut before: impl FnMut(String),
) -> SocketAddr {
    let read = async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the server exited before listening");
            if let Some(addr) = line.strip_prefix("fanfare listening on ") {
                return addr.trim().parse::<SocketAddr>().unwrap();
            }
            before(line);
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("the server did not start in time")
}

/// Waits until `check` holds, polling; fails after [`WAIT`] (for state the server reaches asynchronously, such as counts reported to the cluster's engine).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Prometheus text: the value of an unlabelled metric.
pub fn metric_value(metrics: &str, name: &str) -> f64 {
    let line = metrics.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
    let line = line.unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"));
    line[name.len()..].trim().parse().unwrap()
}

/// A client for the plain-HTTP test servers. It trusts no certificate
/// authority: loading the system's roots (as a default client does) costs
/// milliseconds per client, and tests build one per request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).tls_certs_only([]).build().unwrap()
}

/// An HS256 token for `sub` with extra claims, valid for an hour unless
/// the claims say otherwise.
pub fn token(sub: &str, extra: Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = json!({ "sub": sub, "exp": now + 3600 });
    if let (Some(map), Value::Object(more)) = (claims.as_object_mut(), extra) {
        map.extend(more);
    }
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

/// A WebSocket spoken to by hand, for protocol-level assertions.
pub struct RawConn {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// How a raw connection ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
}

impl RawConn {
    pub async fn open(server: &TestServer) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
        Self::from_socket(socket)
    }

    pub fn from_socket(socket: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self { socket, next_id: 0 }
    }

    /// Opens and sends `connect` (anonymous or with a token), expecting success.
    pub async fn connected(server: &TestServer, token: Option<&str>) -> Self {
        let mut conn = Self::open(server).await;
        let reply = conn.command(json!({"type": "connect", "token": token})).await;
        assert!(reply.get("result").is_some(), "connect failed: {reply}");
        conn
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    /// Sends a command with a fresh id and returns its reply, skipping pushes.
    pub async fn command(&mut self, mut command: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = json!(id);
        self.send_text(&command.to_string()).await;
        loop {
            let message = self.next_json().await.expect("connection closed before the reply");
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// The next JSON frame, or the close code when the server closed.
    pub async fn next(&mut self) -> Result<Value, Closed> {
        loop {
            let message =
                tokio::time::timeout(WAIT, self.socket.next()).await.expect("timed out waiting for a frame");
            match message {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(Closed { code: frame.map_or(1005, |f| u16::from(f.code)) });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    eprintln!("socket error: {e}");
                    return Err(Closed { code: 1006 });
                }
                None => return Err(Closed { code: 1006 }),
            }
        }
    }

    pub async fn next_json(&mut self) -> Option<Value> {
        self.next().await.ok()
    }

    /// Reads until the server closes; returns the close code and the
    /// `disconnect` push if one came first.
    pub async fn until_closed(&mut self) -> (u16, Option<Value>) {
        let mut disconnect = None;
        loop {
            match self.next().await {
                Ok(message) if message["type"] == "disconnect" => disconnect = Some(message),
                Ok(_) => {}
                Err(Closed { code }) => return (code, disconnect),
            }
        }
    }

    /// Collects `n` publication pushes of `channel`, returning their offsets.
    pub async fn publications(&mut self, channel: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let message = self.next_json().await.expect("closed while waiting for publications");
            if message["type"] == "publication" && message["channel"] == channel {
                out.push(message);
            }
        }
        out
    }
}

pub fn offsets(publications: &[Value]) -> Vec<u64> {
    publications.iter().map(|p| p["offset"].as_u64().unwrap()).collect()
}
