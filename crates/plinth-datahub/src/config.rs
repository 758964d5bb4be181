//! The gateway's configuration: the runtime blocks plus `[kafka]`, `[registry]`, `[lake]`, `[produce]` and
//! `[subscribe]`. Loaded from a TOML file plus `PLINTH_*` environment overrides (for example
//! `PLINTH_KAFKA__BOOTSTRAP_SERVERS`), validated at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_runtime::config::{
    self, ConfigError, DatabaseConfig, ServerConfig, TelemetryConfig, Validate,
};
use serde::{Deserialize, Serialize};
use url::Url;

/// Default gRPC port (PLATFORM.md); Arrow Flight is served on the same port.
pub const DEFAULT_GRPC_PORT: u16 = 7002;
/// Default HTTP port: `/metrics`, `/healthz`, `/readyz`.
pub const DEFAULT_HTTP_PORT: u16 = 9102;

/// The whole gateway configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, TLS, auth, limits.
    pub server: ServerConfig,
    /// Logs, traces and metrics.
    pub telemetry: TelemetryConfig,
    /// Where topic bindings and lake sinks are stored.
    pub database: DatabaseConfig,
    /// The Kafka cluster.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// The schema registry the gateway validates against.
    #[serde(default)]
    pub registry: RegistryClientConfig,
    /// The data lake.
    #[serde(default)]
    pub lake: LakeConfig,
    /// Produce limits.
    #[serde(default)]
    pub produce: ProduceConfig,
    /// Subscribe limits.
    #[serde(default)]
    pub subscribe: SubscribeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::with_ports(DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT),
            telemetry: TelemetryConfig::default(),
            database: DatabaseConfig {
                url: "sqlite://datahub.db?mode=rwc".to_owned(),
                ..DatabaseConfig::default()
            },
            kafka: KafkaConfig::default(),
            registry: RegistryClientConfig::default(),
            lake: LakeConfig::default(),
            produce: ProduceConfig::default(),
            subscribe: SubscribeConfig::default(),
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
        self.database.validate()?;
        self.kafka.validate()?;
        self.lake.validate()?;
        self.produce.validate()?;
        self.subscribe.validate()?;
        Ok(())
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// How the gateway talks to Kafka: `security.protocol` in librdkafka terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no authentication (local brokers).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL authentication without TLS.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka `security.protocol` value.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether SASL credentials are needed.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// The `[kafka]` block: any Kafka cluster, with SASL and TLS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers.
    pub bootstrap_servers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: SecurityProtocol,
    /// With SASL: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    /// With SASL: the user name.
    pub sasl_username: Option<String>,
    /// With SASL: the password (prefer `sasl_password_file` in production).
    pub sasl_password: Option<String>,
    /// With SASL: a file holding the password (a mounted Kubernetes Secret).
    pub sasl_password_file: Option<PathBuf>,
    /// With TLS: the CA bundle (PEM) that signs the brokers' certificates; unset uses the system roots.
    pub ssl_ca_location: Option<PathBuf>,
    /// With mutual TLS: the client certificate (PEM).
    pub ssl_certificate_location: Option<PathBuf>,
    /// With mutual TLS: the client key (PEM).
    pub ssl_key_location: Option<PathBuf>,
    /// The Kafka `client.id` the gateway reports.
    pub client_id: String,
    /// How long a produced record may wait for the broker's acknowledgement before it fails
    /// (librdkafka `message.timeout.ms`), and the bound of admin and metadata calls.
    #[serde(with = "plinth_runtime::config::duration")]
    pub request_timeout: Duration,
    /// Consumer group session timeout (`session.timeout.ms`); a fresh group waits about half of it.
    #[serde(with = "plinth_runtime::config::duration")]
    pub session_timeout: Duration,
    /// Extra librdkafka properties, applied last (for example `linger.ms`).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".to_owned(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            sasl_password_file: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            client_id: "plinth-datahub".to_owned(),
            request_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
            properties: BTreeMap::new(),
        }
    }
}

