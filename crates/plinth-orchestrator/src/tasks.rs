//! The platform task types, run in process by the engine: `materialize` and `training-set` call the
//! feature store, `deploy-model` and `batch-score` call model serving over the Open Inference Protocol
//! V2 (`inference.GRPCInferenceService`), and [`store_model`] puts what a `train` task's command wrote
//! into the model repository. (`command` and the training command itself run on an executor.)
//!
//! Each task writes what it did to the attempt's log, stops when its cancel signal turns true, and ends
//! with a [`TaskReport`] or a [`TaskError`] that says what failed, what to do, and whether trying again
//! later may succeed (a peer that is down is retryable; a feature view that does not exist is not).
//!
//! Lake datasets are directories under the lake root (`<lake root>/<dataset>/`, the feature store's
//! layout); a dataset this module writes becomes visible at once: its Parquet parts are written under
//! `<dataset>/_temporary/<job>/`, moved into place, and `_SUCCESS` is put last. Models live at
//! `<model repository root>/<model>/<version>/`, `_SUCCESS` last, and a stored version never changes.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use plinth_runtime::client::AuthChannel;
use plinth_runtime::storage::{Location, Locations};
use tokio::sync::watch;
use url::Url;

use crate::domain::pipeline::TaskKind;
use crate::logs::LogWriter;

mod batch_score;
mod deploy;
mod lake;
mod materialize;
mod model_repository;
mod tensor;
mod training_set;

pub use self::model_repository::store_model;

/// The marker put last in a completed dataset or model version directory.
const SUCCESS_MARKER: &str = "_SUCCESS";

/// What the platform tasks talk to and where they read and write.
#[derive(Debug, Clone)]
pub struct Platform {
    feature_store: Option<Peer>,
    model_serving: Option<Peer>,
    lake: StorageRoot,
    models: StorageRoot,
}

/// An object-store root: the clients of its store and its URL.
#[derive(Debug, Clone)]
pub struct StorageRoot {
    locations: Arc<Locations>,
    url: String,
}

impl StorageRoot {
    /// The root at `url` (`file:///abs/dir`, `s3://bucket/prefix`, `gs://bucket/prefix`), opened through
    /// `locations` (which carry the store's options).
    pub fn new(locations: Arc<Locations>, url: impl Into<String>) -> Self {
        Self {
            locations,
            url: url.into(),
        }
    }

    /// The root's URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens the root; a root that cannot be opened is a configuration problem, not retryable.
    fn location(&self, what: &str) -> Result<Location, TaskError> {
        self.locations.get(&self.url).map_err(|err| {
            TaskError::failed(format!(
                "cannot open the {what} at {}: {}; check the orchestrator's configuration",
                self.url, err.message
            ))
        })
    }
}

/// A service the tasks call: its URL (for messages) and a channel to it.
#[derive(Debug, Clone)]
struct Peer {
    url: Url,
    channel: AuthChannel,
}

impl Platform {
    /// Tasks that read and write the lake at `lake` and the model repository at `models`, with no peer
    /// yet: `materialize` and `training-set` need [`Platform::with_feature_store`], `deploy-model` and
    /// `batch-score` need [`Platform::with_model_serving`].
    pub fn new(lake: StorageRoot, models: StorageRoot) -> Self {
        Self {
            feature_store: None,
            model_serving: None,
            lake,
            models,
        }
    }

    /// Calls the feature store at `url` through `channel` (see `PeerConfig::connect_lazy`). The
    /// channel's timeout bounds every call, `Materialize` and `GetTrainingSet` included: give it the
    /// longest such call expected (the task's `execution_timeout` and cancel stop it earlier anyway).
    pub fn with_feature_store(mut self, url: Url, channel: AuthChannel) -> Self {
        self.feature_store = Some(Peer { url, channel });
        self
    }

    /// Calls model serving (Open Inference Protocol V2 over gRPC) at `url` through `channel`. Its
    /// timeout bounds each `RepositoryModelLoad` and `ModelInfer` call.
    pub fn with_model_serving(mut self, url: Url, channel: AuthChannel) -> Self {
        self.model_serving = Some(Peer { url, channel });
        self
    }

    /// The lake's object-store credentials and endpoint as the standard environment variables of other
    /// clients (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...), so that a training command run by the local
    /// executor reads `PLINTH_TRAINING_SET` from the same store.
    pub fn lake_client_env(&self) -> std::collections::BTreeMap<String, String> {
        self.lake.locations.client_env()
    }

    /// The URL of a lake dataset (`<lake root>/<dataset>`), as a training command receives it in
    /// `PLINTH_TRAINING_SET`.
    pub fn dataset_url(&self, dataset: &str) -> Result<String, TaskError> {
        lake::check_dataset_name(dataset, "dataset")?;
        Ok(self.lake.location("lake")?.url_of(dataset))
    }

    /// The URL of a model version's directory (`<model repository root>/<model>/<version>/`).
    pub fn model_url(&self, model: &str, version: &str) -> Result<String, TaskError> {
        model_repository::check_segment(model, "model")?;
        model_repository::check_segment(version, "version")?;
        Ok(format!(
            "{}/",
            self.models
                .location("model repository")?
                .url_of(&format!("{model}/{version}"))
        ))
    }

    fn feature_store(&self) -> Result<&Peer, TaskError> {
        self.feature_store.as_ref().ok_or_else(|| {
            TaskError::failed(
                "this orchestrator has no feature store configured; set [feature_store] url in its configuration",
            )
        })
    }

