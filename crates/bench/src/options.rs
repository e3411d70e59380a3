//! What a run is asked to do ([`BenchOptions`]) and the checked form the
//! scenarios use ([`Plan`]): one step from raw to validated, so no
//! scenario re-checks an option.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::BenchError;

/// Most events in one Pusher `batch_events` request (Pusher's own limit).
pub const PUSHER_BATCH_MAX: usize = 10;
/// Added to `--duration` for the hard timeout when none is given.
const DEFAULT_TIMEOUT_MARGIN: Duration = Duration::from_secs(120);
/// Subscribers per channel in `rooms` when `--channels` is not given.
const ROOM_SIZE: usize = 3;
/// `dm`: direct channels per user when `--channels` is not given.
pub(crate) const DM_CHANNELS_PER_USER: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Idle,
    Fanout,
    Rooms,
    ReconnectStorm,
    History,
    /// One huge room: viewers, comments, reactions and a priority lane.
    Live,
    /// A messenger: many users, many two-member direct channels, each
    /// user subscribed to its feed only.
    Dm,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Idle => "idle",
            Scenario::Fanout => "fanout",
            Scenario::Rooms => "rooms",
            Scenario::ReconnectStorm => "reconnect-storm",
            Scenario::History => "history",
            Scenario::Live => "live",
            Scenario::Dm => "dm",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// `/connection/websocket`, JSON commands; publish with `POST /api/publish`.
    Native,
    /// `/app/{key}?protocol=7`; publish with `POST /apps/{id}/events`
    /// (or `/batch_events`, with `pusher_batch`).
    Pusher,
    /// NATS over WebSocket (a `nats-server` `websocket` port): `SUB` per
    /// subscriber, `PUB` from `--publishers` separate NATS connections.
    Nats,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Native => "native",
            Protocol::Pusher => "pusher",
            Protocol::Nats => "nats",
        })
    }
}

/// Where publications come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishFrom {
    /// The server's HTTP API, over a pool of keep-alive connections.
    Api,
    /// `publish` commands on dedicated WebSocket connections (native only;
    /// the channels' namespace must let anyone publish).
    Clients,
}

/// For the in-process `history` run (`--data-dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    Fsync,
    Buffered,
}

/// A Pusher app's credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PusherApp {
    pub id: String,
    pub key: String,
    pub secret: String,
}

impl fmt::Debug for PusherApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PusherApp").field("id", &self.id).field("key", &self.key).finish_non_exhaustive()
    }
}

/// The `live` scenario's room: one channel, its viewers reacting, a
/// priority publication now and then (comments come at `rate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveOptions {
    /// The room (its namespace decides shaping).
    pub channel: String,
    /// `react` commands per second in total, spread over the viewers.
    pub reaction_rate: f64,
    /// One publication through the HTTP API (the priority lane) this often.
    pub priority_interval: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            channel: "live:stage".to_string(),
            reaction_rate: 2000.0,
            priority_interval: Duration::from_secs(1),
        }
    }
}

/// The `dm` scenario's users: `<user_prefix><index>`, one per connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmOptions {
    /// `None`: `u<run id>-`, so runs on one server never share users,
    /// feeds or channels (a worker gets its parent's).
    pub user_prefix: Option<String>,
}

