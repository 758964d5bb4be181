//! The orchestrator's configuration: the runtime blocks plus `[logs]`, `[lake]`, `[models]`,
//! `[executor]`, `[scheduler]`, `[events]` and the peers it calls (`[feature_store]`, `[serving]`,
//! `[datahub]`, `[registry]`). Loaded from a TOML file plus `PLINTH_*` environment overrides (for example
//! `PLINTH_EXECUTOR__KIND=kubernetes`), validated at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_runtime::config::{
    self, ConfigError, DatabaseConfig, PeerConfig, ServerConfig, TelemetryConfig, Validate,
};
use serde::{Deserialize, Serialize};
use url::Url;

/// Default gRPC port (PLATFORM.md).
pub const DEFAULT_GRPC_PORT: u16 = 7004;
/// Default HTTP port: `/metrics`, `/healthz`, `/readyz`.
pub const DEFAULT_HTTP_PORT: u16 = 9104;

/// The whole orchestrator configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, TLS, auth, limits.
    pub server: ServerConfig,
    /// Logs, traces and metrics.
    pub telemetry: TelemetryConfig,
    /// Pipelines, runs, task attempts and the event outbox.
    pub database: DatabaseConfig,
    /// Where task logs are stored.
    #[serde(default = "default_logs")]
    pub logs: LogsConfig,
    /// The data lake (training sets, scoring inputs and outputs).
    #[serde(default = "default_lake")]
    pub lake: StorageConfig,
    /// The model repository (`<root>/<model>/<version>/`).
    #[serde(default = "default_models")]
    pub models: StorageConfig,
    /// Where task processes run.
    #[serde(default)]
    pub executor: ExecutorConfig,
    /// Scheduling limits.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// Publishing run events to Kafka through the data hub.
    #[serde(default)]
    pub events: EventsConfig,
    /// The feature store (`materialize` and `training-set` tasks).
    #[serde(default = "default_feature_store")]
    pub feature_store: PeerConfig,
    /// Model serving (`deploy-model` and `batch-score` tasks; Open Inference Protocol V2).
    #[serde(default = "default_serving")]
    pub serving: PeerConfig,
    /// The data hub (the run-events topic).
    #[serde(default = "default_datahub")]
    pub datahub: PeerConfig,
    /// The schema registry (the run-events schema).
    #[serde(default = "default_registry")]
    pub registry: PeerConfig,
}

fn peer(url: &str) -> PeerConfig {
    PeerConfig::at(Url::parse(url).unwrap_or_else(|_| unreachable!("a valid literal URL")))
}

fn default_feature_store() -> PeerConfig {
    peer("http://127.0.0.1:7003")
}

fn default_serving() -> PeerConfig {
    peer("http://127.0.0.1:8001")
}

fn default_datahub() -> PeerConfig {
    peer("http://127.0.0.1:7002")
}

fn default_registry() -> PeerConfig {
    peer("http://127.0.0.1:7001")
}

fn default_logs() -> LogsConfig {
    LogsConfig::default()
}

fn default_lake() -> StorageConfig {
    StorageConfig::at("file:///var/lib/plinth/lake")
}

fn default_models() -> StorageConfig {
    StorageConfig::at("file:///var/lib/plinth/models")
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::with_ports(DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT),
            telemetry: TelemetryConfig::default(),
            database: DatabaseConfig {
                url: "sqlite://orchestrator.db?mode=rwc".to_owned(),
                ..DatabaseConfig::default()
            },
            logs: default_logs(),
            lake: default_lake(),
            models: default_models(),
            executor: ExecutorConfig::default(),
            scheduler: SchedulerConfig::default(),
            events: EventsConfig::default(),
            feature_store: default_feature_store(),
            serving: default_serving(),
            datahub: default_datahub(),
            registry: default_registry(),
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
        self.logs.validate()?;
        self.lake.validate().map_err(|err| err.within("lake"))?;
        self.models.validate().map_err(|err| err.within("models"))?;
        self.executor.validate()?;
        self.scheduler.validate()?;
        self.events.validate()?;
        for (key, peer) in [
            ("feature_store", &self.feature_store),
            ("serving", &self.serving),
            ("datahub", &self.datahub),
            ("registry", &self.registry),
        ] {
            peer.validate().map_err(|err| err.within(key))?;
        }
        Ok(())
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// An object-store location: a root URL and the options of its store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `file:///abs/dir`, `s3://bucket/prefix` or `gs://bucket/prefix`.
    pub root: String,
    /// Object-store options (`aws_endpoint`, `aws_region`, ...), passed to `object_store`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl StorageConfig {
    /// A root with no options.
    pub fn at(root: &str) -> Self {
        Self {
            root: root.to_owned(),
            options: BTreeMap::new(),
        }
    }
}

impl Validate for StorageConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        plinth_runtime::storage::normalize_url(&self.root)
            .map(|_| ())
            .map_err(|err| invalid("root", err.message))
    }
}

/// Task logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Where finished attempts' logs are stored (`<root>/<pipeline>/<run>/<task>/<try>.log`).
    pub root: String,
    /// Object-store options.
    pub options: BTreeMap<String, String>,
    /// The most bytes kept per attempt; output beyond it is counted and dropped.
    pub max_bytes: u64,
    /// Where running attempts' logs are written before they are stored; unset: the system temp dir.
    pub spool_dir: Option<PathBuf>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            root: "file:///var/lib/plinth/logs".to_owned(),
            options: BTreeMap::new(),
            max_bytes: 64 * 1024 * 1024,
            spool_dir: None,
        }
    }
}

