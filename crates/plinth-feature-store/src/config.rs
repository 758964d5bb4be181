//! The feature store's configuration: the runtime blocks plus `[lake]`, `[online]`, `[datahub]`,
//! `[training]` and `[serving]`. Loaded from a TOML file plus `PLINTH_*` environment overrides (for
//! example `PLINTH_ONLINE__REDIS_URL`), validated at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_runtime::config::{
    self, ConfigError, DatabaseConfig, PeerConfig, ServerConfig, TelemetryConfig, Validate,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::online::redis::{ClientIdentity, RedisTls, TlsPart};

/// Default gRPC port (PLATFORM.md); Arrow Flight is served on the same port.
pub const DEFAULT_GRPC_PORT: u16 = 7003;
/// Default HTTP port: Feast's `/get-online-features` and `/push`, plus `/metrics`, `/healthz`, `/readyz`.
pub const DEFAULT_HTTP_PORT: u16 = 6566;

/// The whole feature store configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, TLS, auth, limits.
    pub server: ServerConfig,
    /// Logs, traces and metrics.
    pub telemetry: TelemetryConfig,
    /// Where the registry of definitions and the materialization watermarks are stored.
    pub database: DatabaseConfig,
    /// The data lake: feature sources are read from it, training sets written to it.
    #[serde(default)]
    pub lake: LakeConfig,
    /// The online store.
    #[serde(default)]
    pub online: OnlineConfig,
    /// The data hub, for streaming materialization from topics.
    #[serde(default = "default_datahub")]
    pub datahub: PeerConfig,
    /// Training-set builds.
    #[serde(default)]
    pub training: TrainingConfig,
    /// Online serving limits.
    #[serde(default)]
    pub serving: ServingConfig,
}

fn default_datahub() -> PeerConfig {
    PeerConfig::at(Url::parse("http://127.0.0.1:7002").unwrap_or_else(|_| unreachable!()))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::with_ports(DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT),
            telemetry: TelemetryConfig::default(),
            database: DatabaseConfig {
                url: "sqlite://feature-store.db?mode=rwc".to_owned(),
                ..DatabaseConfig::default()
            },
            lake: LakeConfig::default(),
            online: OnlineConfig::default(),
            datahub: default_datahub(),
            training: TrainingConfig::default(),
            serving: ServingConfig::default(),
        }
    }
}

impl Config {
    /// Loads the file (if any) plus `PLINTH_*` environment overrides and validates every block.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = config::load_from_env(file)?;
        config.validate()?;
        Ok(config)
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.telemetry.validate()?;
        self.database
            .validate()
            .map_err(|err| err.within("database"))?;
        self.lake.validate()?;
        self.online.validate()?;
        self.datahub
            .validate()
            .map_err(|err| err.within("datahub"))?;
        self.training.validate()?;
        self.serving.validate()?;
        Ok(())
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The data lake the feature store reads sources from and writes training sets to: the same root as the
/// data hub's `lake.root`, so `lake: {dataset: x}` sources name the hub's datasets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// `file:///abs/dir`, `s3://bucket/prefix` or `gs://bucket/prefix`.
    pub root: String,
    /// Object-store options (`aws_endpoint`, `aws_region`, `aws_access_key_id`, ...), passed to
    /// `object_store`.
    pub options: BTreeMap<String, String>,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            root: "file:///var/lib/plinth/lake".to_owned(),
            options: BTreeMap::new(),
        }
    }
}

impl Validate for LakeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        plinth_runtime::storage::normalize_url(&self.root)
            .map(|_| ())
            .map_err(|err| invalid("lake.root", err.message))
    }
}

/// Which online store serves features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnlineStoreKind {
    /// An embedded SQLite file (`online.embedded_url`): `plinth up` and single-replica setups.
    #[default]
    Embedded,
    /// Redis (`online.redis_url`): production.
    Redis,
}

/// The online store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineConfig {
    /// Which store.
    pub store: OnlineStoreKind,
    /// Redis: `redis://[user:password@]host:6379/0`, or `rediss://...` for TLS (credentials in the
    /// URL, from a secret).
    pub redis_url: String,
    /// With `rediss://`: a PEM bundle of the CAs that sign Redis's certificate (a private CA). Unset:
    /// the system roots.
    pub redis_ca_cert: Option<PathBuf>,
    /// With `rediss://`: a PEM client certificate chain, for a Redis that requires client
    /// certificates (`tls-auth-clients yes`). Set together with `redis_client_key`.
    pub redis_client_cert: Option<PathBuf>,
    /// With `rediss://`: the PEM private key of `redis_client_cert`.
    pub redis_client_key: Option<PathBuf>,
    /// Embedded: the SQLite database URL.
    pub embedded_url: String,
    /// Prefix of every key (Redis) so several projects can share one Redis.
    pub key_prefix: String,
    /// Deadline of each online store call; a store that does not answer in time is UNAVAILABLE.
    #[serde(with = "plinth_runtime::config::duration")]
    pub timeout: Duration,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            store: OnlineStoreKind::Embedded,
            redis_url: "redis://127.0.0.1:6379/0".to_owned(),
            redis_ca_cert: None,
            redis_client_cert: None,
            redis_client_key: None,
            embedded_url: "sqlite://feature-store-online.db?mode=rwc".to_owned(),
            key_prefix: "plinth".to_owned(),
            timeout: Duration::from_secs(2),
        }
    }
}