/// How `--workers` starts a worker: this program with these arguments
/// (the worker reads its orders on stdin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerProgram {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Everything a run can be asked; [`BenchOptions::new`] gives the defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchOptions {
    pub scenario: Scenario,
    pub protocol: Protocol,
    /// The server, `http://host:port` or `ws://host:port` (a path is
    /// ignored); `https://` or `wss://` for a server with TLS. Publications
    /// go here.
    pub url: String,
    /// More nodes of the same cluster: subscribers are spread over `url`
    /// and these in turn, and each reconnect moves to the next one, as
    /// the clients of a failed node come to the others.
    pub cluster: Vec<String>,
    /// Native HTTP API key.
    pub api_key: Option<String>,
    /// A JWT for the native `connect` (anonymous without).
    pub token: Option<String>,
    /// Sign an HS256 JWT for every connection with this secret instead
    /// (`sub` = `bench-viewer-N`, `bench-publisher-N`), so each is a user.
    pub jwt_secret: Option<String>,
    pub pusher_app: Option<PusherApp>,
    /// Subscriber connections (in total, over all workers).
    pub connections: usize,
    /// `None`: 1, except `rooms` (connections / 3) and `history` (100).
    pub channels: Option<usize>,
    /// Put before every channel name (a namespace such as `bench:`).
    pub channel_prefix: String,
    /// Publications per second in total; 0 = as fast as the subscribers
    /// keep up (see `max_lag`). `live`: comments per second.
    pub rate: f64,
    /// Bytes of each publication's JSON data.
    pub size: usize,
    /// How long to publish (how long to hold the connections for `idle`).
    pub duration: Duration,
    /// Stop publishing after this many publications, if before `duration`.
    pub messages: Option<u64>,
    /// Publish requests in flight at once.
    pub in_flight: usize,
    /// With `rate` 0: publishing waits while subscribers are, on average,
    /// more than this many publications behind.
    pub max_lag: u64,
    pub publish_from: PublishFrom,
    /// Publishing connections for `PublishFrom::Clients`.
    pub publishers: usize,
    /// The server's process, for its memory and CPU.
    pub server_pid: Option<u32>,
    /// More processes whose memory and CPU count as the server's (the
    /// other nodes of a cluster, its Redis).
    pub other_pids: Vec<u32>,
    /// Child processes sharing the subscriber connections (1 = none).
    pub workers: usize,
    /// Bind client sockets to these local addresses in turn.
    pub source_addrs: Vec<IpAddr>,
    pub allow_remote: bool,
    /// PEM certificates trusted (only they) for a TLS server; `None`:
    /// Mozilla's roots.
    pub ca_file: Option<PathBuf>,
    /// Connections being opened at once.
    pub connect_concurrency: usize,
    /// Limit for opening one connection and subscribing.
    pub connect_timeout: Duration,
    /// After publishing: how long subscribers get to receive everything.
    pub drain_timeout: Duration,
    /// The whole run; `None`: `duration` + 2 minutes.
    pub timeout: Option<Duration>,
    /// `reconnect-storm`: when to cut every connection, after publishing began.
    pub cut_after: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// `history`: benchmark an embedded store in this directory, in
    /// process, instead of a server over HTTP.
    pub data_dir: Option<PathBuf>,
    pub durability: Durability,
    /// `history`: publications per range read.
    pub read_limit: usize,
    /// The Pusher event name of publications.
    pub event: String,
    /// Pusher: publish in `POST /apps/{id}/batch_events` requests of this
    /// many events (1 to [`PUSHER_BATCH_MAX`]); `None`: one `/events`
    /// trigger per event.
    pub pusher_batch: Option<usize>,
    /// `live`: reactions, priority publications, the room's channel.
    pub live: LiveOptions,
    /// `dm`: the users' names (`channels` is the number of direct channels).
    #[serde(default)]
    pub dm: DmOptions,
    /// A progress line on stderr once a second.
    pub progress: bool,
    /// Set by the command line; needed for `workers` > 1.
    pub worker_program: Option<WorkerProgram>,
}

impl BenchOptions {
    pub fn new(scenario: Scenario, url: impl Into<String>) -> Self {
        Self {
            scenario,
            protocol: Protocol::Native,
            url: url.into(),
            cluster: Vec::new(),
            api_key: None,
            token: None,
            jwt_secret: None,
            pusher_app: None,
            connections: 1000,
            channels: None,
            channel_prefix: String::new(),
            rate: match scenario {
                Scenario::ReconnectStorm => 100.0,
                Scenario::Live => 500.0,
                Scenario::Dm => 2000.0,
                _ => 0.0,
            },
            size: 100,
            duration: Duration::from_secs(10),
            messages: None,
            in_flight: 64,
            max_lag: 200,
            publish_from: PublishFrom::Api,
            publishers: 4,
            server_pid: None,
            other_pids: Vec::new(),
            workers: 1,
            source_addrs: Vec::new(),
            allow_remote: false,
            ca_file: None,
            connect_concurrency: 64,
            connect_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(15),
            timeout: None,
            cut_after: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(3),
            data_dir: None,
            durability: Durability::Fsync,
            read_limit: 100,
            event: "fanfare-bench".to_string(),
            pusher_batch: None,
            live: LiveOptions::default(),
            dm: DmOptions::default(),
            progress: true,
            worker_program: None,
        }
    }

