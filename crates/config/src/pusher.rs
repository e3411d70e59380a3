//! The `[pusher]` section: Pusher apps (id, key, secret, limits) and the
//! webhooks each app sends.
//!
//! Apps come from `[[pusher.apps]]` tables, plus one *default app* from the
//! shorthand keys `pusher.app_id`, `pusher.app_key`, `pusher.app_secret`,
//! `pusher.app_client_events` (what the `FANFARE_PUSHER_APP_*` variables
//! set). When the shorthand names the id of a listed app, it overrides
//! that app's key, secret and client events (so the secret can live in the
//! environment and the rest in the file); otherwise it adds an app with the
//! channel prefix `""`. With no app at all, the serve command generates one
//! on first start (`data_dir/pusher_app.rs`).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use fanfare_protocol::pusher::{MAX_EVENT_NAME_LEN, MAX_PUSHER_CHANNEL_NAME_LEN};
use reqwest::Url;

use super::duration::HumanDuration;
use super::kinds::WebhookKind;
use super::raw::{RawPusher, RawPusherApp, RawWebhook};

/// Every Pusher app this server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PusherSettings {
    pub apps: Vec<AppSettings>,
    /// How long after losing a connection a signed-in user's next
    /// subscription to a private or presence channel replays what it
    /// missed (`docs/pusher.md`, "Continuity"); zero: never.
    pub continuity_window: Duration,
}

/// `pusher.continuity_window` when not set.
pub const DEFAULT_CONTINUITY_WINDOW: Duration = Duration::from_secs(120);

/// The longest `pusher.continuity_window`: the server keeps a point per
/// (user, channel) that long; past an hour a replay is no reconnect.
pub const MAX_CONTINUITY_WINDOW: Duration = Duration::from_secs(3600);

impl Default for PusherSettings {
    fn default() -> Self {
        Self { apps: Vec::new(), continuity_window: DEFAULT_CONTINUITY_WINDOW }
    }
}

/// One Pusher app.
#[derive(Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// `app_id` of the HTTP API (`/apps/{id}/…`).
    pub id: String,
    /// The public key clients connect with (`/app/{key}`).
    pub key: String,
    /// Signs channel and user auth, HTTP API requests and webhooks.
    pub secret: String,
    /// A disabled app refuses connections (4003) and API calls (403).
    pub enabled: bool,
    /// The hub channel of Pusher channel `name` is `channel_prefix + name`:
    /// `""`, or a namespace followed by `:` (`"acme:"`).
    pub channel_prefix: String,
    /// Most connections at once; 0 = unlimited. Over it: close 4004.
    pub max_connections: usize,
    /// Whether clients may send `client-*` events.
    pub client_events: bool,
    /// How long a connection has to sign in (or subscribe to a private or
    /// presence channel) before it is closed with 4009; zero: no such rule.
    pub user_authentication_timeout: Duration,
    pub max_presence_members: usize,
    pub max_presence_user_info_bytes: usize,
    /// Largest `data` of an event, triggered through the HTTP API or sent
    /// by a client.
    pub max_event_bytes: usize,
    /// `client-*` events one connection may send per second; 0 = unlimited.
    pub max_client_events_per_second: usize,
    /// Events the HTTP API may trigger per second on this node, an event to
    /// N channels counting N (as Soketi counts); 0 = unlimited.
    pub max_backend_events_per_second: usize,
    /// `GET` requests to the HTTP API per second on this node; 0 = unlimited.
    pub max_read_requests_per_second: usize,
    /// Longest channel name, in characters (at most 200).
    pub max_channel_name_length: usize,
    /// Longest event name, in characters (at most 200).
    pub max_event_name_length: usize,
    /// Most channels one trigger may name; 0 = unlimited.
    pub max_event_channels_at_once: usize,
    /// Most events in one `batch_events` request; 0 = unlimited.
    pub max_event_batch_size: usize,
    pub webhooks: Vec<WebhookSettings>,
}

