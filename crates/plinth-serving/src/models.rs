//! The loaded models: per model name, its versions with their state, and the version that serves
//! requests naming no version. A load fetches the files, parses `model.yaml`, builds the sessions, runs
//! the reference pair, and only then switches the serving version (requests in flight on the old version
//! finish on it); a failed load leaves the serving version as it was and records the reason.

use std::sync::Arc;

use crate::config::ModelRef;
use crate::error::ServingError;
use crate::spec::ModelSpec;
use crate::tensor::Tensor;

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
}

impl LoadedModel {
    /// Runs the model on `inputs` (every declared input, by name, any order), through the model's
    /// batcher. Checks names, data types and shapes against the spec and the row limit first
    /// (INVALID_ARGUMENT / RESOURCE_EXHAUSTED naming the tensor). Returns every output of the spec, in
    /// spec order, with the inputs' row count as first dimension.
    pub async fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ServingError> {
        let _ = inputs;
        Err(ServingError::internal(
            "LoadedModel::infer is not built yet",
        ))
    }
}

/// All models of this server.
#[derive(Debug)]
pub struct ModelManager {}

impl ModelManager {
    /// Loads `name` at `version` (`None`: the latest complete version) and makes it the serving
    /// version. NOT_FOUND when the model or version is not in the repository (listing what is),
    /// BAD_MODEL with the reason when it does not load or fails its reference check.
    pub async fn load(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<LoadedModel>, ServingError> {
        let _ = (name, version);
        Err(ServingError::internal(
            "ModelManager::load is not built yet",
        ))
    }

    /// Unloads `version` of `name`, or every version when `None`; returns the versions unloaded.
    /// Requests in flight finish. When the serving version is unloaded and another is loaded, the
    /// newest loaded one serves.
    pub async fn unload(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<String>, ServingError> {
        let _ = (name, version);
        Err(ServingError::internal(
            "ModelManager::unload is not built yet",
        ))
    }

    /// The loaded `version` of `name`, or its serving version when `None`. NOT_FOUND for an unknown
    /// model or version (listing the loaded ones), FAILED_PRECONDITION when it is loading or failed.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, ServingError> {
        let _ = (name, version);
        Err(ServingError::internal("ModelManager::get is not built yet"))
    }

    /// Every model in the repository or loaded here whose name starts with `prefix`, by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ModelStatus>, ServingError> {
        let _ = prefix;
        Err(ServingError::internal(
            "ModelManager::list is not built yet",
        ))
    }

    /// Loads the configured models (and every model's latest version when `all`); fails with the first
    /// model that does not load.
    pub async fn load_at_start(&self, refs: &[ModelRef], all: bool) -> Result<(), ServingError> {
        let _ = (refs, all);
        Err(ServingError::internal(
            "ModelManager::load_at_start is not built yet",
        ))
    }
}

impl ModelManager {
    /// The manager for `config`: the repository at `models.root` and ONNX Runtime loaded from
    /// `onnx.library` (UNAVAILABLE naming the path when the library cannot be loaded). Loads nothing.
    pub fn from_config(config: &crate::Config) -> Result<Arc<ModelManager>, ServingError> {
        let _ = config;
        Err(ServingError::internal(
            "ModelManager::from_config is not built yet",
        ))
    }

    /// Whether every model of [`ModelManager::load_at_start`] is loaded.
    pub fn is_ready(&self) -> bool {
        false
    }
}