    /// `dm`: the id of user `index` (its token's `sub`).
    pub fn dm_user(&self, index: usize) -> String {
        format!("{}{index}", self.dm.user_prefix.as_deref().unwrap_or("u"))
    }

    /// Checks the options and resolves the server's address.
    pub async fn plan(&self) -> Result<Plan, BenchError> {
        let invalid = |option, reason: &str| BenchError::InvalidOption { option, reason: reason.to_string() };
        let (host, port, tls) = split_url(&self.url).ok_or_else(|| {
            invalid("url", "expected http://HOST:PORT or ws://HOST:PORT (https:// or wss:// with TLS)")
        })?;
        let server = resolve(&host, port).await?;
        if !self.allow_remote && !is_local(server.ip()) {
            return Err(BenchError::RemoteHost { host });
        }
        let mut nodes = vec![(host.clone(), server)];
        for url in &self.cluster {
            let (host, port, node_tls) =
                split_url(url).ok_or_else(|| invalid("cluster", "expected http://HOST:PORT,…"))?;
            if node_tls != tls {
                return Err(invalid("cluster", "every node must use the scheme of --url (TLS or not)"));
            }
            let address = resolve(&host, port).await?;
            if !self.allow_remote && !is_local(address.ip()) {
                return Err(BenchError::RemoteHost { host });
            }
            nodes.push((host, address));
        }
        if self.source_addrs.iter().any(|ip| !self.allow_remote && !is_local(*ip)) {
            return Err(invalid("source-addrs", "source addresses must be in 127.0.0.0/8"));
        }
        let in_process_history = self.scenario == Scenario::History && self.data_dir.is_some();
        if self.connections == 0 && self.scenario != Scenario::History {
            return Err(invalid("connections", "must be at least 1"));
        }
        let channels = match self.scenario {
            Scenario::Live => 1,
            // The fleet's channels are the users' feeds, one each.
            Scenario::Dm => self.connections,
            Scenario::Rooms => self.channels.unwrap_or(self.connections.div_ceil(ROOM_SIZE)),
            Scenario::History => self.channels.unwrap_or(100),
            _ => self.channels.unwrap_or(1),
        };
        if channels == 0 {
            return Err(invalid("channels", "must be at least 1"));
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err(invalid("rate", "must be a number of publications per second, 0 or more"));
        }
        if self.in_flight == 0 || self.connect_concurrency == 0 || self.read_limit == 0 {
            return Err(invalid(
                "in-flight",
                "in-flight, connect-concurrency and read-limit must be at least 1",
            ));
        }
        if self.workers == 0 {
            return Err(invalid("workers", "must be at least 1"));
        }
        if self.workers > 1 && self.worker_program.is_none() {
            return Err(invalid("workers", "this caller cannot start worker processes"));
        }
        if self.duration.is_zero() {
            return Err(invalid("duration", "must be more than 0"));
        }
        if self.scenario == Scenario::ReconnectStorm && self.cut_after >= self.duration {
            return Err(invalid("cut-after", "the cut must come before the end of --duration"));
        }
        self.check_protocol(in_process_history)?;
        self.check_live()?;
        self.check_dm()?;
        self.check_pusher_batch()?;
        self.check_open_files()?;
        let timeout = self.timeout.unwrap_or(self.duration * 2 + DEFAULT_TIMEOUT_MARGIN);
        let run_id = format!("{:08x}", rand::random::<u32>());
        let tls = match (tls, &self.ca_file) {
            (false, _) => None,
            (true, None) => Some(fanfare_client::default_tls()),
            (true, Some(path)) => Some(trusted(path)?),
        };
        let mut options = self.clone();
        if options.scenario == Scenario::Dm && options.dm.user_prefix.is_none() {
            options.dm.user_prefix = Some(format!("u{run_id}-"));
        }
        Ok(Plan { options, server, host, nodes, channels, run_id, timeout, tls })
    }

