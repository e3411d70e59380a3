//! Running a moderator's action: who may, and what it does.

use std::time::Duration;

use fanfare_cluster::{Sanction, SanctionKind, Scope};
use fanfare_protocol::native::moderation::{
    DeleteTarget, ModerationAction, ModerationTarget, SanctionAction,
};
use fanfare_protocol::{ChannelName, CloseCode, ErrorCode, ErrorInfo, UserId};
use fanfare_store::DeleteTargets;
use serde::Serialize;

use super::now_ms;
use crate::auth::ChannelGrants;
use crate::config::ServerEventKind;
use crate::policy::hub_error;
use crate::pusher::users::{hub_member, hub_user};
use crate::server::AppState;
use crate::webhooks::events::ModerationActionEvent;

pub use fanfare_protocol::native::moderation::ModerationAction as Action;

/// Who acts.
pub enum Actor<'a> {
    /// The HTTP API's key: every channel.
    Api,
    /// A native connection's user, with its token's `moderate` grant.
    Moderator { user: &'a str, grants: Option<&'a ChannelGrants> },
}

impl Actor<'_> {
    /// The `by` of a sanction.
    fn name(&self) -> String {
        match self {
            Actor::Api => "api".to_owned(),
            Actor::Moderator { user, .. } => (*user).to_owned(),
        }
    }

    fn may_act_on(&self, target: &ModerationTarget) -> bool {
        let grants = match self {
            Actor::Api => return true,
            Actor::Moderator { grants: Some(grants), .. } => grants,
            Actor::Moderator { grants: None, .. } => return false,
        };
        match target {
            ModerationTarget::Channel(channel) => grants.allows(channel),
            ModerationTarget::Namespace(namespace) => grants.allows_namespace(namespace),
        }
    }
}

/// What an action did (the reply's `result`, the HTTP answer).
#[derive(Debug, Serialize, Default)]
pub struct ActionOutcome {
    /// The sanction now in force (ban, mute, shadow_ban).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sanction: Option<Sanction>,
    /// Whether a sanction in force was lifted (unban, unmute, unshadow_ban).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted: Option<bool>,
    /// Connections closed with 4506 (ban, kick), on every node that
    /// answered; for a kick of one connection 0 or 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<usize>,
    /// Nodes that did not answer in time (their connections may be open).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreached: Vec<String>,
    /// The channel's slow mode now (slow_mode), in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// The delete record's epoch and offset (delete, purge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<fanfare_protocol::Epoch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The offsets deleted, now tombstones (delete, purge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Vec<u64>>,
}

/// Runs `action` for `actor`.
pub async fn act(
    app: &AppState,
    actor: Actor<'_>,
    action: ModerationAction,
) -> Result<ActionOutcome, ErrorInfo> {
    let target = match &action {
        ModerationAction::Impose { target, .. }
        | ModerationAction::Lift { target, .. }
        | ModerationAction::Kick { target, .. }
        | ModerationAction::KickConnection { target, .. } => target.clone(),
        ModerationAction::SlowMode { channel, .. }
        | ModerationAction::Delete { channel, .. }
        | ModerationAction::Purge { channel, .. } => ModerationTarget::Channel(channel.clone()),
    };
    if !actor.may_act_on(&target) {
        return Err(ErrorInfo::new(ErrorCode::PermissionDenied, "the token does not grant moderating this"));
    }
    let by = actor.name();
    let author = match actor {
        Actor::Api => None,
        Actor::Moderator { user, .. } => Some(UserId::new(user.to_owned())),
    };
    // Every action that was carried out is a `moderation_action` event
    // (with the action's own request fields), whatever the action.
    let reported = app.webhooks.wants(ServerEventKind::Moderation).then(|| action.clone());
    let outcome = run(app, &by, author, action).await?;
    if let Some(action) = reported {
        app.webhooks.send(&ModerationActionEvent::new(app.webhooks.node(), &by, &action, &outcome));
    }
    Ok(outcome)
}

