//! `GET /api/webhooks/dead_letters?limit=N` (native API key): the webhook
//! batches that were never accepted, newest first: this node's on a single
//! node, every node's on a cluster node. `POST
//! /api/webhooks/dead_letters/{id}/replay`: one of them queued again.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fanfare_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::extract::ApiKey;
use crate::http_error::HttpError;
use crate::pusher::PusherState;
use crate::pusher::webhooks::ReplayError;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
pub(super) struct LimitParam {
    limit: Option<usize>,
}

pub(super) async fn list(
    _: ApiKey,
    State(pusher): State<Arc<PusherState>>,
    query: Result<Query<LimitParam>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, HttpError> {
    let Query(params) = query.map_err(|e| HttpError::new(ErrorCode::BadRequest, e.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(HttpError::new(ErrorCode::BadRequest, format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let letters = pusher.webhooks.dead_letters(limit).await.map_err(|error| {
        let error = anyhow::Error::from(error);
        tracing::error!(error = format!("{error:#}"), "cannot read the webhook dead letters");
        HttpError::new(ErrorCode::Internal, "cannot read the dead letters")
    })?;
    Ok(Json(json!({ "dead_letters": letters })))
}

/// Answers 202: the events are queued for delivery, not yet delivered.
pub(super) async fn replay(
    _: ApiKey,
    State(pusher): State<Arc<PusherState>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    let replayed = pusher.webhooks.replay(&id).await.map_err(replay_error)?;
    tracing::info!(id = replayed.id, events = replayed.events, "dead letter replayed");
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": replayed.id, "events": replayed.events }))))
}

fn replay_error(error: ReplayError) -> HttpError {
    let code = match &error {
        ReplayError::NotFound { .. } | ReplayError::NotConfigured { .. } => ErrorCode::NotFound,
        ReplayError::QueueFull { .. } => ErrorCode::Unavailable,
        ReplayError::Log(_) => {
            let error = anyhow::Error::from(error);
            tracing::error!(error = format!("{error:#}"), "cannot read the webhook dead letters");
            return HttpError::new(ErrorCode::Internal, "cannot read the dead letters");
        }
    };
    HttpError::new(code, error.to_string())
}
