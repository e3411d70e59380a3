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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use bytes::Bytes as Record;
    use fanfare_cluster::WebhookJournal;
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::{ServerEventKind, ServerWebhookSettings};
    use crate::webhooks::{JournalFile, ServerWebhooks, WebhookOptions};

    /// A receiver answering 200 to every POST, reporting what it got.
    async fn receiver() -> (String, mpsc::Receiver<(HeaderMap, Bytes)>) {
        let (tx, rx) = mpsc::channel(10);
        let app = axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, body)).await;
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, rx)
    }

    fn record(id: &str, url: &str, event: &str) -> Record {
        Record::from(format!(r#"{{"id":"{id}","url":"{url}","queued_ms":5,"events":[{event}]}}"#))
    }

    #[tokio::test]
    async fn an_earlier_runs_batch_goes_to_its_webhooks_endpoint_and_an_unconfigured_ones_to_the_dead_letters()
     {
        let dir = tempfile::tempdir().unwrap();
        let (url, mut posts) = receiver().await;
        let event = r#"{"name":"moderation_action","id":"e1","actor":"api"}"#;
        // What an earlier run (another journal handle) left.
        let earlier = JournalFile::new(dir.path());
        earlier.put("b1", record("b1", &url, event)).await.unwrap();
        earlier.put("b2", record("b2", "http://127.0.0.1:1/gone", event)).await.unwrap();

        let stores = WebhookStores::in_data_dir(dir.path());
        let settings = ServerWebhookSettings {
            url: url.parse().unwrap(),
            secret: "s".into(),
            events: [ServerEventKind::Moderation].into(),
            timeout: Duration::from_secs(5),
        };
        let mut routes = Routes::default();
        let _webhooks =
            ServerWebhooks::start(&[settings], None, &WebhookOptions::default(), &stores, &mut routes);
        Adoption::new(stores.clone(), Arc::new(routes)).adopt(&[]).await;

        let (headers, body) =
            tokio::time::timeout(Duration::from_secs(10), posts.recv()).await.unwrap().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["events"],
            serde_json::json!([serde_json::from_str::<serde_json::Value>(event).unwrap()])
        );
        assert!(headers.contains_key("x-fanfare-signature"));
        let letters = stores.dead_letters.recent(10).await.unwrap();
        let letter: serde_json::Value = serde_json::from_slice(&letters[0]).unwrap();
        assert_eq!(letter["url"], "http://127.0.0.1:1/gone");
        assert!(letter.get("app_id").is_none(), "{letter}");
        assert_eq!(letter["error"], "its webhook is no longer configured");
    }
}
