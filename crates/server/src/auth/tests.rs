//! Tokens signed here with test-only keys (`testdata/`), verified as a
//! connecting client's would be.

use fanfare_protocol::{ChannelName, ErrorCode};
use jsonwebtoken::crypto::{CryptoProvider, KeyUtils};
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use serde_json::json;

use super::*;
use crate::config::ConfigError;
use crate::config::JwtKey;
use crate::config::jwt_key::install_crypto_provider;

const SECRET: &str = "a-test-secret-that-is-32-bytes-long!";
const RS256_PUBLIC: &str = include_str!("testdata/rs256_public.pem");
const RS256_PRIVATE: &str = include_str!("testdata/rs256_private.pem");
const ES256_PUBLIC: &str = include_str!("testdata/es256_public.pem");
const ES256_PRIVATE: &str = include_str!("testdata/es256_private.pem");
const P384_PUBLIC: &str = include_str!("testdata/p384_public.pem");

fn settings(algorithm: JwtAlgorithm, key: JwtKey) -> AuthSettings {
    AuthSettings {
        jwt: Some(JwtSettings { algorithm, key, audience: None, issuer: None }),
        ..AuthSettings::default()
    }
}

fn hs256() -> Authenticator {
    Authenticator::new(&settings(JwtAlgorithm::Hs256, JwtKey::Secret(SECRET.into()))).unwrap()
}

fn pem(algorithm: JwtAlgorithm, pem: &str) -> Result<Authenticator, ConfigError> {
    Authenticator::new(&settings(algorithm, JwtKey::PublicKeyPem { pem: pem.into(), file: None }))
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    install_crypto_provider();
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

fn sign_hs256(secret: &str, claims: serde_json::Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(secret.as_bytes()), claims)
}

fn in_an_hour() -> u64 {
    get_current_timestamp() + 3600
}

#[test]
fn a_valid_hs256_token_yields_the_user_its_grants_and_info() {
    let exp = in_an_hour();
    let token = sign_hs256(
        SECRET,
        json!({"sub": "alice", "exp": exp, "channels": ["chat:*", "news:today"], "info": {"name": "Alice"}}),
    );
    let identity = hs256().verify(&token).unwrap();
    assert_eq!(&*identity.user, "alice");
    assert_eq!(identity.expires_at, Some(exp));
    assert_eq!(identity.info.unwrap().as_str(), r#"{"name":"Alice"}"#);
    let grants = identity.grants.unwrap();
    assert!(grants.allows(&ChannelName::new("chat:x").unwrap()));
    assert!(grants.allows(&ChannelName::new("news:today").unwrap()));
    assert!(!grants.allows(&ChannelName::new("news:x").unwrap()));
}

#[test]
fn a_token_without_exp_is_accepted_and_never_expires() {
    let identity = hs256().verify(&sign_hs256(SECRET, json!({"sub": "bob"}))).unwrap();
    assert_eq!(identity.expires_at, None);
    assert_eq!(identity.grants, None);
    assert_eq!(identity.info, None);
}

#[test]
fn a_token_signed_with_another_secret_has_a_bad_signature() {
    let token = sign_hs256("another-secret-that-is-32-bytes-long", json!({"sub": "alice"}));
    let error = hs256().verify(&token).unwrap_err();
    assert!(matches!(error, AuthError::BadSignature), "{error:?}");
    assert_eq!(error.code(), ErrorCode::Unauthorized);
}

#[test]
fn an_expired_token_is_refused_with_token_expired() {
    let token = sign_hs256(SECRET, json!({"sub": "alice", "exp": get_current_timestamp() - 60}));
    let error = hs256().verify(&token).unwrap_err();
    assert!(matches!(error, AuthError::Expired), "{error:?}");
    assert_eq!(error.code().as_str(), "token_expired");
}

#[test]
fn a_token_expired_within_the_leeway_is_still_accepted() {
    let token = sign_hs256(SECRET, json!({"sub": "alice", "exp": get_current_timestamp() - 2}));
    assert!(hs256().verify(&token).is_ok());
}

#[test]
fn a_token_not_valid_yet_is_refused() {
    let token = sign_hs256(SECRET, json!({"sub": "alice", "nbf": get_current_timestamp() + 600}));
    assert!(matches!(hs256().verify(&token), Err(AuthError::NotYetValid)));
}

#[test]
fn a_token_without_a_usable_subject_is_refused() {
    for claims in [json!({"exp": in_an_hour()}), json!({"sub": ""}), json!({"sub": 42})] {
        let error = hs256().verify(&sign_hs256(SECRET, claims.clone())).unwrap_err();
        assert!(matches!(error, AuthError::MissingSubject), "{claims}: {error:?}");
    }
}

#[test]
fn garbage_is_malformed_and_nothing_is_missing() {
    assert!(matches!(hs256().verify("not.a.jwt"), Err(AuthError::Malformed(_))));
    assert!(matches!(hs256().verify("garbage"), Err(AuthError::Malformed(_))));
    assert!(matches!(hs256().verify(""), Err(AuthError::Missing)));
    let bad_exp = sign_hs256(SECRET, json!({"sub": "a", "exp": "tomorrow"}));
    assert!(matches!(hs256().verify(&bad_exp), Err(AuthError::Malformed(_))));
}

#[test]
fn a_channels_claim_that_is_not_a_list_of_names_is_refused() {
    for channels in [json!("chat:*"), json!([1, 2]), json!(["not a channel"])] {
        let token = sign_hs256(SECRET, json!({"sub": "alice", "channels": channels}));
        let error = hs256().verify(&token).unwrap_err();
        assert!(matches!(&error, AuthError::BadClaim { claim, .. } if claim == "channels"), "{error:?}");
    }
}

#[test]
fn the_channels_claim_name_is_configurable() {
    let mut settings = settings(JwtAlgorithm::Hs256, JwtKey::Secret(SECRET.into()));
    settings.channels_claim = "rooms".into();
    let authenticator = Authenticator::new(&settings).unwrap();
    let token = sign_hs256(SECRET, json!({"sub": "alice", "rooms": ["lobby"], "channels": ["ignored"]}));
    let grants = authenticator.verify(&token).unwrap().grants.unwrap();
    assert!(grants.allows(&ChannelName::new("lobby").unwrap()));
    assert!(!grants.allows(&ChannelName::new("ignored").unwrap()));
}

#[test]
fn rs256_tokens_verify_with_the_public_key() {
    let authenticator = pem(JwtAlgorithm::Rs256, RS256_PUBLIC).unwrap();
    let key = EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::RS256, &key, json!({"sub": "carol", "exp": in_an_hour()}));
    assert_eq!(&*authenticator.verify(&token).unwrap().user, "carol");

    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    assert!(matches!(authenticator.verify(&tampered), Err(AuthError::BadSignature)));
}

