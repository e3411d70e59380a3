//! Connection tokens: the one JWT of `--token` for every connection, or,
//! with `--jwt-secret`, an HS256 JWT signed here for each connection, so
//! each one is a user of its own (per-user limits and presence see many
//! users, as in a real room). Signed tokens grant nothing beyond `sub`:
//! no `moderate` or `host` claim, so their publications stay out of a
//! shaped namespace's priority lane.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::options::{BenchOptions, Scenario};

/// How long a signed token is valid: longer than any run's hard timeout.
const VALID_FOR_SECONDS: u64 = 24 * 3600;

/// Who a connection is, for its `sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Viewer(usize),
    Publisher(usize),
}

#[derive(Serialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// The token connection `role` sends in `connect`, if any.
pub(crate) fn token_for(options: &BenchOptions, role: Role) -> Option<String> {
    let Some(secret) = &options.jwt_secret else { return options.token.clone() };
    let sub = match role {
        // A messenger's connections are its users, by the names its
        // direct channels and feeds are made of.
        Role::Viewer(index) if options.scenario == Scenario::Dm => options.dm_user(index),
        Role::Viewer(index) => format!("bench-viewer-{index}"),
        Role::Publisher(index) => format!("bench-publisher-{index}"),
    };
    Some(sign(secret, sub))
}

fn sign(secret: &str, sub: String) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims = Claims { sub, exp: now + VALID_FOR_SECONDS };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, &claims, &key).expect("HS256 signing of plain claims does not fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_secret_every_connection_sends_the_given_token() {
        let mut options = BenchOptions::new(Scenario::Live, "http://127.0.0.1:1");
        assert_eq!(token_for(&options, Role::Viewer(3)), None);
        options.token = Some("t".into());
        assert_eq!(token_for(&options, Role::Publisher(0)).as_deref(), Some("t"));
    }

    #[test]
    fn with_a_secret_each_connection_gets_its_own_verifiable_user() {
        let mut options = BenchOptions::new(Scenario::Live, "http://127.0.0.1:1");
        options.jwt_secret = Some("a-secret-of-at-least-thirty-two-bytes".into());
        let token = token_for(&options, Role::Viewer(7)).unwrap();
        let key = jsonwebtoken::DecodingKey::from_secret(b"a-secret-of-at-least-thirty-two-bytes");
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "bench-viewer-7");
        assert!(decoded.claims.get("moderate").is_none() && decoded.claims.get("host").is_none());
        let publisher = token_for(&options, Role::Publisher(2)).unwrap();
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&publisher, &key, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "bench-publisher-2");
    }

    #[test]
    fn a_messenger_user_signs_in_as_the_user_its_feed_and_channels_name() {
        let mut options = BenchOptions::new(Scenario::Dm, "http://127.0.0.1:1");
        options.jwt_secret = Some("a-secret-of-at-least-thirty-two-bytes".into());
        options.dm.user_prefix = Some("uab12-".into());
        let token = token_for(&options, Role::Viewer(7)).unwrap();
        let key = jsonwebtoken::DecodingKey::from_secret(b"a-secret-of-at-least-thirty-two-bytes");
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "uab12-7");
    }
}
