//! `GET` and `PUT /api/log`: this node's log filter, changed while it runs.

use axum::Json;
use fanfare_protocol::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::api::extract::{ApiKey, JsonBody};
use crate::http_error::HttpError;
use crate::logging::{self, LogFilterError};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLevel {
    level: String,
}

pub async fn filter(_: ApiKey) -> Result<Json<LogLevel>, HttpError> {
    Ok(Json(LogLevel { level: logging::filter().map_err(refused)? }))
}

pub async fn set_filter(_: ApiKey, JsonBody(body): JsonBody<LogLevel>) -> Result<Json<LogLevel>, HttpError> {
    Ok(Json(LogLevel { level: logging::set_filter(&body.level).map_err(refused)? }))
}

fn refused(error: LogFilterError) -> HttpError {
    let code = match error {
        LogFilterError::Invalid { .. } => ErrorCode::BadRequest,
        LogFilterError::NotOurs => ErrorCode::Unavailable,
    };
    HttpError::new(code, error.to_string())
}
