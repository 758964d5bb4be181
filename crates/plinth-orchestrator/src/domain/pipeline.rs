//! The pipeline model: what a pipeline file declares, after parsing and validation. Stored as JSON in
//! the database (one row per pipeline version), so every field serializes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A validated pipeline: a name, a schedule, parameters and a DAG of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Unique name (`[a-z0-9][a-z0-9_-]*`, at most 100 characters).
    pub name: String,
    /// Who to ask about it.
    #[serde(default)]
    pub owner: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Free-form labels.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When it runs by itself; `None`: on demand only.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Create runs for every schedule tick missed since `start_date` (or since the pipeline was first
    /// applied), instead of only the latest. Default false (Airflow 3's default).
    #[serde(default)]
    pub catchup: bool,
    /// The first logical date the schedule may produce, in microseconds since the epoch (UTC).
    #[serde(default)]
    pub start_date_micros: Option<i64>,
    /// At most this many runs of the pipeline are running at once; further runs wait queued.
    pub max_active_runs: u32,
    /// At most this many tasks of one run are running at once.
    pub max_active_tasks: u32,
    /// Declared parameters, in file order.
    #[serde(default)]
    pub params: Vec<Param>,
    /// The tasks, in file order; dependencies form a DAG (validated).
    pub tasks: Vec<Task>,
}

impl Pipeline {
    /// The task named `name`.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|task| task.name == name)
    }

    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|param| param.name == name)
    }
}

/// A cron schedule in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Five-field cron (`0 3 * * *`) or a preset (`@hourly`, `@daily`, `@weekly`, `@monthly`,
    /// `@yearly`), as written.
    pub cron: String,
    /// IANA time zone name (`UTC`, `Europe/Paris`); the cron fields are read in it (DST-aware).
    pub timezone: String,
}

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Text.
    String,
    /// A 64-bit signed integer.
    Integer,
    /// A 64-bit float (an integer is accepted).
    Number,
    /// true or false.
    Boolean,
}

impl ParamType {
    /// The name as written in files (`string`, `integer`, `number`, `boolean`).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        }
    }
}

/// A parameter's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A float.
    Number(f64),
    /// Text.
    String(String),
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Its name (referenced as `{{ params.<name> }}`).
    pub name: String,
    /// Its type; overrides are checked against it.
    #[serde(rename = "type")]
    pub param_type: ParamType,
    /// Its default; `None`: required at trigger time.
    #[serde(default)]
    pub default: Option<ParamValue>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// When a task runs, given the states of its direct dependencies (Airflow's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every dependency succeeded (skipped counts as not succeeded, as in Airflow). The default.
    #[default]
    AllSuccess,
    /// Every dependency is done, whatever the outcome.
    AllDone,
    /// At least one dependency failed (runs as soon as one fails).
    OneFailed,
}

impl TriggerRule {
    /// The name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerRule::AllSuccess => "all_success",
            TriggerRule::AllDone => "all_done",
            TriggerRule::OneFailed => "one_failed",
        }
    }
}

/// Compute resources of a task (Kubernetes requests and limits; the local executor records them only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// CPU request (`500m`, `2`).
    #[serde(default)]
    pub cpu: Option<String>,
    /// Memory request (`512Mi`, `4Gi`).
    #[serde(default)]
    pub memory: Option<String>,
    /// CPU limit.
    #[serde(default)]
    pub cpu_limit: Option<String>,
    /// Memory limit.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// GPUs (`nvidia.com/gpu` limit).
    #[serde(default)]
    pub gpu: Option<u32>,
}

/// An environment variable whose value comes from a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// The environment variable set in the task's process.
    pub env: String,
    /// The secret's name (a Kubernetes Secret; locally a directory under the executor's secrets dir).
    pub secret: String,
    /// The key within the secret.
    pub key: String,
}

/// A task's command line: an argument vector, or a shell script run with `sh -c`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    /// Program and arguments, each a template.
    Argv(Vec<String>),
    /// A shell script (a template), run with `sh -c`.
    Shell(String),
}

