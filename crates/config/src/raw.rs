//! The configuration as written: every key optional, unknown keys refused.
//!
//! This is what the file, the environment and the flags are merged into.
//! Nothing outside `config/` sees it: `validate/` turns it, once, into
//! [`Settings`](super::Settings), and `render.rs` turns settings back into
//! it to print the resolved configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use super::kinds::{
    Durability, JwtAlgorithm, LogFormat, PublishPolicy, ServerEventKind, SubscribePolicy, WebhookKind,
};
use super::rate::HumanRate;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_nodelay: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_threads: Option<usize>,
    /// `[log]`; the older `log = "FILTER"` is read as `log.level` when
    /// the file is parsed (`load.rs`).
    #[serde(default, skip_serializing_if = "RawLog::is_empty")]
    pub log: RawLog,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default, skip_serializing_if = "RawCluster::is_empty")]
    pub cluster: RawCluster,
    #[serde(default, skip_serializing_if = "RawTls::is_empty")]
    pub tls: RawTls,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub auth: RawAuth,
    /// Options of every namespace, including the default one (channel
    /// names without `:`), unless `[namespaces.NAME]` overrides them.
    #[serde(default)]
    pub channel_defaults: RawNamespace,
    #[serde(default)]
    pub namespaces: BTreeMap<String, RawNamespace>,
    /// `[members]`: members channels' limits and the feed (`members.rs`).
    #[serde(default)]
    pub members: super::members::RawMembers,
    #[serde(default, skip_serializing_if = "RawPusher::is_empty")]
    pub pusher: RawPusher,
    /// `[[webhooks]]`: the server's own webhooks (moderation, rejections).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<RawServerWebhook>,
}

/// One `[[webhooks]]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServerWebhook {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<ServerEventKind>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
}

impl RawLog {
    fn is_empty(&self) -> bool {
        self.level.is_none() && self.format.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<Durability>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_lease: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HumanDuration>,
}

impl RawCluster {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_ca_file: Option<PathBuf>,
}

impl RawTls {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_channels_per_connection: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_commands_per_second: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_frames: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_timeout: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pong_timeout: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_history_read: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_below_percent: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_http_body_bytes: Option<usize>,
    // Admission (`validate/admission.rs`): handshake rates, connections
    // per IP and per user, and whose `X-Forwarded-For` names the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_handshakes_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_handshakes_per_ip_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_ip: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_user: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_algorithm: Option<JwtAlgorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_public_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels_claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamespace {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_ttl: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_leave: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_window: Option<HumanDuration>,
    /// Unset: `store.durability`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<Durability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_rate_per_connection: Option<HumanRate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_rate_per_user: Option<HumanRate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_rate_per_channel: Option<HumanRate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_mode: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typing_interval: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_interval: Option<HumanDuration>,
    /// `content`: blocklist, links, pre-publish hook (`content.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<super::content::RawContent>,
    /// `shaping`: huge-room shaping (`shaping.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shaping: Option<super::shaping::RawShaping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manage_members: Option<super::kinds::ManageMembers>,
}

/// `[pusher]`: the default app's shorthand keys (what the
/// `FANFARE_PUSHER_APP_*` variables set) and the `[[pusher.apps]]` list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPusher {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_client_events: Option<bool>,
    /// How long a signed-in user's missed events are kept for its
    /// reconnect (`docs/pusher.md`, "Continuity"); `0s` turns it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuity_window: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<RawPusherApp>,
}

impl RawPusher {
    pub fn is_empty(&self) -> bool {
        *self == RawPusher::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPusherApp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// `enable_client_messages`: Soketi's and Sockudo's name.
    #[serde(alias = "enable_client_messages", skip_serializing_if = "Option::is_none")]
    pub client_events: Option<bool>,
    #[serde(alias = "enable_user_authentication", skip_serializing_if = "Option::is_none")]
    pub user_authentication: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_authentication_timeout: Option<HumanDuration>,
    #[serde(alias = "max_presence_members_per_channel", skip_serializing_if = "Option::is_none")]
    pub max_presence_members: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_presence_user_info_bytes: Option<usize>,
    /// Soketi's `max_presence_user_info_bytes`, in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_presence_member_size_in_kb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_bytes: Option<usize>,
    /// Soketi's `max_event_bytes`, in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_payload_in_kb: Option<f64>,
    /// The `_per_sec` and `_req_` names are Soketi's (Sockudo's are ours).
    #[serde(alias = "max_client_events_per_sec", skip_serializing_if = "Option::is_none")]
    pub max_client_events_per_second: Option<usize>,
    #[serde(alias = "max_backend_events_per_sec", skip_serializing_if = "Option::is_none")]
    pub max_backend_events_per_second: Option<usize>,
    #[serde(alias = "max_read_req_per_sec", skip_serializing_if = "Option::is_none")]
    pub max_read_requests_per_second: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_channel_name_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_name_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_channels_at_once: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<WebhookKind>>,
}
