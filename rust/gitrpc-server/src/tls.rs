//! `[tls]`: the rustls configuration of the TLS listener. TLS is terminated by the listener
//! mux ([`crate::mux`]) rather than by tonic, so that the mux sees the decrypted first bytes
//! of a connection (Gitaly's listenmux runs after the TLS handshake too).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::startup::StartError;

/// A TLS server configuration, shared by every connection of a listener.
pub type ServerTls = Arc<rustls::ServerConfig>;

/// Read and check the PEM files of `[tls]`: a bad certificate or key fails at start-up with
/// the file named. Offers ALPN `h2`, as tonic did.
pub fn server_config(c: &TlsConfig) -> Result<ServerTls, StartError> {
    let bad = |p: &Path, message: String| StartError::Tls {
        path: p.display().to_string(),
        message,
    };
    let read = |p: &Path| std::fs::read(p).map_err(|e| bad(p, e.to_string()));
    let cert_pem = read(&c.certificate_path)?;
    let key_pem = read(&c.key_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&c.certificate_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(&c.certificate_path, "no certificate found".into()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad(&c.key_path, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&c.certificate_path, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls {
            path: format!(
                "{} / {}",
                c.certificate_path.display(),
                c.key_path.display()
            ),
            message: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
