//! Publishing and reading history through the servers' HTTP APIs, on one
//! pool of keep-alive connections.
//!
//! - native: `POST /api/publish` with the API key as a bearer token; the
//!   answer carries the publication's offset. `GET /api/history`.
//! - Pusher: `POST /apps/{id}/events`, or `POST /apps/{id}/batch_events`
//!   with up to 10 events (`--pusher-batch`), signed with the app secret
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

/// One event of a Pusher batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchEvent<'a> {
    pub channel: &'a str,
    /// The JSON text of a string (a benchmark payload).
    pub payload: &'a str,
}

/// A Pusher API request, signed: what goes on the wire.
#[derive(Debug)]
struct SignedRequest {
    path: String,
    /// The auth parameters (`auth_key` … `auth_signature`).
    query: Vec<(String, String)>,
    body: String,
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
        let http = plan
            .http_client()
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
        self.publish_event(channel, None, payload).await
    }

    /// [`publish`](Self::publish) with an event name (native only; the
    /// Pusher publications always carry `--event`).
    pub(crate) async fn publish_event(
        &self,
        channel: &str,
        event: Option<&str>,
        payload: &str,
    ) -> Result<Option<u64>, ApiError> {
        let channel = serde_json::to_string(channel).expect("strings serialize");
        match self {
            ApiClient::Native { http, base, api_key } => {
                let event = event.map_or(String::new(), |name| {
                    format!(r#","event":{}"#, serde_json::to_string(name).expect("strings serialize"))
                });
                let body = format!(r#"{{"channel":{channel}{event},"data":{payload}}}"#);
                let request = http.post(format!("{base}/api/publish")).bearer_auth(api_key);
                let answer = send(request.header("content-type", "application/json").body(body)).await?;
                let published: Published = serde_json::from_str(&answer)
                    .map_err(|_| ApiError::Unexpected(answer.chars().take(200).collect()))?;
                Ok(published.offset)
            }
            ApiClient::Pusher { http, base, app, event } => {
                let event = serde_json::to_string(event).expect("strings serialize");
                let body = format!(r#"{{"name":{event},"channels":[{channel}],"data":{payload}}}"#);
                let signed = sign_pusher(app, format!("/apps/{}/events", app.id), body, unix_seconds());
                send_pusher(http, base, signed).await?;
                Ok(None)
            }
        }
    }

    /// Publishes `events` in one Pusher `batch_events` request (Pusher only).
    pub(crate) async fn publish_batch(&self, events: &[BatchEvent<'_>]) -> Result<(), ApiError> {
        let ApiClient::Pusher { http, base, app, event } = self else {
            return Err(ApiError::Unexpected("batches need the Pusher HTTP API".into()));
        };
        send_pusher(http, base, pusher_batch(app, event, events, unix_seconds())).await?;
        Ok(())
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

/// `POST /apps/{id}/batch_events` with `{"batch":[{"name","channel","data"}…]}`.
fn pusher_batch(app: &PusherApp, event: &str, events: &[BatchEvent<'_>], timestamp: u64) -> SignedRequest {
    let name = serde_json::to_string(event).expect("strings serialize");
    let items: Vec<String> = events
        .iter()
        .map(|e| {
            let channel = serde_json::to_string(e.channel).expect("strings serialize");
            format!(r#"{{"name":{name},"channel":{channel},"data":{}}}"#, e.payload)
        })
        .collect();
    let body = format!(r#"{{"batch":[{}]}}"#, items.join(","));
    sign_pusher(app, format!("/apps/{}/batch_events", app.id), body, timestamp)
}

fn sign_pusher(app: &PusherApp, path: String, body: String, timestamp: u64) -> SignedRequest {
    let request = ApiRequest { method: "POST", path: &path, query: &[], body: body.as_bytes() };
    let query = sign_api_request(request, &app.key, &app.secret, timestamp);
    SignedRequest { path, query, body }
}

async fn send_pusher(http: &reqwest::Client, base: &str, signed: SignedRequest) -> Result<String, ApiError> {
    let request = http.post(format!("{base}{}", signed.path)).query(&signed.query);
    send(request.header("content-type", "application/json").body(signed.body)).await
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

#[cfg(test)]
mod tests {
    use fanfare_protocol::pusher::{ApiAuthError, verify_api_request};
    use serde_json::Value;

    use super::*;
    use crate::payload;

    fn app() -> PusherApp {
        PusherApp { id: "7".into(), key: "the-key".into(), secret: "the-secret".into() }
    }

    fn verify(signed: &SignedRequest, body: &str, now: u64) -> Result<(), ApiAuthError> {
        let request =
            ApiRequest { method: "POST", path: &signed.path, query: &signed.query, body: body.as_bytes() };
        verify_api_request(request, "the-key", "the-secret", now)
    }

    #[test]
    fn a_batch_request_carries_each_event_with_its_channel_in_order() {
        let payloads: Vec<String> = (1..=3).map(|seq| payload::encode(seq, 1_000, 40)).collect();
        let channels = ["a", "b", "a"];
        let events: Vec<BatchEvent<'_>> = channels
            .iter()
            .zip(&payloads)
            .map(|(channel, payload)| BatchEvent { channel, payload })
            .collect();
        let signed = pusher_batch(&app(), "fanfare-bench", &events, 1_700_000_000);

        assert_eq!(signed.path, "/apps/7/batch_events");
        let body: Value = serde_json::from_str(&signed.body).unwrap();
        let batch = body["batch"].as_array().unwrap();
        assert_eq!(batch.len(), 3);
        for ((item, channel), payload) in batch.iter().zip(channels).zip(&payloads) {
            assert_eq!(item["name"], "fanfare-bench");
            assert_eq!(item["channel"], channel);
            let data = item["data"].as_str().expect("Pusher event data is a string");
            assert_eq!(format!("\"{data}\""), *payload);
        }
    }

    #[test]
    fn a_batch_request_is_signed_like_a_server_sdk_signs_it() {
        let payload = payload::encode(1, 1_000, 100);
        let events = [BatchEvent { channel: "c", payload: &payload }; 10];
        let signed = pusher_batch(&app(), "e", &events, 1_700_000_000);

        assert_eq!(verify(&signed, &signed.body, 1_700_000_000), Ok(()));
        let keys: Vec<&str> = signed.query.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature"]);
        let tampered = signed.body.replacen("\"c\"", "\"d\"", 1);
        assert_eq!(verify(&signed, &tampered, 1_700_000_000), Err(ApiAuthError::BodyMd5Mismatch));
        let mut other_path = pusher_batch(&app(), "e", &events, 1_700_000_000);
        other_path.path = "/apps/7/events".into();
        assert_eq!(verify(&other_path, &signed.body, 1_700_000_000), Err(ApiAuthError::BadSignature));
    }
}
