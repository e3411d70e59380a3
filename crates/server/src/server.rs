//! Assembling and running a server: store → hub → gateway and API on one
//! listener, and the graceful shutdown.
//!
//! [`run`] takes a bound listener and a shutdown future, so tests start a
//! real server on port 0 in-process and stop it at will.

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::any;
use fanfare_hub::{ChannelPolicy, CloseReason, ConnId, Hub, HubOptions};
use fanfare_protocol::{ChannelName, CloseCode};
use fanfare_store::HistoryStore;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::{Namespaces, ServerEventKind, Settings};
use crate::content::ContentCheck;
use crate::engines::Engines;
use crate::gateway::capacity::{self, Capacity};
use crate::gateway::client_addr::PeerAddr;
use crate::gateway::connection_counts::ConnectionCounts;
use crate::gateway::handshake_rate::{self, HandshakeRates};
use crate::limits::PublishLimiter;
use crate::members::Members;
use crate::moderation::Moderation;
use crate::plain_listener::PlainListener;
use crate::pusher::apps::Apps;
use crate::pusher::continuity::Continuity;
use crate::pusher::users::SignedInUsers;
use crate::pusher::webhooks::{WebhookOptions, Webhooks};
use crate::pusher::{self, PusherState};
use crate::telemetry::ServerMetrics;
use crate::tls::{Certificates, TlsListener};
use crate::webhooks::{Routes, ServerWebhooks};
use crate::{admin, api, demo, gateway};

/// Everything a request or a session needs, shared. HTTP handlers take
/// only the slice they read (`State<Arc<Hub>>`, `State<Arc<Settings>>`,
/// `State<Arc<PusherState>>`, …) through the [`FromRef`] impls below; a
/// WebSocket session reads most of it and holds the whole.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    /// The validated configuration: limits, namespaces, the data directory.
    pub settings: Arc<Settings>,
    /// Subscriptions, publish and fan-out, history and presence: what every
    /// protocol and both HTTP APIs act on.
    pub hub: Arc<Hub>,
    /// The Pusher apps, their signed-in users and webhooks, for the Pusher
    /// sessions and the Pusher HTTP API.
    pub(crate) pusher: Arc<PusherState>,
    /// The `[[webhooks]]` endpoints: moderators' actions and refused
    /// publications are events on them.
    pub(crate) webhooks: Arc<ServerWebhooks>,
    /// Verifies the token a native connection presents on `connect`.
    pub(crate) auth: Authenticator,
    /// The key the native HTTP API requires (`Authorization: Bearer`).
    pub(crate) api_key: ServerApiKey,
    /// The server's own metrics (open connections) and the `/metrics` text.
    pub(crate) telemetry: ServerMetrics,
    /// The open WebSocket connections against `limits.max_connections`.
    pub(crate) capacity: Arc<Capacity>,
    /// The rate limits and slow mode of publications by connections.
    pub(crate) limits: PublishLimiter,
    /// Bans, mutes and moderators' actions.
    pub(crate) moderation: Moderation,
    /// Members channels' members and the users' read cursors.
    pub(crate) members: Arc<Members>,
    /// The pace of WebSocket handshakes, per client address and per node.
    pub(crate) handshake_rates: HandshakeRates,
    /// Connections held per client address (`client_addr::limit_key`).
    pub(crate) connections_per_ip: Arc<ConnectionCounts<IpAddr>>,
    /// Connections held per user: the native user id, or a Pusher app's
    /// user (`pusher::users::hub_user`).
    pub(crate) connections_per_user: Arc<ConnectionCounts<Arc<str>>>,
    /// The namespaces' content rules' shared part (the pre-publish hook's
    /// HTTP client), for the native session and Pusher client events.
    pub(crate) content: ContentCheck,
    /// Typing indicators: one per user per channel per `typing_interval`.
    pub(crate) typing: crate::limits::per_user_channel::UserChannelThrottle,
    /// `--demo`: what its token endpoint signs with and changes; `None`:
    /// no demo routes.
    pub(crate) demo: Option<crate::demo::Tokens>,
    /// The certificate served when `tls.cert_file` is set (reloaded at
    /// SIGHUP); `None`: plain HTTP.
    pub tls: Option<Arc<Certificates>>,
    /// The hub's store too, kept here so that [`run`] can close it once
    /// nothing publishes any more.
    store: Arc<dyn HistoryStore>,
    /// Set when the shutdown begins: `/ready` fails and upgrades are refused,
    /// so a load balancer sends new connections elsewhere.
    draining: AtomicBool,
}

