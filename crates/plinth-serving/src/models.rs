//! The loaded models: per model name, its versions with their state, and the version that serves
//! requests naming no version. A load fetches the files, parses `model.yaml`, builds the sessions, runs
//! the reference pair, and only then switches the serving version (requests in flight on the old version
//! finish on it); a failed load leaves the serving version as it was and records the reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use crate::batcher::{Batcher, BatcherOptions};
use crate::config::{LimitsConfig, ModelRef};
use crate::engine::{Engine, Session};
use crate::error::ServingError;
use crate::repository::{Repository, SPEC_FILE, natural_cmp};
use crate::spec::{self, ModelSpec};
use crate::tensor::{Tensor, TensorData, element_count};

/// Seconds per inference request, queue included: a histogram by `model` and `version`.
pub const INFERENCE_SECONDS: &str = "plinth_serving_inference_seconds";
/// Failed inference requests, by `model`, `version` and `code` (`INVALID_ARGUMENT`, ...).
pub const INFERENCE_ERRORS: &str = "plinth_serving_inference_errors_total";
/// Rows per engine call (the batch size after dynamic batching), by `model` and `version`.
pub const BATCH_ROWS: &str = "plinth_serving_batch_rows";

/// The state of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// In the repository, not loaded.
    Available,
    /// Being loaded.
    Loading,
    /// Loaded and answering.
    Ready,
    /// The last load failed.
    Failed,
}

/// One version's status.
#[derive(Debug, Clone)]
pub struct VersionStatus {
    /// The version.
    pub version: String,
    /// Its state.
    pub state: VersionState,
    /// Why the last load failed.
    pub reason: Option<String>,
    /// Whether it serves requests that name no version.
    pub serving: bool,
}

/// A model's status.
#[derive(Debug, Clone)]
pub struct ModelStatus {
    /// The name.
    pub name: String,
    /// Its versions (repository and loaded), in natural order.
    pub versions: Vec<VersionStatus>,
    /// The serving version, when one is loaded.
    pub serving: Option<Arc<LoadedModel>>,
}

/// A loaded, checked model version, ready to infer.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Its `model.yaml`.
    pub spec: ModelSpec,
    batcher: Batcher,
    max_batch_rows: usize,
    latency: metrics::Histogram,
}

impl LoadedModel {
    /// Runs the model on `inputs` (every declared input, by name, any order), through the model's
    /// batcher. Checks names, data types and shapes against the spec and the row limit first
    /// (INVALID_ARGUMENT / RESOURCE_EXHAUSTED naming the tensor). Returns every output of the spec, in
    /// spec order, with the inputs' row count as first dimension.
    pub async fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ServingError> {
        let started = Instant::now();
        let result = match self.check(inputs) {
            Ok((inputs, rows)) => self.batcher.submit(inputs, rows).await,
            Err(err) => Err(err),
        };
        match &result {
            Ok(_) => self.latency.record(started.elapsed().as_secs_f64()),
            Err(err) => metrics::counter!(
                INFERENCE_ERRORS,
                "model" => self.name.clone(),
                "version" => self.version.clone(),
                "code" => code_label(err)
            )
            .increment(1),
        }
        result
    }

    /// How many times the engine ran for this version (one batch is one run).
    pub fn engine_calls(&self) -> u64 {
        self.batcher.engine_calls()
    }

    /// Whether concurrent requests are merged into one engine call.
    pub fn batchable(&self) -> bool {
        self.spec.batchable()
    }

    /// `model \`name\` version \`version\``, for messages.
    pub fn describe(&self) -> String {
        describe(&self.name, &self.version)
    }

