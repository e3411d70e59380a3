//! Moderation through the HTTP API (the API key moderates every channel):
//! every action of `moderate` (`POST /api/moderation`), the sanctions in
//! force in a channel or namespace, a channel's slow mode, read and
//! changed at run time, and deleting a publication or purging a user's
//! publications from a channel.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use fanfare_protocol::native::moderation::{DeleteTarget, ModerationRequest};
use fanfare_protocol::{ChannelName, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::api::extract::{ApiKey, JsonBody};
use crate::http_error::HttpError;
use crate::moderation::{Action, ActionOutcome, Actor};
use crate::server::AppState;

/// The longest slow-mode interval a moderator may set (a day).
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowModeBody {
    channel: ChannelName,
    /// Milliseconds; `0` turns slow mode off for the channel, `null` goes
    /// back to its namespace's `slow_mode`. Required (outer `None`: missing).
    #[serde(default, deserialize_with = "present")]
    interval_ms: Option<Option<u64>>,
}

/// A field that must be there, `null` or not.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub struct ChannelParam {
    channel: ChannelName,
}

#[derive(Serialize)]
pub struct SlowMode {
    channel: ChannelName,
    /// The interval in force, in milliseconds (`0`: off).
    interval_ms: u64,
    /// `channel` when a moderator set it for the channel, `namespace` when
    /// it is the namespace's.
    set_by: &'static str,
}

/// `POST /api/moderation/slow_mode`.
pub async fn set_slow_mode(
    _: ApiKey,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<SlowModeBody>,
) -> Result<Json<SlowMode>, HttpError> {
    let Some(interval_ms) = body.interval_ms else {
        return Err(HttpError::new(
            ErrorCode::BadRequest,
            "give \"interval_ms\": milliseconds, 0 (off) or null",
        ));
    };
    let interval = interval_ms.map(Duration::from_millis);
    if interval.is_some_and(|interval| interval > MAX_INTERVAL) {
        let message = format!("\"interval_ms\" may be at most {} (a day)", MAX_INTERVAL.as_millis());
        return Err(HttpError::new(ErrorCode::BadRequest, message));
    }
    app.limits.engine().set_slow_mode(&body.channel, interval).await.map_err(unavailable)?;
    tracing::info!(channel = %body.channel, ?interval_ms, "slow mode changed");
    slow_mode_of(&app, body.channel).await.map(Json)
}

/// `GET /api/moderation/slow_mode?channel=`.
pub async fn slow_mode(
    _: ApiKey,
    State(app): State<AppState>,
    query: Result<Query<ChannelParam>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SlowMode>, HttpError> {
    let Query(param) = query.map_err(super::native::bad_query)?;
    slow_mode_of(&app, param.channel).await.map(Json)
}

async fn slow_mode_of(app: &AppState, channel: ChannelName) -> Result<SlowMode, HttpError> {
    let set = app.limits.engine().slow_mode(&channel).await.map_err(unavailable)?;
    let (interval, set_by) = match set {
        Some(interval) => (interval, "channel"),
        None => (app.settings.namespaces.resolve(&channel).publish_limits.slow_mode, "namespace"),
    };
    Ok(SlowMode { channel, interval_ms: interval.as_millis() as u64, set_by })
}

fn unavailable(error: fanfare_cluster::ClusterError) -> HttpError {
    tracing::warn!(%error, "slow mode: the rate-limit engine failed");
    HttpError::new(ErrorCode::Unavailable, error.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    channel: ChannelName,
    /// Exactly one of `offset` and `idempotency_key`.
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeBody {
    channel: ChannelName,
    /// The user whose publications go: the `sub` their native connection
    /// authenticated with.
    user: String,
}

/// `POST /api/moderation/delete`: the answer is `{"epoch","offset","deleted"}`
/// (the delete record's position and the offsets it deleted).
pub async fn delete(
    _: ApiKey,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<DeleteBody>,
) -> Result<Json<ActionOutcome>, HttpError> {
    let target = DeleteTarget::from_parts(body.offset, body.idempotency_key)?;
    let action = Action::Delete { channel: body.channel, target };
    Ok(Json(crate::moderation::act(&app, Actor::Api, action).await?))
}

/// `POST /api/moderation/purge`: answered as a delete.
pub async fn purge(
    _: ApiKey,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<PurgeBody>,
) -> Result<Json<ActionOutcome>, HttpError> {
    if body.user.is_empty() {
        return Err(HttpError::new(ErrorCode::BadRequest, "\"user\" must not be empty"));
    }
    let action = Action::Purge { channel: body.channel, user: body.user };
    Ok(Json(crate::moderation::act(&app, Actor::Api, action).await?))
}

/// `POST /api/moderation`: one action, as the native `moderate` command.
pub async fn act(
    _: ApiKey,
    State(app): State<AppState>,
    JsonBody(request): JsonBody<ModerationRequest>,
) -> Result<Json<ActionOutcome>, HttpError> {
    let action = request.into_action()?;
    Ok(Json(crate::moderation::act(&app, Actor::Api, action).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeParam {
    channel: Option<ChannelName>,
    namespace: Option<String>,
}

#[derive(Serialize)]
pub struct SanctionList {
    sanctions: Vec<fanfare_cluster::Sanction>,
}

/// `GET /api/moderation/sanctions?channel=` (or `?namespace=`): the bans
/// mutes and shadow-bans in force imposed on exactly that channel or
/// namespace.
pub async fn sanctions(
    _: ApiKey,
    State(app): State<AppState>,
    query: Result<Query<ScopeParam>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SanctionList>, HttpError> {
    let Query(param) = query.map_err(super::native::bad_query)?;
    let scope = match (param.channel, param.namespace) {
        (Some(channel), None) => fanfare_cluster::Scope::Channel(channel),
        (None, Some(namespace)) => fanfare_cluster::Scope::Namespace(namespace),
        _ => return Err(HttpError::new(ErrorCode::BadRequest, "give one of \"channel\" and \"namespace\"")),
    };
    let sanctions =
        app.moderation.sanctions().list(&scope, crate::moderation::now_ms()).await.map_err(unavailable)?;
    Ok(Json(SanctionList { sanctions }))
}
