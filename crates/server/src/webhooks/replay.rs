//! Replaying a dead letter: `POST /api/webhooks/dead_letters/{id}/replay`.
//!
//! 1. Find the letter by its `id` among the newest [`SCAN`] letters of the
//!    log (on a cluster node: every node's, in Redis).
//! 2. Find the endpoint it was meant for: the same app id (none for a
//!    `[[webhooks]]` endpoint) and URL in this node's configuration
//!    (`routes.rs`). A letter whose endpoint is no longer configured
//!    cannot be replayed.
//! 3. Queue its events, all or none, on that endpoint's delivery queue: from
//!    there they are batched, signed, retried, and after `retry_for` kept as
//!    a new dead letter with a new id, like any other event.
//!
//! The events keep their ids, so a receiver that de-duplicates by event id
//! sees a replay of an event it did receive (or a second replay) as the
//! duplicate it is. The letter itself stays in the log.

use std::sync::Arc;

use fanfare_cluster::{ClusterError, DeadLetterLog};
use serde::Deserialize;

use super::routes::{Requeued, Routes};

/// How many of the newest letters a replay looks through for its id.
pub const SCAN: usize = 10_000;

/// What a replay queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub id: String,
    pub events: usize,
}

/// Why a dead letter was not replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead letter has the id {id:?} (among the newest {SCAN})")]
    NotFound { id: String },
    #[error("the dead letter's webhook ({}{url}) is no longer configured on this node", app_label(.app_id))]
    NotConfigured { app_id: Option<String>, url: String },
    #[error("the webhook queue of {url} has no room for {events} events; retry later")]
    QueueFull { url: String, events: usize },
    #[error("reading the dead letters")]
    Log(#[source] ClusterError),
}

fn app_label(app_id: &Option<String>) -> String {
    app_id.as_ref().map(|id| format!("app {id:?}, ")).unwrap_or_default()
}

/// What a replay reads of a letter to find it and its endpoint.
#[derive(Deserialize)]
struct Named {
    id: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
    url: String,
}

/// Finds dead letters and queues them again; one per server.
pub(crate) struct Replays {
    routes: Arc<Routes>,
}

impl Replays {
    pub fn new(routes: Arc<Routes>) -> Self {
        Self { routes }
    }

    pub async fn replay(&self, log: &dyn DeadLetterLog, id: &str) -> Result<Replayed, ReplayError> {
        let letters = log.recent(SCAN).await.map_err(ReplayError::Log)?;
        let (named, line) = letters
            .iter()
            .filter_map(|line| Some((serde_json::from_slice::<Named>(line).ok()?, line)))
            .find(|(named, _)| named.id.as_deref() == Some(id))
            .ok_or_else(|| ReplayError::NotFound { id: id.to_owned() })?;
        let not_configured =
            || ReplayError::NotConfigured { app_id: named.app_id.clone(), url: named.url.clone() };
        let route = self.routes.get(named.app_id.as_deref(), &named.url).ok_or_else(not_configured)?;
        match route.requeue(line) {
            Requeued::Queued(events) => Ok(Replayed { id: id.to_owned(), events }),
            Requeued::Full(events) => Err(ReplayError::QueueFull { url: named.url.clone(), events }),
            Requeued::Foreign => Err(not_configured()),
        }
    }
}
