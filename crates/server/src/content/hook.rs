//! The pre-publish hook: one `POST` to the user's service per client
//! publication, whose answer allows, rejects or rewrites it
//! (`docs/moderation.md`, "The pre-publish hook", is the wire format).
//!
//! The whole call (connect, request, response body) has the namespace's
//! `timeout`. A non-2xx status, a body that is not an answer, a rewrite too
//! large for the namespace, or the timeout: the call failed, and the
//! namespace's `failure` decides (`mod.rs`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fanfare_protocol::JsonData;
use serde::{Deserialize, Serialize};

use crate::config::content::HookSettings;

/// The header carrying the hex HMAC-SHA256 of the body, with `secret`.
const SIGNATURE_HEADER: &str = "X-Fanfare-Signature";

/// Room an answer takes beyond its rewritten `data`.
const ANSWER_ENVELOPE_BYTES: usize = 4096;

/// What the hook is told of a publication.
#[derive(Debug, Serialize)]
pub(crate) struct HookRequest<'a> {
    pub namespace: &'a str,
    /// The hub channel (for a Pusher app with a `channel_prefix`, with it).
    pub channel: &'a str,
    pub event: Option<&'a str>,
    /// After the local rules (masked, links stripped).
    pub data: &'a JsonData,
    /// `None` for an anonymous connection.
    pub user: Option<&'a str>,
    /// The connection's id (the native `client`).
    pub connection: String,
    /// A Pusher connection's `socket_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<&'a str>,
    /// `native` or `pusher`.
    pub protocol: &'static str,
    /// When the request was made, in milliseconds since the Unix epoch, so
    /// that a receiver checking the signature can refuse old requests.
    pub time_ms: u64,
}

/// The hook's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HookAnswer {
    Allow,
    Reject { reason: Option<String> },
    Rewrite { data: JsonData },
}

/// An answer as written; other fields are ignored. (Not an internally
/// tagged enum: serde buffers those, and `data` is kept as raw JSON.)
#[derive(Deserialize)]
struct RawAnswer {
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    data: Option<JsonData>,
}

/// Why a hook call failed; its name is the `cause` label of
/// `fanfare_content_hook_failures_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HookError {
    Timeout(Duration),
    /// Could not connect or send.
    Unreachable(String),
    Status(u16),
    /// Not JSON, not a known `action`, or a rewrite to `null`.
    BadAnswer(String),
    /// The answer (or its rewritten `data`) is larger than the namespace allows.
    TooLarge,
}

impl HookError {
    pub fn cause(&self) -> &'static str {
        match self {
            HookError::Timeout(_) => "timeout",
            HookError::Unreachable(_) => "unreachable",
            HookError::Status(_) => "status",
            HookError::BadAnswer(_) => "bad_answer",
            HookError::TooLarge => "too_large",
        }
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookError::Timeout(timeout) => {
                write!(f, "no answer within {}", crate::config::format_duration(*timeout))
            }
            HookError::Unreachable(_) => write!(f, "unreachable"),
            HookError::Status(status) => write!(f, "answered HTTP {status}"),
            HookError::BadAnswer(_) => write!(f, "its answer is not allow, reject or rewrite"),
            HookError::TooLarge => write!(f, "its answer is larger than this namespace's max_message_bytes"),
        }
    }
}

/// The HTTP client every hook call shares (its connection pool).
pub(crate) struct HookClient {
    client: reqwest::Client,
}

impl HookClient {
    /// `extra_roots`: `tls.webhook_ca_file`'s, trusted besides the system's.
    /// With no `https://` hook, no root is loaded at all.
    pub fn new(any_https: bool, extra_roots: &[reqwest::Certificate]) -> anyhow::Result<Self> {
        let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let builder = match any_https {
            true => builder.tls_certs_merge(extra_roots.iter().cloned()),
            false => builder.tls_certs_only([]),
        };
        Ok(Self { client: builder.build()? })
    }

    /// Asks the hook about `request`; `max_data_bytes` bounds a rewrite.
    pub async fn ask(
        &self,
        settings: &HookSettings,
        request: &HookRequest<'_>,
        max_data_bytes: usize,
    ) -> Result<HookAnswer, HookError> {
        let call = self.call(settings, request, max_data_bytes);
        match tokio::time::timeout(settings.timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(HookError::Timeout(settings.timeout)),
        }
    }

    async fn call(
        &self,
        settings: &HookSettings,
        request: &HookRequest<'_>,
        max_data_bytes: usize,
    ) -> Result<HookAnswer, HookError> {
        let body = serde_json::to_vec(request).expect("a hook request always serializes");
        let mut post =
            self.client.post(settings.url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &settings.secret {
            post = post.header(SIGNATURE_HEADER, crate::webhooks::sign(secret, &body));
        }
        let mut response =
            post.body(body).send().await.map_err(|error| HookError::Unreachable(error.to_string()))?;
        if !response.status().is_success() {
            return Err(HookError::Status(response.status().as_u16()));
        }
        let limit = max_data_bytes.saturating_add(ANSWER_ENVELOPE_BYTES);
        let mut text = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| HookError::Unreachable(e.to_string()))? {
            if text.len() + chunk.len() > limit {
                return Err(HookError::TooLarge);
            }
            text.extend_from_slice(&chunk);
        }
        read_answer(&text, max_data_bytes)
    }
}

/// Parses and checks an answer body.
fn read_answer(body: &[u8], max_data_bytes: usize) -> Result<HookAnswer, HookError> {
    let raw: RawAnswer =
        serde_json::from_slice(body).map_err(|error| HookError::BadAnswer(error.to_string()))?;
    match (raw.action.as_str(), raw.data) {
        ("allow", _) => Ok(HookAnswer::Allow),
        ("reject", _) => Ok(HookAnswer::Reject { reason: raw.reason }),
        ("rewrite", Some(data)) if data.as_str().trim() == "null" => {
            Err(HookError::BadAnswer("a rewrite to null".into()))
        }
        ("rewrite", Some(data)) if data.len() > max_data_bytes => Err(HookError::TooLarge),
        ("rewrite", Some(data)) => Ok(HookAnswer::Rewrite { data }),
        ("rewrite", None) => Err(HookError::BadAnswer("a rewrite without data".into())),
        (other, _) => Err(HookError::BadAnswer(format!("unknown action {other:?}"))),
    }
}

/// Now, for `HookRequest::time_ms`.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_allow_reject_and_rewrite_and_nothing_else() {
        assert_eq!(read_answer(br#"{"action":"allow","extra":1}"#, 100), Ok(HookAnswer::Allow));
        assert_eq!(
            read_answer(br#"{"action":"reject","reason":"spam"}"#, 100),
            Ok(HookAnswer::Reject { reason: Some("spam".into()) })
        );
        assert_eq!(read_answer(br#"{"action":"reject"}"#, 100), Ok(HookAnswer::Reject { reason: None }));
        let Ok(HookAnswer::Rewrite { data }) = read_answer(br#"{"action":"rewrite","data":{"t":"x"}}"#, 100)
        else {
            panic!("a rewrite")
        };
        assert_eq!(data.as_str(), r#"{"t":"x"}"#);
        for bad in [
            &br#"{"action":"maybe"}"#[..],
            b"allow",
            br#"{"action":"rewrite"}"#,
            br#"{"action":"rewrite","data":null}"#,
        ] {
            assert!(
                matches!(read_answer(bad, 100), Err(HookError::BadAnswer(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(read_answer(br#"{"action":"rewrite","data":"0123456789"}"#, 8), Err(HookError::TooLarge));
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            crate::webhooks::sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