/// The API key this server requires of the native HTTP API.
#[derive(Clone)]
pub(crate) struct ServerApiKey(pub Arc<str>);

impl FromRef<AppState> for Arc<Settings> {
    fn from_ref(app: &AppState) -> Self {
        app.settings.clone()
    }
}

impl FromRef<AppState> for Arc<Hub> {
    fn from_ref(app: &AppState) -> Self {
        app.hub.clone()
    }
}

impl FromRef<AppState> for Arc<Members> {
    fn from_ref(app: &AppState) -> Self {
        app.members.clone()
    }
}

impl FromRef<AppState> for Arc<PusherState> {
    fn from_ref(app: &AppState) -> Self {
        app.pusher.clone()
    }
}

impl FromRef<AppState> for ServerApiKey {
    fn from_ref(app: &AppState) -> Self {
        app.api_key.clone()
    }
}

impl FromRef<AppState> for Arc<Capacity> {
    fn from_ref(app: &AppState) -> Self {
        app.capacity.clone()
    }
}

impl FromRef<AppState> for ServerMetrics {
    fn from_ref(app: &AppState) -> Self {
        app.telemetry.clone()
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A name of connection `conn` unique in the cluster: the node's id
    /// and the connection's number.
    pub(crate) fn connection_key(&self, conn: ConnId) -> String {
        match self.hub.node_id() {
            Some(node) => format!("{node}/{conn}"),
            None => conn.to_string(),
        }
    }
}

/// The `namespace` labels of the publication and delivery counters: every
/// configured namespace and the namespace of every Pusher app's channel
/// prefix (so each such app is told apart); the rest count as `other`.
fn metric_namespaces(settings: &Settings) -> Vec<String> {
    let configured = settings.namespaces.configured().into_iter().map(|(name, _)| name.to_owned());
    let apps =
        settings.pusher.apps.iter().filter_map(|app| app.channel_prefix.strip_suffix(':').map(str::to_owned));
    let mut names: Vec<String> = configured.chain(apps).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Builds the shared state: metrics first (so the hub's handles are
/// live), then the hub over the engines (a cluster node's hub when they
/// include a cluster's).
pub fn build(settings: Settings, api_key: String, engines: Engines) -> anyhow::Result<AppState> {
    build_with(settings, api_key, engines, |_| {})
}

/// [`build`], with the webhooks' timings adjusted (tests shorten the
/// retries).
pub fn build_with(
    settings: Settings,
    api_key: String,
    engines: Engines,
    adjust_webhooks: impl FnOnce(&mut WebhookOptions),
) -> anyhow::Result<AppState> {
    let telemetry = ServerMetrics::install();
    let tls = match &settings.tls.certificate {
        Some(files) => Some(Arc::new(Certificates::load(files).context("loading the TLS certificate")?)),
        None => None,
    };
    let webhook_roots = webhook_roots(&settings)?;
    let content =
        ContentCheck::new(&settings, &webhook_roots).context("building the pre-publish hook's client")?;
    let settings = Arc::new(settings);
    let auth = Authenticator::new(&settings.auth).context("configuring authentication")?;
    let offline_hooks = settings.webhooks.iter().any(|hook| hook.wants(ServerEventKind::Offline));
    let policy = channel_policy(settings.namespaces.clone(), offline_hooks);
    let options = HubOptions {
        max_history_read: settings.limits.max_history_read,
        metric_namespaces: metric_namespaces(&settings),
        ..HubOptions::default()
    };
    let Engines { store, conversations, resume_points, cluster, webhook_stores, rate_limits, sanctions } =
        engines;
    let hub = Arc::new(match cluster {
        Some((engines, cluster_options)) => {
            Hub::clustered(store.clone(), policy, options, engines, cluster_options)
        }
        None => Hub::new(store.clone(), policy, options),
    });
    let apps = Apps::with_rate_limits(settings.pusher.apps.clone(), rate_limits.clone());
    let apps = Arc::new(apps.context("configuring Pusher apps")?);
    // A cluster node's hub holds channel_vacated and member_removed itself
    // (so that a reopening on another node cancels them): no second hold.
    // It also adopts, now and then, the webhook batches of nodes that stopped.
    let mut webhook_options = WebhookOptions { extra_roots: webhook_roots, ..WebhookOptions::default() };
    if hub.node_id().is_some() {
        webhook_options.hold = Duration::ZERO;
        webhook_options.adopt_every = Some(ADOPT_EVERY);
    }
    adjust_webhooks(&mut webhook_options);
    // Both families share the journal and the dead letters: the Pusher
    // dispatcher adopts and replays for the [[webhooks]] endpoints too.
    let mut routes = Routes::default();
    let node = hub.node_id().map(|node| Arc::from(node.to_string()));
    let server_webhooks =
        ServerWebhooks::start(&settings.webhooks, node, &webhook_options, &webhook_stores, &mut routes);
    let server_webhooks = Arc::new(server_webhooks);
    let webhooks = Webhooks::start_beside(apps.clone(), &hub, webhook_stores, webhook_options, routes);
    let continuity = Continuity::new(&settings, resume_points);
    let pusher = Arc::new(PusherState { apps, users: SignedInUsers::default(), webhooks, continuity });
    let draining = AtomicBool::new(false);
    let api_key = ServerApiKey(Arc::from(api_key));
    let capacity = Arc::new(Capacity::new(&settings.limits, capacity::open_file_limit()));
    let limits = PublishLimiter::new(rate_limits);
    let moderation = Moderation::new(sanctions);
    let members = Arc::new(Members::new(conversations, settings.members));
    crate::members::feed::start(&hub, members.clone(), server_webhooks.clone());
    let demo = settings
        .demo
        .then(|| crate::demo::Tokens::new(&settings, hub.clone(), members.clone()))
        .transpose()?;
    let handshake_rates = HandshakeRates::new(&settings.admission);
    let connections_per_ip = ConnectionCounts::new(settings.admission.max_connections_per_ip);
    let connections_per_user = ConnectionCounts::new(settings.admission.max_connections_per_user);
    let app = App {
        settings,
        hub,
        pusher,
        webhooks: server_webhooks,
        auth,
        api_key,
        telemetry,
        capacity,
        content,
        limits,
        moderation,
        members,
        handshake_rates,
        connections_per_ip,
        connections_per_user,
        typing: Default::default(),
        demo,
        tls,
        store,
        draining,
    };
    Ok(AppState(Arc::new(app)))
}

/// How long a stopping server waits for its webhook events to be journaled.
const WEBHOOK_FLUSH: Duration = Duration::from_secs(5);

/// How often a cluster node adopts the webhook batches that nodes which
/// stopped cleanly released.
const ADOPT_EVERY: Duration = Duration::from_secs(5);

/// The certificates of `tls.webhook_ca_file`, trusted for `https://`
/// webhooks besides the system's roots.
fn webhook_roots(settings: &Settings) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let Some(path) = &settings.tls.webhook_ca_file else { return Ok(Vec::new()) };
    let read = || format!("reading tls.webhook_ca_file {}", path.display());
    let pem = std::fs::read(path).with_context(read)?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem).with_context(read)?;
    anyhow::ensure!(!roots.is_empty(), "tls.webhook_ca_file {} holds no certificate", path.display());
    Ok(roots)
}

/// The hub's view of the configuration: a channel's options are its
/// namespace's, with the Pusher naming rules on top. With
/// `members_presence` (an `offline` webhook is configured) the hub tracks
/// who is in every members channel, presence on or not, so the offline
/// members can be told from the cluster's presence (`members/feed.rs`);
/// the commands still answer by the namespace's own `presence`.
fn channel_policy(namespaces: Namespaces, members_presence: bool) -> ChannelPolicy {
    Arc::new(move |channel: &ChannelName| {
        let mut options = namespaces.resolve(channel).channel;
        options.presence |= members_presence && options.observed;
        pusher::channel_options(options, channel)
    })
}

pub fn router(app: AppState) -> Router {
    let mut routes = api::router()
        .merge(pusher::api::router())
        .merge(admin::router())
        .route("/connection/websocket", any(gateway::accept))
        .route("/app/{key}", any(pusher::session::accept));
    if let Some(tokens) = &app.demo {
        routes = routes.merge(demo::router(tokens.clone()));
    }
    routes.with_state(app)
}

/// Serves until `shutdown` resolves, then drains: stops accepting, marks
/// not ready, tells every connection to reconnect elsewhere (each after its
/// own random delay), waits up to the grace period for them to go, and
/// closes the store (which syncs it and records the clean stop).
pub async fn run(
    app: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_accepting, accepting_stopped) = tokio::sync::oneshot::channel::<()>();
    // Frames are coalesced by the writer already; by default Nagle's
    // algorithm is off, as it would add the peer's delayed-ACK time to a
    // delivery that follows another closely (`tcp_nodelay`).
    let nodelay = app.settings.tcp_nodelay;
    let router = router(app.clone());
    let sweeping = tokio::spawn(sweep_handshake_rates(Arc::downgrade(&app.0)));
    let _stop_sweeping = AbortOnDrop(sweeping);
    let mut http = match &app.tls {
        Some(certificates) => {
            let timeout = app.settings.limits.handshake_timeout;
            let listener = TlsListener::new(listener, certificates.clone(), nodelay, timeout)?;
            tokio::spawn(serve_until(listener, router, accepting_stopped))
        }
        None => {
            let listener = PlainListener::new(listener, nodelay);
            tokio::spawn(serve_until(listener, router, accepting_stopped))
        }
    };
    tokio::select! {
        _ = shutdown => {}
        result = &mut http => {
            let served = result.context("HTTP server task").and_then(|r| r.context("HTTP server"));
            app.hub.leave_cluster().await;
            let closed = close_store(&app).await;
            return served.and(closed);
        }
    }
    tracing::info!("shutting down: draining connections");
    app.draining.store(true, Ordering::Release);
    let _ = stop_accepting.send(());
    let grace = app.settings.shutdown_grace;
    drain_connections(&app, grace).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), http).await;
    // Our members and counts go now, not when the lease runs out.
    app.hub.leave_cluster().await;
    // What the webhooks still hold is journaled for the next start (or
    // another node).
    app.webhooks.flush(WEBHOOK_FLUSH).await;
    app.pusher.webhooks.flush(WEBHOOK_FLUSH).await;
    close_store(&app).await
}

