//! The one door of the Pusher HTTP API: a request is served only once its
//! app is known, its signature checked and its app enabled.
//!
//! The signature covers the query parameters *decoded* (`info=a%2Cb` is
//! signed as `info=a,b`) and the body's MD5, so both are taken raw from the
//! request here, before anything else reads them, and handlers read their
//! parameters from the same decoded list that was verified.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::Method;
use fanfare_protocol::ErrorCode;
use fanfare_protocol::pusher::{ApiRequest, verify_api_request};
use serde::de::DeserializeOwned;

use super::error::PusherApiError;
use crate::config::Settings;
use crate::pusher::PusherState;
use crate::pusher::apps::PusherApp;

/// A request whose signature was verified with its app's secret.
pub(super) struct Signed {
    pub app: Arc<PusherApp>,
    /// The query parameters, percent-decoded, as signed.
    pub query: Vec<(String, String)>,
    pub body: Bytes,
}

impl<S> FromRequest<S> for Signed
where
    S: Send + Sync,
    Arc<PusherState>: FromRef<S>,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = PusherApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PusherApiError> {
        let (mut parts, body) = request.into_parts();
        let params = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| PusherApiError::bad_request("invalid path"))?;
        let app_id = params.iter().find(|(name, _)| *name == "app_id").map_or("", |(_, value)| value);
        let app = Arc::<PusherState>::from_ref(state)
            .apps
            .by_id(app_id)
            .ok_or_else(|| PusherApiError::new(ErrorCode::NotFound, format!("no app with id {app_id:?}")))?;
        let limit = Arc::<Settings>::from_ref(state).limits.max_http_body_bytes;
        let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
            PusherApiError::new(ErrorCode::MessageTooLarge, format!("the body is larger than {limit} bytes"))
        })?;
        let raw_query = parts.uri.query().unwrap_or("");
        let query: Vec<(String, String)> =
            form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
        let request =
            ApiRequest { method: parts.method.as_str(), path: parts.uri.path(), query: &query, body: &body };
        verify_api_request(request, app.key(), app.secret(), now_unix())
            .map_err(|error| PusherApiError::new(error.error_code(), error.to_string()))?;
        // After the signature: only the app's owner learns it is disabled.
        if !app.settings.enabled {
            return Err(PusherApiError::new(ErrorCode::PermissionDenied, "this app is disabled"));
        }
        if parts.method == Method::GET {
            app.rates.take_read_request().await?;
        }
        Ok(Signed { app, query, body })
    }
}

impl Signed {
    /// A query parameter's value (the first, if repeated).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PusherApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|error| PusherApiError::bad_request(format!("invalid JSON body: {error}")))
    }
}

/// The attributes an `info` parameter asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct InfoAttributes {
    pub user_count: bool,
    pub subscription_count: bool,
    pub cache: bool,
}

impl InfoAttributes {
    /// Parses `user_count,subscription_count,…`; `allowed` lists the names
    /// this endpoint knows.
    pub fn parse(info: Option<&str>, allowed: &[&str]) -> Result<Self, PusherApiError> {
        let mut attributes = InfoAttributes::default();
        for name in info.unwrap_or("").split(',').map(str::trim).filter(|name| !name.is_empty()) {
            match name {
                _ if !allowed.contains(&name) => {
                    return Err(PusherApiError::bad_request(format!(
                        "unknown info attribute {name:?} (expected {})",
                        allowed.join(", ")
                    )));
                }
                "user_count" => attributes.user_count = true,
                "subscription_count" => attributes.subscription_count = true,
                _ => attributes.cache = true,
            }
        }
        Ok(attributes)
    }

    pub fn any(&self) -> bool {
        self.user_count || self.subscription_count || self.cache
    }
}

pub(super) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_are_parsed_and_unknown_attributes_refused() {
        let allowed = ["user_count", "subscription_count"];
        let both = InfoAttributes::parse(Some("user_count, subscription_count"), &allowed).unwrap();
        assert!(both.user_count && both.subscription_count && !both.cache);
        assert!(!InfoAttributes::parse(None, &allowed).unwrap().any());
        assert!(!InfoAttributes::parse(Some(""), &allowed).unwrap().any());
        let error = InfoAttributes::parse(Some("cache"), &allowed).unwrap_err();
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert!(InfoAttributes::parse(Some("cache"), &["cache"]).unwrap().cache);
    }
}