impl OnlineConfig {
    /// `redis_url` parsed and checked: `redis://` or `rediss://`, without a fragment.
    pub fn redis_url(&self) -> Result<Url, ConfigError> {
        let url = Url::parse(&self.redis_url).map_err(|err| {
            invalid(
                "online.redis_url",
                format!("is not a URL ({err}); use redis://host:6379/0, or rediss:// for TLS"),
            )
        })?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(invalid(
                "online.redis_url",
                "must start with redis:// or, for TLS, rediss://",
            ));
        }
        if url.fragment().is_some() {
            return Err(invalid(
                "online.redis_url",
                "must not have a #fragment: certificates are always verified (#insecure is not \
                 supported); set online.redis_ca_cert to trust a private CA",
            ));
        }
        Ok(url)
    }

    /// The TLS material for Redis, read from `redis_ca_cert`, `redis_client_cert` and
    /// `redis_client_key` and checked as the connection will use it. Errors name the key at fault.
    pub fn redis_tls(&self) -> Result<RedisTls, ConfigError> {
        let any_set = self.redis_ca_cert.is_some()
            || self.redis_client_cert.is_some()
            || self.redis_client_key.is_some();
        if !any_set {
            return Ok(RedisTls::default());
        }
        if !self.redis_url.starts_with("rediss://") {
            let key = if self.redis_ca_cert.is_some() {
                "online.redis_ca_cert"
            } else {
                "online.redis_client_cert"
            };
            return Err(invalid(
                key,
                "is set, but online.redis_url is not rediss://: use a rediss:// URL for TLS, or \
                 remove the TLS keys",
            ));
        }
        let client_identity = match (&self.redis_client_cert, &self.redis_client_key) {
            (Some(cert_path), Some(key_path)) => Some(ClientIdentity {
                cert_chain: read_pem("online.redis_client_cert", cert_path)?,
                key: read_pem("online.redis_client_key", key_path)?,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "online.redis_client_key",
                    "is missing: online.redis_client_cert needs the key of the certificate",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "online.redis_client_cert",
                    "is missing: online.redis_client_key needs the certificate it belongs to",
                ));
            }
        };
        let tls = RedisTls {
            ca_cert: self
                .redis_ca_cert
                .as_deref()
                .map(|path| read_pem("online.redis_ca_cert", path))
                .transpose()?,
            client_identity,
        };
        tls.check().map_err(|err| {
            let (key, path) = match err.part {
                TlsPart::CaCert => ("online.redis_ca_cert", &self.redis_ca_cert),
                TlsPart::ClientCert => ("online.redis_client_cert", &self.redis_client_cert),
                TlsPart::ClientKey => ("online.redis_client_key", &self.redis_client_key),
            };
            let shown = path
                .as_deref()
                .map_or_else(String::new, |path| format!("{} ", path.display()));
            invalid(key, format!("{shown}{}", err.reason))
        })?;
        Ok(tls)
    }
}

/// Reads a PEM file named by `key`.
fn read_pem(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|err| {
        invalid(
            key,
            format!(
                "cannot read {}: {err}; check the path and its permissions",
                path.display()
            ),
        )
    })
}

impl Validate for OnlineConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.store {
            OnlineStoreKind::Redis => {
                self.redis_url()?;
                self.redis_tls()?;
            }
            OnlineStoreKind::Embedded => {
                if !self.embedded_url.starts_with("sqlite:") {
                    return Err(invalid(
                        "online.embedded_url",
                        "must be a SQLite URL, e.g. sqlite://online.db?mode=rwc",
                    ));
                }
            }
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err(invalid(
                "online.key_prefix",
                "must be a non-empty word without spaces, e.g. `plinth`",
            ));
        }
        if self.timeout.is_zero() {
            return Err(invalid(
                "online.timeout",
                "must be greater than zero, e.g. `2s`",
            ));
        }
        Ok(())
    }
}

/// Training-set builds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Where partitions spill while a large join runs; unset: the system temp dir.
    pub spill_dir: Option<PathBuf>,
    /// Bytes of input (entity and feature rows, in memory) per partition the join aims at: inputs that
    /// fit join in memory, larger ones are hash-partitioned and spilled. Smaller uses less memory and
    /// more spill files.
    pub partition_bytes: u64,
    /// Bytes of memory for feature sources kept indexed between training sets (a source joined in
    /// memory is kept, and the next training set over the same files does not read it again; a changed
    /// file is read anew). 0 turns the cache off.
    pub cache_bytes: u64,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            spill_dir: None,
            partition_bytes: 256 * 1024 * 1024,
            cache_bytes: crate::offline::DEFAULT_CACHE_BYTES,
        }
    }
}

impl Validate for TrainingConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.partition_bytes < 16 * 1024 * 1024 {
            return Err(invalid(
                "training.partition_bytes",
                "must be at least 16777216 (16 MiB), e.g. 268435456 (256 MiB)",
            ));
        }
        Ok(())
    }
}

/// Online serving limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServingConfig {
    /// The most entity rows one GetOnlineFeatures or `/get-online-features` request may carry.
    pub max_entity_rows: usize,
    /// The most rows one Push may carry.
    pub max_push_rows: usize,
    /// How often the registry is re-read so that every replica sees applied definitions.
    #[serde(with = "plinth_runtime::config::duration")]
    pub registry_refresh: Duration,
}

impl Default for ServingConfig {
    fn default() -> Self {
        Self {
            max_entity_rows: 10_000,
            max_push_rows: 100_000,
            registry_refresh: Duration::from_secs(5),
        }
    }
}

impl Validate for ServingConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_entity_rows == 0 || self.max_push_rows == 0 {
            return Err(invalid(
                "serving.max_entity_rows",
                "max_entity_rows and max_push_rows must be greater than zero",
            ));
        }
        if self.registry_refresh.is_zero() {
            return Err(invalid(
                "serving.registry_refresh",
                "must be greater than zero, e.g. `5s`",
            ));
        }
        Ok(())
    }
}
