//! TLS: the rustls server configuration both listeners use, and the client-side settings for tonic
//! channels.
//!
//! The `ring` provider is passed explicitly rather than relying on a process-wide default, so it does
//! not matter which other rustls providers end up in the build.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::error::TlsError;

/// ALPN protocols offered by the servers: HTTP/2 first (gRPC), then HTTP/1.1.
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Builds the server TLS configuration: the PEM certificate chain and key from `tls`, ALPN `h2` and
/// `http/1.1`, and when `client_ca_path` is set, mandatory client certificates signed by that CA.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = load_certs(&tls.cert_path, "certificate chain")?;
    let key = load_key(&tls.key_path)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            context: "protocol versions".to_owned(),
            source,
        })?;
    let builder = match &tls.client_ca_path {
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca_path, "client CA bundle")? {
                roots.add(cert).map_err(|err| TlsError::ClientVerifier {
                    path: ca_path.clone(),
                    reason: err.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| TlsError::ClientVerifier {
                    path: ca_path.clone(),
                    reason: err.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Rustls {
            context: format!(
                "certificate {} with key {}",
                tls.cert_path.display(),
                tls.key_path.display()
            ),
            source,
        })?;
    config.alpn_protocols = ALPN_PROTOCOLS
        .iter()
        .map(|protocol| protocol.to_vec())
        .collect();
    Ok(Arc::new(config))
}

/// Client-side TLS for tonic channels: which CA to trust (the system roots when unset) and an optional
/// client certificate for mTLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM bundle of CAs to trust instead of the system roots.
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate chain, for servers that require mTLS.
    pub cert_path: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_path: Option<PathBuf>,
}

impl ClientTls {
    /// Reads the files into a tonic client TLS configuration.
    pub fn tonic_config(&self) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
        let mut config = tonic::transport::ClientTlsConfig::new();
        config = match &self.ca_path {
            Some(ca_path) => config.ca_certificate(tonic::transport::Certificate::from_pem(
                read_pem(ca_path, "CA bundle")?,
            )),
            None => config.with_native_roots(),
        };
        match (&self.cert_path, &self.key_path) {
            (Some(cert_path), Some(key_path)) => {
                let identity = tonic::transport::Identity::from_pem(
                    read_pem(cert_path, "client certificate")?,
                    read_pem(key_path, "client key")?,
                );
                config = config.identity(identity);
            }
            (None, None) => {}
            (Some(path), None) | (None, Some(path)) => {
                return Err(TlsError::Pem {
                    path: path.clone(),
                    what: "client identity",
                    reason: "a client certificate needs both cert_path and key_path".to_owned(),
                });
            }
        }
        Ok(config)
    }
}

fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| TlsError::Pem {
        path: path.to_owned(),
        what,
        reason: err.to_string(),
    })
}

fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Pem {
            path: path.to_owned(),
            what,
            reason: format!("invalid PEM: {err}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what,
            reason: "no `BEGIN CERTIFICATE` block found".to_owned(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| TlsError::Pem {
        path: path.to_owned(),
        what: "private key",
        reason: format!("no usable PKCS#8, PKCS#1 or SEC1 private key: {err}"),
    })
}
