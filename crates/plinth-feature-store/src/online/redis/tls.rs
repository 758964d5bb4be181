//! TLS to Redis (`rediss://`): the PEM material a deployment supplies, checked once at start the way
//! the connection will use it, so that a wrong file stops the start instead of failing every call.
//!
//! The redis crate builds its rustls client from the process-wide crypto provider. Our build links
//! rustls with both `ring` (ours) and `aws-lc-rs` (object_store's HTTP client), so rustls cannot pick
//! one by itself and would panic on the first connection: `install_crypto_provider` installs `ring`
//! when no provider is installed yet.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// TLS material for a `rediss://` URL, as PEM bytes. Empty: trust the system roots, no client
/// certificate.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// PEM bundle of the CAs to trust instead of the system roots (a private CA).
    pub ca_cert: Option<Vec<u8>>,
    /// A client certificate, for a Redis that requires one (`tls-auth-clients yes`).
    pub client_identity: Option<ClientIdentity>,
}

/// A client certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub cert_chain: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Vec<u8>,
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Certificates are not secret but long; the key is secret: print only what is set.
        formatter
            .debug_struct("RedisTls")
            .field("ca_cert", &self.ca_cert.as_ref().map(|_| "<pem>"))
            .field(
                "client_identity",
                &self.client_identity.as_ref().map(|_| "<pem, key redacted>"),
            )
            .finish()
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientIdentity")
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Which part of the TLS material is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPart {
    /// [`RedisTls::ca_cert`].
    CaCert,
    /// [`ClientIdentity::cert_chain`].
    ClientCert,
    /// [`ClientIdentity::key`].
    ClientKey,
}

/// TLS material that rustls would refuse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct TlsMaterialError {
    /// The part at fault.
    pub part: TlsPart,
    /// What is wrong with it.
    pub reason: String,
}

fn refused(part: TlsPart, reason: impl Into<String>) -> TlsMaterialError {
    TlsMaterialError {
        part,
        reason: reason.into(),
    }
}

impl RedisTls {
    /// Whether nothing is set (system roots, no client certificate).
    pub fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.client_identity.is_none()
    }

    /// Parses the PEM and builds a rustls client configuration from it, as the connection will: a CA
    /// bundle without certificates, a certificate that cannot be a trust anchor, a key that does not
    /// parse or does not belong to the client certificate are refused here, naming the part.
    pub fn check(&self) -> Result<(), TlsMaterialError> {
        let mut roots = RootCertStore::empty();
        if let Some(ca_cert) = &self.ca_cert {
            let certs = parse_certs(ca_cert, TlsPart::CaCert)?;
            for (cert_idx, cert) in certs.into_iter().enumerate() {
                roots.add(cert).map_err(|err| {
                    refused(
                        TlsPart::CaCert,
                        format!(
                            "certificate {} of the bundle cannot be a trust anchor: {err}",
                            cert_idx + 1
                        ),
                    )
                })?;
            }
        }
        let Some(identity) = &self.client_identity else {
            return Ok(());
        };
        let cert_chain = parse_certs(&identity.cert_chain, TlsPart::ClientCert)?;
        let key = PrivateKeyDer::from_pem_slice(&identity.key).map_err(|err| {
            refused(
                TlsPart::ClientKey,
                format!("holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {err}"),
            )
        })?;
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|err| refused(TlsPart::ClientKey, err.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(cert_chain, key)
        .map_err(|err| {
            refused(
                TlsPart::ClientKey,
                format!(
                    "cannot be used with the client certificate ({err}); give the key that belongs \
                     to it"
                ),
            )
        })?;
        Ok(())
    }

    /// The material as the redis crate takes it.
    pub(super) fn certificates(&self) -> ::redis::TlsCertificates {
        ::redis::TlsCertificates {
            client_tls: self
                .client_identity
                .as_ref()
                .map(|identity| ::redis::ClientTlsConfig {
                    client_cert: identity.cert_chain.clone(),
                    client_key: identity.key.clone(),
                }),
            root_cert: self.ca_cert.clone(),
        }
    }
}

fn parse_certs(
    pem: &[u8],
    part: TlsPart,
) -> Result<Vec<CertificateDer<'static>>, TlsMaterialError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| refused(part, format!("is not a PEM certificate file: {err}")))?;
    if certs.is_empty() {
        return Err(refused(
            part,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// Installs rustls's `ring` provider as the process default unless one is installed already (see
/// the module doc). Another provider installed first is kept: either verifies certificates the same
/// way.
pub(super) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: a provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