    fn model_serving(&self) -> Result<&Peer, TaskError> {
        self.model_serving.as_ref().ok_or_else(|| {
            TaskError::failed(
                "this orchestrator has no model serving configured; set [serving] url in its configuration",
            )
        })
    }
}

/// The run's data interval, the default window of `materialize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataInterval {
    /// Its start.
    pub start: DateTime<Utc>,
    /// Its end.
    pub end: DateTime<Utc>,
}

/// What a task did, recorded with its attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    /// One line for users (`materialized 2 feature views: 120 rows read, 40 entities written`).
    pub summary: String,
    /// Where it wrote its result (a dataset or model URL), if it wrote one.
    pub output_url: Option<String>,
}

/// Why a platform task did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// It failed; the message says what and what to do.
    #[error("{message}")]
    Failed {
        /// What failed and what to do, for users.
        message: String,
        /// Whether trying again later may succeed (a peer unavailable or too slow); false when the
        /// same inputs fail again (an unknown feature view, a dataset that exists).
        retryable: bool,
    },
    /// Stopped because the run or the task was cancelled.
    #[error("cancelled while running; the call to the service was abandoned")]
    Cancelled,
}

impl TaskError {
    /// A failure that would happen again with the same inputs.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        TaskError::Failed {
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that trying again later may fix.
    pub(crate) fn retryable(message: impl Into<String>) -> Self {
        TaskError::Failed {
            message: message.into(),
            retryable: true,
        }
    }

    /// Whether the engine should retry (when the task has retries left).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TaskError::Failed {
                retryable: true,
                ..
            }
        )
    }
}

/// Runs a platform task: `materialize`, `training-set`, `batch-score` or `deploy-model`. `command` and
/// `train` run on an executor (for `train`, [`store_model`] stores what it wrote).
pub async fn run(
    platform: &Platform,
    kind: &TaskKind,
    interval: DataInterval,
    log: &LogWriter,
    cancel: watch::Receiver<bool>,
) -> Result<TaskReport, TaskError> {
    match kind {
        TaskKind::Materialize {
            feature_views,
            feature_service,
            incremental,
            start,
            end,
        } => {
            let window = materialize::Window::resolve(start.as_deref(), end.as_deref(), interval)?;
            let views = materialize::Selection {
                feature_views,
                feature_service: feature_service.as_deref(),
            };
            materialize::materialize(platform, views, *incremental, window, log, cancel).await
        }
        TaskKind::TrainingSet {
            feature_service,
            features,
            entities,
            event_timestamp_column,
            output,
        } => {
            let request = training_set::Request {
                feature_service: feature_service.as_deref(),
                features,
                entities,
                event_timestamp_column: event_timestamp_column.as_deref(),
                output,
            };
            training_set::training_set(platform, request, log, cancel).await
        }
        TaskKind::BatchScore {
            model,
            version,
            input,
            output,
            columns,
        } => {
            let request = batch_score::Request {
                model,
                version: version.as_deref().unwrap_or_default(),
                input,
                output,
                columns,
            };
            batch_score::batch_score(platform, request, log, cancel).await
        }
        TaskKind::DeployModel { model, version } => {
            deploy::deploy_model(platform, model, version, log, cancel).await
        }
        TaskKind::Command { .. } | TaskKind::Train { .. } => Err(TaskError::failed(format!(
            "a `{}` task runs on an executor, not in the orchestrator's process",
            kind.uses()
        ))),
    }
}

/// Runs `work` unless the cancel signal turns true first. A dropped sender never cancels.
async fn cancellable<T>(
    cancel: &mut watch::Receiver<bool>,
    work: impl Future<Output = Result<T, TaskError>>,
) -> Result<T, TaskError> {
    let cancelled = async {
        if cancel.wait_for(|cancelled| *cancelled).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        biased;
        () = cancelled => Err(TaskError::Cancelled),
        result = work => result,
    }
}

/// A peer's error status as a task error: `what` is the call (`Materialize`), `service` the peer's
/// name for users (`feature store`). Transient codes are retryable; the peer's message, which says
/// what to fix, is kept.
fn status_error(service: &str, peer: &Peer, what: &str, status: &tonic::Status) -> TaskError {
    use tonic::Code;
    let url = &peer.url;
    let message = status.message();
    match status.code() {
        Code::Unavailable => TaskError::retryable(format!(
            "the {service} at {url} is unavailable ({what}: {message}); it is retried if the task has retries left; check that the {service} is running and reachable"
        )),
        // The channel's own timeout ends a call as CANCELLED "Timeout expired" (tonic).
        Code::DeadlineExceeded | Code::Cancelled
            if status.code() == Code::DeadlineExceeded || message == "Timeout expired" =>
        {
            TaskError::retryable(format!(
                "the {service} at {url} did not answer {what} in time ({message}); it is retried if the task has retries left; raise the timeout of the orchestrator's peer configuration if the call is expected to take longer"
            ))
        }
        Code::Cancelled
        | Code::Aborted
        | Code::ResourceExhausted
        | Code::Internal
        | Code::Unknown => TaskError::retryable(format!(
            "the {service} at {url} failed {what} ({code:?}): {message}",
            code = status.code()
        )),
        Code::Unauthenticated | Code::PermissionDenied => TaskError::failed(format!(
            "the {service} at {url} refused {what}: {message}; check the token the orchestrator sends it (token or token_file of its peer configuration)"
        )),
        Code::Unimplemented => TaskError::failed(format!(
            "the {service} at {url} does not implement {what} ({message}); check that the URL points at the {service}"
        )),
        _ => TaskError::failed(format!("the {service} at {url} refused {what}: {message}")),
    }
}

#[cfg(test)]
mod tests;
