//! Delivery: one task per webhook endpoint (an app and a URL) batches the
//! events queued for it into signed POSTs and retries failed ones.
//!
//! A batch is the first event and whatever follows within `batch_window`,
//! at most `batch_max` events. Its body, `{"time_ms", "events"}`, is built
//! and signed once (`X-Pusher-Signature` = hex HMAC-SHA256 of the raw body
//! with the app secret) and sent again unchanged on retries. Any 2xx is
//! success; anything else, or no answer, is retried after 1 s, 2 s, 4 s …
//! (capped), for `retry_for` in all, and then the batch is written as a dead
//! letter. Several batches of one endpoint may be in flight at once, so one
//! slow batch does not hold back the others for five minutes.
//!
//! Each batch is written to the journal (`journal.rs`) before its first
//! attempt and removed from it once delivered or kept as a dead letter, so
//! a batch in retry survives a restart. A flush (the server stopping)
//! closes the batch being collected at once, so that every event queued
//! before it is journaled when the flush is answered.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fanfare_protocol::pusher::sign_webhook;
use reqwest::Url;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

use fanfare_cluster::{DeadLetterLog, WebhookJournal};

use super::dead_letters::{self, DeadLetter};
use super::journal::Pending;
use super::{Event, WebhookMetrics, WebhookOptions, WebhookStores};
use crate::config::WebhookKind;
use crate::pusher::apps::{Apps, PusherApp};

/// What an endpoint's task is given.
pub(super) enum Queued {
    Event(Arc<Event>),
    /// Close the batch being collected, journal it, then answer.
    Flush(oneshot::Sender<()>),
}

/// The dispatcher's side of one endpoint (and a replay's).
pub(super) struct Endpoint {
    events: BTreeSet<WebhookKind>,
    pub url: Url,
    pub queue: mpsc::Sender<Queued>,
}

impl Endpoint {
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.events.contains(&kind)
    }

    /// Queues without waiting; false when the queue is full.
    pub fn queue(&self, event: Arc<Event>) -> bool {
        self.queue.try_send(Queued::Event(event)).is_ok()
    }

    /// Answers once every event queued before is journaled (or the task is
    /// gone).
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Queued::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

/// What every delivery of one endpoint shares.
pub(super) struct Target {
    app: Arc<PusherApp>,
    url: Url,
    client: reqwest::Client,
    options: WebhookOptions,
    dead_letters: Arc<dyn DeadLetterLog>,
    journal: Arc<dyn WebhookJournal>,
    metrics: WebhookMetrics,
}

/// Every endpoint's [`Target`], by app id and URL: where a batch found in
/// the journal is delivered.
pub(super) type Targets = HashMap<(String, String), Arc<Target>>;

/// Spawns a delivery task per webhook of every app; returns the
/// dispatcher's handles, by app id, and every endpoint's target.
pub(super) fn start_endpoints(
    apps: &Apps,
    options: &WebhookOptions,
    stores: &WebhookStores,
    metrics: &WebhookMetrics,
) -> (HashMap<String, Vec<Endpoint>>, Targets) {
    let client = reqwest::Client::builder()
        .timeout(options.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(options.extra_roots.iter().cloned())
        .build()
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot add tls.webhook_ca_file's roots to the webhook HTTP client; without them");
            reqwest::Client::builder()
                .timeout(options.request_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        });
    let mut endpoints: HashMap<String, Vec<Endpoint>> = HashMap::new();
    let mut targets = Targets::new();
    for app in apps.iter() {
        for webhook in &app.settings.webhooks {
            let (queue, events) = mpsc::channel(options.endpoint_queue);
            let target = Arc::new(Target {
                app: app.clone(),
                url: webhook.url.clone(),
                client: client.clone(),
                options: options.clone(),
                dead_letters: stores.dead_letters.clone(),
                journal: stores.journal.clone(),
                metrics: metrics.clone(),
            });
            targets.insert((app.id().to_owned(), webhook.url.as_str().to_owned()), target.clone());
            tokio::spawn(run_endpoint(target, events));
            let endpoint = Endpoint { events: webhook.events.clone(), url: webhook.url.clone(), queue };
            endpoints.entry(app.id().to_owned()).or_default().push(endpoint);
        }
    }
    (endpoints, targets)
}

