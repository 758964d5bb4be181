//! TLS and mutual TLS on both listeners, with certificates generated per test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plinth_runtime::client::connect;
use plinth_runtime::config::{ServerConfig, TlsConfig};
use plinth_runtime::server::ServerBuilder;
use plinth_runtime::tls::ClientTls;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::{Running, health_status};

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    ca_pem: String,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, contents: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "plinth test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, &ca_key);

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            vec!["plinth-cli".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );

        Pki {
            ca: write("ca.pem", &ca_cert.pem()),
            ca_pem: ca_cert.pem(),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            _dir: dir,
        }
    }

    fn server_config(&self, mutual: bool) -> ServerConfig {
        let mut config = ServerConfig::with_ports(0, 0);
        config.grpc.listen = "127.0.0.1:0".parse().unwrap();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.tls = Some(TlsConfig {
            cert_path: self.server_cert.clone(),
            key_path: self.server_key.clone(),
            client_ca_path: mutual.then(|| self.ca.clone()),
        });
        config
    }

    fn client_tls(&self, with_certificate: bool) -> ClientTls {
        ClientTls {
            ca_path: Some(self.ca.clone()),
            cert_path: with_certificate.then(|| self.client_cert.clone()),
            key_path: with_certificate.then(|| self.client_key.clone()),
        }
    }

    /// A raw TLS HTTP/1.1 GET, returning the status line.
    async fn https_get(&self, addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let server_name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(server_name, tcp).await?;
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut response = String::new();
        tls.read_to_string(&mut response).await?;
        Ok(response.lines().next().unwrap_or_default().to_owned())
    }
}

fn https(addr: std::net::SocketAddr) -> url::Url {
    format!("https://{addr}").parse().unwrap()
}

#[tokio::test]
async fn tls_serves_grpc_and_http() {
    let pki = Pki::generate();
    let server = Running::start(ServerBuilder::new("test-tls", pki.server_config(false))).await;
    server.health.set_ready(true).await;

    let tls = pki.client_tls(false);
    let channel = connect(
        &https(server.grpc),
        Some(&tls),
        None,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(
        health_status(channel, "").await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        pki.https_get(server.http, "/readyz").await.unwrap(),
        "HTTP/1.1 200 OK"
    );

    // Plaintext clients get nothing from a TLS listener.
    let plaintext: url::Url = format!("http://{}", server.grpc).parse().unwrap();
    let plaintext_result = match connect(&plaintext, None, None, Duration::from_secs(2)).await {
        Ok(channel) => health_status(channel, "")
            .await
            .map(|_| ())
            .map_err(|err| err.to_string()),
        Err(err) => Err(err.to_string()),
    };
    assert!(plaintext_result.is_err());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_rejects_clients_without_a_certificate() {
    let pki = Pki::generate();
    let server = Running::start(ServerBuilder::new("test-mtls", pki.server_config(true))).await;
    server.health.set_ready(true).await;

    let anonymous = pki.client_tls(false);
    let rejected = match connect(
        &https(server.grpc),
        Some(&anonymous),
        None,
        Duration::from_secs(5),
    )
    .await
    {
        Ok(channel) => health_status(channel, "")
            .await
            .map(|_| ())
            .map_err(|err| err.to_string()),
        Err(err) => Err(err.to_string()),
    };
    assert!(
        rejected.is_err(),
        "a client without a certificate must be rejected"
    );
    assert!(pki.https_get(server.http, "/healthz").await.is_err());

    let identified = pki.client_tls(true);
    let channel = connect(
        &https(server.grpc),
        Some(&identified),
        None,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(
        health_status(channel, "").await.unwrap(),
        ServingStatus::Serving
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_tls_files_are_named_in_the_error() {
    let pki = Pki::generate();
    let mut config = pki.server_config(false);
    if let Some(tls) = config.tls.as_mut() {
        tls.key_path = pki.server_cert.clone();
    }
    let message = ServerBuilder::new("test-bad-tls", config)
        .bind()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("cannot load private key from"),
        "{message}"
    );
    assert!(message.contains("server.pem"), "{message}");

    let mut config = pki.server_config(false);
    if let Some(tls) = config.tls.as_mut() {
        tls.cert_path = PathBuf::from("/nonexistent/cert.pem");
    }
    let message = ServerBuilder::new("test-bad-tls", config)
        .bind()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("cannot load certificate chain from /nonexistent/cert.pem"),
        "{message}"
    );
}