#[test]
fn es256_tokens_verify_with_the_public_key() {
    let authenticator = pem(JwtAlgorithm::Es256, ES256_PUBLIC).unwrap();
    let key = EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::ES256, &key, json!({"sub": "dave"}));
    assert_eq!(&*authenticator.verify(&token).unwrap().user, "dave");
}

#[test]
fn an_hs256_token_is_refused_when_rs256_is_configured() {
    let authenticator = pem(JwtAlgorithm::Rs256, RS256_PUBLIC).unwrap();
    // The classic confusion attack: HMAC keyed with the (public) PEM text.
    let token = sign_hs256(RS256_PUBLIC, json!({"sub": "mallory"}));
    let error = authenticator.verify(&token).unwrap_err();
    assert!(matches!(error, AuthError::WrongAlgorithm { expected: JwtAlgorithm::Rs256 }), "{error:?}");
    assert_eq!(error.to_string(), "the token must be signed with RS256");
}

#[test]
fn an_rs256_token_is_refused_when_es256_is_configured() {
    let authenticator = pem(JwtAlgorithm::Es256, ES256_PUBLIC).unwrap();
    let key = EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::RS256, &key, json!({"sub": "carol"}));
    assert!(matches!(authenticator.verify(&token), Err(AuthError::WrongAlgorithm { .. })));
}

#[test]
fn keys_of_the_wrong_kind_are_refused_at_start_up() {
    let cases = [
        (JwtAlgorithm::Rs256, ES256_PUBLIC, "is not an RSA public key"),
        (JwtAlgorithm::Es256, RS256_PUBLIC, "is not a P-256 EC public key"),
        (JwtAlgorithm::Es256, P384_PUBLIC, "ES256 needs P-256"),
        (JwtAlgorithm::Rs256, RS256_PRIVATE, "is a private key"),
        (
            JwtAlgorithm::Es256,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "is not a P-256",
        ),
        (JwtAlgorithm::Rs256, "", "is not an RSA public key"),
    ];
    for (algorithm, key, expected) in cases {
        let error = pem(algorithm, key).unwrap_err();
        assert_eq!(error.key(), Some("auth.jwt_public_key"));
        assert!(error.to_string().contains(expected), "{algorithm} with {key:.30}: {error}");
    }
}