async fn run_endpoint(target: Arc<Target>, mut queued: mpsc::Receiver<Queued>) {
    let options = &target.options;
    let mut in_flight = JoinSet::new();
    while let Some(first) = queued.recv().await {
        let first = match first {
            Queued::Event(event) => event,
            Queued::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let mut batch = vec![first];
        let mut flushed = None;
        let deadline = Instant::now() + options.batch_window;
        while batch.len() < options.batch_max {
            match tokio::time::timeout_at(deadline, queued.recv()).await {
                Ok(Some(Queued::Event(event))) => batch.push(event),
                Ok(Some(Queued::Flush(done))) => {
                    flushed = Some(done);
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        while in_flight.len() >= options.max_in_flight {
            in_flight.join_next().await;
        }
        let pending = journaled(&target, coalesce(batch)).await;
        in_flight.spawn(deliver(target.clone(), pending));
        if let Some(done) = flushed {
            let _ = done.send(());
        }
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

/// The batch as a journal record, written before its first attempt (when
/// the journal fails, the batch is still delivered, and only a restart
/// would lose it: logged).
async fn journaled(target: &Target, events: Vec<Arc<Event>>) -> Pending {
    let pending = Pending {
        id: super::event_id(),
        app_id: target.app.id().to_owned(),
        url: target.url.as_str().to_owned(),
        queued_ms: now_ms(),
        events,
    };
    if let Some(record) = pending.encode()
        && let Err(error) = target.journal.put(&pending.id, record).await
    {
        let error = anyhow::Error::from(error);
        tracing::warn!(
            error = format!("{error:#}"),
            "a webhook batch is not journaled: a restart would lose it"
        );
    }
    pending
}

/// Delivers a batch found in the journal (an earlier run's, or a dead
/// node's) as it was.
pub(super) fn redeliver(target: Arc<Target>, pending: Pending) {
    tokio::spawn(deliver(target, pending));
}

/// Within a batch, a channel's subscription count is only worth its latest
/// value, and one cache miss per channel says it all.
fn coalesce(batch: Vec<Arc<Event>>) -> Vec<Arc<Event>> {
    let mut last_count: HashMap<&str, usize> = HashMap::new();
    for (index, event) in batch.iter().enumerate() {
        if event.name == WebhookKind::SubscriptionCount {
            last_count.insert(&event.channel, index);
        }
    }
    let mut missed = HashSet::new();
    let keep: Vec<bool> = batch
        .iter()
        .enumerate()
        .map(|(index, event)| match event.name {
            WebhookKind::SubscriptionCount => last_count.get(event.channel.as_str()) == Some(&index),
            WebhookKind::CacheMiss => missed.insert(event.channel.as_str()),
            _ => true,
        })
        .collect();
    batch.into_iter().zip(keep).filter_map(|(event, keep)| keep.then_some(event)).collect()
}

#[derive(Serialize)]
struct Body<'a> {
    time_ms: u64,
    events: &'a [Arc<Event>],
}

/// Posts one batch until it is accepted or `retry_for` has passed, then
/// forgets it from the journal.
async fn deliver(target: Arc<Target>, pending: Pending) {
    attempt_until_done(&target, &pending.events).await;
    if let Err(error) = target.journal.remove(&pending.id).await {
        let error = anyhow::Error::from(error);
        tracing::warn!(
            error = format!("{error:#}"),
            "a delivered webhook batch stays journaled: a restart sends it again"
        );
    }
}

async fn attempt_until_done(target: &Target, batch: &[Arc<Event>]) {
    let options = &target.options;
    let body = match serde_json::to_vec(&Body { time_ms: now_ms(), events: batch }) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot encode a webhook body");
            return;
        }
    };
    let signature = sign_webhook(target.app.secret(), &body);
    let started = Instant::now();
    let mut delay = options.retry_initial;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match post(target, &body, &signature).await {
            Ok(()) => {
                target.metrics.delivered.increment(1);
                return;
            }
            Err(error) => error,
        };
        if started.elapsed() + delay > options.retry_for {
            tracing::warn!(app = target.app.id(), url = %target.url, attempts, %error, "webhook batch given up");
            target.metrics.dead.increment(1);
            let letter = DeadLetter {
                time_ms: now_ms(),
                app_id: target.app.id(),
                url: target.url.as_str(),
                attempts,
                error: &error,
                events: batch,
            };
            if dead_letters::keep(&*target.dead_letters, &letter).await {
                target.metrics.dead_letters.increment(1);
            }
            return;
        }
        tracing::debug!(app = target.app.id(), url = %target.url, attempts, %error, "webhook batch failed; retrying");
        target.metrics.retried.increment(1);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(options.retry_max_delay);
    }
}

async fn post(target: &Target, body: &[u8], signature: &str) -> Result<(), String> {
    let response = target
        .client
        .post(target.url.clone())
        .header("Content-Type", "application/json")
        .header("X-Pusher-Key", target.app.key())
        .header("X-Pusher-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        // With its causes: "error sending request" alone does not say
        // whether DNS, the connection or the certificate failed.
        .map_err(|error| format!("request failed: {:#}", anyhow::Error::from(error)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: WebhookKind, channel: &str, count: Option<usize>) -> Arc<Event> {
        Arc::new(Event { subscription_count: count, ..Event::new(name, channel) })
    }

    #[test]
    fn a_batch_keeps_the_latest_count_and_the_first_cache_miss_per_channel() {
        use WebhookKind::*;
        let batch = vec![
            event(SubscriptionCount, "a", Some(1)),
            event(CacheMiss, "c", None),
            event(ChannelOccupied, "a", None),
            event(SubscriptionCount, "b", Some(7)),
            event(SubscriptionCount, "a", Some(2)),
            event(CacheMiss, "c", None),
            event(CacheMiss, "d", None),
        ];
        let kept: Vec<(WebhookKind, String, Option<usize>)> =
            coalesce(batch).iter().map(|e| (e.name, e.channel.clone(), e.subscription_count)).collect();
        assert_eq!(
            kept,
            [
                (CacheMiss, "c".to_owned(), None),
                (ChannelOccupied, "a".to_owned(), None),
                (SubscriptionCount, "b".to_owned(), Some(7)),
                (SubscriptionCount, "a".to_owned(), Some(2)),
                (CacheMiss, "d".to_owned(), None),
            ]
        );
    }
}
