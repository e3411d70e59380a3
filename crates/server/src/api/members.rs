//! Members and read state over the HTTP API (`docs/api.md` §3.19–§3.23):
//! the API key may change any members channel and read or mark any
//! user's state.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use fanfare_hub::Hub;
use fanfare_protocol::{ChannelName, Epoch, ErrorCode, StreamPosition, UserId};
use serde::Deserialize;

use crate::api::extract::{ApiKey, JsonBody};
use crate::api::native::bad_query;
use crate::config::Settings;
use crate::http_error::HttpError;
use crate::members::Members;
use crate::members::change::{Change, ChangeOutcome, MemberPage};
use crate::members::read_state::UnreadPage;
use crate::members::receipts::{self, ReceiptKind};

/// `POST /api/members`: exactly one of `add` and `remove`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    channel: ChannelName,
    #[serde(default)]
    add: Option<Vec<String>>,
    #[serde(default)]
    remove: Option<Vec<String>>,
}

pub async fn change(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    State(settings): State<Arc<Settings>>,
    State(members): State<Arc<Members>>,
    JsonBody(body): JsonBody<ChangeBody>,
) -> Result<Json<ChangeOutcome>, HttpError> {
    let (change, users) = match (body.add, body.remove) {
        (Some(users), None) => (Change::Add, users),
        (None, Some(users)) => (Change::Remove, users),
        _ => return Err(HttpError::new(ErrorCode::BadRequest, "give exactly one of \"add\" and \"remove\"")),
    };
    if users.is_empty() || users.iter().any(String::is_empty) {
        let message = "the users must be at least one, none of them empty";
        return Err(HttpError::new(ErrorCode::BadRequest, message));
    }
    let users: Vec<UserId> = users.into_iter().map(UserId::new).collect();
    let namespace = settings.namespaces.resolve(&body.channel);
    let outcome = members.change(&hub, &body.channel, &namespace, change, &users).await?;
    Ok(Json(outcome))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    channel: ChannelName,
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/members`.
pub async fn list(
    _: ApiKey,
    State(settings): State<Arc<Settings>>,
    State(members): State<Arc<Members>>,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MemberPage>, HttpError> {
    let Query(params) = query.map_err(bad_query)?;
    let namespace = settings.namespaces.resolve(&params.channel);
    let after = params.after.map(UserId::new);
    Ok(Json(members.list(&params.channel, &namespace, after.as_ref(), params.limit).await?))
}

/// `POST /api/read`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    channel: ChannelName,
    user: String,
    epoch: String,
    offset: u64,
}

pub async fn read(
    _: ApiKey,
    State(app): State<crate::server::AppState>,
    State(hub): State<Arc<Hub>>,
    State(settings): State<Arc<Settings>>,
    State(members): State<Arc<Members>>,
    JsonBody(body): JsonBody<ReadBody>,
) -> Result<Json<serde_json::Value>, HttpError> {
    if body.user.is_empty() || body.offset == 0 {
        return Err(HttpError::new(
            ErrorCode::BadRequest,
            "\"user\" must not be empty and \"offset\" is at least 1",
        ));
    }
    let namespace = settings.namespaces.resolve(&body.channel);
    if namespace.subscribe != crate::config::SubscribePolicy::Members {
        return Err(HttpError::new(ErrorCode::NotAvailable, "read state is kept in members channels only"));
    }
    if !members.is_member(&body.user, &body.channel).await? {
        return Err(HttpError::new(ErrorCode::NotFound, "the user is not a member of the channel"));
    }
    let position = StreamPosition::new(Epoch::new(&body.epoch), body.offset);
    let outcome = members.mark_read(&hub, &body.user, &body.channel, position).await?;
    if outcome.moved {
        receipts::tell(&app, &body.user, &body.channel, ReceiptKind::Read, outcome.cursor);
    }
    Ok(Json(serde_json::json!({ "moved": outcome.moved })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnreadParams {
    user: String,
    after: Option<ChannelName>,
    limit: Option<usize>,
}

/// `GET /api/unread`.
pub async fn unread(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    State(members): State<Arc<Members>>,
    query: Result<Query<UnreadParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UnreadPage>, HttpError> {
    let Query(params) = query.map_err(bad_query)?;
    if params.user.is_empty() {
        return Err(HttpError::new(ErrorCode::BadRequest, "\"user\" must not be empty"));
    }
    Ok(Json(members.unread(&hub, &params.user, params.after.as_ref(), params.limit).await?))
}
