//! Every webhook endpoint of both families by its name — the Pusher app's
//! id (`None` for `[[webhooks]]`) and the URL — as the journal and dead
//! letters name it: where a batch found in the journal is delivered
//! (`adoption.rs`) and where a replayed dead letter is queued
//! (`replay.rs`), whichever family's events it holds.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::dead_letters::KeptLetter;
use super::delivery::{BatchEvent, Queued, Target};

/// An endpoint's name: (app id, URL).
pub(super) type EndpointKey = (Option<String>, String);

/// Delivers a journal record as it was: false when it does not decode as
/// the endpoint's events.
pub(super) trait Redeliver: Send + Sync {
    fn redeliver(self: Arc<Self>, id: &str, record: &[u8]) -> bool;
}

/// Why a dead letter's events were not queued again.
pub(super) enum Requeued {
    /// This many were queued.
    Queued(usize),
    /// The endpoint's queue has no room for all of them: none was queued.
    Full(usize),
    /// They are not this endpoint's family's events.
    Foreign,
}

/// Queues a kept dead letter's events again, all or none.
trait Requeue: Send + Sync {
    fn requeue(&self, letter: &[u8]) -> Requeued;
}

impl<E: BatchEvent> Requeue for mpsc::Sender<Queued<E>> {
    fn requeue(&self, letter: &[u8]) -> Requeued {
        let Ok(letter) = serde_json::from_slice::<KeptLetter<E>>(letter) else { return Requeued::Foreign };
        let events = letter.events.len();
        if events == 0 {
            return Requeued::Queued(0);
        }
        // All or none: a half-replayed letter would be hard to reason about.
        let Ok(permits) = self.try_reserve_many(events) else { return Requeued::Full(events) };
        for (permit, event) in permits.zip(letter.events) {
            permit.send(Queued::Event(Arc::new(event)));
        }
        Requeued::Queued(events)
    }
}

/// One endpoint's ways in.
pub(super) struct Route {
    redeliver: Arc<dyn Redeliver>,
    requeue: Box<dyn Requeue>,
}

impl Route {
    pub fn new<E: BatchEvent>(target: Arc<Target<E>>, queue: mpsc::Sender<Queued<E>>) -> Self {
        Self { redeliver: target, requeue: Box::new(queue) }
    }

    pub fn redeliver(&self, id: &str, record: &[u8]) -> bool {
        self.redeliver.clone().redeliver(id, record)
    }

    pub fn requeue(&self, letter: &[u8]) -> Requeued {
        self.requeue.requeue(letter)
    }
}

/// Every endpoint's route, filled as the families start their endpoints.
#[derive(Default)]
pub(crate) struct Routes {
    routes: HashMap<EndpointKey, Route>,
}

impl Routes {
    pub(super) fn insert(&mut self, key: EndpointKey, route: Route) {
        self.routes.insert(key, route);
    }

    pub(super) fn get(&self, app_id: Option<&str>, url: &str) -> Option<&Route> {
        self.routes.get(&(app_id.map(str::to_owned), url.to_owned()))
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    impl BatchEvent for Value {}

    fn letter(events: usize) -> Vec<u8> {
        let events: Vec<Value> = (0..events).map(|n| json!({"name": "cache_miss", "n": n})).collect();
        serde_json::to_vec(&json!({"id": "x", "url": "http://h/", "events": events})).unwrap()
    }

    #[test]
    fn a_letter_is_queued_whole_or_not_at_all() {
        let (queue, mut received) = mpsc::channel::<Queued<Value>>(3);
        assert!(matches!(queue.requeue(&letter(2)), Requeued::Queued(2)));
        assert!(matches!(queue.requeue(&letter(2)), Requeued::Full(2)), "one slot left: nothing queued");
        assert!(matches!(received.try_recv().unwrap(), Queued::Event(event) if event["n"] == 0));
        assert!(received.try_recv().is_ok());
        assert!(received.try_recv().is_err());
        assert!(matches!(queue.requeue(b"{\"events\":7}"), Requeued::Foreign));
    }
}
