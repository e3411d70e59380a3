//! [`ServerWebhooks`]: the `[[webhooks]]` endpoints, told of moderators'
//! actions and refused publications (`events.rs`).
//!
//! [`ServerWebhooks::send`] is called where the thing happens — on the
//! publish path for a refusal — so it never waits: the event is encoded
//! only when an endpoint wants its kind, then offered to each such
//! endpoint's bounded queue; a full queue drops it, counts
//! `fanfare_server_webhook_events_dropped_total` and logs (the first drop,
//! then every thousandth). From the queue on, delivery is the shared
//! machinery (`delivery.rs`): batches signed with the endpoint's secret in
//! `X-Fanfare-Signature`, retries, the journal, dead letters.
//!
//! In a cluster each node sends the events of what it did (the actions it
//! ran, the publications its connections sent), so no event is sent twice;
//! its journaled batches are adopted like the Pusher webhooks' when it
//! stops or dies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::events::{
    EncodedEvent, Offline, OfflineMembersEvent, PublicationRejectedEvent, Refused, ServerEvent, is_reported,
};
use super::{DeliveryMetrics, Destination, EndpointQueue, Routes, WebhookOptions, WebhookStores};
use crate::config::{ServerEventKind, ServerWebhookSettings};

/// The header that carries a `[[webhooks]]` body's signature (as the
/// content pre-publish hook's).
pub const SIGNATURE_HEADER: &str = "X-Fanfare-Signature";

struct ServerEndpoint {
    settings: ServerWebhookSettings,
    queue: EndpointQueue<EncodedEvent>,
}

/// The `[[webhooks]]` endpoints of this node; with none, every call is a
/// no-op.
pub struct ServerWebhooks {
    endpoints: Vec<ServerEndpoint>,
    /// This node's id in the cluster (`None` on a single node), in every
    /// event's `node`.
    node: Option<Arc<str>>,
    metrics: DeliveryMetrics,
    dropped: AtomicU64,
}

impl ServerWebhooks {
    /// Spawns a delivery task per endpoint, each added to `routes`.
    pub(crate) fn start(
        settings: &[ServerWebhookSettings],
        node: Option<Arc<str>>,
        options: &WebhookOptions,
        stores: &WebhookStores,
        routes: &mut Routes,
    ) -> Self {
        let metrics = DeliveryMetrics::server();
        let client = super::http_client(options);
        let endpoints = settings
            .iter()
            .map(|settings| {
                let destination = Destination {
                    app_id: None,
                    url: settings.url.clone(),
                    secret: settings.secret.clone(),
                    signature_header: SIGNATURE_HEADER,
                    headers: Vec::new(),
                    timeout: Some(settings.timeout),
                };
                let queue = super::start_endpoint(destination, &client, options, stores, &metrics, routes);
                ServerEndpoint { settings: settings.clone(), queue }
            })
            .collect();
        Self { endpoints, node, metrics, dropped: AtomicU64::new(0) }
    }

    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Whether some endpoint wants events of `kind` (check before building
    /// an event that costs something).
    pub fn wants(&self, kind: ServerEventKind) -> bool {
        self.endpoints.iter().any(|endpoint| endpoint.settings.wants(kind))
    }

    /// Queues `event` for every endpoint that wants its kind; never waits.
    pub(crate) fn send<E: ServerEvent>(&self, event: &E) {
        if !self.wants(E::KIND) {
            return;
        }
        let Some(encoded) = EncodedEvent::encode(event) else { return };
        let encoded = Arc::new(encoded);
        for endpoint in self.endpoints.iter().filter(|endpoint| endpoint.settings.wants(E::KIND)) {
            if !endpoint.queue.queue(encoded.clone()) {
                self.metrics.dropped.increment(1);
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
                if dropped.is_multiple_of(1000) {
                    tracing::warn!(url = %endpoint.settings.url, dropped = dropped + 1, "a webhook queue is full: events dropped");
                }
            }
        }
    }

    /// A publication refused on the publish path: a `publication_rejected`
    /// event when its code is one of the reported ones (a ban, a mute,
    /// slow mode, a rate limit, the content rules) and an endpoint wants
    /// rejections.
    pub(crate) fn rejected(&self, refused: Refused<'_>) {
        if is_reported(refused.error.code) && self.wants(ServerEventKind::Rejections) {
            self.send(&PublicationRejectedEvent::new(self.node(), &refused));
        }
    }

    /// A message's offline members (`docs/members.md` §6).
    pub(crate) fn offline(&self, offline: Offline<'_>) {
        self.send(&OfflineMembersEvent::new(self.node(), &offline));
    }

    /// The server is stopping: waits up to `within` until what was queued
    /// is journaled (then the Pusher webhooks' flush releases the journal).
    pub async fn flush(&self, within: Duration) {
        let flushing = futures_util::future::join_all(self.endpoints.iter().map(|e| e.queue.flush()));
        if tokio::time::timeout(within, flushing).await.is_err() {
            tracing::warn!("[[webhooks]] events were still queued at the stop; some are lost");
        }
    }
}
