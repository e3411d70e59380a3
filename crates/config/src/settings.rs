//! The validated configuration: the types the rest of the server uses.
//!
//! Built once by `validate/`; every value here has been checked, so code
//! that reads it never re-validates. Secrets are redacted from `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fanfare_hub::OutboxLimits;

use super::admission::Admission;
use super::kinds::{Durability, JwtAlgorithm, LogFormat};
use super::namespaces::Namespaces;
use super::pusher::PusherSettings;
use super::webhooks::ServerWebhookSettings;

/// The whole configuration of one server.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// HTTP API and WebSocket, on one port.
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Bearer key for the HTTP API. `None`: the serve command generates
    /// one on first start and keeps it in `data_dir/api_key`
    /// (see `data_dir/api_key.rs`).
    pub api_key: Option<String>,
    /// How long SIGTERM waits for clients to leave before exiting.
    pub shutdown_grace: Duration,
    /// `TCP_NODELAY` on every accepted connection: each write leaves at
    /// once. Off, the kernel's Nagle algorithm holds small writes while
    /// earlier data is unacknowledged: fewer packets under load, but a
    /// delivery can wait for the client's delayed ACK (`docs/operations.md`).
    pub tcp_nodelay: bool,
    /// Threads that run connections, fan-out and the HTTP API; 0: one per
    /// CPU core. Fewer threads mean less cross-core coordination (wakeups,
    /// shared counters) per delivery, and less parallelism.
    pub worker_threads: usize,
    /// A tracing `EnvFilter` directive, already checked to parse.
    pub log_filter: String,
    /// `log.format`.
    pub log_format: LogFormat,
    pub store: StoreSettings,
    /// The cluster this node joins; `None`: a single node.
    pub cluster: Option<ClusterSettings>,
    /// `[tls]`: the listener's certificate and the webhooks' extra roots.
    pub tls: TlsSettings,
    pub limits: Limits,
    /// Handshake rates, connections per IP and per user, trusted proxies
    /// (`[limits]` keys too).
    pub admission: Admission,
    pub auth: AuthSettings,
    pub namespaces: Namespaces,
    /// Pusher apps. Empty: the serve command generates one on first start
    /// (see `data_dir/pusher_app.rs`).
    pub pusher: PusherSettings,
    /// `[[webhooks]]`: the server's own webhooks (moderators' actions,
    /// refused publications).
    pub webhooks: Vec<ServerWebhookSettings>,
    /// `[members]`: members channels' limits and the feed.
    pub members: crate::MemberSettings,
    /// The file the configuration was read from, if any.
    pub config_file: Option<PathBuf>,
    /// `fanfare serve --demo`: the demos at `/demo/` and their token
    /// endpoint (a flag, never a key; `listen` is then a loopback address).
    pub demo: bool,
}

impl Default for Settings {
    /// What a server started with no file, no variables and no flags uses.
    fn default() -> Self {
        let data_dir = PathBuf::from("./fanfare-data");
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 6001)),
            store: StoreSettings {
                kind: StoreKind::Embedded(data_dir.join("store")),
                durability: Durability::Fsync,
            },
            data_dir,
            cluster: None,
            tls: TlsSettings::default(),
            api_key: None,
            shutdown_grace: Duration::from_secs(30),
            tcp_nodelay: true,
            worker_threads: 0,
            log_filter: "info,fjall=warn,lsm_tree=warn".to_owned(),
            log_format: LogFormat::Text,
            limits: Limits::default(),
            admission: Admission::default(),
            auth: AuthSettings::default(),
            namespaces: Namespaces::default(),
            pusher: PusherSettings::default(),
            webhooks: Vec::new(),
            members: crate::MemberSettings::default(),
            config_file: None,
            demo: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub kind: StoreKind,
    pub durability: Durability,
}

/// Where history lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded store, in this directory.
    Embedded(PathBuf),
    /// In memory: lost on restart (tests, caches).
    Memory,
    /// The cluster's Redis (always the same URL as `cluster.url`: its
    /// append script publishes to the cluster's pub/sub).
    Redis(String),
}

impl fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreKind::Embedded(path) => f.debug_tuple("Embedded").field(path).finish(),
            StoreKind::Memory => f.write_str("Memory"),
            StoreKind::Redis(url) => f.debug_tuple("Redis").field(&redact_url_password(url)).finish(),
        }
    }
}

/// `[tls]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Serve `https://` and `wss://` (only) with this certificate; `None`:
    /// plain HTTP and `ws://`.
    pub certificate: Option<CertificateFiles>,
    /// Root certificates (PEM) trusted for `https://` webhook URLs besides
    /// the system's: a private CA's.
    pub webhook_ca_file: Option<PathBuf>,
}

/// A certificate chain and its private key, PEM files read at start and
/// again at each SIGHUP (so a renewed certificate is served without a
/// restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The server's certificate first, then the intermediates.
    pub cert_file: PathBuf,
    /// PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key_file: PathBuf,
}

/// A node of a cluster (`docs/cluster.md`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The shared engine: `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// The address this node is reached at, listed by `/api/nodes`.
    pub advertise: Option<String>,
    /// A node silent for this long is dead: a survivor removes its members.
    pub node_lease: Duration,
    /// How often a node renews its lease.
    pub heartbeat: Duration,
}

