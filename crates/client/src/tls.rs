//! TLS for `wss://` URLs: Mozilla's root certificates (compiled in, so a
//! static binary needs no system store) or the application's own
//! configuration, e.g. [`trusting`] a private CA.

use std::sync::{Arc, LazyLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::ClientError;

/// What `wss://` uses when [`ClientOptions::tls`](crate::ClientOptions::tls)
/// is `None`: the webpki-roots bundle.
pub fn default_tls() -> Arc<ClientConfig> {
    static DEFAULT: LazyLock<Arc<ClientConfig>> = LazyLock::new(|| {
        let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        Arc::new(config(roots))
    });
    DEFAULT.clone()
}

/// A configuration that trusts the PEM certificates in `pem` (and only
/// those): a private CA, or a test's self-signed certificate.
pub fn trusting(pem: &[u8]) -> Result<Arc<ClientConfig>, ClientError> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate = certificate.map_err(|error| ClientError::Tls(error.to_string()))?;
        roots.add(certificate).map_err(|error| ClientError::Tls(error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Tls("no certificate in the PEM given".to_owned()));
    }
    Ok(Arc::new(config(roots)))
}

/// aws-lc-rs, passed explicitly (no process-wide provider needed).
fn config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_a_certificate_is_an_error() {
        assert!(matches!(trusting(b"nothing"), Err(ClientError::Tls(_))));
        assert!(!default_tls().alpn_protocols.contains(&b"h2".to_vec()));
    }
}
