//! What an application chooses when it connects and publishes.

use std::sync::Arc;
use std::time::Duration;

use crate::Backoff;

/// Settings of one [`Client`](crate::Client).
///
/// Build with [`ClientOptions::new`] and override fields with struct update
/// syntax: `ClientOptions { token: Some(jwt), ..ClientOptions::new(url) }`.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server's native WebSocket endpoint, e.g. `ws://127.0.0.1:6001/connection/websocket`.
    pub url: String,
    /// Other endpoints of the same cluster, tried in turn after `url` when
    /// a reconnect attempt fails (see the crate docs on reconnecting).
    /// Empty by default: only `url` is used.
    pub fallback_urls: Vec<String>,
    /// A JWT sent with every `connect`; `None` connects anonymously.
    pub token: Option<String>,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// Limit for one connection attempt: TCP, WebSocket handshake and the
    /// `connect` reply together.
    pub connect_timeout: Duration,
    /// Limit for any other command to get its reply.
    pub request_timeout: Duration,
    /// Events each [`Subscription`](crate::Subscription) buffers before the
    /// client stops reading the socket (at least 1). See the crate docs on
    /// backpressure.
    pub subscription_buffer: usize,
    /// Calls buffered between the [`Client`](crate::Client) handles and the
    /// connection task (at least 1).
    pub command_buffer: usize,
    /// Added to twice the server's ping interval to get how long a silent
    /// connection is trusted before the client treats it as dead.
    pub ping_margin: Duration,
    /// TLS for `wss://` URLs; `None`: [`default_tls`](crate::default_tls)
    /// (Mozilla's roots). [`trusting`](crate::trusting) builds one for a
    /// private CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            fallback_urls: Vec::new(),
            token: None,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            subscription_buffer: 256,
            command_buffer: 64,
            ping_margin: Duration::from_secs(5),
            tls: None,
        }
    }

    /// `url`, then `fallback_urls`: the endpoints reconnects go round.
    pub(crate) fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.fallback_urls.iter().map(String::as_str))
    }

    /// The endpoint of the `n`-th place in the round (wrapping).
    pub(crate) fn url_at(&self, n: usize) -> &str {
        let count = 1 + self.fallback_urls.len();
        self.urls().nth(n % count).unwrap_or(&self.url)
    }

    /// How long the connection may stay silent before it counts as dead;
    /// `None` when the server does not ping.
    pub(crate) fn idle_timeout(&self, ping_interval_ms: u64) -> Option<Duration> {
        (ping_interval_ms > 0).then(|| Duration::from_millis(ping_interval_ms) * 2 + self.ping_margin)
    }
}

/// Options of one publication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The server applies a publish with the same key once within its
    /// idempotency window (5 minutes by default).
    pub idempotency_key: Option<String>,
    /// Deliver to current subscribers only: no offset, no history, no recovery.
    pub ephemeral: bool,
}