impl ClusterSettings {
    /// The URL with any password replaced, for logs and `config check`.
    pub fn url_redacted(&self) -> String {
        redact_url_password(&self.url)
    }
}

impl fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("url", &self.url_redacted())
            .field("advertise", &self.advertise)
            .field("node_lease", &self.node_lease)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// `redis://user:secret@host` → `redis://user:<redacted>@host`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{}@{host}", crate::render::REDACTED),
        None => format!("{scheme}://{}@{host}", crate::render::REDACTED),
    }
}

/// Limits that protect the server from any one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest WebSocket frame (and so message) accepted from a client.
    pub max_frame_bytes: usize,
    pub max_channels_per_connection: usize,
    /// Commands (native) or messages (Pusher) a connection may send per
    /// second, with bursts of as many; more are refused with `rate_limited`.
    pub max_commands_per_second: usize,
    /// Frames queued per connection; overflow disconnects the slow consumer.
    pub outbox_frames: usize,
    /// Bytes queued per connection; overflow disconnects the slow consumer.
    pub outbox_bytes: usize,
    /// Time a client has to send `connect` after the WebSocket opens.
    pub handshake_timeout: Duration,
    pub ping_interval: Duration,
    /// A connection from which nothing (pong or any frame) arrived within
    /// `ping_interval + pong_timeout` is closed.
    pub pong_timeout: Duration,
    /// Most publications one history read returns.
    pub max_history_read: usize,
    pub max_http_body_bytes: usize,
    /// WebSocket connections this node holds at most; a further upgrade is
    /// answered 503. 0: the open-file limit less [`FILE_HEADROOM`].
    pub max_connections: usize,
    /// The share of `max_connections`, in percent (1–100), from which
    /// `/ready` answers 503 (the load balancer sends new connections
    /// elsewhere; open ones stay).
    pub ready_below_percent: u8,
}

/// Open files kept for everything but connections (the store, Redis,
/// HTTP requests, logs) when `max_connections` comes from the open-file
/// limit, and the margin the start-up warning asks for.
pub const FILE_HEADROOM: usize = 1024;

impl Limits {
    /// The outbox limits in the hub's terms.
    pub fn outbox(&self) -> OutboxLimits {
        OutboxLimits { max_frames: self.outbox_frames, max_bytes: self.outbox_bytes }
    }

    /// How long a connection may stay silent before it is closed.
    pub fn idle_timeout(&self) -> Duration {
        self.ping_interval + self.pong_timeout
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_channels_per_connection: 128,
            max_commands_per_second: 100,
            outbox_frames: 1024,
            outbox_bytes: 4 << 20,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            max_history_read: 1000,
            max_http_body_bytes: 1 << 20,
            max_connections: 0,
            ready_below_percent: 90,
        }
    }
}

/// How connections authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Whether a client may connect without a token.
    pub allow_anonymous: bool,
    /// How tokens are verified; `None`: no key configured, every token is
    /// refused (anonymous connections still work if allowed).
    pub jwt: Option<JwtSettings>,
    /// The claim listing the channels a token grants (`ns:*` for a whole
    /// namespace), used by namespaces with `subscribe = "token_claim"`.
    pub channels_claim: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self { allow_anonymous: true, jwt: None, channels_claim: "channels".to_owned() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub algorithm: JwtAlgorithm,
    pub key: JwtKey,
    /// When set, tokens must carry this `aud`; when not, `aud` is ignored.
    pub audience: Option<String>,
    /// When set, tokens must carry this `iss`; when not, `iss` is ignored.
    pub issuer: Option<String>,
}

/// The key tokens are verified with.
#[derive(Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// HMAC secret (HS256).
    Secret(String),
    /// PEM public key (RS256, ES256), with the file it was read from.
    PublicKeyPem { pem: String, file: Option<PathBuf> },
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKey::Secret(_) => f.write_str("Secret(<redacted>)"),
            JwtKey::PublicKeyPem { file, .. } => {
                f.debug_struct("PublicKeyPem").field("file", file).finish_non_exhaustive()
            }
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("worker_threads", &self.worker_threads)
            .field("log_filter", &self.log_filter)
            .field("log_format", &self.log_format)
            .field("store", &self.store)
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("admission", &self.admission)
            .field("auth", &self.auth)
            .field("namespaces", &self.namespaces)
            .field("pusher", &self.pusher)
            .field("webhooks", &self.webhooks)
            .field("config_file", &self.config_file)
            .field("demo", &self.demo)
            .finish()
    }
}

/// Where the HTTP API key generated on first start is kept in the data
/// directory (the server writes it; `fanfare config check` names it).
pub fn api_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api_key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let settings = Settings {
            api_key: Some("api-key-that-must-not-leak".to_owned()),
            auth: AuthSettings {
                jwt: Some(JwtSettings {
                    algorithm: JwtAlgorithm::Hs256,
                    key: JwtKey::Secret("jwt-secret-that-must-not-leak".to_owned()),
                    audience: None,
                    issuer: None,
                }),
                ..AuthSettings::default()
            },
            ..Settings::default()
        };
        let debug = format!("{settings:?}");
        assert!(!debug.contains("must-not-leak"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }
}
