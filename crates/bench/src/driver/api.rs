//! Publishing and reading history through the servers' HTTP APIs, on one
//! pool of keep-alive connections.
//!
//! - native: `POST /api/publish` with the API key as a bearer token; the
//!   answer carries the publication's offset. `GET /api/history`.
//! - Pusher: `POST /apps/{id}/events`, signed with the app secret
//!   (`auth_signature`, `body_md5`: [`sign_api_request`]). The answer
//!   carries no position, so the order is the payload's `seq`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanfare_protocol::pusher::{ApiRequest, sign_api_request};
use serde::Deserialize;

use crate::BenchError;
use crate::options::{Plan, Protocol, PusherApp};

/// Limit for one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("publishing connection: {0}")]
    Session(#[from] super::SessionError),
}

pub(crate) enum ApiClient {
    Native { http: reqwest::Client, base: String, api_key: String },
    Pusher { http: reqwest::Client, base: String, app: PusherApp, event: String },
}

#[derive(Deserialize)]
struct Published {
    offset: Option<u64>,
}

/// What a history read returned, as far as the benchmark checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryRead {
    pub offsets: Vec<u64>,
}

#[derive(Deserialize)]
struct HistoryAnswer {
    publications: Vec<OffsetOnly>,
}

#[derive(Deserialize)]
struct OffsetOnly {
    offset: u64,
}

impl ApiClient {
    pub(crate) fn new(plan: &Plan, pool: usize) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(BenchError::HttpClient)?;
        let base = plan.http_base();
        Ok(match (plan.options.protocol, &plan.options.pusher_app) {
            (Protocol::Pusher, Some(app)) => {
                ApiClient::Pusher { http, base, app: app.clone(), event: plan.options.event.clone() }
            }
            _ => ApiClient::Native { http, base, api_key: plan.options.api_key.clone().unwrap_or_default() },
        })
    }

    /// Publishes `payload` (the JSON text of a string) to `channel`; the
    /// offset when the server says it.
    pub(crate) async fn publish(&self, channel: &str, payload: &str) -> Result<Option<u64>, ApiError> {
        let channel = serde_json::to_string(channel).expect("strings serialize");
        match self {
            ApiClient::Native { http, base, api_key } => {
                let body = format!(r#"{{"channel":{channel},"data":{payload}}}"#);
                let request = http.post(format!("{base}/api/publish")).bearer_auth(api_key);
                let answer = send(request.header("content-type", "application/json").body(body)).await?;
                let published: Published = serde_json::from_str(&answer)
                    .map_err(|_| ApiError::Unexpected(answer.chars().take(200).collect()))?;
                Ok(published.offset)
            }
            ApiClient::Pusher { http, base, app, event } => {
                let event = serde_json::to_string(event).expect("strings serialize");
                let body = format!(r#"{{"name":{event},"channels":[{channel}],"data":{payload}}}"#);
                let path = format!("/apps/{}/events", app.id);
                let request = ApiRequest { method: "POST", path: &path, query: &[], body: body.as_bytes() };
                let auth = sign_api_request(request, &app.key, &app.secret, unix_seconds());
                let request = http.post(format!("{base}{path}")).query(&auth);
                send(request.header("content-type", "application/json").body(body)).await?;
                Ok(None)
            }
        }
    }

    /// `GET /api/history` (native only).
    pub(crate) async fn history(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: usize,
    ) -> Result<HistoryRead, ApiError> {
        let ApiClient::Native { http, base, api_key } = self else {
            return Err(ApiError::Unexpected("history reads need the native API".into()));
        };
        let mut query = vec![("channel", channel.to_string()), ("limit", limit.to_string())];
        if let Some(since) = since {
            query.push(("since", since.to_string()));
        }
        let request = http.get(format!("{base}/api/history")).bearer_auth(api_key).query(&query);
        let answer = send(request).await?;
        let page: HistoryAnswer = serde_json::from_str(&answer)
            .map_err(|_| ApiError::Unexpected(answer.chars().take(200).collect()))?;
        Ok(HistoryRead { offsets: page.publications.into_iter().map(|p| p.offset).collect() })
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<String, ApiError> {
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        return Err(ApiError::Status { status: status.as_u16(), body: body.chars().take(200).collect() });
    }
    Ok(body)
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
