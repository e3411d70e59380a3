//! HTTP errors: `{"error": {"code", "message", "retry"}}` with the status of the
//! code's row in the error table.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fanfare_protocol::{ErrorCode, ErrorInfo};

#[derive(Debug)]
pub struct ApiError(pub ErrorInfo);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ErrorInfo::new(code, message))
    }
}

impl From<ErrorInfo> for ApiError {
    fn from(info: ErrorInfo) -> Self {
        Self(info)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}
