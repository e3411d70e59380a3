//! Pusher HTTP API errors: `{"error": "…"}` with the HTTP status of the
//! error's row in the error table (Pusher SDKs read the status only).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fanfare_hub::HubError;
use fanfare_protocol::ErrorCode;

use crate::policy::hub_error;
use crate::pusher::rates::RateLimited;

#[derive(Debug)]
pub(super) struct PusherApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<std::time::Duration>,
}

impl PusherApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl From<HubError> for PusherApiError {
    fn from(error: HubError) -> Self {
        let info = hub_error(error);
        Self::new(info.code, info.message)
    }
}

impl From<RateLimited> for PusherApiError {
    fn from(error: RateLimited) -> Self {
        Self { retry_after: error.retry_after(), ..Self::new(ErrorCode::RateLimited, error.to_string()) }
    }
}

impl IntoResponse for PusherApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_millis().div_ceil(1000).max(1) as u64;
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
