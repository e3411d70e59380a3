//! Connection tokens: a JWT given to `connect` → an [`Identity`].
//!
//! The gateway calls [`Authenticator::authenticate`] once per connection.
//! One algorithm is accepted, the one configured (`auth.jwt_algorithm`):
//! HS256 with a shared secret, RS256 or ES256 with a PEM public key. A
//! token signed with any other algorithm is refused, which closes the
//! classic "HS256 signed with the RSA public key" confusion.
//!
//! Claims read:
//! - `sub` (required, non-empty string): the user id.
//! - `exp`, `nbf` (optional): honoured when present, with 5 s of leeway
//!   for clock skew. A token without `exp` never expires; issue short-lived
//!   tokens if that matters.
//! - `aud`, `iss`: checked only when `auth.audience` / `auth.issuer` are set.
//! - the channels claim (`auth.channels_claim`, default `channels`): a list
//!   of channel names, `ns:*` granting a whole namespace.
//! - `info` (any JSON): shown to other members in presence.
//! - `moderate` (optional): channels and `ns:*` namespaces, in the syntax
//!   of the channels claim, that this user may moderate.

mod error;
mod identity;

use std::fmt;
use std::sync::Arc;

use fanfare_protocol::JsonData;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

pub use error::AuthError;
pub use identity::{ChannelGrants, Identity};

use crate::config::{AuthSettings, ConfigError, JwtAlgorithm, JwtSettings, jwt_key};

/// The claim listing what a user may moderate (`["live:*", "chat:lobby"]`).
pub const MODERATE_CLAIM: &str = "moderate";
/// The claim that names the channels where the user is a host: in a
/// shaped namespace their publications take the priority lane.
pub const HOST_CLAIM: &str = "host";

/// The claim that names the members channels whose members the user may
/// add and remove (`manage_members = "grant"`), in the channels claim's
/// syntax.
pub const MEMBERS_CLAIM: &str = "members";

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

/// Verifies connection tokens. Built once from the settings; cheap to share.
pub struct Authenticator {
    allow_anonymous: bool,
    channels_claim: String,
    /// `None`: no key configured, every token is refused.
    verifier: Option<Verifier>,
}

struct Verifier {
    algorithm: JwtAlgorithm,
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    /// Parses the configured key. Errors name the configuration key.
    pub fn new(settings: &AuthSettings) -> Result<Self, ConfigError> {
        jwt_key::install_crypto_provider();
        let verifier = settings.jwt.as_ref().map(Verifier::new).transpose()?;
        Ok(Self {
            allow_anonymous: settings.allow_anonymous,
            channels_claim: settings.channels_claim.clone(),
            verifier,
        })
    }

    /// The identity of a connecting client: anonymous without a token (if
    /// allowed), otherwise the verified token's.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        match token.filter(|token| !token.is_empty()) {
            Some(token) => self.verify(token),
            None if self.allow_anonymous => Ok(Identity::anonymous()),
            None => Err(AuthError::Missing),
        }
    }

    /// Verifies a token and reads the identity it carries.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let verifier = self.verifier.as_ref().ok_or(AuthError::NotConfigured)?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &verifier.key, &verifier.validation)
            .map_err(|error| verifier.refusal(error))?
            .claims;
        self.identity(claims)
    }

    fn identity(&self, mut claims: Map<String, Value>) -> Result<Identity, AuthError> {
        let user = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => Arc::from(sub.as_str()),
            _ => return Err(AuthError::MissingSubject),
        };
        let grants = match claims.get(&self.channels_claim) {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_grants(&self.channels_claim, value)?),
        };
        let moderates = match claims.get(MODERATE_CLAIM) {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_grants(MODERATE_CLAIM, value)?),
        };
        let hosts = match claims.get(HOST_CLAIM) {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_grants(HOST_CLAIM, value)?),
        };
        let manages = match claims.get(MEMBERS_CLAIM) {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_grants(MEMBERS_CLAIM, value)?),
        };
        let info = match claims.remove("info") {
            None | Some(Value::Null) => None,
            Some(value) => Some(JsonData::from_value(&value)),
        };
        // The library has checked that `exp`, when present, is a number.
        let expires_at =
            claims.get("exp").and_then(|exp| exp.as_u64().or_else(|| exp.as_f64().map(|f| f as u64)));
        Ok(Identity { user, grants, info, moderates, hosts, manages, expires_at })
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("allow_anonymous", &self.allow_anonymous)
            .field("channels_claim", &self.channels_claim)
            .field("algorithm", &self.verifier.as_ref().map(|v| v.algorithm))
            .finish()
    }
}

impl Verifier {
    fn new(settings: &JwtSettings) -> Result<Self, ConfigError> {
        let key = jwt_key::decoding_key(settings)?;
        let mut validation = Validation::new(jwt_key::jsonwebtoken_algorithm(settings.algorithm));
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        validation.validate_aud = settings.audience.is_some();
        if let Some(audience) = &settings.audience {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".to_owned());
        }
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        Ok(Self { algorithm: settings.algorithm, key, validation })
    }

    fn refusal(&self, error: jsonwebtoken::errors::Error) -> AuthError {
        match error.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                AuthError::WrongAlgorithm { expected: self.algorithm }
            }
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => AuthError::WrongIssuer,
            _ => AuthError::Malformed(error),
        }
    }
}

fn parse_grants(claim: &str, value: &Value) -> Result<ChannelGrants, AuthError> {
    let bad = || AuthError::BadClaim {
        claim: claim.to_owned(),
        expected: "a list of channel names (`ns:*` for a whole namespace)",
    };
    let entries = value.as_array().ok_or_else(bad)?;
    let names = entries.iter().map(Value::as_str).collect::<Option<Vec<&str>>>().ok_or_else(bad)?;
    ChannelGrants::parse(names).map_err(|_| bad())
}

#[cfg(test)]
mod tests;
