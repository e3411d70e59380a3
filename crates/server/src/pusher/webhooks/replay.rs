//! Replaying a dead letter: `POST /api/webhooks/dead_letters/{id}/replay`.
//!
//! 1. Find the letter by its `id` among the newest [`SCAN`] letters of the
//!    log (on a cluster node: every node's, in Redis).
//! 2. Find the endpoint it was meant for: the same app id and URL in this
//!    node's configuration. A letter whose app or URL is no longer
//!    configured cannot be replayed.
//! 3. Queue its events, all or none, on that endpoint's delivery queue: from
//!    there they are batched, signed, retried, and after `retry_for` kept as
//!    a new dead letter with a new id, like any other event.
//!
//! The events keep their ids, so a receiver that de-duplicates by event id
//! sees a replay of an event it did receive (or a second replay) as the
//! duplicate it is. The letter itself stays in the log.

use std::collections::HashMap;
use std::sync::Arc;

use fanfare_cluster::{ClusterError, DeadLetterLog};
use tokio::sync::mpsc;

use super::Event;
use super::dead_letters::KeptLetter;
use super::delivery::{Endpoint, Queued};

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
    #[error("the dead letter's webhook (app {app_id:?}, {url}) is no longer configured on this node")]
    NotConfigured { app_id: String, url: String },
    #[error("the webhook queue of {url} has no room for {events} events; retry later")]
    QueueFull { url: String, events: usize },
    #[error("reading the dead letters")]
    Log(#[source] ClusterError),
}

/// The delivery queue of every endpoint, by app id and URL.
#[derive(Default)]
pub(super) struct Replays {
    queues: HashMap<(String, String), mpsc::Sender<Queued>>,
}

impl Replays {
    /// `endpoints`: every app's, by app id (as the dispatcher gets them).
    pub fn new(endpoints: &HashMap<String, Vec<Endpoint>>) -> Self {
        let queues = endpoints
            .iter()
            .flat_map(|(app_id, endpoints)| {
                endpoints.iter().map(|e| ((app_id.clone(), e.url.as_str().to_owned()), e.queue.clone()))
            })
            .collect();
        Self { queues }
    }

    pub async fn replay(&self, log: &dyn DeadLetterLog, id: &str) -> Result<Replayed, ReplayError> {
        let letter = find(log, id).await?;
        let key = (letter.app_id, letter.url);
        let Some(queue) = self.queues.get(&key) else {
            let (app_id, url) = key;
            return Err(ReplayError::NotConfigured { app_id, url });
        };
        let events = letter.events.len();
        queue_all(queue, letter.events)
            .map_err(|()| ReplayError::QueueFull { url: key.1.clone(), events })?;
        Ok(Replayed { id: id.to_owned(), events })
    }
}

async fn find(log: &dyn DeadLetterLog, id: &str) -> Result<KeptLetter, ReplayError> {
    let letters = log.recent(SCAN).await.map_err(ReplayError::Log)?;
    letters
        .iter()
        .filter_map(|line| serde_json::from_slice::<KeptLetter>(line).ok())
        .find(|letter| letter.id.as_deref() == Some(id))
        .ok_or_else(|| ReplayError::NotFound { id: id.to_owned() })
}

/// Queues every event or none (a half-replayed letter would be hard to
/// reason about); never waits.
fn queue_all(queue: &mpsc::Sender<Queued>, events: Vec<Event>) -> Result<(), ()> {
    if events.is_empty() {
        return Ok(());
    }
    let permits = queue.try_reserve_many(events.len()).map_err(|_| ())?;
    for (permit, event) in permits.zip(events) {
        permit.send(Queued::Event(Arc::new(event)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookKind;

    #[test]
    fn a_letter_is_queued_whole_or_not_at_all() {
        let (queue, mut received) = mpsc::channel(3);
        let events = |n: usize| (0..n).map(|_| Event::new(WebhookKind::CacheMiss, "c")).collect::<Vec<_>>();
        assert!(queue_all(&queue, events(2)).is_ok());
        assert!(queue_all(&queue, events(2)).is_err(), "one slot left: nothing queued");
        assert!(
            matches!(received.try_recv().unwrap(), Queued::Event(event) if event.name == WebhookKind::CacheMiss)
        );
        assert!(received.try_recv().is_ok());
        assert!(received.try_recv().is_err());
    }
}
