//! Why a connection token was refused. The messages go to the client, so
//! they say what is wrong with the token without echoing it.

use fanfare_protocol::ErrorCode;

use crate::config::JwtAlgorithm;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, and anonymous connections are not allowed.
    #[error("a token is required")]
    Missing,
    /// The server has no JWT key: it cannot accept any token.
    #[error("this server accepts no tokens: no JWT key configured")]
    NotConfigured,
    /// Not a JWT: bad base64, bad JSON, a claim of the wrong type.
    #[error("the token is not a valid JWT: {0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    /// A claim the server reads has the wrong shape.
    #[error("the token's `{claim}` claim must be {expected}")]
    BadClaim { claim: String, expected: &'static str },
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token has no `sub` (user id) claim, or it is empty")]
    MissingSubject,
    /// The token's `alg` header is not the algorithm the server verifies.
    #[error("the token must be signed with {expected}")]
    WrongAlgorithm { expected: JwtAlgorithm },
    #[error("the token's audience (aud) is not this server")]
    WrongAudience,
    #[error("the token's issuer (iss) is not trusted")]
    WrongIssuer,
}

impl AuthError {
    /// The row of the error table a client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Expired => ErrorCode::TokenExpired,
            _ => ErrorCode::Unauthorized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_expiry_has_its_own_code() {
        assert_eq!(AuthError::Expired.code(), ErrorCode::TokenExpired);
        assert_eq!(AuthError::Expired.code().as_str(), "token_expired");
        for other in
            [AuthError::Missing, AuthError::BadSignature, AuthError::MissingSubject, AuthError::NotConfigured]
        {
            assert_eq!(other.code(), ErrorCode::Unauthorized, "{other}");
        }
    }
}
