//! `GET /api/webhooks/dead_letters?limit=N` (native API key): the webhook
//! batches that were never accepted, newest first: this node's on a single
//! node, every node's on a cluster node.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use fanfare_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::extract::ApiKey;
use crate::http_error::HttpError;
use crate::pusher::PusherState;

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