impl Validate for LogsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        plinth_runtime::storage::normalize_url(&self.root)
            .map_err(|err| invalid("logs.root", err.message))?;
        if self.max_bytes < 1024 {
            return Err(invalid(
                "logs.max_bytes",
                "must be at least 1024, e.g. 67108864 (64 MiB)",
            ));
        }
        Ok(())
    }
}

/// Which executor runs task processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// Child processes of the orchestrator (`plinth up`, single-node setups).
    #[default]
    Local,
    /// Kubernetes Jobs (production).
    Kubernetes,
}

/// Where task processes run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// Which executor.
    pub kind: ExecutorKind,
    /// The local executor.
    pub local: LocalExecutorConfig,
    /// The Kubernetes executor.
    pub kubernetes: KubernetesExecutorConfig,
}

impl Validate for ExecutorConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.local.kill_grace.is_zero() {
            return Err(invalid(
                "executor.local.kill_grace",
                "must be greater than zero, e.g. `10s`",
            ));
        }
        if self.kind == ExecutorKind::Kubernetes && self.kubernetes.namespace.trim().is_empty() {
            return Err(invalid(
                "executor.kubernetes.namespace",
                "must name the namespace Jobs run in, e.g. `plinth-jobs`",
            ));
        }
        Ok(())
    }
}

/// The local executor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalExecutorConfig {
    /// Secret `s`, key `k` is read from `<secrets_dir>/<s>/<k>`; unset: tasks may not use secrets.
    pub secrets_dir: Option<PathBuf>,
    /// After SIGTERM (timeout, cancel), how long a process may take to exit before SIGKILL.
    #[serde(with = "plinth_runtime::config::duration")]
    pub kill_grace: Duration,
    /// Where `train` tasks' model directories are created; unset: the system temp dir.
    pub work_dir: Option<PathBuf>,
}

impl Default for LocalExecutorConfig {
    fn default() -> Self {
        Self {
            secrets_dir: None,
            kill_grace: Duration::from_secs(10),
            work_dir: None,
        }
    }
}

/// The Kubernetes executor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesExecutorConfig {
    /// The namespace Jobs are created in.
    pub namespace: String,
    /// The service account of the Jobs' pods.
    pub service_account: Option<String>,
    /// Image pull secrets of the Jobs' pods.
    pub image_pull_secrets: Vec<String>,
    /// The image of tasks that name none.
    pub default_image: Option<String>,
    /// Finished Jobs are deleted by Kubernetes after this many seconds.
    pub ttl_seconds_after_finished: u32,
}

impl Default for KubernetesExecutorConfig {
    fn default() -> Self {
        Self {
            namespace: "default".to_owned(),
            service_account: None,
            image_pull_secrets: Vec::new(),
            default_image: None,
            ttl_seconds_after_finished: 3600,
        }
    }
}

/// Scheduling limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// The most task attempts this replica runs at once (all pipelines).
    pub max_parallel_tasks: usize,
    /// How often the scheduler looks for due work when nothing wakes it (cron ticks, retries, other
    /// replicas' changes).
    #[serde(with = "plinth_runtime::config::duration")]
    pub poll_interval: Duration,
    /// A replica that has not renewed its lease on a running attempt for this long is presumed gone;
    /// another replica then reconciles the attempt.
    #[serde(with = "plinth_runtime::config::duration")]
    pub lease_timeout: Duration,
    /// The most runs one catch-up may create per pipeline and pass.
    pub max_catchup_runs: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_parallel_tasks: 32,
            poll_interval: Duration::from_secs(1),
            lease_timeout: Duration::from_secs(30),
            max_catchup_runs: 100,
        }
    }
}

impl Validate for SchedulerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_parallel_tasks == 0 {
            return Err(invalid(
                "scheduler.max_parallel_tasks",
                "must be at least 1, e.g. 32",
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(invalid(
                "scheduler.poll_interval",
                "must be greater than zero, e.g. `1s`",
            ));
        }
        if self.lease_timeout < Duration::from_secs(2) {
            return Err(invalid(
                "scheduler.lease_timeout",
                "must be at least 2s (leases are renewed every third of it), e.g. `30s`",
            ));
        }
        if self.max_catchup_runs == 0 {
            return Err(invalid(
                "scheduler.max_catchup_runs",
                "must be at least 1, e.g. 100",
            ));
        }
        Ok(())
    }
}

/// Publishing run events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Publish run and task state changes to Kafka through the data hub. Events wait in the database
    /// while the data hub is unreachable, so none is lost.
    pub publish: bool,
    /// The topic.
    pub topic: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            publish: true,
            topic: "plinth.orchestrator.runs".to_owned(),
        }
    }
}

impl Validate for EventsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.publish && self.topic.trim().is_empty() {
            return Err(invalid(
                "events.topic",
                "must name a topic, e.g. `plinth.orchestrator.runs`",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_environment_overrides_apply() {
        let env = [
            ("PLINTH_EXECUTOR__KIND".to_owned(), "kubernetes".to_owned()),
            (
                "PLINTH_SCHEDULER__MAX_PARALLEL_TASKS".to_owned(),
                "4".to_owned(),
            ),
        ];
        let config: Config = config::load(None, env).unwrap();
        config.validate().unwrap();
        assert_eq!(config.executor.kind, ExecutorKind::Kubernetes);
        assert_eq!(config.scheduler.max_parallel_tasks, 4);
        assert_eq!(config.server.grpc.listen.port(), DEFAULT_GRPC_PORT);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut config = Config::default();
        config.scheduler.max_parallel_tasks = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("scheduler.max_parallel_tasks"), "{err}");
        let mut config = Config::default();
        config.logs.root = "ftp://x".to_owned();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("logs.root"), "{err}");
    }
}
