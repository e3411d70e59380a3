//! Adopting journaled batches (`journal.rs`) and delivering them as they
//! were: at start (an earlier run's, or what cluster nodes that stopped
//! cleanly released), every `adopt_every` on a cluster node (releases
//! while it runs), and a dead node's when the hub claims that node
//! (`HubEvent::NodeGone`).

use bytes::Bytes;
use fanfare_cluster::NodeId;

use super::WebhookStores;
use super::dead_letters::{self, DeadLetter};
use super::delivery::{Targets, redeliver};
use super::journal::Pending;

pub(super) struct Adoption {
    pub stores: WebhookStores,
    pub targets: Targets,
}

impl Adoption {
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

    async fn deliver(&self, id: &str, record: &Bytes) {
        let Some(pending) = Pending::decode(id, record) else {
            self.forget(id).await;
            return;
        };
        if let Some(target) = self.targets.get(&(pending.app_id.clone(), pending.url.clone())) {
            redeliver(target.clone(), pending);
            return;
        }
        let error = "its webhook is no longer configured";
        tracing::warn!(app = pending.app_id, url = pending.url, "a journaled webhook batch: {error}");
        let letter = DeadLetter {
            time_ms: pending.queued_ms,
            app_id: &pending.app_id,
            url: &pending.url,
            attempts: 0,
            error,
            events: &pending.events,
        };
        dead_letters::keep(&*self.stores.dead_letters, &letter).await;
        self.forget(id).await;
    }

    async fn forget(&self, id: &str) {
        if let Err(error) = self.stores.journal.remove(id).await {
            let error = anyhow::Error::from(error);
            tracing::warn!(error = format!("{error:#}"), id, "could not forget a journaled webhook batch");
        }
    }
}