    fn check_protocol(&self, in_process_history: bool) -> Result<(), BenchError> {
        let unsupported =
            |reason| BenchError::Unsupported { scenario: self.scenario, protocol: self.protocol, reason };
        match self.protocol {
            Protocol::Native if !in_process_history && self.api_key.is_none() => {
                let needs_api = self.publish_from == PublishFrom::Api || self.scenario == Scenario::History;
                if needs_api && self.scenario != Scenario::Idle {
                    return Err(BenchError::InvalidOption {
                        option: "api-key",
                        reason: "publishing through the HTTP API needs the server's API key".into(),
                    });
                }
                Ok(())
            }
            Protocol::Native => Ok(()),
            Protocol::Pusher => {
                if self.pusher_app.is_none() {
                    return Err(BenchError::InvalidOption {
                        option: "app-key",
                        reason: "the Pusher protocol needs --app-id, --app-key and --app-secret".into(),
                    });
                }
                match self.scenario {
                    Scenario::ReconnectStorm => {
                        Err(unsupported("Pusher clients cannot resume from a position after a reconnect"))
                    }
                    Scenario::History => Err(unsupported("the Pusher HTTP API has no history reads")),
                    _ if self.publish_from == PublishFrom::Clients => Err(unsupported(
                        "Pusher client events need private channels, skip the sender and are rate limited",
                    )),
                    _ => Ok(()),
                }
            }
            // Publications always come from NATS connections of their own.
            Protocol::Nats => match self.scenario {
                Scenario::ReconnectStorm => Err(unsupported(
                    "NATS core subscriptions cannot resume from a position after a reconnect",
                )),
                Scenario::History => Err(unsupported("NATS core keeps no history")),
                _ => Ok(()),
            },
        }
    }

