//! `POST /demo/token {"user":"alice"}` → `{"token","user","expires_in","team"}`:
//! a short-lived HS256 token for a made-up user, so each demo page signs
//! in as whoever its visitor types. On the way the user becomes a member
//! of the team channels (a `fanfare:members` publication in each, the
//! first time only) with nothing unread in them.
//!
//! The pages call it before every (re)connect (the client's `getToken`),
//! so a token lives only [`TOKEN_LIFETIME`]; the endpoint takes at most
//! [`PER_SECOND`] requests a second, with bursts of [`BURST`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Json;
use axum::extract::{FromRef, State};
use fanfare_hub::Hub;
use fanfare_protocol::{ChannelName, ErrorCode, ErrorInfo, UserId};
use governor::{DefaultDirectRateLimiter, Quota};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::TEAM_CHANNELS;
use crate::api::extract::JsonBody;
use crate::config::{JwtAlgorithm, JwtKey, Settings, SubscribePolicy};
use crate::http_error::HttpError;
use crate::members::Members;
use crate::members::change::Change;

/// How long a demo token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Tokens issued per second at most, and in a burst.
const PER_SECOND: u32 = 10;
const BURST: u32 = 30;
/// The longest made-up user name.
const MAX_NAME: usize = 32;

/// What issuing a token needs; one per server.
#[derive(Clone)]
pub struct Tokens(Arc<TokenState>);

struct TokenState {
    /// Signs with the server's own HS256 secret, so its authenticator
    /// accepts the tokens like any other.
    key: EncodingKey,
    hub: Arc<Hub>,
    members: Arc<Members>,
    /// The namespaces (is `team` a members namespace?) and the body limit.
    settings: Arc<Settings>,
    /// The endpoint's pace, for the whole node (it listens on loopback only).
    rate: DefaultDirectRateLimiter,
}

impl Tokens {
    /// Refuses a configured key the demo cannot sign with.
    pub fn new(settings: &Arc<Settings>, hub: Arc<Hub>, members: Arc<Members>) -> anyhow::Result<Self> {
        let jwt = settings.auth.jwt.as_ref().context("--demo needs a JWT key to sign its tokens")?;
        let secret = match (&jwt.algorithm, &jwt.key) {
            (JwtAlgorithm::Hs256, JwtKey::Secret(secret)) => secret,
            _ => anyhow::bail!(
                "--demo signs its tokens with an HS256 secret: configure auth.jwt_secret, or no JWT key at all"
            ),
        };
        anyhow::ensure!(
            jwt.audience.is_none() && jwt.issuer.is_none(),
            "--demo issues tokens without `aud` and `iss`: unset auth.audience and auth.issuer"
        );
        let quota = Quota::per_second(NonZeroU32::new(PER_SECOND).context("a rate")?)
            .allow_burst(NonZeroU32::new(BURST).context("a burst")?);
        Ok(Self(Arc::new(TokenState {
            key: EncodingKey::from_secret(secret.as_bytes()),
            hub,
            members,
            settings: settings.clone(),
            rate: governor::RateLimiter::direct(quota),
        })))
    }
}

/// The body limit of [`JsonBody`].
impl FromRef<Tokens> for Arc<Settings> {
    fn from_ref(tokens: &Tokens) -> Self {
        tokens.0.settings.clone()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    user: String,
}

#[derive(Serialize)]
pub struct IssuedToken {
    token: String,
    user: String,
    /// Seconds.
    expires_in: u64,
    /// The team chat's channels, of which the user is now a member.
    team: Vec<&'static str>,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    iat: u64,
}

pub async fn issue(
    State(tokens): State<Tokens>,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<Json<IssuedToken>, HttpError> {
    let tokens = &tokens.0;
    if tokens.rate.check().is_err() {
        return Err(HttpError::new(ErrorCode::RateLimited, "too many demo tokens asked for; wait a second"));
    }
    let user = made_up_user(&request.user)?;
    join_team(tokens, &user).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = Claims { sub: &user, iat: now, exp: now + TOKEN_LIFETIME.as_secs() };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &tokens.key)
        .map_err(|error| HttpError::new(ErrorCode::Internal, format!("signing the token: {error}")))?;
    Ok(Json(IssuedToken { token, user, expires_in: TOKEN_LIFETIME.as_secs(), team: TEAM_CHANNELS.to_vec() }))
}

/// A made-up name: 1 to 32 lowercase letters, digits, `-` and `_` (so it
/// fits in a `dm:` channel name and a `feed:` one).
fn made_up_user(name: &str) -> Result<String, HttpError> {
    let name = name.trim().to_lowercase();
    let fits = (1..=MAX_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !fits {
        let message = format!("a demo user is 1 to {MAX_NAME} letters, digits, '-' or '_'");
        return Err(HttpError::new(ErrorCode::BadRequest, message));
    }
    Ok(name)
}

/// Makes `user` a member of each team channel; a new member starts with
/// everything before them read.
async fn join_team(tokens: &TokenState, user: &str) -> Result<(), ErrorInfo> {
    let users = [UserId::new(user)];
    for name in TEAM_CHANNELS {
        let channel =
            ChannelName::new(name).map_err(|e| ErrorInfo::new(ErrorCode::Internal, e.to_string()))?;
        let namespace = tokens.settings.namespaces.resolve(&channel);
        // A `team` namespace the user configured otherwise has no members.
        if namespace.subscribe != SubscribePolicy::Members {
            continue;
        }
        let outcome = tokens.members.change(&tokens.hub, &channel, &namespace, Change::Add, &users).await?;
        if outcome.added.is_some_and(|added| !added.is_empty()) {
            let latest = tokens.hub.position(&channel).await.map_err(crate::policy::hub_error)?;
            tokens.members.mark_read(&tokens.hub, user, &channel, latest).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_up_user_is_a_short_plain_name() {
        assert_eq!(made_up_user(" Alice ").ok().as_deref(), Some("alice"));
        assert_eq!(made_up_user("bob_2-x").ok().as_deref(), Some("bob_2-x"));
        for refused in ["", "a,b", "alice bob", "élodie", &"x".repeat(33)] {
            assert!(made_up_user(refused).is_err(), "{refused:?}");
        }
    }
}
