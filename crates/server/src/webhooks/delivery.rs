//! Delivery: one task per webhook endpoint batches the events queued for
//! it into signed POSTs and retries failed ones.
//!
//! A batch is the first event and whatever follows within `batch_window`,
//! at most `batch_max` events (then [`BatchEvent::coalesce`]). Its body,
//! `{"time_ms", "events"}`, is built and signed once (the endpoint's
//! signature header = [`sign`](super::sign) of the raw body with its
//! secret) and sent again unchanged on retries. Any 2xx is success;
//! anything else, or no answer, is retried after 1 s, 2 s, 4 s … (capped),
//! for `retry_for` in all, and then the batch is written as a dead letter.
//! Several batches of one endpoint may be in flight at once, so one slow
//! batch does not hold back the others for five minutes.
//!
//! Each batch is written to the journal (`journal.rs`) before its first
//! attempt and removed from it once delivered or kept as a dead letter, so
//! a batch in retry survives a restart. A flush (the server stopping)
//! closes the batch being collected at once, so that every event queued
//! before it is journaled when the flush is answered.

use std::marker::PhantomData;
use std::sync::Arc;

use reqwest::Url;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

use super::dead_letters::{self, DeadLetter};
use super::journal::Pending;
use super::routes::{Redeliver, Route, Routes};
use super::{DeliveryMetrics, WebhookOptions, WebhookStores, event_id, now_ms, sign};

/// The events of one family of webhooks, as they are journaled, sent and
/// kept in dead letters.
pub(crate) trait BatchEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Drops what later events of the same batch make redundant; by
    /// default nothing.
    fn coalesce(batch: Vec<Arc<Self>>) -> Vec<Arc<Self>> {
        batch
    }
}

/// Where and how one endpoint's batches are posted.
pub(crate) struct Destination {
    /// The Pusher app's id; `None` for a `[[webhooks]]` endpoint. With the
    /// URL, it names the endpoint in the journal and in dead letters.
    pub app_id: Option<String>,
    pub url: Url,
    /// The HMAC key of the signature.
    pub secret: String,
    /// `X-Pusher-Signature` or `X-Fanfare-Signature`.
    pub signature_header: &'static str,
    /// Sent with every POST besides these (Pusher's `X-Pusher-Key`).
    pub headers: Vec<(&'static str, String)>,
    /// One POST's timeout; `None`: the options' `request_timeout`.
    pub timeout: Option<Duration>,
}

/// What an endpoint's task is given.
pub(super) enum Queued<E> {
    Event(Arc<E>),
    /// Close the batch being collected, journal it, then answer.
    Flush(oneshot::Sender<()>),
}

/// A family's side of one endpoint: its queue.
pub(crate) struct EndpointQueue<E> {
    queue: mpsc::Sender<Queued<E>>,
}

impl<E> EndpointQueue<E> {
    /// Queues without waiting; false when the queue is full.
    pub fn queue(&self, event: Arc<E>) -> bool {
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
pub(super) struct Target<E> {
    destination: Destination,
    client: reqwest::Client,
    options: WebhookOptions,
    stores: WebhookStores,
    metrics: DeliveryMetrics,
    events: PhantomData<fn() -> E>,
}

/// The HTTP client of every endpoint: no redirects, the options' timeout,
/// and `tls.webhook_ca_file`'s roots.
pub(crate) fn http_client(options: &WebhookOptions) -> reqwest::Client {
    reqwest::Client::builder()
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
        })
}

/// Spawns the delivery task of one endpoint and adds it to `routes` (where
/// journaled batches and replayed dead letters for it are delivered).
pub(crate) fn start_endpoint<E: BatchEvent>(
    destination: Destination,
    client: &reqwest::Client,
    options: &WebhookOptions,
    stores: &WebhookStores,
    metrics: &DeliveryMetrics,
    routes: &mut Routes,
) -> EndpointQueue<E> {
    let (queue, queued) = mpsc::channel(options.endpoint_queue);
    let key = (destination.app_id.clone(), destination.url.as_str().to_owned());
    let target = Arc::new(Target {
        destination,
        client: client.clone(),
        options: options.clone(),
        stores: stores.clone(),
        metrics: metrics.clone(),
        events: PhantomData,
    });
    routes.insert(key, Route::new(target.clone(), queue.clone()));
    tokio::spawn(run_endpoint(target, queued));
    EndpointQueue { queue }
}

async fn run_endpoint<E: BatchEvent>(target: Arc<Target<E>>, mut queued: mpsc::Receiver<Queued<E>>) {
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
        let pending = journaled(&target, E::coalesce(batch)).await;
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
async fn journaled<E: BatchEvent>(target: &Target<E>, events: Vec<Arc<E>>) -> Pending<E> {
    let pending = Pending {
        id: event_id(),
        app_id: target.destination.app_id.clone(),
        url: target.destination.url.as_str().to_owned(),
        queued_ms: now_ms(),
        events,
    };
    if let Some(record) = pending.encode()
        && let Err(error) = target.stores.journal.put(&pending.id, record).await
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
impl<E: BatchEvent> Redeliver for Target<E> {
    fn redeliver(self: Arc<Self>, id: &str, record: &[u8]) -> bool {
        let Some(pending) = Pending::<E>::decode(id, record) else { return false };
        tokio::spawn(deliver(self, pending));
        true
    }
}

#[derive(Serialize)]
struct Body<'a, E> {
    time_ms: u64,
    events: &'a [Arc<E>],
}

/// Posts one batch until it is accepted or `retry_for` has passed, then
/// forgets it from the journal.
async fn deliver<E: BatchEvent>(target: Arc<Target<E>>, pending: Pending<E>) {
    attempt_until_done(&target, &pending.events).await;
    if let Err(error) = target.stores.journal.remove(&pending.id).await {
        let error = anyhow::Error::from(error);
        tracing::warn!(
            error = format!("{error:#}"),
            "a delivered webhook batch stays journaled: a restart sends it again"
        );
    }
}

async fn attempt_until_done<E: BatchEvent>(target: &Target<E>, batch: &[Arc<E>]) {
    let options = &target.options;
    let destination = &target.destination;
    let body = match serde_json::to_vec(&Body { time_ms: now_ms(), events: batch }) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot encode a webhook body");
            return;
        }
    };
    let signature = sign(&destination.secret, &body);
    let app = destination.app_id.as_deref().unwrap_or_default();
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
            tracing::warn!(app, url = %destination.url, attempts, %error, "webhook batch given up");
            target.metrics.dead.increment(1);
            let letter = DeadLetter {
                time_ms: now_ms(),
                app_id: destination.app_id.as_deref(),
                url: destination.url.as_str(),
                attempts,
                error: &error,
                events: batch,
            };
            if dead_letters::keep(&*target.stores.dead_letters, &letter).await {
                target.metrics.dead_letters.increment(1);
            }
            return;
        }
        tracing::debug!(app, url = %destination.url, attempts, %error, "webhook batch failed; retrying");
        target.metrics.retried.increment(1);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(options.retry_max_delay);
    }
}

async fn post<E>(target: &Target<E>, body: &[u8], signature: &str) -> Result<(), String> {
    let destination = &target.destination;
    let mut request = target
        .client
        .post(destination.url.clone())
        .header("Content-Type", "application/json")
        .header(destination.signature_header, signature);
    for (name, value) in &destination.headers {
        request = request.header(*name, value);
    }
    if let Some(timeout) = destination.timeout {
        request = request.timeout(timeout);
    }
    let response = request
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