impl Validate for KafkaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(invalid(
                "kafka.bootstrap_servers",
                "must list at least one broker, e.g. `kafka-0.kafka:9092`",
            ));
        }
        if self.security_protocol.uses_sasl() {
            match self.sasl_mechanism.as_deref() {
                Some("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") => {}
                Some(other) => {
                    return Err(invalid(
                        "kafka.sasl_mechanism",
                        format!(
                            "`{other}` is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                        ),
                    ));
                }
                None => {
                    return Err(invalid(
                        "kafka.sasl_mechanism",
                        "is required with a sasl_* security_protocol; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                    ));
                }
            }
            if self.sasl_username.is_none() {
                return Err(invalid(
                    "kafka.sasl_username",
                    "is required with a sasl_* security_protocol",
                ));
            }
            if self.sasl_password.is_none() && self.sasl_password_file.is_none() {
                return Err(invalid(
                    "kafka.sasl_password",
                    "set `sasl_password` or `sasl_password_file` with a sasl_* security_protocol",
                ));
            }
        }
        if self.ssl_certificate_location.is_some() != self.ssl_key_location.is_some() {
            return Err(invalid(
                "kafka.ssl_key_location",
                "mutual TLS needs both `ssl_certificate_location` and `ssl_key_location`",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid(
                "kafka.request_timeout",
                "must be greater than zero, e.g. `30s`",
            ));
        }
        if self.session_timeout < Duration::from_secs(1) {
            return Err(invalid(
                "kafka.session_timeout",
                "must be at least `1s`, e.g. `10s`",
            ));
        }
        Ok(())
    }
}

/// The `[registry]` block: where the schema registry's gRPC API is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryClientConfig {
    /// The registry's gRPC URL, `http://` or `https://`.
    pub url: Url,
    /// A bearer token with the read role, when the registry has auth on.
    pub token: Option<String>,
    /// A file holding the token (a mounted Secret); wins over `token`.
    pub token_file: Option<PathBuf>,
    /// The CA bundle that signs the registry's certificate, with `https://`.
    pub ca_cert: Option<PathBuf>,
    /// The bound of each registry call.
    #[serde(with = "plinth_runtime::config::duration")]
    pub timeout: Duration,
    /// How long the latest version of a subject is trusted before it is looked up again, so that a new
    /// compatible version applies to unpinned topics within this delay.
    #[serde(with = "plinth_runtime::config::duration")]
    pub latest_ttl: Duration,
}

impl Default for RegistryClientConfig {
    fn default() -> Self {
        Self {
            url: Url::parse("http://127.0.0.1:7001").unwrap_or_else(|_| unreachable!()),
            token: None,
            token_file: None,
            ca_cert: None,
            timeout: Duration::from_secs(10),
            latest_ttl: Duration::from_secs(5),
        }
    }
}

/// The `[lake]` block: where datasets live and when sink files are cut.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// The object-store URL datasets are written under unless a sink names its own: `file:///abs/dir`,
    /// `s3://bucket/prefix` or `gs://bucket/prefix`.
    pub root: String,
    /// Object-store options passed to `object_store::parse_url_opts`, for example `aws_endpoint`,
    /// `aws_region`, `aws_allow_http`; credentials also come from the usual `AWS_*`/`GOOGLE_*` environment.
    pub options: BTreeMap<String, String>,
    /// A file is cut when a partition's buffer holds this many rows.
    pub max_file_rows: usize,
    /// A file is cut when a partition's buffer holds this many bytes of JSON.
    pub max_file_bytes: usize,
    /// A file is cut at the latest this long after its first record arrived.
    #[serde(with = "plinth_runtime::config::duration")]
    pub max_file_age: Duration,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            root: "file:///var/lib/plinth/lake".to_owned(),
            options: BTreeMap::new(),
            max_file_rows: 100_000,
            max_file_bytes: 64 * 1024 * 1024,
            max_file_age: Duration::from_secs(60),
        }
    }
}

impl Validate for LakeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = Url::parse(&self.root).map_err(|err| {
            invalid(
                "lake.root",
                format!("`{}` is not a URL ({err}); use file:///abs/dir, s3://bucket/prefix or gs://bucket/prefix", self.root),
            )
        })?;
        if !matches!(url.scheme(), "file" | "s3" | "gs" | "memory") {
            return Err(invalid(
                "lake.root",
                format!(
                    "scheme `{}` is not supported; use file://, s3:// or gs://",
                    url.scheme()
                ),
            ));
        }
        if self.max_file_rows == 0 || self.max_file_bytes == 0 || self.max_file_age.is_zero() {
            return Err(invalid(
                "lake.max_file_rows",
                "max_file_rows, max_file_bytes and max_file_age must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// The `[produce]` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProduceConfig {
    /// The largest record (key + value + headers) accepted, in bytes.
    pub max_record_bytes: usize,
    /// The most records one batch may hold.
    pub max_batch_records: usize,
}

impl Default for ProduceConfig {
    fn default() -> Self {
        Self {
            max_record_bytes: 1024 * 1024,
            max_batch_records: 10_000,
        }
    }
}

impl Validate for ProduceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_record_bytes == 0 || self.max_batch_records == 0 {
            return Err(invalid(
                "produce.max_record_bytes",
                "max_record_bytes and max_batch_records must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// The `[subscribe]` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscribeConfig {
    /// Records per response when the request does not say.
    pub default_batch_size: u32,
    /// The most records per response a request may ask for.
    pub max_batch_size: u32,
    /// Responses buffered per stream before the consumer waits for the client.
    pub buffered_batches: usize,
    /// How long a partial batch waits for more records before it is sent.
    #[serde(with = "plinth_runtime::config::duration")]
    pub max_wait: Duration,
    /// The most bytes librdkafka prefetches per stream (`queued.max.messages.kbytes`): with the buffered
    /// batches, what a stream holds while its client is slow.
    pub prefetch_bytes: usize,
}

impl Default for SubscribeConfig {
    fn default() -> Self {
        Self {
            default_batch_size: 500,
            max_batch_size: 10_000,
            buffered_batches: 4,
            max_wait: Duration::from_millis(100),
            prefetch_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Validate for SubscribeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.default_batch_size == 0
            || self.max_batch_size < self.default_batch_size
            || self.buffered_batches == 0
            || self.prefetch_bytes < 1024
        {
            return Err(invalid(
                "subscribe.default_batch_size",
                "default_batch_size and buffered_batches must be > 0, max_batch_size >= default_batch_size and prefetch_bytes >= 1024",
            ));
        }
        Ok(())
    }
}