    /// `live` is a native room: comments from clients, priority through
    /// the HTTP API (so it needs the key), reactions at a finite rate.
    fn check_live(&self) -> Result<(), BenchError> {
        if self.scenario != Scenario::Live {
            return Ok(());
        }
        let invalid = |option, reason: &str| BenchError::InvalidOption { option, reason: reason.to_string() };
        if self.protocol != Protocol::Native {
            return Err(BenchError::Unsupported {
                scenario: self.scenario,
                protocol: self.protocol,
                reason: "shaping, reactions and the priority lane are native protocol features",
            });
        }
        if self.api_key.is_none() {
            return Err(invalid(
                "api-key",
                "priority publications go through the HTTP API, which needs its key",
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(invalid("comment-rate", "must be more than 0 comments per second"));
        }
        let reactions = self.live.reaction_rate;
        if !(reactions.is_finite() && reactions >= 0.0) {
            return Err(invalid("reaction-rate", "must be a number of reactions per second, 0 or more"));
        }
        if self.live.priority_interval.is_zero() {
            return Err(invalid("priority-interval", "must be more than 0"));
        }
        if self.publishers == 0 {
            return Err(invalid("publishers", "comments need at least 1 publishing connection"));
        }
        fanfare_protocol::ChannelName::new(&self.live.channel)
            .map(|_| ())
            .map_err(|error| invalid("channel", &error.to_string()))
    }

    /// `dm` is native (direct channels, feeds and cursors are native
    /// features), signs a token per user, creates the channels through the
    /// HTTP API, and needs distinct pairs: each user is the first member of
    /// `ceil(channels / connections)` channels, paired with the next users
    /// round the ring, so twice that must stay below the users.
    fn check_dm(&self) -> Result<(), BenchError> {
        if self.scenario != Scenario::Dm {
            return Ok(());
        }
        let invalid = |option, reason: String| BenchError::InvalidOption { option, reason };
        if self.protocol != Protocol::Native {
            return Err(BenchError::Unsupported {
                scenario: self.scenario,
                protocol: self.protocol,
                reason: "direct channels, feeds and read cursors are native protocol features",
            });
        }
        if self.jwt_secret.is_none() {
            return Err(invalid(
                "jwt-secret",
                "each user signs in with its own token: give --jwt-secret".into(),
            ));
        }
        if self.api_key.is_none() {
            return Err(invalid(
                "api-key",
                "the channels are created through the HTTP API, which needs its key".into(),
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(invalid("rate", "dm publishes at a fixed rate: more than 0 per second".into()));
        }
        let users = self.connections;
        let conversations = crate::conversations::Conversations::of(self).channels;
        if conversations < users || 2 * conversations.div_ceil(users) >= users {
            return Err(invalid(
                "channels",
                format!(
                    "{users} users can hold {users} to {} distinct two-member channels, not {conversations}",
                    users * (users.saturating_sub(1) / 2)
                ),
            ));
        }
        if let Some(prefix) = &self.dm.user_prefix
            && (prefix.contains(',')
                || fanfare_protocol::ChannelName::new(&format!("feed:{prefix}0")).is_err())
        {
            return Err(invalid("user-prefix", format!("{prefix:?} cannot be part of a user id in dm:")));
        }
        Ok(())
    }

    /// Batches are a Pusher HTTP API request, within Pusher's size limit,
    /// and only where something is published.
    fn check_pusher_batch(&self) -> Result<(), BenchError> {
        let Some(size) = self.pusher_batch else { return Ok(()) };
        let invalid = |reason: String| BenchError::InvalidOption { option: "pusher-batch", reason };
        if self.protocol != Protocol::Pusher {
            return Err(invalid(format!(
                "batch_events is a Pusher HTTP API request; the {} protocol has none (use --protocol pusher)",
                self.protocol
            )));
        }
        if self.scenario == Scenario::Idle {
            return Err(invalid("the idle scenario publishes nothing".into()));
        }
        if !(1..=PUSHER_BATCH_MAX).contains(&size) {
            return Err(invalid(format!(
                "must be 1 to {PUSHER_BATCH_MAX} events (Pusher's batch limit), not {size}"
            )));
        }
        Ok(())
    }

    /// One process holds `connections / workers` sockets, plus some.
    fn check_open_files(&self) -> Result<(), BenchError> {
        let needed = self.connections.div_ceil(self.workers) + self.in_flight + self.publishers + 64;
        match crate::proc_stats::open_files_limit() {
            Some(limit) if (needed as u64) > limit => Err(BenchError::TooManyFiles { needed, limit }),
            _ => Ok(()),
        }
    }
}

/// Checked options with what was derived from them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub options: BenchOptions,
    /// The server's resolved address.
    pub server: SocketAddr,
    /// The host as given, for `Host` headers and the report.
    pub host: String,
    /// Every node subscribers connect to: the server first, then
    /// `cluster`'s (host as given, resolved address).
    pub nodes: Vec<(String, SocketAddr)>,
    pub channels: usize,
    /// Random, in every channel name, so runs never share channels.
    pub run_id: String,
    pub timeout: Duration,
    /// The TLS of an `https://`/`wss://` server; `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Plan {
    pub fn channel_name(&self, index: usize) -> String {
        match self.options.scenario {
            Scenario::Live => return self.options.live.channel.clone(),
            Scenario::Dm => return format!("feed:{}", self.options.dm_user(index)),
            _ => {}
        }
        format!("{}fb-{}-{index}", self.options.channel_prefix, self.run_id)
    }

    /// The channel of subscriber `index`: subscribers go round the channels.
    pub fn channel_of(&self, subscriber: usize) -> usize {
        subscriber % self.channels
    }

    /// Subscribers of each channel when `connections` go round them.
    pub fn subscribers_per_channel(&self, connections: usize) -> Vec<u64> {
        let mut counts = vec![0u64; self.channels];
        for subscriber in 0..connections {
            counts[self.channel_of(subscriber)] += 1;
        }
        counts
    }

    pub fn http_base(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.server.port())
    }

    /// An HTTP client for [`http_base`](Self::http_base), trusting what
    /// the WebSockets trust.
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        match &self.tls {
            Some(tls) => builder.use_preconfigured_tls(rustls::ClientConfig::clone(tls)),
            // Plain HTTP: no root certificates to load (milliseconds per client).
            None => builder.tls_certs_only([]),
        }
    }

    pub fn ws_url(&self) -> String {
        self.ws_url_of(0)
    }

    /// The WebSocket URL of node `node` (an index into [`Plan::nodes`]).
    pub fn ws_url_of(&self, node: usize) -> String {
        let (host, address) = &self.nodes[node % self.nodes.len()];
        let host = format!("{host}:{}", address.port());
        let ws = if self.tls.is_some() { "wss" } else { "ws" };
        match (&self.options.protocol, &self.options.pusher_app) {
            (Protocol::Pusher, Some(app)) => {
                format!("{ws}://{host}/app/{}?protocol=7&client=fanfare-bench&version=0.1", app.key)
            }
            (Protocol::Nats, _) => format!("{ws}://{host}/"),
            _ => format!("{ws}://{host}/connection/websocket"),
        }
    }
}

/// `http://host:port/…` or `ws://host:port/…` → (host, port, false), port
/// 80 by default; `https://` or `wss://` → (host, port, true), port 443.
fn split_url(url: &str) -> Option<(String, u16, bool)> {
    let (rest, tls) = match url.split_once("://")? {
        ("http" | "ws", rest) => (rest, false),
        ("https" | "wss", rest) => (rest, true),
        _ => return None,
    };
    let default_port = if tls { 443 } else { 80 };
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, port) = bracketed.split_once(']')?;
        let port = port.strip_prefix(':').map_or(Some(default_port), |p| p.parse().ok())?;
        return Some((format!("[{host}]"), port, tls));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?, tls)),
        None => Some((authority.to_string(), default_port, tls)),
    }
}

