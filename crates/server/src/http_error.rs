//! The native HTTP error: `{"error": {"code", "message", "retry"}}` with the
//! status of the code's row in the error table, and a `Retry-After` header
//! (whole seconds, rounded up) when the error says how long to wait. The HTTP API answers with
//! it, and so does a WebSocket upgrade the gateway refuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
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
        let retry_after = self.0.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1));
        let mut response = (status, Json(serde_json::json!({ "error": self.0 }))).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
