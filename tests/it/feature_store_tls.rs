//! TLS to Redis: a child `redis-server` that serves TLS only, with a CA and certificates made per test.
//! The feature store trusts the private CA (`online.redis_ca_cert`), presents a client certificate
//! when Redis requires one, and says clearly what is wrong when the CA is not the right one, when a
//! plain `redis://` URL points at the TLS port, or when the TLS keys are set wrong at start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plinth_feature_store::config::OnlineStoreKind;
use plinth_proto::featurestore::v1 as pb;
use plinth_tests::{FeatureStoreServer, TempDir, unique_name};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::feature_store::{definitions, file, write_source};

/// 2026-01-01T04:00:00Z: every source row is materialized.
const MATERIALIZE_UNTIL_SECONDS: i64 = 1_767_240_000;

/// A CA with a server certificate for 127.0.0.1 and a client certificate, plus an unrelated CA, as
/// PEM files in a temp dir.
struct Pki {
    dir: TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn generate_ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

impl Pki {
    fn generate() -> Self {
        let dir = TempDir::new("plinth-redis-tls");
        let write = |name: &str, contents: &str| {
            let path = dir.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let (ca_params, ca_key, ca_pem) = generate_ca("plinth test Redis CA");
        let (_, _, other_ca_pem) = generate_ca("an unrelated CA");
        let issuer = Issuer::new(ca_params, &ca_key);
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            vec!["plinth-feature-store".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            ca: write("ca.pem", &ca_pem),
            other_ca: write("other-ca.pem", &other_ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            dir,
        }
    }
}

/// A `redis-server` serving TLS only (no plain port), killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl TlsRedis {
    /// Starts it with `pki`'s server certificate; `require_client_cert` turns `tls-auth-clients` on.
    async fn start(pki: &Pki, require_client_cert: bool) -> Self {
        let dir = TempDir::new("plinth-redis-tls-server");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let log = dir.0.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&pki.server_cert)
            .arg("--tls-key-file")
            .arg(&pki.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .args([
                "--tls-auth-clients",
                if require_client_cert { "yes" } else { "no" },
            ])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir.0)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("redis-server (7.0 or later, built with TLS) must be installed: {err}")
            });
        let mut redis = Self {
            child,
            port,
            _dir: dir,
        };
        redis.wait_listening(&log).await;
        redis
    }

    async fn wait_listening(&mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "redis-server did not listen on TLS port {} ({exited:?}); its log:\n{}",
                    self.port,
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn rediss_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets the online store to Redis at `url` with a short timeout, trusting `ca`.
fn redis_online<'config>(
    config: &'config mut plinth_feature_store::Config,
    url: String,
    ca: Option<&Path>,
) -> &'config mut plinth_feature_store::config::OnlineConfig {
    config.online.store = OnlineStoreKind::Redis;
    config.online.redis_url = url;
    config.online.redis_ca_cert = ca.map(Path::to_owned);
    config.online.timeout = Duration::from_secs(1);
    &mut config.online
}

/// Applies the driver definitions over a fresh source dataset.
async fn apply(server: &FeatureStoreServer) {
    let dataset = unique_name("driver_stats").replace('-', "_");
    write_source(&server.lake_dir, &dataset);
    server
        .client()
        .await
        .apply_definitions(pb::ApplyDefinitionsRequest {
            files: vec![file("features/driver.yaml", &definitions(&dataset))],
            prune: false,
        })
        .await
        .unwrap();
}