/// A TLS configuration trusting the certificates of `path`.
fn trusted(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, BenchError> {
    let invalid = |reason: String| BenchError::InvalidOption { option: "ca-file", reason };
    let pem = std::fs::read(path).map_err(|error| invalid(format!("{}: {error}", path.display())))?;
    fanfare_client::trusting(&pem).map_err(|error| invalid(format!("{}: {error}", path.display())))
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, BenchError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|source| BenchError::Resolve { host: host.to_string(), source })?
        .collect::<Vec<_>>();
    // `localhost` may resolve to ::1 first; the loopback check wants 127/8.
    addrs.sort_by_key(|addr| !addr.is_ipv4());
    addrs.into_iter().next().ok_or_else(|| BenchError::Resolve {
        host: host.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    })
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.octets()[0] == 127),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> BenchOptions {
        let mut options = BenchOptions::new(Scenario::Fanout, url);
        options.api_key = Some("key".into());
        options
    }

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(split_url("http://127.0.0.1:6001"), Some(("127.0.0.1".into(), 6001, false)));
        assert_eq!(split_url("ws://localhost:7/connection/websocket"), Some(("localhost".into(), 7, false)));
        assert_eq!(split_url("http://127.0.0.2"), Some(("127.0.0.2".into(), 80, false)));
        assert_eq!(split_url("http://[::1]:9"), Some(("[::1]".into(), 9, false)));
        assert_eq!(split_url("wss://localhost:7/x"), Some(("localhost".into(), 7, true)));
        assert_eq!(split_url("https://127.0.0.1"), Some(("127.0.0.1".into(), 443, true)));
        for bad in ["ftp://127.0.0.1:1", "127.0.0.1:1", "http://", "http://h:x", "http://u@h:1"] {
            assert_eq!(split_url(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn only_loopback_hosts_unless_allowed() {
        assert!(options("http://127.0.0.1:6001").plan().await.is_ok());
        assert!(options("http://127.9.9.9:6001").plan().await.is_ok());
        assert!(options("http://localhost:6001").plan().await.is_ok());
        let error = options("http://10.1.2.3:6001").plan().await.unwrap_err();
        assert!(matches!(error, BenchError::RemoteHost { .. }), "{error}");
        let mut remote = options("http://10.1.2.3:6001");
        remote.allow_remote = true;
        assert!(remote.plan().await.is_ok());
        let mut sources = options("http://127.0.0.1:6001");
        sources.source_addrs = vec!["10.0.0.1".parse().unwrap()];
        assert!(sources.plan().await.is_err());
    }

    #[tokio::test]
    async fn scenario_defaults_for_channels_and_names() {
        let mut rooms = options("http://127.0.0.1:1");
        rooms.scenario = Scenario::Rooms;
        rooms.connections = 15_000;
        let plan = rooms.plan().await.unwrap();
        assert_eq!(plan.channels, 5_000);
        assert_eq!(plan.subscribers_per_channel(15_000), vec![3; 5_000]);
        assert_eq!(plan.channel_name(7), format!("fb-{}-7", plan.run_id));
        assert_eq!(plan.timeout, Duration::from_secs(140));
        assert_eq!(plan.ws_url(), "ws://127.0.0.1:1/connection/websocket");
    }

    #[tokio::test]
    async fn credentials_and_protocol_limits_are_checked() {
        let mut no_key = options("http://127.0.0.1:1");
        no_key.api_key = None;
        assert!(matches!(no_key.plan().await, Err(BenchError::InvalidOption { option: "api-key", .. })));
        no_key.scenario = Scenario::Idle;
        assert!(no_key.plan().await.is_ok(), "idle publishes nothing");

        let mut pusher = options("http://127.0.0.1:1");
        pusher.protocol = Protocol::Pusher;
        assert!(matches!(pusher.plan().await, Err(BenchError::InvalidOption { option: "app-key", .. })));
        pusher.pusher_app = Some(PusherApp { id: "1".into(), key: "k".into(), secret: "s".into() });
        let plan = pusher.plan().await.unwrap();
        assert_eq!(plan.ws_url(), "ws://127.0.0.1:1/app/k?protocol=7&client=fanfare-bench&version=0.1");
        pusher.scenario = Scenario::ReconnectStorm;
        assert!(matches!(pusher.plan().await, Err(BenchError::Unsupported { .. })));

        let mut nats = options("ws://127.0.0.1:1");
        nats.protocol = Protocol::Nats;
        nats.api_key = None;
        let plan = nats.plan().await.unwrap();
        assert_eq!(plan.ws_url(), "ws://127.0.0.1:1/");
        nats.scenario = Scenario::History;
        assert!(matches!(nats.plan().await, Err(BenchError::Unsupported { .. })));
    }

    fn pusher(url: &str) -> BenchOptions {
        let mut options = options(url);
        options.protocol = Protocol::Pusher;
        options.pusher_app = Some(PusherApp { id: "1".into(), key: "k".into(), secret: "s".into() });
        options
    }

    /// Why the plan refused `--pusher-batch`.
    async fn refused_pusher_batch(options: &BenchOptions) -> String {
        match options.plan().await {
            Err(BenchError::InvalidOption { option: "pusher-batch", reason }) => reason,
            other => panic!("expected --pusher-batch to be refused, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn pusher_batches_of_one_to_ten_events_are_accepted() {
        let mut batched = pusher("http://127.0.0.1:1");
        for size in [1, 5, PUSHER_BATCH_MAX] {
            batched.pusher_batch = Some(size);
            let plan = batched.plan().await.unwrap();
            assert_eq!(plan.options.pusher_batch, Some(size));
        }
        batched.scenario = Scenario::Rooms;
        assert!(batched.plan().await.is_ok(), "rooms publishes like fanout");
    }

    #[tokio::test]
    async fn an_empty_or_oversized_pusher_batch_is_refused() {
        let mut batched = pusher("http://127.0.0.1:1");
        batched.pusher_batch = Some(0);
        assert!(refused_pusher_batch(&batched).await.contains("1 to 10"));
        batched.pusher_batch = Some(PUSHER_BATCH_MAX + 1);
        assert!(refused_pusher_batch(&batched).await.contains("not 11"));
    }

    #[tokio::test]
    async fn a_pusher_batch_needs_the_pusher_protocol_and_something_to_publish() {
        let mut native = options("http://127.0.0.1:1");
        native.pusher_batch = Some(10);
        assert!(refused_pusher_batch(&native).await.contains("native protocol"));
        let mut nats = options("ws://127.0.0.1:1");
        nats.protocol = Protocol::Nats;
        nats.pusher_batch = Some(10);
        assert!(refused_pusher_batch(&nats).await.contains("nats protocol"));
        let mut idle = pusher("http://127.0.0.1:1");
        idle.scenario = Scenario::Idle;
        idle.pusher_batch = Some(10);
        assert!(refused_pusher_batch(&idle).await.contains("publishes nothing"));
    }

    #[tokio::test]
    async fn impossible_numbers_are_refused() {
        let mut bad = options("http://127.0.0.1:1");
        bad.rate = -1.0;
        assert!(bad.plan().await.is_err());
        let mut bad = options("http://127.0.0.1:1");
        bad.channels = Some(0);
        assert!(bad.plan().await.is_err());
        let mut bad = options("http://127.0.0.1:1");
        bad.workers = 2;
        assert!(bad.plan().await.is_err(), "no worker program");
        let mut bad = options("http://127.0.0.1:1");
        bad.connections = 1_000_000;
        assert!(matches!(bad.plan().await, Err(BenchError::TooManyFiles { .. })));
    }
}
