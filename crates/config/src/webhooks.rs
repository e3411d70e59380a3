//! `[[webhooks]]`: the server's own webhooks, each an endpoint with its own
//! secret that is told of the events it lists (`moderation`: every
//! moderator's action; `rejections`: every refused publication). Unlike the
//! Pusher webhooks (`[[pusher.apps.webhooks]]`), they belong to no app.
//!
//! Delivery (batches, signature, retries, dead letters) is the server's
//! `webhooks/` module; this is only what was configured.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::duration::HumanDuration;
use super::kinds::ServerEventKind;
use super::raw::RawServerWebhook;

/// How long one POST to a `[[webhooks]]` endpoint may take by default.
pub const DEFAULT_SERVER_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// One `[[webhooks]]` endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerWebhookSettings {
    /// Where batches are posted; unique among `[[webhooks]]` (a batch in
    /// the journal or a dead letter names its endpoint by it).
    pub url: Url,
    /// The HMAC-SHA256 key of `X-Fanfare-Signature` (never empty).
    pub secret: String,
    /// The kinds of event sent to it (never empty).
    pub events: BTreeSet<ServerEventKind>,
    /// One POST's timeout (then retried).
    pub timeout: Duration,
}

impl ServerWebhookSettings {
    pub fn wants(&self, kind: ServerEventKind) -> bool {
        self.events.contains(&kind)
    }

    /// Back to its raw keys, for `fanfare config check`.
    pub(crate) fn to_raw(&self, redact: impl Fn(&str) -> String) -> RawServerWebhook {
        RawServerWebhook {
            url: Some(self.url.to_string()),
            secret: Some(redact(&self.secret)),
            events: Some(self.events.iter().copied().collect()),
            timeout: Some(HumanDuration(self.timeout)),
        }
    }
}

impl fmt::Debug for ServerWebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerWebhookSettings")
            .field("url", &self.url.as_str())
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .finish()
    }
}
