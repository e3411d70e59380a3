//! Signing and verifying Pusher HTTP API requests (auth_version 1.0).
//!
//! A server SDK adds `auth_key`, `auth_timestamp` (Unix seconds),
//! `auth_version=1.0` and, when the body is not empty, `body_md5` (hex MD5
//! of the raw body) to the query, then signs
//!
//! ```text
//! METHOD\npath\nk1=v1&k2=v2…
//! ```
//!
//! with every query parameter but `auth_signature`, keys lowercased, sorted
//! by key, values as they are (decoded, not escaped), and appends the hex
//! HMAC-SHA256 as `auth_signature`. The path is the one the SDK requested,
//! including any prefix its `path` setting adds: pusher-http-node signs
//! `config.prefixPath(path)`, so the server verifies the path as received.
//!
//! Unlike several clones, the server here checks the ±600 s timestamp
//! window (no replay of old requests), recomputes `body_md5` from the bytes
//! it received, and compares the signature in constant time.

use md5::{Digest, Md5};

use crate::ErrorCode;

use super::signature::{sign, verify_hex};

/// The only `auth_version` there is.
pub const API_AUTH_VERSION: &str = "1.0";

/// How far `auth_timestamp` may be from the server's clock, either way.
pub const API_TIMESTAMP_TOLERANCE_SECS: u64 = 600;

/// An HTTP API request as far as its signature covers it.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// `GET`, `POST`…; signed upper-cased.
    pub method: &'a str,
    /// The path as received, without the query: `/apps/3/events`.
    pub path: &'a str,
    /// Every query parameter, already percent-decoded.
    pub query: &'a [(String, String)],
    /// The raw body bytes.
    pub body: &'a [u8],
}

/// Why a request's signature was refused. All of them are HTTP 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiAuthError {
    #[error("missing query parameter {0:?}")]
    MissingParam(&'static str),
    #[error("auth_key is not this app's key")]
    WrongKey,
    #[error("auth_version must be \"{API_AUTH_VERSION}\"")]
    WrongVersion,
    #[error("auth_timestamp is not within {API_TIMESTAMP_TOLERANCE_SECS} seconds of the server's clock")]
    Expired,
    #[error("body_md5 does not match the body")]
    BodyMd5Mismatch,
    #[error("auth_signature does not match the request")]
    BadSignature,
}

impl ApiAuthError {
    /// The row of the crate's error table (both rows are HTTP 401).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiAuthError::Expired => ErrorCode::TokenExpired,
            _ => ErrorCode::Unauthorized,
        }
    }
}

/// Verifies a request signed by a Pusher server SDK. `now_unix` is the
/// server's clock in seconds. A timestamp that is not a number is refused
/// as [`ApiAuthError::Expired`]: it is not within the window either.
pub fn verify_api_request(
    request: ApiRequest<'_>,
    app_key: &str,
    secret: &str,
    now_unix: u64,
) -> Result<(), ApiAuthError> {
    let query = request.query;
    if required(query, "auth_key")? != app_key {
        return Err(ApiAuthError::WrongKey);
    }
    if required(query, "auth_version")? != API_AUTH_VERSION {
        return Err(ApiAuthError::WrongVersion);
    }
    check_timestamp(required(query, "auth_timestamp")?, now_unix)?;
    check_body_md5(param(query, "body_md5"), request.body)?;
    let signature = required(query, "auth_signature")?;
    let string_to_sign = string_to_sign(request.method, request.path, query);
    if !verify_hex(secret, string_to_sign.as_bytes(), signature) {
        return Err(ApiAuthError::BadSignature);
    }
    Ok(())
}

/// Signs a request as a server SDK does: returns the parameters to append
/// to `request.query` (`auth_key`, `auth_timestamp`, `auth_version`,
/// `body_md5` when the body is not empty, then `auth_signature`).
pub fn sign_api_request(
    request: ApiRequest<'_>,
    app_key: &str,
    secret: &str,
    timestamp: u64,
) -> Vec<(String, String)> {
    let mut auth = vec![
        ("auth_key".to_string(), app_key.to_string()),
        ("auth_timestamp".to_string(), timestamp.to_string()),
        ("auth_version".to_string(), API_AUTH_VERSION.to_string()),
    ];
    if !request.body.is_empty() {
        auth.push(("body_md5".to_string(), md5_hex(request.body)));
    }
    let all: Vec<(String, String)> = request.query.iter().chain(&auth).cloned().collect();
    let signature = sign(secret, &string_to_sign(request.method, request.path, &all));
    auth.push(("auth_signature".to_string(), signature));
    auth
}

