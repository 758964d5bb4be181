//! The Open Inference Protocol V2 (KServe's "V2", Triton's protocol) over gRPC ([`grpc`],
//! `inference.GRPCInferenceService`) and REST ([`rest`], `/v2/...`), written to the published
//! specification so that existing clients (`tritonclient[grpc]`, `tritonclient[http]`, KServe's) work
//! unchanged, with Triton's model repository extension (index, load, unload) and, over REST, its binary
//! tensor data extension.
//!
//! Both front ends share what is here: the server's identity, the model metadata, the repository
//! index, the check of the requested outputs and the call into [`crate::models::LoadedModel::infer`].
//! The wire formats live in `codec` (protobuf typed and raw contents) and `json` (REST JSON and binary
//! tensor data); neither touches the model manager.
//!
//! Responses carry outputs the way Triton does: over gRPC always as `raw_output_contents` (the only form
//! `tritonclient[grpc]` reads for numeric tensors), over REST as JSON `data` unless the request asks for
//! binary data (`binary_data` on an output, `binary_data_output` on the request).

use std::sync::Arc;

use crate::error::ServingError;
use crate::models::{LoadedModel, ModelManager, VersionState};
use crate::spec::TensorSpec;
use crate::tensor::Tensor;

pub(crate) mod codec;
pub mod grpc;
pub(crate) mod json;
pub mod rest;

/// The server's name in ServerMetadata.
pub const SERVER_NAME: &str = "plinth-serving";

/// The protocol extensions this server supports, in ServerMetadata.
pub const EXTENSIONS: [&str; 2] = ["model_repository", "binary_tensor_data"];

/// The platform of every model in ModelMetadata (Triton's name for ONNX Runtime models).
pub const PLATFORM: &str = "onnxruntime_onnx";

/// The version a request names: the protocol's empty string means "the server's choice", here the
/// serving version.
pub(crate) fn version_arg(version: &str) -> Option<&str> {
    (!version.is_empty()).then_some(version)
}

/// One tensor of the model metadata.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorMetadata {
    pub(crate) name: String,
    pub(crate) datatype: &'static str,
    pub(crate) shape: Vec<i64>,
}

impl From<&TensorSpec> for TensorMetadata {
    fn from(spec: &TensorSpec) -> Self {
        TensorMetadata {
            name: spec.name.clone(),
            datatype: spec.datatype.name(),
            shape: spec.shape.clone(),
        }
    }
}

/// ModelMetadata of both front ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelMetadata {
    pub(crate) name: String,
    pub(crate) versions: Vec<String>,
    pub(crate) platform: &'static str,
    pub(crate) inputs: Vec<TensorMetadata>,
    pub(crate) outputs: Vec<TensorMetadata>,
}

/// The metadata of `name` at `version` (the serving version when `None`): its signature, and every
/// loaded version of the model.
pub(crate) async fn model_metadata(
    manager: &ModelManager,
    name: &str,
    version: Option<&str>,
) -> Result<ModelMetadata, ServingError> {
    let model = manager.get(name, version)?;
    let mut versions: Vec<String> = manager
        .list(name)
        .await?
        .into_iter()
        .filter(|status| status.name == name)
        .flat_map(|status| status.versions)
        .filter(|version| version.state == VersionState::Ready)
        .map(|version| version.version)
        .collect();
    if !versions.contains(&model.version) {
        versions.push(model.version.clone());
    }
    Ok(ModelMetadata {
        name: model.name.clone(),
        versions,
        platform: PLATFORM,
        inputs: model.spec.inputs.iter().map(TensorMetadata::from).collect(),
        outputs: model
            .spec
            .outputs
            .iter()
            .map(TensorMetadata::from)
            .collect(),
    })
}