async fn run(
    app: &AppState,
    by: &str,
    author: Option<UserId>,
    action: ModerationAction,
) -> Result<ActionOutcome, ErrorInfo> {
    let sanctions = app.moderation.sanctions();
    match action {
        ModerationAction::Impose { kind, user, target, duration_ms, reason } => {
            let now = now_ms();
            let sanction = Sanction {
                kind: kind_of(kind),
                user,
                scope: scope_of(target),
                at_ms: now,
                until_ms: duration_ms.map(|ms| now.saturating_add(ms)),
                by: by.to_owned(),
                reason,
            };
            sanctions.impose(sanction.clone()).await.map_err(unavailable)?;
            tracing::info!(user = %sanction.user, kind = sanction.kind.as_str(), scope = ?sanction.scope, by, "sanction imposed");
            let mut outcome = ActionOutcome::default();
            if sanction.kind == SanctionKind::Ban {
                close(app, &sanction.user, &mut outcome).await?;
            }
            outcome.sanction = Some(sanction);
            Ok(outcome)
        }
        ModerationAction::Lift { kind, user, target } => {
            let lifted = sanctions
                .lift(kind_of(kind), &user, &scope_of(target), now_ms())
                .await
                .map_err(unavailable)?;
            tracing::info!(%user, kind = kind_of(kind).as_str(), lifted, by, "sanction lifted");
            Ok(ActionOutcome { lifted: Some(lifted), ..ActionOutcome::default() })
        }
        ModerationAction::Kick { user, .. } => {
            let mut outcome = ActionOutcome::default();
            close(app, &user, &mut outcome).await?;
            tracing::info!(%user, by, "user kicked");
            Ok(outcome)
        }
        ModerationAction::KickConnection { connection, .. } => {
            let report =
                app.hub.close_connection(connection.id(), CloseCode::Kicked).await.map_err(hub_error)?;
            tracing::info!(
                connection = connection.as_str(),
                closed = report.disconnected,
                by,
                "connection kicked"
            );
            Ok(ActionOutcome {
                closed: Some(report.disconnected),
                unreached: report.unreached.iter().map(ToString::to_string).collect(),
                ..ActionOutcome::default()
            })
        }
        ModerationAction::SlowMode { channel, interval_ms } => {
            let engine = app.limits.engine();
            engine
                .set_slow_mode(&channel, interval_ms.map(Duration::from_millis))
                .await
                .map_err(unavailable)?;
            let interval = match interval_ms {
                Some(ms) => ms,
                None => app.settings.namespaces.resolve(&channel).publish_limits.slow_mode.as_millis() as u64,
            };
            tracing::info!(%channel, ?interval_ms, by, "slow mode changed");
            Ok(ActionOutcome { interval_ms: Some(interval), ..ActionOutcome::default() })
        }
        ModerationAction::Delete { channel, target: DeleteTarget::Offset(offset) } => {
            // An edited publication goes with its update records, which carry its data.
            let targets = super::authored::delete_targets(app, &channel, offset).await?;
            delete(app, author, channel, targets).await
        }
        ModerationAction::Delete { channel, target } => {
            delete(app, author, channel, target.into_targets()).await
        }
        ModerationAction::Purge { channel, user } => {
            delete(app, author, channel, DeleteTargets::Author(UserId::new(user))).await
        }
    }
}

/// The store's form of a delete's target.
pub(crate) trait IntoTargets {
    fn into_targets(self) -> DeleteTargets;
}

impl IntoTargets for DeleteTarget {
    fn into_targets(self) -> DeleteTargets {
        match self {
            DeleteTarget::Offset(offset) => DeleteTargets::Offsets(vec![offset]),
            DeleteTarget::IdempotencyKey(key) => DeleteTargets::IdempotencyKey(key),
        }
    }
}

/// Appends a delete record of `targets`, by `author` (the moderator;
/// `None` for the HTTP API).
pub(crate) async fn delete(
    app: &AppState,
    author: Option<UserId>,
    channel: ChannelName,
    targets: DeleteTargets,
) -> Result<ActionOutcome, ErrorInfo> {
    let by = author.as_ref().map_or_else(|| "api".to_owned(), ToString::to_string);
    let appended = app.hub.delete(channel.clone(), targets, author).await.map_err(hub_error)?;
    let deleted = appended.publication.deletes().unwrap_or_default().to_vec();
    tracing::info!(%channel, offset = appended.publication.offset, ?deleted, %by, "publications deleted");
    Ok(ActionOutcome {
        epoch: Some(appended.epoch),
        offset: Some(appended.publication.offset),
        deleted: Some(deleted),
        ..ActionOutcome::default()
    })
}

/// Closes `user`'s native connections and its Pusher connections of every
/// app (signed in, or presence members by that id), on every node.
async fn close(app: &AppState, user: &str, outcome: &mut ActionOutcome) -> Result<(), ErrorInfo> {
    let pusher_users = app
        .pusher
        .apps
        .iter()
        .flat_map(|pusher_app| [hub_user(pusher_app.id(), user), hub_member(pusher_app.id(), user)]);
    let mut closed = 0;
    let mut unreached = std::collections::BTreeSet::new();
    for hub_user in std::iter::once(user.to_owned()).chain(pusher_users) {
        let report = app.hub.close_user(&hub_user, CloseCode::Kicked).await.map_err(hub_error)?;
        closed += report.disconnected;
        unreached.extend(report.unreached.iter().map(ToString::to_string));
    }
    outcome.closed = Some(closed);
    outcome.unreached = unreached.into_iter().collect();
    Ok(())
}

fn kind_of(kind: SanctionAction) -> SanctionKind {
    match kind {
        SanctionAction::Ban => SanctionKind::Ban,
        SanctionAction::Mute => SanctionKind::Mute,
        SanctionAction::ShadowBan => SanctionKind::ShadowBan,
    }
}

pub(crate) fn scope_of(target: ModerationTarget) -> Scope {
    match target {
        ModerationTarget::Channel(channel) => Scope::Channel(channel),
        ModerationTarget::Namespace(namespace) => Scope::Namespace(namespace),
    }
}

fn unavailable(error: fanfare_cluster::ClusterError) -> ErrorInfo {
    tracing::warn!(%error, "moderation: the engine failed");
    ErrorInfo::new(ErrorCode::Unavailable, error.to_string())
}