    /// The inputs in spec order and the request's rows, or what is wrong with them. The row limit is
    /// checked first, on every input, so an oversized request does no further work.
    fn check(&self, inputs: Vec<Tensor>) -> Result<(Vec<Tensor>, usize), ServingError> {
        if let Some(tensor) = inputs.iter().find(|t| t.rows() > self.max_batch_rows) {
            return Err(ServingError::ResourceExhausted {
                message: format!(
                    "input `{}` has {} rows, more than limits.max_batch_rows ({}); split it into smaller requests",
                    tensor.name,
                    tensor.rows(),
                    self.max_batch_rows
                ),
            });
        }
        let declared = &self.spec.inputs;
        let in_order = inputs.len() == declared.len()
            && inputs
                .iter()
                .zip(declared)
                .all(|(tensor, spec)| tensor.name == spec.name);
        let inputs = if in_order {
            inputs
        } else {
            self.reorder(inputs)?
        };
        let mut rows: Option<usize> = None;
        for (tensor, spec) in inputs.iter().zip(declared) {
            if tensor.datatype() != spec.datatype {
                return Err(ServingError::invalid(
                    format!("{}.datatype", tensor.name),
                    format!(
                        "is {}; {} takes {} for `{}`",
                        tensor.datatype(),
                        self.describe(),
                        spec.datatype,
                        spec.name
                    ),
                ));
            }
            if !spec.accepts_shape(&tensor.shape) {
                return Err(ServingError::invalid(
                    format!("{}.shape", tensor.name),
                    format!(
                        "is {:?}; {} takes {:?} for `{}` (-1: any size)",
                        tensor.shape,
                        self.describe(),
                        spec.shape,
                        spec.name
                    ),
                ));
            }
            if element_count(&tensor.shape) != Some(tensor.data.len()) {
                return Err(ServingError::invalid(
                    format!("{}.shape", tensor.name),
                    format!(
                        "shape {:?} does not match the {} values sent",
                        tensor.shape,
                        tensor.data.len()
                    ),
                ));
            }
            if spec.shape.first() == Some(&-1) {
                let tensor_rows = tensor.rows();
                match rows {
                    Some(rows) if rows != tensor_rows => {
                        return Err(ServingError::invalid(
                            format!("{}.shape", tensor.name),
                            format!(
                                "has {tensor_rows} rows but other inputs have {rows}; every input needs the same first dimension"
                            ),
                        ));
                    }
                    _ => rows = Some(tensor_rows),
                }
            }
        }
        Ok((inputs, rows.unwrap_or(1)))
    }

