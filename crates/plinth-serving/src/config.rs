//! Model serving's configuration: the runtime blocks plus `[models]`, `[onnx]`, `[limits]`,
//! `[feature_store]` and `[monitoring]`. Loaded from a TOML file plus `PLINTH_*` environment overrides
//! (for example `PLINTH_MODELS__ROOT`), validated at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_runtime::config::{
    self, ConfigError, PeerConfig, ServerConfig, TelemetryConfig, Validate,
};
use serde::{Deserialize, Serialize};
use url::Url;

/// Default gRPC port: the Open Inference Protocol V2 and `plinth.serving.v1` (Triton's and KServe's 8001).
pub const DEFAULT_GRPC_PORT: u16 = 8001;
/// Default HTTP port: the protocol's REST form (`/v2/...`), `/metrics`, `/healthz`, `/readyz` (Triton's 8000).
pub const DEFAULT_HTTP_PORT: u16 = 8000;

/// The whole model serving configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, TLS, auth, limits.
    #[serde(default = "default_server")]
    pub server: ServerConfig,
    /// Logs, traces and metrics.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The model repository and the models loaded at start.
    #[serde(default)]
    pub models: ModelsConfig,
    /// ONNX Runtime.
    #[serde(default)]
    pub onnx: OnnxConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The feature store PredictByKey reads features from.
    #[serde(default = "default_feature_store")]
    pub feature_store: PeerConfig,
    /// The prediction log.
    #[serde(default)]
    pub monitoring: MonitoringConfig,
}

fn default_server() -> ServerConfig {
    ServerConfig::with_ports(DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT)
}

fn default_feature_store() -> PeerConfig {
    let mut peer =
        PeerConfig::at(Url::parse("http://127.0.0.1:7003").unwrap_or_else(|_| unreachable!()));
    // A prediction waits for its features: a feature store that does not answer within this is
    // UNAVAILABLE, not a hang.
    peer.timeout = Duration::from_secs(2);
    peer
}

fn default_datahub() -> PeerConfig {
    PeerConfig::at(Url::parse("http://127.0.0.1:7002").unwrap_or_else(|_| unreachable!()))
}

fn default_registry() -> PeerConfig {
    PeerConfig::at(Url::parse("http://127.0.0.1:7001").unwrap_or_else(|_| unreachable!()))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: default_server(),
            telemetry: TelemetryConfig::default(),
            models: ModelsConfig::default(),
            onnx: OnnxConfig::default(),
            limits: LimitsConfig::default(),
            feature_store: default_feature_store(),
            monitoring: MonitoringConfig::default(),
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
        self.models.validate()?;
        self.onnx.validate()?;
        self.limits.validate()?;
        self.feature_store
            .validate()
            .map_err(|err| err.within("feature_store"))?;
        self.monitoring.validate()?;
        Ok(())
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// A model to load at start: `name` (its latest complete version) or `name:version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// The model's name.
    pub name: String,
    /// The version; `None`: the latest.
    pub version: Option<String>,
}

impl ModelRef {
    /// Parses `name` or `name:version`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, version) = match text.split_once(':') {
            Some((name, version)) => (name, Some(version)),
            None => (text, None),
        };
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if !segment_ok(name) || version.is_some_and(|v| !segment_ok(v)) {
            return Err(format!(
                "`{text}` is not `name` or `name:version` (letters, digits, `_`, `-`, `.`)"
            ));
        }
        Ok(ModelRef {
            name: name.to_owned(),
            version: version.map(str::to_owned),
        })
    }
}

/// The model repository: `<root>/<name>/<version>/{model.yaml, <artifact>, _SUCCESS}`, the layout the
/// orchestrator's `train` task writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// `file:///abs/dir`, `s3://bucket/prefix` or `gs://bucket/prefix`.
    pub root: String,
    /// Object-store options (`aws_endpoint`, `aws_region`, ...), passed to `object_store`.
    pub options: BTreeMap<String, String>,
    /// Models loaded at start, `name` (latest version) or `name:version`; readiness stays false until
    /// every one is loaded.
    pub load: Vec<String>,
    /// Also load the latest version of every other model in the repository at start; one of those that
    /// does not load is logged and marked failed, and does not stop the start.
    pub load_all: bool,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            root: "file:///var/lib/plinth/models".to_owned(),
            options: BTreeMap::new(),
            load: Vec::new(),
            load_all: false,
        }
    }
}

