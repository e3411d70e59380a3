//! [`Sanctions`]: the bans, mutes and shadow-bans moderators impose on users, in a
//! channel or a whole namespace, with an optional expiry — kept by the
//! engine, so they survive restarts and hold on every node.

use fanfare_protocol::ChannelName;
use serde::{Deserialize, Serialize};

use crate::ClusterError;

/// What a sanction forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SanctionKind {
    /// Neither subscribe nor publish.
    Ban,
    /// Subscribe and read, not publish.
    Mute,
    /// Subscribe, read and publish, but the publications reach only the
    /// user's own connections: nobody else, not history.
    ShadowBan,
}

impl SanctionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ban => "ban",
            Self::Mute => "mute",
            Self::ShadowBan => "shadow_ban",
        }
    }
}

/// Where a sanction holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Channel(ChannelName),
    /// Every channel of the namespace (`""`: the default one).
    Namespace(String),
}

impl Scope {
    /// Whether the sanction holds in `channel`.
    pub fn covers(&self, channel: &ChannelName) -> bool {
        match self {
            Self::Channel(one) => one == channel,
            Self::Namespace(namespace) => channel.namespace() == namespace,
        }
    }
}

/// One sanction, as imposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sanction {
    pub kind: SanctionKind,
    pub user: String,
    pub scope: Scope,
    /// When it was imposed, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// When it ends (ms since the Unix epoch); `None`: until lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Who imposed it: a moderator's user id, or `api` for the HTTP API.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Sanction {
    /// Sorts `sanctions` as [`Sanctions::list`] answers them: by user, then kind.
    pub fn sort_for_listing(sanctions: &mut [Sanction]) {
        sanctions.sort_by(|a, b| (&a.user, a.kind.as_str()).cmp(&(&b.user, b.kind.as_str())));
    }

    /// Whether it still holds at `now_ms`.
    pub fn in_force(&self, now_ms: u64) -> bool {
        self.until_ms.is_none_or(|until| until > now_ms)
    }
}

/// Bans, mutes and shadow-bans, kept across restarts and shared by every node.
///
/// # Contract
/// - [`impose`](Sanctions::impose) keeps `sanction`, replacing any of the
///   same kind, user and scope (so a new expiry replaces the old one).
///   Kinds are independent: a user may hold a ban, a mute and a
///   shadow-ban on one scope at once.
/// - [`in_force`](Sanctions::in_force) answers the sanctions on `user`
///   that hold in `channel` at `now_ms`: those of the channel and those of
///   its namespace, never expired ones, in no particular order.
/// - [`lift`](Sanctions::lift) removes the sanction of that kind, user
///   and scope, answering whether one in force at `now_ms` was there.
/// - [`list`](Sanctions::list) answers the sanctions in force at `now_ms`
///   imposed on exactly `scope`, ordered by user then kind.
/// - What one handle imposes or lifts, every handle (every node) sees at
///   its next call; it lasts across restarts.
/// - Expired sanctions are never answered, and may be dropped at any time.
#[async_trait::async_trait]
pub trait Sanctions: Send + Sync + 'static {
    async fn impose(&self, sanction: Sanction) -> Result<(), ClusterError>;
    async fn in_force(
        &self,
        user: &str,
        channel: &ChannelName,
        now_ms: u64,
    ) -> Result<Vec<Sanction>, ClusterError>;
    async fn lift(
        &self,
        kind: SanctionKind,
        user: &str,
        scope: &Scope,
        now_ms: u64,
    ) -> Result<bool, ClusterError>;
    async fn list(&self, scope: &Scope, now_ms: u64) -> Result<Vec<Sanction>, ClusterError>;
}
