//! Adopting journaled batches (`journal.rs`) and delivering them as they
//! were, to the endpoint each names (`routes.rs`), whichever family it is
//! of: at start (an earlier run's, or what cluster nodes that stopped
//! cleanly released), every `adopt_every` on a cluster node (releases
//! while it runs), and a dead node's when the hub claims that node
//! (`HubEvent::NodeGone`).

use std::sync::Arc;

use fanfare_cluster::NodeId;
use serde::Deserialize;

use super::WebhookStores;
use super::dead_letters::{self, DeadLetter};
use super::journal::Pending;
use super::routes::Routes;

/// Adopts and delivers journaled batches; one per server, shared by both
/// families (the Pusher dispatcher runs it).
pub(crate) struct Adoption {
    stores: WebhookStores,
    routes: Arc<Routes>,
}

/// What adoption reads of a record before handing it to its endpoint.
#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    app_id: Option<String>,
    url: String,
}

impl Adoption {
    pub fn new(stores: WebhookStores, routes: Arc<Routes>) -> Self {
        Self { stores, routes }
    }

    /// Adopts what `dead` left (and what was released) and delivers it.
    pub async fn adopt(&self, dead: &[NodeId]) {
        match self.stores.journal.adopt(dead).await {
            Ok(records) => {
                if !records.is_empty() {
                    tracing::info!(batches = records.len(), "delivering journaled webhook batches");
                }
                for (id, record) in records {
                    self.deliver(&id, &record).await;
                }
            }
            Err(error) => {
                let error = anyhow::Error::from(error);
                tracing::warn!(error = format!("{error:#}"), "could not adopt journaled webhook batches");
            }
        }
    }

    async fn deliver(&self, id: &str, record: &[u8]) {
        let Ok(named) = serde_json::from_slice::<Named>(record) else {
            tracing::error!(id, "a pending webhook batch does not decode; dropped");
            self.forget(id).await;
            return;
        };
        match self.routes.get(named.app_id.as_deref(), &named.url) {
            Some(route) if route.redeliver(id, record) => {}
            Some(_) => self.forget(id).await,
            None => self.unconfigured(id, record).await,
        }
    }

    /// A batch whose endpoint is no longer configured: a dead letter.
    async fn unconfigured(&self, id: &str, record: &[u8]) {
        if let Some(pending) = Pending::<serde_json::Value>::decode(id, record) {
            let error = "its webhook is no longer configured";
            let app = pending.app_id.as_deref().unwrap_or_default();
            tracing::warn!(app, url = pending.url, "a journaled webhook batch: {error}");
            let letter = DeadLetter {
                time_ms: pending.queued_ms,
                app_id: pending.app_id.as_deref(),
                url: &pending.url,
                attempts: 0,
                error,
                events: &pending.events,
            };
            dead_letters::keep(&*self.stores.dead_letters, &letter).await;
        }
        self.forget(id).await;
    }

    async fn forget(&self, id: &str) {
        if let Err(error) = self.stores.journal.remove(id).await {
            let error = anyhow::Error::from(error);
            tracing::warn!(error = format!("{error:#}"), id, "could not forget a journaled webhook batch");
        }
    }
}
