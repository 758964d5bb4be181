//! `inference.GRPCInferenceService`: health, metadata, ModelInfer and the model repository extension.
//! Outputs always go back as `raw_output_contents`, as Triton sends them (`tritonclient[grpc]` reads no
//! other form for numeric tensors). A method the client knows but this server does not (Triton's
//! ModelConfig, ModelStatistics, streaming...) answers UNIMPLEMENTED.

use std::collections::HashMap;
use std::sync::Arc;

use plinth_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use plinth_proto::inference::model_metadata_response::TensorMetadata as TensorMetadataProto;
use plinth_proto::inference::repository_index_response::ModelIndex;
use plinth_proto::inference::{
    InferParameter, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ModelRepositoryParameter,
    RepositoryIndexRequest, RepositoryIndexResponse, RepositoryModelLoadRequest,
    RepositoryModelLoadResponse, RepositoryModelUnloadRequest, RepositoryModelUnloadResponse,
    ServerLiveRequest, ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse,
    ServerReadyRequest, ServerReadyResponse, infer_parameter, model_repository_parameter,
};
use tonic::{Request, Response, Status};

use super::{InferCall, TensorMetadata, codec};
use crate::error::ServingError;
use crate::models::ModelManager;

/// The OIP V2 gRPC service over the model manager.
#[derive(Debug, Clone)]
pub struct OipServer {
    manager: Arc<ModelManager>,
}

/// The gRPC service, decoding and encoding messages of up to `max_message_bytes`.
pub fn server(
    manager: Arc<ModelManager>,
    max_message_bytes: usize,
) -> GrpcInferenceServiceServer<OipServer> {
    GrpcInferenceServiceServer::new(OipServer { manager })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}

fn tensor_metadata(tensors: Vec<TensorMetadata>) -> Vec<TensorMetadataProto> {
    tensors
        .into_iter()
        .map(|t| TensorMetadataProto {
            name: t.name,
            datatype: t.datatype.to_owned(),
            shape: t.shape,
        })
        .collect()
}

/// The version a repository request selects with its `version` parameter (a string or an int64);
/// any parameter other than those in `accepted` is INVALID_ARGUMENT.
fn repository_version(
    parameters: &HashMap<String, ModelRepositoryParameter>,
    accepted: &[&str],
) -> Result<Option<String>, ServingError> {
    use model_repository_parameter::ParameterChoice;
    let mut version = None;
    for (key, value) in parameters {
        match (key.as_str(), &value.parameter_choice) {
            ("version", Some(ParameterChoice::StringParam(v))) if !v.is_empty() => {
                version = Some(v.clone());
            }
            ("version", Some(ParameterChoice::Int64Param(v))) => version = Some(v.to_string()),
            ("version", _) => {
                return Err(ServingError::invalid(
                    "parameters.version",
                    "must be a non-empty string_param or an int64_param naming the version",
                ));
            }
            (key, _) if accepted.contains(&key) => {}
            ("config", _) => {
                return Err(ServingError::invalid(
                    "parameters.config",
                    "a configuration override is not supported: the model's model.yaml in the \
                     repository describes it",
                ));
            }
            (key, _) if key.starts_with("file:") => {
                return Err(ServingError::invalid(
                    format!("parameters.{key}"),
                    "model files cannot be sent with the request: write the version to the \
                     model repository and load it by name",
                ));
            }
            (key, _) => {
                return Err(ServingError::invalid(
                    format!("parameters.{key}"),
                    format!(
                        "unknown parameter: the accepted ones are {}",
                        accepted.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(version)
}

/// INVALID_ARGUMENT for output parameters this server does not support (Triton's classification).
fn check_output_parameters(
    index: usize,
    parameters: &HashMap<String, InferParameter>,
) -> Result<(), ServingError> {
    use infer_parameter::ParameterChoice;
    for (key, value) in parameters {
        let zero = matches!(
            value.parameter_choice,
            Some(ParameterChoice::Int64Param(0) | ParameterChoice::Uint64Param(0))
        );
        if key == "classification" && !zero {
            return Err(ServingError::invalid(
                format!("outputs[{index}].parameters.classification"),
                "the classification extension is not supported: ask for the output itself",
            ));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl GrpcInferenceService for OipServer {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.manager.is_ready(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let ready = super::model_ready(
            &self.manager,
            &request.name,
            super::version_arg(&request.version),
        )?;
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: super::SERVER_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            extensions: super::EXTENSIONS.iter().map(|e| (*e).to_owned()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let metadata = super::model_metadata(
            &self.manager,
            &request.name,
            super::version_arg(&request.version),
        )
        .await?;
        Ok(Response::new(ModelMetadataResponse {
            name: metadata.name,
            versions: metadata.versions,
            platform: metadata.platform.to_owned(),
            inputs: tensor_metadata(metadata.inputs),
            outputs: tensor_metadata(metadata.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let mut request = request.into_inner();
        let inputs = codec::decode_infer_request(&mut request)?;
        let mut outputs = Vec::with_capacity(request.outputs.len());
        for (i, output) in request.outputs.iter().enumerate() {
            check_output_parameters(i, &output.parameters)?;
            outputs.push(output.name.clone());
        }
        let call = InferCall {
            model: &request.model_name,
            version: super::version_arg(&request.model_version),
            inputs,
            outputs,
        };
        let (model, outputs) = super::infer(&self.manager, call).await?;
        let (outputs, raw_output_contents) = codec::encode_outputs(outputs);
        Ok(Response::new(ModelInferResponse {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            id: request.id,
            parameters: HashMap::new(),
            outputs,
            raw_output_contents,
        }))
    }

    async fn repository_index(
        &self,
        request: Request<RepositoryIndexRequest>,
    ) -> Result<Response<RepositoryIndexResponse>, Status> {
        let request = request.into_inner();
        let models = super::repository_index(&self.manager, request.ready)
            .await?
            .into_iter()
            .map(|entry| ModelIndex {
                name: entry.name,
                version: entry.version,
                state: entry.state.to_owned(),
                reason: entry.reason,
            })
            .collect();
        Ok(Response::new(RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        request: Request<RepositoryModelLoadRequest>,
    ) -> Result<Response<RepositoryModelLoadResponse>, Status> {
        let request = request.into_inner();
        let version = repository_version(&request.parameters, &["version"])?;
        self.manager
            .load(&request.model_name, version.as_deref())
            .await?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<RepositoryModelUnloadRequest>,
    ) -> Result<Response<RepositoryModelUnloadResponse>, Status> {
        let request = request.into_inner();
        // `unload_dependents` (sent by tritonclient on every unload) has no meaning without
        // ensembles: accepted and ignored.
        let version = repository_version(&request.parameters, &["version", "unload_dependents"])?;
        self.manager
            .unload(&request.model_name, version.as_deref())
            .await?;
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }
}
