//! Request extraction that answers in our error format: the body limit
//! (413), JSON syntax (400) and the API key (401).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use fanfare_protocol::ErrorCode;
use serde::de::DeserializeOwned;

use crate::config::Settings;
use crate::http_error::HttpError;
use crate::server::ServerApiKey;

/// A JSON body read within `limits.max_http_body_bytes`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, HttpError> {
        let limit = Arc::<Settings>::from_ref(state).limits.max_http_body_bytes;
        let bytes = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
            HttpError::new(ErrorCode::MessageTooLarge, format!("the body is larger than {limit} bytes"))
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| HttpError::new(ErrorCode::BadRequest, format!("invalid JSON body: {e}")))
    }
}

/// Proof that the request carried `Authorization: Bearer <api key>`.
pub struct ApiKey;

impl<S> FromRequestParts<S> for ApiKey
where
    S: Send + Sync,
    ServerApiKey: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, key)| key)
            .ok_or_else(|| {
                HttpError::new(ErrorCode::Unauthorized, "missing Authorization: Bearer <api key>")
            })?;
        if !constant_time_eq(given.trim().as_bytes(), ServerApiKey::from_ref(state).0.as_bytes()) {
            return Err(HttpError::new(ErrorCode::Unauthorized, "wrong API key"));
        }
        Ok(ApiKey)
    }
}

/// Compares without an early exit, so the time taken says nothing about
/// how much of the key matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares_whole_keys() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