/// `METHOD\npath\nsorted lowercase key=value pairs joined by &`, without
/// `auth_signature`. Equal keys (which no SDK sends) sort by value.
fn string_to_sign(method: &str, path: &str, query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = query
        .iter()
        .map(|(key, value)| (key.to_ascii_lowercase(), value.as_str()))
        .filter(|(key, _)| key != "auth_signature")
        .collect();
    pairs.sort_unstable();
    let params: Vec<String> = pairs.iter().map(|(key, value)| format!("{key}={value}")).collect();
    format!("{}\n{}\n{}", method.to_ascii_uppercase(), path, params.join("&"))
}

/// The first value of a parameter; keys match case-insensitively, as they
/// are signed lowercased.
fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

fn required<'q>(query: &'q [(String, String)], name: &'static str) -> Result<&'q str, ApiAuthError> {
    param(query, name).ok_or(ApiAuthError::MissingParam(name))
}

fn check_timestamp(timestamp: &str, now_unix: u64) -> Result<(), ApiAuthError> {
    let timestamp: u64 = timestamp.parse().map_err(|_| ApiAuthError::Expired)?;
    if timestamp.abs_diff(now_unix) > API_TIMESTAMP_TOLERANCE_SECS {
        return Err(ApiAuthError::Expired);
    }
    Ok(())
}

/// A non-empty body needs `body_md5`, recomputed here from the bytes
/// received; an empty one (a GET) may omit it, or give the MD5 of nothing.
fn check_body_md5(given: Option<&str>, body: &[u8]) -> Result<(), ApiAuthError> {
    let given = match given {
        Some(given) => given,
        None if body.is_empty() => return Ok(()),
        None => return Err(ApiAuthError::MissingParam("body_md5")),
    };
    if !given.eq_ignore_ascii_case(&md5_hex(body)) {
        return Err(ApiAuthError::BodyMd5Mismatch);
    }
    Ok(())
}

fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const TIMESTAMP: u64 = 1353088179;
    const BODY: &[u8] = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const BODY_MD5: &str = "ec365a775a4cd0599faeb73354201b6f";
    const SIGNATURE: &str = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The documented request, as it arrives at the server.
    fn signed_query() -> Vec<(String, String)> {
        pairs(&[
            ("auth_key", KEY),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("body_md5", BODY_MD5),
            ("auth_signature", SIGNATURE),
        ])
    }

    fn verify(
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
        now: u64,
    ) -> Result<(), ApiAuthError> {
        verify_api_request(ApiRequest { method, path, query, body }, KEY, SECRET, now)
    }

    fn with(query: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
        let mut query = query.to_vec();
        match query.iter_mut().find(|(k, _)| k == name) {
            Some(pair) => pair.1 = value.to_string(),
            None => query.push((name.to_string(), value.to_string())),
        }
        query
    }

    fn without(query: &[(String, String)], name: &str) -> Vec<(String, String)> {
        query.iter().filter(|(k, _)| k != name).cloned().collect()
    }

    #[test]
    fn signing_reproduces_the_documented_vector() {
        let request = ApiRequest { method: "POST", path: "/apps/3/events", query: &[], body: BODY };
        assert_eq!(sign_api_request(request, KEY, SECRET, TIMESTAMP), signed_query());
    }

    #[test]
    fn the_documented_request_verifies() {
        let query = signed_query();
        assert_eq!(verify("POST", "/apps/3/events", &query, BODY, TIMESTAMP), Ok(()));
        assert_eq!(verify("post", "/apps/3/events", &query, BODY, TIMESTAMP + 30), Ok(()));
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let tampered = br#"{"name":"foo","channels":["project-4"],"data":"{\"some\":\"data\"}"}"#;
        let query = signed_query();
        assert_eq!(
            verify("POST", "/apps/3/events", &query, tampered, TIMESTAMP),
            Err(ApiAuthError::BodyMd5Mismatch)
        );
        // Recomputing body_md5 does not help without the secret.
        let query = with(&query, "body_md5", &md5_hex(tampered));
        assert_eq!(
            verify("POST", "/apps/3/events", &query, tampered, TIMESTAMP),
            Err(ApiAuthError::BadSignature)
        );
    }

    #[test]
    fn an_old_or_future_timestamp_is_refused() {
        let query = signed_query();
        let check = |now| verify("POST", "/apps/3/events", &query, BODY, now);
        assert_eq!(check(TIMESTAMP + 600), Ok(()));
        assert_eq!(check(TIMESTAMP - 600), Ok(()));
        assert_eq!(check(TIMESTAMP + 601), Err(ApiAuthError::Expired));
        assert_eq!(check(TIMESTAMP - 601), Err(ApiAuthError::Expired));
        assert_eq!(check(1_900_000_000), Err(ApiAuthError::Expired));
        let garbled = with(&query, "auth_timestamp", "soon");
        assert_eq!(verify("POST", "/apps/3/events", &garbled, BODY, TIMESTAMP), Err(ApiAuthError::Expired));
    }

    #[test]
    fn another_apps_key_is_refused() {
        let query = with(&signed_query(), "auth_key", "0000000000000000000f");
        assert_eq!(verify("POST", "/apps/3/events", &query, BODY, TIMESTAMP), Err(ApiAuthError::WrongKey));
    }

    #[test]
    fn any_changed_or_added_parameter_breaks_the_signature() {
        let query = signed_query();
        let bad = |query: &[(String, String)], method: &str, path: &str| {
            verify(method, path, query, BODY, TIMESTAMP)
        };
        let moved_clock = with(&query, "auth_timestamp", "1353088180");
        assert_eq!(bad(&moved_clock, "POST", "/apps/3/events"), Err(ApiAuthError::BadSignature));
        let added = with(&query, "info", "user_count");
        assert_eq!(bad(&added, "POST", "/apps/3/events"), Err(ApiAuthError::BadSignature));
        assert_eq!(bad(&query, "POST", "/apps/4/events"), Err(ApiAuthError::BadSignature));
        assert_eq!(bad(&query, "PUT", "/apps/3/events"), Err(ApiAuthError::BadSignature));
        let forged = with(&query, "auth_signature", &SIGNATURE.replace('d', "e"));
        assert_eq!(bad(&forged, "POST", "/apps/3/events"), Err(ApiAuthError::BadSignature));
        let not_hex = with(&query, "auth_signature", "not hex");
        assert_eq!(bad(&not_hex, "POST", "/apps/3/events"), Err(ApiAuthError::BadSignature));
    }

    #[test]
    fn missing_or_wrong_auth_parameters_are_named() {
        let query = signed_query();
        for name in ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"] {
            assert_eq!(
                verify("POST", "/apps/3/events", &without(&query, name), BODY, TIMESTAMP),
                Err(ApiAuthError::MissingParam(name)),
                "{name}"
            );
        }
        let version = with(&query, "auth_version", "2.0");
        assert_eq!(
            verify("POST", "/apps/3/events", &version, BODY, TIMESTAMP),
            Err(ApiAuthError::WrongVersion)
        );
    }

    #[test]
    fn a_get_signs_its_query_sorted_and_unescaped() {
        let query = pairs(&[("info", "user_count,subscription_count"), ("filter_by_prefix", "presence-")]);
        let path = "/apps/3/channels";
        let request = ApiRequest { method: "GET", path, query: &query, body: b"" };
        let auth = sign_api_request(request, KEY, SECRET, TIMESTAMP);
        assert!(auth.iter().all(|(k, _)| k != "body_md5"), "no body, no body_md5");
        let expected = "GET\n/apps/3/channels\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
            &auth_version=1.0&filter_by_prefix=presence-&info=user_count,subscription_count";
        assert_eq!(auth.last().unwrap().1, sign(SECRET, expected));

        let full: Vec<_> = query.iter().chain(&auth).cloned().collect();
        assert_eq!(verify("GET", path, &full, b"", TIMESTAMP), Ok(()));
        let wrong_md5 = with(&full, "body_md5", BODY_MD5);
        assert_eq!(verify("GET", path, &wrong_md5, b"", TIMESTAMP), Err(ApiAuthError::BodyMd5Mismatch));
    }

    #[test]
    fn an_empty_body_may_carry_the_md5_of_nothing() {
        let query = pairs(&[("body_md5", "d41d8cd98f00b204e9800998ecf8427e")]);
        let request = ApiRequest { method: "GET", path: "/apps/3/channels", query: &query, body: b"" };
        let full: Vec<_> =
            query.iter().cloned().chain(sign_api_request(request, KEY, SECRET, TIMESTAMP)).collect();
        assert_eq!(verify("GET", "/apps/3/channels", &full, b"", TIMESTAMP), Ok(()));
    }

    #[test]
    fn keys_are_signed_lowercased() {
        let query = pairs(&[("Info", "user_count")]);
        let request = ApiRequest { method: "GET", path: "/apps/3/channels/x", query: &query, body: b"" };
        let auth = sign_api_request(request, KEY, SECRET, TIMESTAMP);
        let lower: Vec<_> = pairs(&[("info", "user_count")]).into_iter().chain(auth).collect();
        let request = ApiRequest { query: &lower, ..request };
        assert_eq!(verify_api_request(request, KEY, SECRET, TIMESTAMP), Ok(()));
    }

    #[test]
    fn every_refusal_is_a_401() {
        for error in [ApiAuthError::WrongKey, ApiAuthError::Expired, ApiAuthError::BadSignature] {
            assert_eq!(error.error_code().http_status(), 401);
        }
    }
}