impl ModelsConfig {
    /// The parsed `load` entries.
    pub fn load_refs(&self) -> Result<Vec<ModelRef>, ConfigError> {
        self.load
            .iter()
            .map(|text| ModelRef::parse(text).map_err(|reason| invalid("models.load", reason)))
            .collect()
    }
}

impl Validate for ModelsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        plinth_runtime::storage::normalize_url(&self.root)
            .map_err(|err| invalid("models.root", err.message))?;
        self.load_refs().map(|_| ())
    }
}

/// ONNX Runtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnnxConfig {
    /// `libonnxruntime.so`; unset: `ORT_DYLIB_PATH`, else the system's library path. The PyPI wheel
    /// `onnxruntime` ships one at `site-packages/onnxruntime/capi/libonnxruntime.so.<version>`.
    pub library: Option<PathBuf>,
    /// Threads of one engine call (ONNX Runtime's intra-op threads).
    pub intra_op_threads: usize,
    /// Sessions per loaded version: how many batches of one model run at once.
    pub instances: usize,
}

impl Default for OnnxConfig {
    fn default() -> Self {
        Self {
            library: None,
            intra_op_threads: 1,
            instances: std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
        }
    }
}

impl Validate for OnnxConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.intra_op_threads == 0 || self.intra_op_threads > 256 {
            return Err(invalid("onnx.intra_op_threads", "must be 1..=256"));
        }
        if self.instances == 0 || self.instances > 64 {
            return Err(invalid("onnx.instances", "must be 1..=64"));
        }
        Ok(())
    }
}

/// Request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most rows (first dimension) of one inference request, and most entity rows of one
    /// PredictByKey: a larger request is RESOURCE_EXHAUSTED with the limit.
    pub max_batch_rows: usize,
    /// Requests waiting for a model's engine; more are RESOURCE_EXHAUSTED (back-pressure, not a queue
    /// that grows without bound).
    pub max_queued_requests: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_batch_rows: 4096,
            max_queued_requests: 4096,
        }
    }
}

impl Validate for LimitsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_batch_rows == 0 {
            return Err(invalid("limits.max_batch_rows", "must be at least 1"));
        }
        if self.max_queued_requests == 0 {
            return Err(invalid("limits.max_queued_requests", "must be at least 1"));
        }
        Ok(())
    }
}

/// The prediction log: sampled predictions as JSON records on a Kafka topic through the data hub, the
/// JSON Schema registered as `<topic>-value`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Log predictions.
    pub enabled: bool,
    /// The topic (created bound to the schema when missing).
    pub topic: String,
    /// The share of requests logged, 0.0..=1.0.
    pub sample_rate: f64,
    /// Predictions waiting to be sent; when full, new ones are counted in
    /// `plinth_serving_predictions_dropped_total` and not logged (serving never waits for the log).
    pub queue: usize,
    /// Most predictions per produce call.
    pub batch: usize,
    /// The data hub.
    pub datahub: PeerConfig,
    /// The schema registry.
    pub registry: PeerConfig,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            topic: "plinth.serving.predictions".to_owned(),
            sample_rate: 1.0,
            queue: 10_000,
            batch: 500,
            datahub: default_datahub(),
            registry: default_registry(),
        }
    }
}

impl Validate for MonitoringConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err(invalid(
                "monitoring.sample_rate",
                "must be between 0.0 and 1.0",
            ));
        }
        if self.enabled && self.topic.trim().is_empty() {
            return Err(invalid("monitoring.topic", "must name a topic"));
        }
        if self.queue == 0 || self.batch == 0 {
            return Err(invalid(
                "monitoring.queue",
                "queue and batch must be at least 1",
            ));
        }
        self.datahub
            .validate()
            .map_err(|err| err.within("monitoring.datahub"))?;
        self.registry
            .validate()
            .map_err(|err| err.within("monitoring.registry"))?;
        Ok(())
    }
}
