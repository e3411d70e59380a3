//! The enums both the raw configuration (`raw.rs`) and the validated
//! settings use: a leaf, so that raw keys never import the settings they
//! are validated into.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who may publish to a channel over a connection. The HTTP API (the
/// application's own server, holding the API key) may always publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishPolicy {
    /// Only the HTTP API.
    Server,
    /// Connections subscribed to the channel.
    Subscribers,
    /// Any connection, subscribed or not.
    Anyone,
    /// The channel's members (`docs/members.md`): a member list kept in
    /// the store, or for `dm:` channels the two users the name holds.
    Members,
}

/// Who may subscribe to a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscribePolicy {
    /// Any connection (anonymous ones only if `allow_anonymous`).
    Anyone,
    /// Only connections whose token's channels claim grants the channel
    /// (an exact name, or `ns:*` for the whole namespace).
    TokenClaim,
    /// The channel's members (`docs/members.md`).
    Members,
    /// Only the user the channel is named after: `feed:alice` by `alice`.
    Owner,
}

/// Who may add and remove a members channel's members besides the HTTP
/// API: `manage_members`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManageMembers {
    /// Only the HTTP API.
    #[default]
    Server,
    /// Also a member whose token's `members` claim grants the channel.
    Grant,
}

/// How log lines are written to standard error: `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One line of text per event: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// When the embedded store acknowledges an append: `store.durability`
/// (the default of every namespace) and a namespace's `durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// After the group commit holding it reached the disk (fsync).
    Fsync,
    /// After the write call: survives a process crash, not a power loss.
    Buffered,
}

impl From<Durability> for fanfare_store::Durability {
    fn from(durability: Durability) -> Self {
        match durability {
            Durability::Fsync => Self::Fsync,
            Durability::Buffered => Self::Buffered,
        }
    }
}

impl From<fanfare_store::Durability> for Durability {
    fn from(durability: fanfare_store::Durability) -> Self {
        match durability {
            fanfare_store::Durability::Fsync => Self::Fsync,
            fanfare_store::Durability::Buffered => Self::Buffered,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Es256 => "ES256",
        }
    }

    /// Whether the key is a shared secret (HMAC) rather than a public key.
    pub fn is_hmac(self) -> bool {
        self == JwtAlgorithm::Hs256
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of webhook event (the `name` of each event in a webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    ChannelOccupied,
    ChannelVacated,
    MemberAdded,
    MemberRemoved,
    ClientEvent,
    CacheMiss,
    SubscriptionCount,
}

impl WebhookKind {
    pub const ALL: [WebhookKind; 7] = [
        WebhookKind::ChannelOccupied,
        WebhookKind::ChannelVacated,
        WebhookKind::MemberAdded,
        WebhookKind::MemberRemoved,
        WebhookKind::ClientEvent,
        WebhookKind::CacheMiss,
        WebhookKind::SubscriptionCount,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::ChannelOccupied => "channel_occupied",
            WebhookKind::ChannelVacated => "channel_vacated",
            WebhookKind::MemberAdded => "member_added",
            WebhookKind::MemberRemoved => "member_removed",
            WebhookKind::ClientEvent => "client_event",
            WebhookKind::CacheMiss => "cache_miss",
            WebhookKind::SubscriptionCount => "subscription_count",
        }
    }
}

impl fmt::Display for WebhookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of event a `[[webhooks]]` endpoint may ask for (its
/// `events`); later features add kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerEventKind {
    /// Every moderator's action (`moderation_action` events).
    Moderation,
    /// Every publication refused by a ban, a mute, slow mode, a publish
    /// rate limit or the content rules (`publication_rejected` events).
    Rejections,
    /// The members of a members channel without a connection to it or to
    /// their feed when a message lands (`offline_members` events): the
    /// hook for push notifications.
    Offline,
}

impl ServerEventKind {
    pub const ALL: [ServerEventKind; 3] =
        [ServerEventKind::Moderation, ServerEventKind::Rejections, ServerEventKind::Offline];

    /// The name in `events`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerEventKind::Moderation => "moderation",
            ServerEventKind::Rejections => "rejections",
            ServerEventKind::Offline => "offline",
        }
    }
}

impl fmt::Display for ServerEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
