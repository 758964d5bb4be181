//! `plinth.serving.v1.ServingService`: the models and their versions, load and unload, and predictions
//! by entity key ([`crate::predict`]). Errors are [`ServingError`]s turned into gRPC statuses.
//!
//! Metrics: `plinth_serving_predict_by_key_seconds{model}` (latency of answered requests) and
//! `plinth_serving_predict_by_key_errors_total{model, code}`. A model name that is not loaded here is
//! counted as `model="unknown"`, so clients cannot grow the label set.

use std::sync::Arc;
use std::time::Instant;

use plinth_proto::serving::v1 as pb;
use plinth_proto::serving::v1::serving_service_server::{ServingService, ServingServiceServer};
use tonic::{Request, Response, Status};

use crate::error::ServingError;
use crate::models::{ModelManager, ModelStatus, VersionState};
use crate::predict::Predictor;
use crate::spec::TensorSpec;

/// The ServingService of `manager`, predicting through `predictor`.
pub fn server(
    manager: Arc<ModelManager>,
    predictor: Arc<Predictor>,
) -> ServingServiceServer<ServingApi> {
    ServingServiceServer::new(ServingApi { manager, predictor })
}

/// The ServingService implementation.
#[derive(Debug, Clone)]
pub struct ServingApi {
    manager: Arc<ModelManager>,
    predictor: Arc<Predictor>,
}

#[tonic::async_trait]
impl ServingService for ServingApi {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let prefix = request.into_inner().prefix;
        let models = self.manager.list(&prefix).await?;
        Ok(Response::new(pb::ListModelsResponse {
            models: models.iter().map(model_message).collect(),
        }))
    }

    async fn load_model(
        &self,
        request: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::LoadModelResponse>, Status> {
        let request = request.into_inner();
        if request.name.is_empty() {
            return Err(ServingError::invalid("name", "name the model to load").into());
        }
        let version = (!request.version.is_empty()).then_some(request.version.as_str());
        let loaded = self.manager.load(&request.name, version).await?;
        let model = self
            .manager
            .list(&request.name)
            .await?
            .iter()
            .find(|model| model.name == request.name)
            .map(model_message);
        Ok(Response::new(pb::LoadModelResponse {
            model,
            version: loaded.version.clone(),
        }))
    }

    async fn unload_model(
        &self,
        request: Request<pb::UnloadModelRequest>,
    ) -> Result<Response<pb::UnloadModelResponse>, Status> {
        let request = request.into_inner();
        if request.name.is_empty() {
            return Err(ServingError::invalid("name", "name the model to unload").into());
        }
        let version = (!request.version.is_empty()).then_some(request.version.as_str());
        let versions = self.manager.unload(&request.name, version).await?;
        Ok(Response::new(pb::UnloadModelResponse { versions }))
    }

    async fn predict_by_key(
        &self,
        request: Request<pb::PredictByKeyRequest>,
    ) -> Result<Response<pb::PredictByKeyResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let model = request.model.clone();
        match self.predictor.predict_by_key(request).await {
            Ok(response) => {
                metrics::histogram!("plinth_serving_predict_by_key_seconds", "model" => model)
                    .record(started.elapsed().as_secs_f64());
                Ok(Response::new(response))
            }
            Err(err) => {
                // Only names of models this server knows become label values.
                let label = if self.manager.get(&model, None).is_ok() {
                    model
                } else {
                    "unknown".to_owned()
                };
                metrics::counter!(
                    "plinth_serving_predict_by_key_errors_total",
                    "model" => label,
                    "code" => code_label(err.code()),
                )
                .increment(1);
                Err(err.into())
            }
        }
    }
}

/// A short label for a status code.
fn code_label(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "invalid_argument",
        tonic::Code::NotFound => "not_found",
        tonic::Code::FailedPrecondition => "failed_precondition",
        tonic::Code::ResourceExhausted => "resource_exhausted",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline_exceeded",
        _ => "internal",
    }
}

/// A model's status as the API's message; the signature and features are the serving version's.
fn model_message(status: &ModelStatus) -> pb::Model {
    let versions = status
        .versions
        .iter()
        .map(|version| pb::ModelVersion {
            version: version.version.clone(),
            state: match version.state {
                VersionState::Available => pb::VersionState::Available,
                VersionState::Loading => pb::VersionState::Loading,
                VersionState::Ready => pb::VersionState::Ready,
                VersionState::Failed => pb::VersionState::Failed,
            }
            .into(),
            reason: version.reason.clone().unwrap_or_default(),
            serving: version.serving,
        })
        .collect();
    let mut model = pb::Model {
        name: status.name.clone(),
        versions,
        ..Default::default()
    };
    if let Some(serving) = &status.serving {
        let spec = &serving.spec;
        model.inputs = spec.inputs.iter().map(tensor_spec).collect();
        model.outputs = spec.outputs.iter().map(tensor_spec).collect();
        if let Some(features) = &spec.features {
            model.feature_service = features.service.clone();
            model.entity_keys = features.entities.clone();
            model.features = features.names.clone();
        }
    }
    model
}

fn tensor_spec(spec: &TensorSpec) -> pb::TensorSpec {
    pb::TensorSpec {
        name: spec.name.clone(),
        datatype: spec.datatype.name().to_owned(),
        shape: spec.shape.clone(),
    }
}
