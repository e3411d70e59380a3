//! The engines a server runs on, chosen by URL: the history store, where
//! webhook dead letters are kept and, for a cluster node, the bus,
//! presence, occupancy and node registry.
//!
//! A single node has an embedded (or memory) store and nothing else. A
//! cluster node has everything in the cluster's Redis: the Redis store's
//! append script publishes each publication to the same Redis's pub/sub,
//! which the bus reads (`docs/cluster.md`).

use std::sync::Arc;

use anyhow::Context;
use fanfare_cluster::redis::{RedisBus, RedisBusOptions, RedisEngines};
use fanfare_cluster::{NodeId, RateLimits, Sanctions};
use fanfare_hub::{ClusterEngines, ClusterOptions};
use fanfare_store::{
    CursorStore, EmbeddedOptions, EmbeddedStore, HistoryStore, MemberStore, MemoryStore, RedisStore,
    RedisStoreOptions, ResumePoints,
};

use crate::config::{ClusterSettings, Settings, StoreKind};
use crate::limits::local::LocalRateLimits;
use crate::moderation::local_sanctions::LocalSanctions;
use crate::pusher::webhooks::WebhookStores;

/// What [`crate::server::build`] assembles the hub from.
pub struct Engines {
    pub store: Arc<dyn HistoryStore>,
    /// Members channels' members and users' read cursors: the history
    /// store's engine keeps them too (in a cluster, its Redis).
    pub conversations: ConversationStores,
    /// Where signed-in Pusher users resume their channels after a lost
    /// connection: the history store itself (so a cluster on Redis shares
    /// them, and a restart on the same data directory keeps them).
    pub resume_points: Arc<dyn ResumePoints>,
    /// The cluster's engines; `None` for a single node.
    pub cluster: Option<(ClusterEngines, ClusterOptions)>,
    /// Dead letters and the webhook journal: files in the data directory
    /// on a single node, the cluster's Redis on a cluster node.
    pub webhook_stores: WebhookStores,
    /// The publish rate limits and slow mode: in memory (slow-mode
    /// intervals in the data directory) on a single node, the cluster's
    /// Redis on a cluster node.
    pub rate_limits: Arc<dyn RateLimits>,
    /// Bans and mutes: a file in the data directory on a single node, the
    /// cluster's Redis on a cluster node.
    pub sanctions: Arc<dyn Sanctions>,
}

/// Opens the store and, with a cluster URL, the cluster's engines.
pub async fn open(settings: &Settings) -> anyhow::Result<Engines> {
    // Engines register their metric handles as they open: the recorder
    // must be there first, or those handles record nothing.
    crate::telemetry::ServerMetrics::install();
    let Stores { history: store, resume_points, conversations } = open_store(settings).await?;
    let (cluster, webhook_stores, (rate_limits, sanctions)) = match &settings.cluster {
        Some(cluster) => {
            let (engines, options, stores, moderation) = open_cluster(cluster).await?;
            (Some((engines, options)), stores, moderation)
        }
        None => (None, WebhookStores::in_data_dir(&settings.data_dir), local_moderation(&settings.data_dir)?),
    };
    Ok(Engines { store, conversations, resume_points, cluster, webhook_stores, rate_limits, sanctions })
}

/// The stores of conversations, beside history in the same engine.
#[derive(Clone)]
pub struct ConversationStores {
    pub members: Arc<dyn MemberStore>,
    pub cursors: Arc<dyn CursorStore>,
}

type ModerationEngines = (Arc<dyn RateLimits>, Arc<dyn Sanctions>);

/// A single node's rate limits and sanctions, with what moderators set
/// kept in the data directory.
fn local_moderation(data_dir: &std::path::Path) -> anyhow::Result<ModerationEngines> {
    let limits = LocalRateLimits::open(data_dir).context("reading the slow-mode intervals")?;
    let sanctions = LocalSanctions::open(data_dir).context("reading the bans and mutes")?;
    Ok((Arc::new(limits), Arc::new(sanctions)))
}

/// One opened store, as each trait the server uses it through.
pub struct Stores {
    pub history: Arc<dyn HistoryStore>,
    pub resume_points: Arc<dyn ResumePoints>,
    pub conversations: ConversationStores,
}

impl Stores {
    fn of<S: HistoryStore + ResumePoints + MemberStore + CursorStore>(store: S) -> Self {
        let store = Arc::new(store);
        let conversations = ConversationStores { members: store.clone(), cursors: store.clone() };
        Self { history: store.clone(), resume_points: store, conversations }
    }
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<Stores> {
    Ok(match &settings.store.kind {
        StoreKind::Memory => Stores::of(MemoryStore::new()),
        StoreKind::Embedded(dir) => {
            let store = EmbeddedStore::open(dir, EmbeddedOptions::default())
                .with_context(|| format!("opening the embedded store in {}", dir.display()))?;
            Stores::of(store)
        }
        StoreKind::Redis(url) => {
            let redacted = crate::config::redact_url_password(url);
            let store = RedisStore::open(url, RedisStoreOptions::default())
                .await
                .with_context(|| format!("opening the Redis store at {redacted}"))?;
            Stores::of(store)
        }
    })
}

type Cluster = (ClusterEngines, ClusterOptions, WebhookStores, ModerationEngines);

async fn open_cluster(settings: &ClusterSettings) -> anyhow::Result<Cluster> {
    let url = &settings.url;
    let redacted = settings.url_redacted();
    let node = NodeId::random();
    let bus = RedisBus::open(url, node.clone(), RedisBusOptions::default())
        .await
        .with_context(|| format!("opening the cluster bus at {redacted}"))?;
    let redis =
        RedisEngines::open(url).await.with_context(|| format!("connecting to the cluster at {redacted}"))?;
    let stores = WebhookStores {
        dead_letters: Arc::new(redis.dead_letters.clone()),
        journal: Arc::new(redis.webhook_journal(node.clone())),
    };
    let engines = ClusterEngines {
        node,
        bus: Arc::new(bus),
        presence: Arc::new(redis.presence),
        occupancy: Arc::new(redis.occupancy),
        registry: Arc::new(redis.registry),
        announcements: Arc::new(redis.announcements),
    };
    let options = ClusterOptions {
        heartbeat: settings.heartbeat,
        node_lease: settings.node_lease,
        advertise: settings.advertise.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        // Webhooks hold closings this long; in a cluster the hub holds them.
        event_hold: crate::pusher::webhooks::WebhookOptions::default().hold,
        ..ClusterOptions::default()
    };
    let moderation: ModerationEngines =
        (Arc::new(redis.rate_limits.clone()), Arc::new(redis.sanctions.clone()));
    Ok((engines, options, stores, moderation))
}