/// Whether `name` at `version` answers requests: false for a model or version that is unknown, loading
/// or failed; other errors are errors.
pub(crate) fn model_ready(
    manager: &ModelManager,
    name: &str,
    version: Option<&str>,
) -> Result<bool, ServingError> {
    match manager.get(name, version) {
        Ok(_) => Ok(true),
        Err(ServingError::NotFound { .. } | ServingError::FailedPrecondition { .. }) => Ok(false),
        Err(err) => Err(err),
    }
}

/// One row of the repository index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexEntry {
    pub(crate) name: String,
    pub(crate) version: String,
    /// `READY`, `LOADING` or `UNAVAILABLE` (Triton's states).
    pub(crate) state: &'static str,
    pub(crate) reason: String,
}

/// Every model version in the repository or loaded, with its state; only the ready ones when
/// `ready_only`.
pub(crate) async fn repository_index(
    manager: &ModelManager,
    ready_only: bool,
) -> Result<Vec<IndexEntry>, ServingError> {
    let mut entries = Vec::new();
    for model in manager.list("").await? {
        for version in model.versions {
            let (state, reason) = match version.state {
                VersionState::Ready => ("READY", String::new()),
                VersionState::Loading => ("LOADING", String::new()),
                VersionState::Available => ("UNAVAILABLE", "not loaded".to_owned()),
                VersionState::Failed => (
                    "UNAVAILABLE",
                    version
                        .reason
                        .unwrap_or_else(|| "the last load failed".to_owned()),
                ),
            };
            if ready_only && state != "READY" {
                continue;
            }
            entries.push(IndexEntry {
                name: model.name.clone(),
                version: version.version,
                state,
                reason,
            });
        }
    }
    Ok(entries)
}

/// A decoded inference request, the same for both front ends.
#[derive(Debug)]
pub(crate) struct InferCall<'a> {
    pub(crate) model: &'a str,
    pub(crate) version: Option<&'a str>,
    pub(crate) inputs: Vec<Tensor>,
    /// The outputs asked for, in the order to return them; empty: every output in spec order.
    pub(crate) outputs: Vec<String>,
}

/// Finds the model, checks the requested outputs against the model's, runs it (the model checks the
/// inputs and the row limit), and returns the model with the outputs asked for, in the order asked.
pub(crate) async fn infer(
    manager: &ModelManager,
    call: InferCall<'_>,
) -> Result<(Arc<LoadedModel>, Vec<Tensor>), ServingError> {
    let model = manager.get(call.model, call.version)?;
    let mut wanted = Vec::with_capacity(call.outputs.len());
    for (i, name) in call.outputs.iter().enumerate() {
        let Some(index) = model.spec.outputs.iter().position(|out| &out.name == name) else {
            return Err(ServingError::invalid(
                format!("outputs[{i}].name"),
                format!(
                    "model `{}` version `{}` has no output `{name}`; its outputs are {}",
                    model.name,
                    model.version,
                    names(&model.spec.outputs)
                ),
            ));
        };
        if wanted.contains(&index) {
            return Err(ServingError::invalid(
                format!("outputs[{i}].name"),
                format!("output `{name}` is requested twice: name each output once"),
            ));
        }
        wanted.push(index);
    }
    let mut outputs = model.infer(call.inputs).await?;
    if wanted.is_empty() {
        return Ok((model, outputs));
    }
    let mut chosen = Vec::with_capacity(wanted.len());
    for index in wanted {
        let name = &model.spec.outputs[index].name;
        let position = outputs
            .iter()
            .position(|out| &out.name == name)
            .ok_or_else(|| {
                ServingError::internal(format!(
                    "model `{}` version `{}` returned no output `{name}`",
                    model.name, model.version
                ))
            })?;
        chosen.push(outputs.swap_remove(position));
    }
    Ok((model, chosen))
}

/// `` `a`, `b` `` for messages.
fn names(specs: &[TensorSpec]) -> String {
    let names: Vec<String> = specs
        .iter()
        .map(|spec| format!("`{}`", spec.name))
        .collect();
    names.join(", ")
}