/// What a task does (`uses:`) and its parameters (`with:`). Every string is a template that may
/// reference `{{ params.<name> }}`, `{{ logical_date }}`, `{{ ds }}`, `{{ ds_nodash }}`,
/// `{{ data_interval_start }}`, `{{ data_interval_end }}`, `{{ run_id }}` and `{{ pipeline }}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "uses", rename_all = "kebab-case")]
pub enum TaskKind {
    /// Runs a process (locally) or a container (on Kubernetes).
    Command {
        /// What to run.
        command: CommandLine,
        /// The container image (Kubernetes executor; required there).
        #[serde(default)]
        image: Option<String>,
        /// The working directory (local executor).
        #[serde(default)]
        working_dir: Option<String>,
    },
    /// Asks the feature store to materialize feature views into the online store.
    Materialize {
        /// The feature views; empty: every online view (or those of `feature_service`).
        #[serde(default)]
        feature_views: Vec<String>,
        /// Every view used by this feature service.
        #[serde(default)]
        feature_service: Option<String>,
        /// Continue from each view's watermark (default true).
        incremental: bool,
        /// Window start (an RFC 3339 time, a template); default: the run's data interval start.
        #[serde(default)]
        start: Option<String>,
        /// Window end (an RFC 3339 time, a template); default: the run's data interval end.
        #[serde(default)]
        end: Option<String>,
    },
    /// Asks the feature store for a point-in-time-correct training set written to the lake.
    TrainingSet {
        /// The feature service to join.
        #[serde(default)]
        feature_service: Option<String>,
        /// Or feature references (`view:feature`).
        #[serde(default)]
        features: Vec<String>,
        /// The lake dataset holding the entity rows.
        entities: String,
        /// Their event timestamp column (default `event_timestamp`).
        #[serde(default)]
        event_timestamp_column: Option<String>,
        /// The lake dataset to write; must not exist (default `<pipeline>_<task>_<run id>`).
        output: String,
    },
    /// Runs the user's training command with the training set, then stores what it wrote to
    /// `$PLINTH_MODEL_DIR` as `models/<model>/<version>/` in the model repository.
    Train {
        /// The training command.
        command: CommandLine,
        /// The container image (Kubernetes executor).
        #[serde(default)]
        image: Option<String>,
        /// The working directory (local executor): where a project's training script lives.
        #[serde(default)]
        working_dir: Option<String>,
        /// The lake dataset with the training set (passed as `PLINTH_TRAINING_SET`, a URL).
        training_set: String,
        /// The model's name in the repository.
        model: String,
        /// The version to store (default: the run's id prefix `r<yyyymmddhhmmss>`).
        #[serde(default)]
        version: Option<String>,
    },
    /// Scores a lake dataset with a served model over the Open Inference Protocol and writes the
    /// predictions to the lake.
    BatchScore {
        /// The model.
        model: String,
        /// Its version (default: the serving's default).
        #[serde(default)]
        version: Option<String>,
        /// The lake dataset to score.
        input: String,
        /// The lake dataset of predictions (input columns plus the model's outputs).
        output: String,
        /// The input columns fed to the model, in order (default: every numeric column).
        #[serde(default)]
        columns: Vec<String>,
    },
    /// Tells model serving to load a model version (it replaces the running one when loaded).
    DeployModel {
        /// The model.
        model: String,
        /// The version.
        version: String,
    },
}

impl TaskKind {
    /// The `uses:` name.
    pub fn uses(&self) -> &'static str {
        match self {
            TaskKind::Command { .. } => "command",
            TaskKind::Materialize { .. } => "materialize",
            TaskKind::TrainingSet { .. } => "training-set",
            TaskKind::Train { .. } => "train",
            TaskKind::BatchScore { .. } => "batch-score",
            TaskKind::DeployModel { .. } => "deploy-model",
        }
    }

    /// Every `uses:` name, for messages.
    pub const ALL_USES: [&'static str; 6] = [
        "command",
        "materialize",
        "training-set",
        "train",
        "batch-score",
        "deploy-model",
    ];
}

/// Retry policy of a task (Airflow's fields and defaults, except `retry_delay` defaults to 30s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts after the first (0: no retry).
    pub retries: u32,
    /// Delay before the first retry.
    #[serde(with = "plinth_runtime::config::duration")]
    pub retry_delay: Duration,
    /// Double the delay at each retry, plus deterministic jitter.
    pub retry_exponential_backoff: bool,
    /// Cap on the delay.
    #[serde(default, with = "optional_duration")]
    pub max_retry_delay: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 0,
            retry_delay: Duration::from_secs(30),
            retry_exponential_backoff: false,
            max_retry_delay: None,
        }
    }
}

/// One task of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Unique within the pipeline (`[a-z0-9][a-z0-9_-]*`).
    pub name: String,
    /// What it does.
    pub kind: TaskKind,
    /// Tasks that must be done first (direct upstream).
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// When it runs given its dependencies' outcomes.
    #[serde(default)]
    pub trigger_rule: TriggerRule,
    /// Retries.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// An attempt running longer is stopped and fails (then retries if it may).
    #[serde(default, with = "optional_duration")]
    pub execution_timeout: Option<Duration>,
    /// Compute resources.
    #[serde(default)]
    pub resources: Resources,
    /// Environment variables (values are templates).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables from secrets.
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
}

/// Serde for `Option<Duration>` as a human string.
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => plinth_runtime::config::duration::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|text| {
            plinth_runtime::config::duration::parse(&text).map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
