//! The native HTTP error: `{"error": {"code", "message", "retry"}}` with the
//! status of the code's row in the error table. The HTTP API answers with
//! it, and so does a WebSocket upgrade the gateway refuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fanfare_protocol::{ErrorCode, ErrorInfo};

#[derive(Debug)]
pub struct HttpError(pub ErrorInfo);

impl HttpError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ErrorInfo::new(code, message))
    }
}

impl From<ErrorInfo> for HttpError {
    fn from(info: ErrorInfo) -> Self {
        Self(info)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}
