//! The JWT key, parsed once while the configuration is validated (so that
//! a bad key fails start-up and `fanfare config check`, not the first
//! connection), and the crypto backend that parsing needs. The server's
//! authenticator verifies tokens with the key parsed here.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::error::ConfigError;
use crate::kinds::JwtAlgorithm;
use crate::settings::{JwtKey, JwtSettings};

/// The smallest RSA modulus RS256 keys may have.
const MIN_RSA_BITS: usize = 2048;

/// The configured key, ready to verify with. Errors name the configuration
/// key (`auth.jwt_public_key` or `auth.jwt_public_key_file`).
pub fn decoding_key(settings: &JwtSettings) -> Result<DecodingKey, ConfigError> {
    install_crypto_provider();
    Ok(match &settings.key {
        JwtKey::Secret(secret) => DecodingKey::from_secret(secret.as_bytes()),
        JwtKey::PublicKeyPem { pem, file } => {
            public_key(settings.algorithm, pem).map_err(|reason| match file {
                Some(path) => {
                    ConfigError::invalid("auth.jwt_public_key_file", format!("{}: {reason}", path.display()))
                }
                None => ConfigError::invalid("auth.jwt_public_key", reason),
            })?
        }
    })
}

/// jsonwebtoken chooses its crypto backend from its crate features and
/// panics at the first verification if it cannot (both backends enabled by
/// feature unification). Installing the one we build with makes the choice
/// explicit; a second call (or one made elsewhere first) changes nothing.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

/// jsonwebtoken's name for the algorithm.
pub fn jsonwebtoken_algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::Hs256 => Algorithm::HS256,
        JwtAlgorithm::Rs256 => Algorithm::RS256,
        JwtAlgorithm::Es256 => Algorithm::ES256,
    }
}

/// Parses and checks a PEM public key for `alg`: the right kind of key,
/// the right curve or size, and not a private key by mistake.
fn public_key(alg: JwtAlgorithm, pem: &str) -> Result<DecodingKey, String> {
    if pem.contains("PRIVATE KEY") {
        return Err(
            "is a private key; the server needs only the public key (never give it the private one)".into()
        );
    }
    let (key, what) = match alg {
        JwtAlgorithm::Rs256 => (DecodingKey::from_rsa_pem(pem.as_bytes()), "an RSA public key in PEM format"),
        JwtAlgorithm::Es256 => {
            (DecodingKey::from_ec_pem(pem.as_bytes()), "a P-256 EC public key in PEM format")
        }
        JwtAlgorithm::Hs256 => return Err("HS256 uses auth.jwt_secret, not a public key".into()),
    };
    let key = key.map_err(|error| format!("is not {what} ({error})"))?;
    // Parsing the key fully now, rather than at the first connection, so
    // that a bad key fails start-up and `fanfare config check`.
    let jwk = Jwk::from_decoding_key(&key, Some(jsonwebtoken_algorithm(alg)))
        .map_err(|error| format!("is not {what} ({error})"))?;
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(rsa), JwtAlgorithm::Rs256) => {
            let bits = base64_len(&rsa.n) * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!("is a {bits}-bit RSA key; RS256 needs at least {MIN_RSA_BITS} bits"));
            }
        }
        (AlgorithmParameters::EllipticCurve(ec), JwtAlgorithm::Es256) if ec.curve == EllipticCurve::P256 => {}
        (AlgorithmParameters::EllipticCurve(ec), JwtAlgorithm::Es256) => {
            return Err(format!("is an EC key on curve {:?}; ES256 needs P-256", ec.curve));
        }
        _ => return Err(format!("is not {what}")),
    }
    Ok(key)
}

/// Bytes encoded by unpadded base64 text (the JWK's modulus).
fn base64_len(text: &str) -> usize {
    text.trim_end_matches('=').len() * 3 / 4
}
