//! The server's certificate: read from PEM files, replaced at reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fanfare_config::CertificateFiles;
use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate could not be used; the old one (if any) stays.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Pem { path: PathBuf, source: rustls_pki_types::pem::Error },
    #[error("{}: no certificate in the file (expected PEM `BEGIN CERTIFICATE` blocks)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} with {}: {source}", cert.display(), key.display())]
    Rejected { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// The certificate every new TLS handshake presents.
pub struct Certificates {
    current: RwLock<Arc<ServerConfig>>,
}

impl Certificates {
    pub fn load(files: &CertificateFiles) -> Result<Self, TlsError> {
        Ok(Self { current: RwLock::new(Arc::new(server_config(files)?)) })
    }

    /// Reads `files` again; on any error the current certificate stays.
    pub fn reload(&self, files: &CertificateFiles) -> Result<(), TlsError> {
        let config = Arc::new(server_config(files)?);
        *self.current.write() = config;
        Ok(())
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }
}

/// A rustls server configuration: aws-lc-rs (the process's one crypto
/// provider, passed here rather than installed globally), TLS 1.2 and 1.3,
/// HTTP/1.1 by ALPN (WebSockets upgrade over HTTP/1.1).
fn server_config(files: &CertificateFiles) -> Result<ServerConfig, TlsError> {
    let chain = read_chain(&files.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|source| TlsError::Pem { path: files.key_file.clone(), source })?;
    let rejected =
        |source| TlsError::Rejected { cert: files.cert_file.clone(), key: files.key_file.clone(), source };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(rejected)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source| TlsError::Pem { path: path.to_owned(), source };
    let chain =
        CertificateDer::pem_file_iter(path).map_err(pem)?.collect::<Result<Vec<_>, _>>().map_err(pem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> CertificateFiles {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
        let files = CertificateFiles {
            cert_file: dir.join(format!("{name}.crt")),
            key_file: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert_file, cert.pem()).unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn a_certificate_and_its_key_load() {
        let dir = tempfile::tempdir().unwrap();
        let certificates = Certificates::load(&write_pair(dir.path(), "localhost")).unwrap();
        assert_eq!(certificates.current().alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_the_old_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_pair(dir.path(), "first");
        let second = write_pair(dir.path(), "second");
        let certificates = Certificates::load(&first).unwrap();
        let before = certificates.current();
        let mixed = CertificateFiles { cert_file: first.cert_file.clone(), key_file: second.key_file };
        let error = certificates.reload(&mixed).unwrap_err();
        assert!(matches!(error, TlsError::Rejected { .. }), "{error}");
        assert!(Arc::ptr_eq(&before, &certificates.current()));
    }

    #[test]
    fn files_that_hold_no_certificate_or_no_key_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = write_pair(dir.path(), "good");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let no_cert = CertificateFiles { cert_file: empty.clone(), key_file: good.key_file.clone() };
        let error = Certificates::load(&no_cert).err().unwrap().to_string();
        assert!(error.contains("empty.pem") && error.contains("no certificate"), "{error}");
        let no_key = CertificateFiles { cert_file: good.cert_file, key_file: empty };
        let error = Certificates::load(&no_key).err().unwrap().to_string();
        assert!(error.contains("empty.pem"), "{error}");
    }
}