    /// `inputs` in spec order; INVALID_ARGUMENT for an unknown, repeated or missing name.
    fn reorder(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ServingError> {
        let declared = &self.spec.inputs;
        let expected = || {
            declared
                .iter()
                .map(|spec| format!("`{}` ({} {:?})", spec.name, spec.datatype, spec.shape))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut slots: Vec<Option<Tensor>> = declared.iter().map(|_| None).collect();
        for tensor in inputs {
            let Some((index, _)) = self.spec.input(&tensor.name) else {
                return Err(ServingError::invalid(
                    tensor.name.clone(),
                    format!(
                        "{} has no input `{}`; its inputs are {}",
                        self.describe(),
                        tensor.name,
                        expected()
                    ),
                ));
            };
            if slots[index].is_some() {
                return Err(ServingError::invalid(
                    tensor.name.clone(),
                    "the input is sent twice; send each input once",
                ));
            }
            slots[index] = Some(tensor);
        }
        let mut ordered = Vec::with_capacity(slots.len());
        for (slot, spec) in slots.into_iter().zip(declared) {
            let Some(tensor) = slot else {
                return Err(ServingError::invalid(
                    spec.name.clone(),
                    format!(
                        "the input is missing; {} takes {}",
                        self.describe(),
                        expected()
                    ),
                ));
            };
            ordered.push(tensor);
        }
        Ok(ordered)
    }
}

/// The metric label of an error's gRPC code.
fn code_label(err: &ServingError) -> &'static str {
    match err {
        ServingError::InvalidArgument { .. } => "INVALID_ARGUMENT",
        ServingError::NotFound { .. } => "NOT_FOUND",
        ServingError::FailedPrecondition { .. } | ServingError::BadModel { .. } => {
            "FAILED_PRECONDITION"
        }
        ServingError::ResourceExhausted { .. } => "RESOURCE_EXHAUSTED",
        ServingError::Unavailable { .. } => "UNAVAILABLE",
        ServingError::DeadlineExceeded { .. } => "DEADLINE_EXCEEDED",
        ServingError::Internal { .. } => "INTERNAL",
    }
}

fn describe(name: &str, version: &str) -> String {
    format!("model `{name}` version `{version}`")
}

/// One version known here.
#[derive(Debug)]
struct VersionEntry {
    state: VersionState,
    reason: Option<String>,
    loaded: Option<Arc<LoadedModel>>,
}

/// One model known here.
#[derive(Debug, Default)]
struct ModelEntry {
    versions: BTreeMap<String, VersionEntry>,
    serving: Option<Arc<LoadedModel>>,
}

impl ModelEntry {
    fn loaded_versions(&self) -> Vec<&str> {
        let mut versions: Vec<&str> = self
            .versions
            .iter()
            .filter(|(_, entry)| entry.loaded.is_some())
            .map(|(version, _)| version.as_str())
            .collect();
        versions.sort_by(|left, right| natural_cmp(left, right));
        versions
    }
}

/// Held while one `(name, version)` loads.
type LoadLock = Arc<tokio::sync::Mutex<()>>;

/// All models of this server.
#[derive(Debug)]
pub struct ModelManager {
    repository: Repository,
    engine: Engine,
    instances: usize,
    limits: LimitsConfig,
    models: RwLock<BTreeMap<String, ModelEntry>>,
    /// One lock per `(name, version)` being loaded, so that concurrent loads of a version load it once.
    loads: Mutex<HashMap<(String, String), LoadLock>>,
    ready: AtomicBool,
}

impl ModelManager {
    /// Loads `name` at `version` (`None`: the latest complete version) and makes it the serving
    /// version. NOT_FOUND when the model or version is not in the repository (listing what is),
    /// BAD_MODEL with the reason when it does not load or fails its reference check.
    pub async fn load(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<LoadedModel>, ServingError> {
        check_segment(name, "name")?;
        let version = match version {
            Some(version) => {
                check_segment(version, "version")?;
                self.repository.check_complete(name, version).await?;
                version.to_owned()
            }
            None => self.repository.latest(name).await?,
        };
        let key_lock = {
            let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(loads.entry((name.to_owned(), version.clone())).or_default())
        };
        let _loading = key_lock.lock().await;
        if let Some(loaded) = self.loaded(name, &version) {
            self.write().entry(name.to_owned()).or_default().serving = Some(Arc::clone(&loaded));
            return Ok(loaded);
        }
        self.set_state(name, &version, VersionState::Loading, None);
        let started = Instant::now();
        match self.build(name, &version).await {
            Ok(loaded) => {
                let loaded = Arc::new(loaded);
                let mut models = self.write();
                let entry = models.entry(name.to_owned()).or_default();
                entry.versions.insert(
                    version.clone(),
                    VersionEntry {
                        state: VersionState::Ready,
                        reason: None,
                        loaded: Some(Arc::clone(&loaded)),
                    },
                );
                entry.serving = Some(Arc::clone(&loaded));
                drop(models);
                tracing::info!(model = name, version = %version, seconds = started.elapsed().as_secs_f64(), "model loaded and serving");
                Ok(loaded)
            }
            Err(err) => {
                tracing::warn!(model = name, version = %version, error = %err, "model load failed; the serving version is unchanged");
                self.set_state(name, &version, VersionState::Failed, Some(err.to_string()));
                Err(err)
            }
        }
    }

    /// Unloads `version` of `name`, or every version when `None`; returns the versions unloaded.
    /// Requests in flight finish. When the serving version is unloaded and another is loaded, the
    /// newest loaded one serves.
    pub async fn unload(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<String>, ServingError> {
        let mut removed_models: Vec<Arc<LoadedModel>> = Vec::new();
        let unloaded = {
            let mut models = self.write();
            let loaded_names = loaded_names(&models);
            let Some(entry) = models.get_mut(name) else {
                return Err(ServingError::not_found(format!(
                    "model `{name}` is not loaded; the loaded models are: {loaded_names}"
                )));
            };
            let unloaded: Vec<String> = match version {
                Some(version) => {
                    let is_loaded = entry
                        .versions
                        .get(version)
                        .is_some_and(|version| version.loaded.is_some());
                    if !is_loaded {
                        return Err(ServingError::not_found(format!(
                            "model `{name}` has no loaded version `{version}`; its loaded versions are: {}",
                            list_or_none(&entry.loaded_versions())
                        )));
                    }
                    vec![version.to_owned()]
                }
                None => entry
                    .loaded_versions()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            };
            for version in &unloaded {
                if let Some(removed) = entry.versions.remove(version).and_then(|v| v.loaded) {
                    removed_models.push(removed);
                }
            }
            if version.is_none() {
                // Failed and loading records go too: the model is gone from this server.
                entry
                    .versions
                    .retain(|_, version| version.state == VersionState::Loading);
            }
            let serving_gone = entry
                .serving
                .as_ref()
                .is_some_and(|serving| unloaded.contains(&serving.version));
            if serving_gone {
                entry.serving = entry
                    .loaded_versions()
                    .last()
                    .and_then(|version| entry.versions.get(*version))
                    .and_then(|version| version.loaded.clone());
            }
            if entry.versions.is_empty() && entry.serving.is_none() {
                models.remove(name);
            }
            unloaded
        };
        // The batchers stop once the last request holding them is answered.
        drop(removed_models);
        tracing::info!(model = name, versions = ?unloaded, "model versions unloaded");
        Ok(unloaded)
    }

    /// The loaded `version` of `name`, or its serving version when `None`. NOT_FOUND for an unknown
    /// model or version (listing the loaded ones), FAILED_PRECONDITION when it is loading or failed.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, ServingError> {
        let models = self.read();
        let Some(entry) = models.get(name) else {
            return Err(ServingError::not_found(format!(
                "model `{name}` is not loaded; the loaded models are: {}; load it first",
                loaded_names(&models)
            )));
        };
        match version {
            None => {
                if let Some(serving) = &entry.serving {
                    return Ok(Arc::clone(serving));
                }
                let loading = entry
                    .versions
                    .iter()
                    .find(|(_, version)| version.state == VersionState::Loading);
                if let Some((version, _)) = loading {
                    return Err(ServingError::FailedPrecondition {
                        message: format!(
                            "{} is loading; retry once it is ready",
                            describe(name, version)
                        ),
                    });
                }
                let reason = entry
                    .versions
                    .iter()
                    .filter_map(|(version, entry)| {
                        entry
                            .reason
                            .as_ref()
                            .map(|reason| format!("version `{version}`: {reason}"))
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(ServingError::FailedPrecondition {
                    message: format!(
                        "model `{name}` has no loaded version ({reason}); load a version that passes its checks"
                    ),
                })
            }
            Some(version) => match entry.versions.get(version) {
                Some(VersionEntry {
                    loaded: Some(loaded),
                    ..
                }) => Ok(Arc::clone(loaded)),
                Some(VersionEntry {
                    state: VersionState::Loading,
                    ..
                }) => Err(ServingError::FailedPrecondition {
                    message: format!(
                        "{} is loading; retry once it is ready",
                        describe(name, version)
                    ),
                }),
                Some(VersionEntry { reason, .. }) => Err(ServingError::FailedPrecondition {
                    message: format!(
                        "{} failed to load: {}; fix it and load it again",
                        describe(name, version),
                        reason.as_deref().unwrap_or("unknown reason")
                    ),
                }),
                None => Err(ServingError::not_found(format!(
                    "model `{name}` has no loaded version `{version}`; its loaded versions are: {}",
                    list_or_none(&entry.loaded_versions())
                ))),
            },
        }
    }

    /// Every model in the repository or loaded here whose name starts with `prefix`, by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ModelStatus>, ServingError> {
        let mut names: Vec<String> = self
            .repository
            .models()
            .await?
            .into_iter()
            .filter(|name| name.starts_with(prefix))
            .collect();
        names.extend(
            self.read()
                .keys()
                .filter(|name| name.starts_with(prefix))
                .cloned(),
        );
        names.sort();
        names.dedup();
        let mut statuses = Vec::with_capacity(names.len());
        for name in names {
            let stored = self.repository.versions(&name).await?;
            let models = self.read();
            let entry = models.get(&name);
            let serving = entry.and_then(|entry| entry.serving.clone());
            let mut versions: Vec<VersionStatus> = stored
                .iter()
                .filter(|version| entry.is_none_or(|entry| !entry.versions.contains_key(*version)))
                .map(|version| VersionStatus {
                    version: version.clone(),
                    state: VersionState::Available,
                    reason: None,
                    serving: false,
                })
                .collect();
            if let Some(entry) = entry {
                versions.extend(entry.versions.iter().map(|(version, known)| {
                    VersionStatus {
                        version: version.clone(),
                        state: known.state,
                        reason: known.reason.clone(),
                        serving: serving
                            .as_ref()
                            .is_some_and(|serving| serving.version == *version),
                    }
                }));
            }
            drop(models);
            versions.sort_by(|left, right| natural_cmp(&left.version, &right.version));
            statuses.push(ModelStatus {
                name,
                versions,
                serving,
            });
        }
        Ok(statuses)
    }

    /// Loads the configured models, failing with the first that does not load; with `all`, also the
    /// latest version of every other model in the repository, where a failure is logged and marked on
    /// the version but does not fail the start.
    pub async fn load_at_start(&self, refs: &[ModelRef], all: bool) -> Result<(), ServingError> {
        for model in refs {
            self.load(&model.name, model.version.as_deref()).await?;
        }
        if all {
            // Models found in the repository, not named in `load`: one that does not load is
            // logged and marked failed, and the others still serve.
            for name in self.repository.models().await? {
                if refs.iter().any(|model| model.name == name)
                    || self.repository.versions(&name).await?.is_empty()
                {
                    continue;
                }
                if let Err(err) = self.load(&name, None).await {
                    tracing::warn!(model = %name, error = %err, "a stored model did not load at start; the others serve");
                }
            }
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }
}

impl ModelManager {
    /// The manager for `config`: the repository at `models.root` and ONNX Runtime loaded from
    /// `onnx.library` (UNAVAILABLE naming the path when the library cannot be loaded). Loads nothing.
    pub fn from_config(config: &crate::Config) -> Result<Arc<ModelManager>, ServingError> {
        let repository = Repository::open(&config.models.root, config.models.options.clone())?;
        let engine = Engine::init(config.onnx.library.as_deref(), config.onnx.intra_op_threads)?;
        Ok(ModelManager::new(
            repository,
            engine,
            config.onnx.instances,
            config.limits.clone(),
        ))
    }

    /// A manager over `repository` running models on `engine` with `instances` sessions per loaded
    /// version. Loads nothing.
    pub fn new(
        repository: Repository,
        engine: Engine,
        instances: usize,
        limits: LimitsConfig,
    ) -> Arc<ModelManager> {
        metrics::describe_histogram!(
            INFERENCE_SECONDS,
            metrics::Unit::Seconds,
            "Inference requests by model and version, queue included"
        );
        metrics::describe_counter!(
            INFERENCE_ERRORS,
            "Failed inference requests by model, version and gRPC code"
        );
        metrics::describe_histogram!(BATCH_ROWS, "Rows per engine call after dynamic batching");
        Arc::new(ModelManager {
            repository,
            engine,
            instances: instances.max(1),
            limits,
            models: RwLock::new(BTreeMap::new()),
            loads: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
        })
    }

    /// Whether every model of [`ModelManager::load_at_start`] is loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The model repository.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, ModelEntry>> {
        self.models.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, ModelEntry>> {
        self.models.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn loaded(&self, name: &str, version: &str) -> Option<Arc<LoadedModel>> {
        self.read()
            .get(name)
            .and_then(|entry| entry.versions.get(version))
            .and_then(|entry| entry.loaded.clone())
    }

    fn set_state(&self, name: &str, version: &str, state: VersionState, reason: Option<String>) {
        let mut models = self.write();
        let entry = models.entry(name.to_owned()).or_default();
        let version_entry = entry
            .versions
            .entry(version.to_owned())
            .or_insert(VersionEntry {
                state,
                reason: None,
                loaded: None,
            });
        version_entry.state = state;
        version_entry.reason = reason;
    }

    /// Fetches, parses, builds the sessions, checks the reference pair and starts the batcher.
    async fn build(&self, name: &str, version: &str) -> Result<LoadedModel, ServingError> {
        let what = describe(name, version);
        let text = self.repository.spec_text(name, version).await?;
        let spec_url = self
            .repository
            .url_of(&format!("{name}/{version}/{SPEC_FILE}"));
        let spec = spec::parse(&spec_url, &text).map_err(|errors| {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            ServingError::bad_model(format!(
                "{what}: model.yaml is invalid: {}",
                errors.join("; ")
            ))
        })?;
        let artifact = self.repository.file(name, version, &spec.artifact).await?;
        let engine = self.engine.clone();
        let instances = self.instances;
        let blocking_what = what.clone();
        let (spec, sessions) = tokio::task::spawn_blocking(move || {
            let mut sessions = Vec::with_capacity(instances);
            for _ in 0..instances {
                sessions.push(engine.session(&blocking_what, &artifact, &spec)?);
            }
            if let (Some(reference), Some(session)) = (&spec.reference, sessions.first_mut()) {
                check_reference(&blocking_what, &spec, reference, session)?;
            }
            Ok::<_, ServingError>((spec, sessions))
        })
        .await
        .map_err(|err| ServingError::internal(format!("loading {what} stopped: {err}")))??;
        let label = format!("{name}:{version}");
        let labels = [("model", name.to_owned()), ("version", version.to_owned())];
        let options = BatcherOptions {
            label: label.clone(),
            max_batch_size: if spec.batchable() {
                spec.batching.max_batch_size
            } else {
                0
            },
            max_delay: spec.batching.max_delay,
            max_queued_requests: self.limits.max_queued_requests,
            batch_rows: metrics::histogram!(BATCH_ROWS, &labels),
        };
        let batcher = Batcher::start(sessions, options)?;
        Ok(LoadedModel {
            name: name.to_owned(),
            version: version.to_owned(),
            spec,
            batcher,
            max_batch_rows: self.limits.max_batch_rows,
            latency: metrics::histogram!(INFERENCE_SECONDS, &labels),
        })
    }
}

/// Runs the reference inputs and compares the outputs; BAD_MODEL naming the first difference.
fn check_reference(
    what: &str,
    spec: &ModelSpec,
    reference: &spec::Reference,
    session: &mut Session,
) -> Result<(), ServingError> {
    let mut inputs = Vec::with_capacity(spec.inputs.len());
    for declared in &spec.inputs {
        let tensor = reference
            .inputs
            .iter()
            .find(|tensor| tensor.name == declared.name)
            .ok_or_else(|| {
                ServingError::bad_model(format!(
                    "{what}: the reference has no input `{}`",
                    declared.name
                ))
            })?;
        inputs.push(tensor.clone());
    }
    let outputs = session.run(&inputs).map_err(|err| {
        ServingError::bad_model(format!(
            "{what}: the engine failed on the reference inputs: {err}"
        ))
    })?;
    for expected in &reference.outputs {
        let Some(actual) = outputs.iter().find(|output| output.name == expected.name) else {
            continue;
        };
        if let Err(difference) = compare(expected, actual, reference.tolerance) {
            return Err(ServingError::bad_model(format!(
                "{what} fails its reference check: output `{}` {difference}; the artifact does not compute what model.yaml's `reference` says: export it again or fix the reference",
                expected.name
            )));
        }
    }
    Ok(())
}

/// `Err` describing the first difference between the expected and the actual output.
fn compare(expected: &Tensor, actual: &Tensor, tolerance: f64) -> Result<(), String> {
    if expected.shape != actual.shape {
        return Err(format!(
            "has the shape {:?}, the reference {:?}",
            actual.shape, expected.shape
        ));
    }
    fn first_difference<T: PartialEq + std::fmt::Debug>(
        expected: &[T],
        actual: &[T],
        equal: impl Fn(&T, &T) -> bool,
    ) -> Result<(), String> {
        match expected
            .iter()
            .zip(actual)
            .position(|(expected, actual)| !equal(expected, actual))
        {
            Some(index) => Err(format!(
                "element {index} is {:?}, the reference {:?}",
                actual[index], expected[index]
            )),
            None => Ok(()),
        }
    }
    let close = |expected: f64, actual: f64| {
        (expected - actual).abs() <= tolerance || (expected.is_nan() && actual.is_nan())
    };
    match (&expected.data, &actual.data) {
        (TensorData::Fp32(expected), TensorData::Fp32(actual)) => {
            first_difference(expected, actual, |e, a| close(f64::from(*e), f64::from(*a)))
        }
        (TensorData::Fp64(expected), TensorData::Fp64(actual)) => {
            first_difference(expected, actual, |e, a| close(*e, *a))
        }
        (TensorData::Int32(expected), TensorData::Int32(actual)) => {
            first_difference(expected, actual, PartialEq::eq)
        }
        (TensorData::Int64(expected), TensorData::Int64(actual)) => {
            first_difference(expected, actual, PartialEq::eq)
        }
        (TensorData::Bool(expected), TensorData::Bool(actual)) => {
            first_difference(expected, actual, PartialEq::eq)
        }
        (TensorData::Bytes(expected), TensorData::Bytes(actual)) => {
            first_difference(expected, actual, PartialEq::eq)
        }
        (expected, actual) => Err(format!(
            "is {}, the reference {}",
            actual.datatype(),
            expected.datatype()
        )),
    }
}

fn check_segment(value: &str, field: &str) -> Result<(), ServingError> {
    let valid = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with(['.', '_'])
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ServingError::invalid(
            field,
            format!(
                "`{value}` is not a model {field}: use 1 to 128 of a-z, A-Z, 0-9, `.`, `_`, `-`, not starting with `.` or `_`"
            ),
        ))
    }
}

fn loaded_names(models: &BTreeMap<String, ModelEntry>) -> String {
    let names: Vec<&str> = models
        .iter()
        .filter(|(_, entry)| entry.serving.is_some())
        .map(|(name, _)| name.as_str())
        .collect();
    list_or_none(&names)
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests;