/// Forgets, now and then, the client addresses whose handshake bucket
/// refilled, until the server is gone.
async fn sweep_handshake_rates(app: std::sync::Weak<App>) {
    let mut every = tokio::time::interval(handshake_rate::SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(app) = app.upgrade() else { return };
        app.handshake_rates.sweep();
    }
}

/// Aborts its task when dropped (whichever way [`run`] returns).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves HTTP on `listener` until `stop` fires (or its sender is dropped),
/// then lets requests in progress finish.
async fn serve_until<L>(
    listener: L,
    router: Router,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    PeerAddr: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    // The peer's address goes to every request (the per-address limits).
    axum::serve(listener, router.into_make_service_with_connect_info::<PeerAddr>())
        .with_graceful_shutdown(async move {
            let _ = stop.await;
        })
        .await
}

/// Appends the store has queued complete first; any publish after this
/// fails with the store closed.
async fn close_store(app: &App) -> anyhow::Result<()> {
    app.store.close().await.context("closing the history store")?;
    tracing::info!("history store closed");
    Ok(())
}

async fn drain_connections(app: &App, grace: Duration) {
    let spread_ms = (grace.as_millis() as u64 / 3).clamp(1, 5_000);
    let closed = app.hub.connections().close_all(|| CloseReason {
        code: CloseCode::ShuttingDown,
        reconnect_after_ms: Some(rand::random_range(0..=spread_ms)),
    });
    tracing::info!(closed, "told connections to reconnect");
    let deadline = tokio::time::Instant::now() + grace;
    while !app.hub.connections().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use fanfare_hub::ChannelOptions;

    use super::*;
    use crate::config::{NamespaceSettings, PublishPolicy};

    fn channel(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    #[test]
    fn the_hub_gets_each_channel_its_namespace_options() {
        let defaults = NamespaceSettings::default();
        let chat = NamespaceSettings {
            publish: PublishPolicy::Subscribers,
            channel: ChannelOptions { presence: true, ..defaults.channel },
            ..defaults.clone()
        };
        let policy = channel_policy(Namespaces::new(defaults, [("chat".to_owned(), chat.clone())]), false);
        assert_eq!(policy(&channel("chat:a")), chat.channel);
        assert!(!policy(&channel("news:a")).presence);
    }
}
