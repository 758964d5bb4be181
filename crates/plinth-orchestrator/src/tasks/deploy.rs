//! `deploy-model`: asks model serving to load a version from the model repository
//! (`RepositoryModelLoad` with the `version` parameter), then checks that `ModelReady` says so.

use std::time::Duration;

use plinth_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use plinth_proto::inference::model_repository_parameter::ParameterChoice;
use plinth_proto::inference::{
    ModelReadyRequest, ModelRepositoryParameter, RepositoryModelLoadRequest,
};
use tokio::sync::watch;

use super::model_repository::check_segment;
use super::{Platform, TaskError, TaskReport, cancellable, status_error};
use crate::logs::LogWriter;

/// The service's name in messages.
pub(super) const SERVING: &str = "model serving";

/// How often `ModelReady` is asked after a load, and how many times, for a server that switches
/// versions in the background after answering the load.
const READY_POLL: Duration = Duration::from_millis(500);
const READY_ATTEMPTS: u32 = 20;

/// Loads `model` `version` on model serving and waits until it is ready.
pub(super) async fn deploy_model(
    platform: &Platform,
    model: &str,
    version: &str,
    log: &LogWriter,
    mut cancel: watch::Receiver<bool>,
) -> Result<TaskReport, TaskError> {
    check_segment(model, "model")?;
    check_segment(version, "version")?;
    let peer = platform.model_serving()?;
    let mut client = GrpcInferenceServiceClient::new(peer.channel.clone());
    log.line(&format!(
        "asking model serving at {} to load model `{model}` version `{version}`",
        peer.url
    ));
    let request = RepositoryModelLoadRequest {
        repository_name: String::new(),
        model_name: model.to_owned(),
        parameters: [(
            "version".to_owned(),
            ModelRepositoryParameter {
                parameter_choice: Some(ParameterChoice::StringParam(version.to_owned())),
            },
        )]
        .into(),
    };
    cancellable(&mut cancel, async {
        client.repository_model_load(request).await.map_err(|status| {
            if status.code() == tonic::Code::NotFound {
                TaskError::failed(format!(
                    "model serving at {} has no model `{model}` version `{version}`: {}; store it first with a `train` task (model: {model}, version: {version}) or fix `version`",
                    peer.url,
                    status.message()
                ))
            } else {
                status_error(SERVING, peer, "RepositoryModelLoad", &status)
            }
        })
    })
    .await?;
    for attempt in 1..=READY_ATTEMPTS {
        let ready = cancellable(&mut cancel, async {
            client
                .model_ready(ModelReadyRequest {
                    name: model.to_owned(),
                    version: version.to_owned(),
                })
                .await
                .map(|response| response.into_inner().ready)
                .map_err(|status| status_error(SERVING, peer, "ModelReady", &status))
        })
        .await?;
        if ready {
            log.line(&format!(
                "model `{model}` version `{version}` is loaded and ready"
            ));
            return Ok(TaskReport {
                summary: format!("deployed model `{model}` version `{version}`"),
                output_url: None,
            });
        }
        if attempt < READY_ATTEMPTS {
            cancellable(&mut cancel, async {
                tokio::time::sleep(READY_POLL).await;
                Ok(())
            })
            .await?;
        }
    }
    Err(TaskError::retryable(format!(
        "model serving at {} accepted loading model `{model}` version `{version}` but does not report it ready after {} s; see model serving's logs for why it did not load",
        peer.url,
        (READY_POLL * READY_ATTEMPTS).as_secs()
    )))
}