#[test]
fn without_a_key_every_token_is_refused_but_anonymous_connects_work() {
    let authenticator = Authenticator::new(&AuthSettings::default()).unwrap();
    let error = authenticator.verify(&sign_hs256(SECRET, json!({"sub": "alice"}))).unwrap_err();
    assert!(matches!(error, AuthError::NotConfigured));
    assert!(error.to_string().contains("no JWT key configured"));
    assert!(authenticator.authenticate(None).unwrap().is_anonymous());
    assert!(authenticator.authenticate(Some("")).unwrap().is_anonymous());
}

#[test]
fn anonymous_connects_are_refused_when_not_allowed() {
    let mut settings = settings(JwtAlgorithm::Hs256, JwtKey::Secret(SECRET.into()));
    settings.allow_anonymous = false;
    let authenticator = Authenticator::new(&settings).unwrap();
    assert!(matches!(authenticator.authenticate(None), Err(AuthError::Missing)));
    let token = sign_hs256(SECRET, json!({"sub": "alice"}));
    assert_eq!(&*authenticator.authenticate(Some(&token)).unwrap().user, "alice");
}

#[test]
fn audience_and_issuer_are_required_when_configured() {
    let mut settings = settings(JwtAlgorithm::Hs256, JwtKey::Secret(SECRET.into()));
    let jwt = settings.jwt.as_mut().unwrap();
    jwt.audience = Some("fanfare".into());
    jwt.issuer = Some("https://auth.example".into());
    let authenticator = Authenticator::new(&settings).unwrap();

    let good = json!({"sub": "a", "aud": "fanfare", "iss": "https://auth.example"});
    assert!(authenticator.verify(&sign_hs256(SECRET, good)).is_ok());
    let cases = [
        (json!({"sub": "a", "iss": "https://auth.example"}), "aud"),
        (json!({"sub": "a", "aud": "other", "iss": "https://auth.example"}), "aud"),
        (json!({"sub": "a", "aud": "fanfare"}), "iss"),
        (json!({"sub": "a", "aud": "fanfare", "iss": "https://evil.example"}), "iss"),
    ];
    for (claims, wrong) in cases {
        let error = authenticator.verify(&sign_hs256(SECRET, claims.clone())).unwrap_err();
        let ok = match wrong {
            "aud" => matches!(error, AuthError::WrongAudience),
            _ => matches!(error, AuthError::WrongIssuer),
        };
        assert!(ok, "{claims}: {error:?}");
    }
}

#[test]
fn without_a_configured_audience_the_aud_claim_is_ignored() {
    let token = sign_hs256(SECRET, json!({"sub": "a", "aud": "some-other-service"}));
    assert!(hs256().verify(&token).is_ok());
}

#[test]
fn the_crypto_backend_is_chosen_explicitly() {
    static OTHER: CryptoProvider = CryptoProvider {
        signer_factory: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        verifier_factory: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        key_utils: KeyUtils::new_unimplemented(),
    };
    let authenticator = hs256();
    // `Authenticator::new` installed the aws-lc provider: no other can be
    // installed after it, and verifying works (instead of panicking).
    assert!(CryptoProvider::install_default(&OTHER).is_err());
    assert!(authenticator.verify(&sign_hs256(SECRET, json!({"sub": "a"}))).is_ok());
}

#[test]
fn the_members_claim_grants_managing_members_and_a_malformed_one_is_refused() {
    let token = sign_hs256(SECRET, json!({"sub": "alice", "exp": in_an_hour(), "members": ["team:*"]}));
    let identity = hs256().verify(&token).unwrap();
    assert!(identity.manages_members(&ChannelName::new("team:ops").unwrap()));
    assert!(!identity.manages_members(&ChannelName::new("club:chess").unwrap()));
    let bad = sign_hs256(SECRET, json!({"sub": "alice", "exp": in_an_hour(), "members": "team:*"}));
    assert!(hs256().verify(&bad).is_err(), "a members claim that is not a list of grants");
}