impl AppSettings {
    /// An app with these credentials and every other setting at its default.
    pub fn new(id: impl Into<String>, key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            enabled: true,
            channel_prefix: String::new(),
            max_connections: 0,
            client_events: false,
            user_authentication_timeout: Duration::ZERO,
            // Pusher's published limits where it has one, else unlimited.
            max_presence_members: 100,
            max_presence_user_info_bytes: 1024,
            max_event_bytes: 10 * 1024,
            max_client_events_per_second: 10,
            max_backend_events_per_second: 0,
            max_read_requests_per_second: 0,
            max_channel_name_length: MAX_PUSHER_CHANNEL_NAME_LEN,
            max_event_name_length: MAX_EVENT_NAME_LEN,
            max_event_channels_at_once: 100,
            max_event_batch_size: 10,
            webhooks: Vec::new(),
        }
    }

    /// Whether connections must authenticate within a time.
    pub fn requires_authentication(&self) -> bool {
        !self.user_authentication_timeout.is_zero()
    }
}

impl fmt::Debug for AppSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSettings")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("channel_prefix", &self.channel_prefix)
            .field("max_connections", &self.max_connections)
            .field("client_events", &self.client_events)
            .field("user_authentication_timeout", &self.user_authentication_timeout)
            .field("max_presence_members", &self.max_presence_members)
            .field("max_presence_user_info_bytes", &self.max_presence_user_info_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .field("max_client_events_per_second", &self.max_client_events_per_second)
            .field("max_backend_events_per_second", &self.max_backend_events_per_second)
            .field("max_read_requests_per_second", &self.max_read_requests_per_second)
            .field("max_channel_name_length", &self.max_channel_name_length)
            .field("max_event_name_length", &self.max_event_name_length)
            .field("max_event_channels_at_once", &self.max_event_channels_at_once)
            .field("max_event_batch_size", &self.max_event_batch_size)
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

/// One webhook endpoint of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: Url,
    /// The event types sent to it (never empty).
    pub events: BTreeSet<WebhookKind>,
}

impl PusherSettings {
    /// Back to raw keys, for `fanfare config check`; every app as a
    /// `[[pusher.apps]]` table.
    pub(crate) fn to_raw(&self, redact: impl Fn(&str) -> String) -> RawPusher {
        let apps = self
            .apps
            .iter()
            .map(|app| RawPusherApp {
                id: Some(app.id.clone()),
                key: Some(app.key.clone()),
                secret: Some(redact(&app.secret)),
                enabled: Some(app.enabled),
                channel_prefix: Some(app.channel_prefix.clone()),
                max_connections: Some(app.max_connections),
                client_events: Some(app.client_events),
                user_authentication: Some(app.requires_authentication()),
                user_authentication_timeout: Some(HumanDuration(app.user_authentication_timeout)),
                max_presence_members: Some(app.max_presence_members),
                max_presence_user_info_bytes: Some(app.max_presence_user_info_bytes),
                max_presence_member_size_in_kb: None,
                max_event_bytes: Some(app.max_event_bytes),
                max_event_payload_in_kb: None,
                max_client_events_per_second: Some(app.max_client_events_per_second),
                max_backend_events_per_second: Some(app.max_backend_events_per_second),
                max_read_requests_per_second: Some(app.max_read_requests_per_second),
                max_channel_name_length: Some(app.max_channel_name_length),
                max_event_name_length: Some(app.max_event_name_length),
                max_event_channels_at_once: Some(app.max_event_channels_at_once),
                max_event_batch_size: Some(app.max_event_batch_size),
                webhooks: app
                    .webhooks
                    .iter()
                    .map(|hook| RawWebhook {
                        url: Some(hook.url.to_string()),
                        events: Some(hook.events.iter().copied().collect()),
                    })
                    .collect(),
            })
            .collect();
        let continuity_window = Some(HumanDuration(self.continuity_window));
        RawPusher { apps, continuity_window, ..RawPusher::default() }
    }
}
