//! `training-set`: asks the feature store for a point-in-time-correct training set joined onto a lake
//! dataset of entity rows, written by the feature store into a new lake dataset (`GetTrainingSet`).

use plinth_proto::common::v1::DatasetName;
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;
use tokio::sync::watch;

use super::lake::check_dataset_name;
use super::materialize::FEATURE_STORE;
use super::{Platform, TaskError, TaskReport, cancellable, status_error};
use crate::logs::LogWriter;

/// The rendered `with:` of a `training-set` task.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) feature_service: Option<&'a str>,
    pub(super) features: &'a [String],
    pub(super) entities: &'a str,
    pub(super) event_timestamp_column: Option<&'a str>,
    pub(super) output: &'a str,
}

/// Builds the training set into the lake dataset `output`.
pub(super) async fn training_set(
    platform: &Platform,
    request: Request<'_>,
    log: &LogWriter,
    mut cancel: watch::Receiver<bool>,
) -> Result<TaskReport, TaskError> {
    let selection = match (request.feature_service, request.features.is_empty()) {
        (Some(service), true) => {
            pb::feature_selection::Selection::FeatureService(service.to_owned())
        }
        (None, false) => pb::feature_selection::Selection::Features(pb::FeatureList {
            refs: request.features.to_vec(),
        }),
        (Some(_), false) => {
            return Err(TaskError::failed(
                "a training-set task takes `feature_service` or `features`, not both; keep one",
            ));
        }
        (None, true) => {
            return Err(TaskError::failed(
                "a training-set task needs `feature_service` (a registered feature service) or `features` (`view:feature` references)",
            ));
        }
    };
    check_dataset_name(request.entities, "entities")?;
    check_dataset_name(request.output, "output")?;
    let peer = platform.feature_store()?;
    let mut client = FeatureStoreServiceClient::new(peer.channel.clone());
    log.line(&format!(
        "building a training set from entity dataset `{}` with {} into dataset `{}` (feature store at {})",
        request.entities,
        match &selection {
            pb::feature_selection::Selection::FeatureService(service) => {
                format!("feature service `{service}`")
            }
            pb::feature_selection::Selection::Features(list) => {
                format!("features {}", list.refs.join(", "))
            }
        },
        request.output,
        peer.url
    ));
    let call = pb::GetTrainingSetRequest {
        training_set: Some(pb::TrainingSetRequest {
            features: Some(pb::FeatureSelection {
                selection: Some(selection),
            }),
            entities: Some(pb::training_set_request::Entities::EntityDataset(
                DatasetName::new(request.entities),
            )),
            event_timestamp_column: request
                .event_timestamp_column
                .unwrap_or_default()
                .to_owned(),
            short_feature_names: false,
            filter_by_created_timestamp: false,
        }),
        output_dataset: Some(DatasetName::new(request.output)),
    };
    let response = cancellable(&mut cancel, async {
        client
            .get_training_set(call)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status_error(FEATURE_STORE, peer, "GetTrainingSet", &status))
    })
    .await?;
    log.line(&format!(
        "wrote {} rows with feature columns {} to {}",
        response.row_count,
        response.columns.join(", "),
        response.output_url
    ));
    Ok(TaskReport {
        summary: format!(
            "training set of {} rows written to dataset `{}`",
            response.row_count, request.output
        ),
        output_url: Some(response.output_url),
    })
}