async fn materialize(
    server: &FeatureStoreServer,
) -> Result<pb::MaterializeResponse, tonic::Status> {
    server
        .client()
        .await
        .materialize(pb::MaterializeRequest {
            feature_views: vec!["driver_hourly".to_owned()],
            start_time: None,
            end_time: Some(prost_types::Timestamp {
                seconds: MATERIALIZE_UNTIL_SECONDS,
                nanos: 0,
            }),
            incremental: false,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// `driver_hourly:conv_rate` and `driver_hourly:trips` of drivers 1001, 1002 and 9999.
async fn read_online(
    server: &FeatureStoreServer,
) -> Result<pb::GetOnlineFeaturesResponse, tonic::Status> {
    let driver_ids = pb::RepeatedValue {
        val: [1001, 1002, 9999]
            .into_iter()
            .map(|id| pb::Value {
                val: Some(pb::value::Val::Int64Val(id)),
            })
            .collect(),
    };
    server
        .client()
        .await
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: Some(pb::FeatureSelection {
                selection: Some(pb::feature_selection::Selection::Features(
                    pb::FeatureList {
                        refs: vec![
                            "driver_hourly:conv_rate".to_owned(),
                            "driver_hourly:trips".to_owned(),
                        ],
                    },
                )),
            }),
            entities: HashMap::from([("driver_id".to_owned(), driver_ids)]),
            full_feature_names: true,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Materializes and reads back the values the source holds: 1001's correction (0.2, 6), 1002's 0.5
/// with a null trips, 9999 not found.
async fn materialize_and_check_online(server: &FeatureStoreServer) {
    apply(server).await;
    let materialized = materialize(server).await.unwrap();
    assert_eq!(materialized.views[0].rows_read, 4, "{materialized:?}");
    assert_eq!(
        materialized.views[0].entities_written, 2,
        "{materialized:?}"
    );
    let answer = read_online(server).await.unwrap();
    use pb::value::Val;
    let value = |column: usize, row: usize| answer.results[column].values[row].val.clone();
    let status = |column: usize, row: usize| answer.results[column].statuses[row];
    assert_eq!(value(1, 0), Some(Val::DoubleVal(0.2)));
    assert_eq!(value(2, 0), Some(Val::Int64Val(6)));
    assert_eq!(value(1, 1), Some(Val::DoubleVal(0.5)));
    assert_eq!(status(2, 1), pb::FieldStatus::NullValue as i32);
    assert_eq!(status(1, 2), pb::FieldStatus::NotFound as i32);
}

/// Asserts that `result` is UNAVAILABLE from the online store and that its message holds every one
/// of `needles`.
fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, tonic::Status>, needles: &[&str]) {
    let err = result.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    for needle in ["online store"].iter().chain(needles) {
        assert!(
            err.message().contains(needle),
            "`{needle}` not in: {}",
            err.message()
        );
    }
}

#[tokio::test]
async fn rediss_with_a_private_ca_materializes_and_serves_online() {
    let pki = Pki::generate();
    let redis = TlsRedis::start(&pki, false).await;
    let server = FeatureStoreServer::start_with(|config| {
        redis_online(config, redis.rediss_url(), Some(&pki.ca));
    })
    .await;
    materialize_and_check_online(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn redis_requiring_client_certificates_accepts_ours_and_refuses_none() {
    let pki = Pki::generate();
    let redis = TlsRedis::start(&pki, true).await;
    let server = FeatureStoreServer::start_with(|config| {
        let online = redis_online(config, redis.rediss_url(), Some(&pki.ca));
        online.redis_client_cert = Some(pki.client_cert.clone());
        online.redis_client_key = Some(pki.client_key.clone());
    })
    .await;
    materialize_and_check_online(&server).await;
    server.stop().await;

    // Without a client certificate Redis ends the handshake: the store is unavailable, not hung.
    let server = FeatureStoreServer::start_with(|config| {
        redis_online(config, redis.rediss_url(), Some(&pki.ca));
    })
    .await;
    apply(&server).await;
    let started = Instant::now();
    assert_unavailable(read_online(&server).await, &["online.redis_client_cert"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_ca_or_a_plain_url_to_the_tls_port_is_unavailable_and_says_why() {
    let pki = Pki::generate();
    let redis = TlsRedis::start(&pki, false).await;

    // The certificate is signed by a CA the store was not told to trust.
    let server = FeatureStoreServer::start_with(|config| {
        redis_online(config, redis.rediss_url(), Some(&pki.other_ca));
    })
    .await;
    apply(&server).await;
    assert_unavailable(
        read_online(&server).await,
        &["certificate", "online.redis_ca_cert"],
    );
    assert_unavailable(materialize(&server).await, &["certificate"]);
    server.stop().await;

    // Plain text to a port that speaks TLS only.
    let server = FeatureStoreServer::start_with(|config| {
        redis_online(config, format!("redis://127.0.0.1:{}/0", redis.port), None);
    })
    .await;
    apply(&server).await;
    let started = Instant::now();
    assert_unavailable(read_online(&server).await, &["rediss://"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    server.stop().await;
}

/// Sets keys of the online block.
type Configure<'pki> = Box<dyn FnOnce(&mut plinth_feature_store::config::OnlineConfig) + 'pki>;

/// The start error of a feature store whose online block `configure` sets.
async fn start_error(
    configure: impl FnOnce(&mut plinth_feature_store::config::OnlineConfig),
) -> String {
    let dir = TempDir::new("plinth-feature-store-tls-config");
    let mut config = plinth_feature_store::Config::default();
    config.database.url = format!("sqlite://{}?mode=rwc", dir.0.join("registry.db").display());
    config.lake.root = format!("file://{}", dir.0.display());
    config.online.store = OnlineStoreKind::Redis;
    configure(&mut config.online);
    match plinth_feature_store::bind(&config).await {
        Ok(_) => panic!("the feature store started with {:?}", config.online),
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn tls_settings_that_cannot_work_stop_the_start_naming_the_key() {
    let pki = Pki::generate();
    let not_pem = pki.dir.0.join("not-a-cert.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let cases: Vec<(&str, Configure<'_>)> = vec![
        (
            "online.redis_ca_cert",
            Box::new(|online| {
                online.redis_url = "redis://127.0.0.1:6379/0".to_owned();
                online.redis_ca_cert = Some(pki.ca.clone());
            }),
        ),
        (
            "online.redis_ca_cert",
            Box::new(|online| {
                online.redis_url = "rediss://127.0.0.1:6380/0".to_owned();
                online.redis_ca_cert = Some(not_pem.clone());
            }),
        ),
        (
            "online.redis_ca_cert",
            Box::new(|online| {
                online.redis_url = "rediss://127.0.0.1:6380/0".to_owned();
                online.redis_ca_cert = Some(pki.dir.0.join("missing.pem"));
            }),
        ),
        (
            "online.redis_client_key",
            Box::new(|online| {
                online.redis_url = "rediss://127.0.0.1:6380/0".to_owned();
                online.redis_client_cert = Some(pki.client_cert.clone());
            }),
        ),
        (
            "online.redis_client_key",
            Box::new(|online| {
                online.redis_url = "rediss://127.0.0.1:6380/0".to_owned();
                online.redis_client_cert = Some(pki.client_cert.clone());
                // The server's key does not belong to the client's certificate.
                online.redis_client_key = Some(pki.server_key.clone());
            }),
        ),
        (
            "online.redis_url",
            Box::new(|online| {
                online.redis_url = "rediss://127.0.0.1:6380/0#insecure".to_owned();
            }),
        ),
        (
            "online.redis_url",
            Box::new(|online| {
                online.redis_url = "http://127.0.0.1:6379".to_owned();
            }),
        ),
    ];
    for (key, configure) in cases {
        let message = start_error(configure).await;
        assert!(message.contains(key), "`{key}` not in: {message}");
    }
}
