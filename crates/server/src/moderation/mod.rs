//! Moderation: who may act on a channel, the bans and mutes that hold
//! in it, and the actions themselves — the same for the HTTP API (the API
//! key moderates everything) and for native connections whose token has a
//! `moderate` grant for the channel.
//!
//! - [`Moderation::may_subscribe`] / [`Moderation::may_publish`]: checked
//!   once per subscribe or publication, before the hub. A banned user may
//!   neither; a muted one may subscribe and read, not publish; a
//!   shadow-banned one may do everything, but its publications reach only
//!   its own connections ([`Audience::Own`], `shadow.rs`).
//! - [`Moderation::act`]: ban, mute, shadow-ban, lift, kick (a user, or
//!   one connection wherever it is). A ban also closes the
//!   user's connections on every node with 4506 (`kicked`): they reconnect
//!   and resume every other subscription, and the banned channel refuses
//!   theirs.
//!
//! Anonymous connections have no user to sanction; kick them by closing
//! their user's connections is not possible either (they have none). If
//! the engine cannot answer a check, the request goes ahead and
//! `fanfare_moderation_errors_total` counts it.

pub mod action;
pub(crate) mod authored;
pub mod local_sanctions;
pub mod shadow;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fanfare_cluster::{ClusterError, Sanction, SanctionKind, Sanctions};
use fanfare_protocol::{ChannelName, ErrorCode, ErrorInfo};

pub use action::{Action, ActionOutcome, Actor, act};

/// Who receives a user's publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every subscriber, and history: an ordinary publication.
    Everyone,
    /// A shadow-banned user: only that user's own connections subscribed
    /// to the channel; not history, no offset, no webhook.
    Own,
}

/// Bans, mutes and moderators' actions; one per server.
#[derive(Clone)]
pub struct Moderation {
    sanctions: Arc<dyn Sanctions>,
}

impl Moderation {
    pub fn new(sanctions: Arc<dyn Sanctions>) -> Self {
        Self { sanctions }
    }

    pub(crate) fn sanctions(&self) -> &Arc<dyn Sanctions> {
        &self.sanctions
    }

    /// Refuses a banned `user` (`""`: anonymous, never sanctioned).
    pub async fn may_subscribe(&self, user: &str, channel: &ChannelName) -> Result<(), ErrorInfo> {
        let held = self.held(user, channel).await;
        match held.iter().find(|s| s.kind == SanctionKind::Ban) {
            Some(ban) => Err(refusal(ban)),
            None => Ok(()),
        }
    }

    /// Refuses a banned or muted `user`; says who receives the
    /// publications of one that may publish.
    pub async fn may_publish(&self, user: &str, channel: &ChannelName) -> Result<Audience, ErrorInfo> {
        let held = self.held(user, channel).await;
        let refused = held
            .iter()
            .find(|s| s.kind == SanctionKind::Ban)
            .or_else(|| held.iter().find(|s| s.kind == SanctionKind::Mute));
        if let Some(sanction) = refused {
            return Err(refusal(sanction));
        }
        match held.iter().any(|s| s.kind == SanctionKind::ShadowBan) {
            true => Ok(Audience::Own),
            false => Ok(Audience::Everyone),
        }
    }

    async fn held(&self, user: &str, channel: &ChannelName) -> Vec<Sanction> {
        if user.is_empty() {
            return Vec::new();
        }
        self.sanctions.in_force(user, channel, now_ms()).await.unwrap_or_else(|error| {
            engine_failed(&error);
            Vec::new()
        })
    }
}

fn engine_failed(error: &ClusterError) {
    metrics::counter!("fanfare_moderation_errors_total").increment(1);
    tracing::warn!(%error, "bans and mutes could not be checked; the request goes ahead");
}

/// The error a sanctioned user gets.
fn refusal(sanction: &Sanction) -> ErrorInfo {
    let (code, what) = match sanction.kind {
        SanctionKind::Ban => (ErrorCode::Banned, "banned from"),
        SanctionKind::Mute => (ErrorCode::Muted, "muted in"),
        // Never refused: `may_publish` answers `Audience::Own`.
        SanctionKind::ShadowBan => (ErrorCode::Muted, "muted in"),
    };
    let scope = match &sanction.scope {
        fanfare_cluster::Scope::Channel(_) => "this channel".to_owned(),
        fanfare_cluster::Scope::Namespace(namespace) => format!("namespace {namespace:?}"),
    };
    let until = match sanction.until_ms {
        Some(until) => format!(" for {} s more", until.saturating_sub(now_ms()).div_ceil(1000)),
        None => " until a moderator lifts it".to_owned(),
    };
    ErrorInfo::new(code, format!("you are {what} {scope}{until}"))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
