//! Training sets from a `TrainingSetRequest`: the selection resolved for offline use, the entity rows
//! opened (a lake dataset, a Parquet URL, or inline Arrow IPC), and the point-in-time join run into a
//! lake dataset (GetTrainingSet) or a stream (Arrow Flight DoGet).

use arrow::ipc::reader::StreamReader;
use futures::stream::BoxStream;
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::ids::DatasetName;
use plinth_runtime::error::ApiError;

use crate::api::convert::selection_from_proto;
use crate::feature_store::FeatureStore;
use crate::offline::OfflineError;
use crate::offline::plan::TrainingSetPlan;
use crate::offline::training_set::{
    EntityInput, OutputSink, build_training_set, stream_training_set,
};

/// The plan and entity input of a request.
fn prepare(
    store: &FeatureStore,
    request: pb::TrainingSetRequest,
) -> Result<(TrainingSetPlan, EntityInput), ApiError> {
    let selection = selection_from_proto(request.features.as_ref(), "training_set.features")?;
    let (project, selected) = store.resolve_offline(&selection)?;
    let mut plan = TrainingSetPlan::new(
        &project,
        &selected,
        request.short_feature_names,
        request.filter_by_created_timestamp,
    )
    .map_err(crate::error::offline)?;
    if !request.event_timestamp_column.is_empty() {
        plan.entity_timestamp_column = request.event_timestamp_column;
    }
    let entities = match request.entities {
        Some(pb::training_set_request::Entities::EntityDataset(dataset)) => {
            EntityInput::LakeDataset(dataset.as_str().to_owned())
        }
        Some(pb::training_set_request::Entities::EntityUrl(url)) if !url.is_empty() => {
            EntityInput::ParquetUrl(url)
        }
        Some(pb::training_set_request::Entities::EntityArrowIpc(bytes)) if !bytes.is_empty() => {
            let reader =
                StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|err| {
                    ApiError::invalid_argument(
                        "ENTITY_ROWS_INVALID",
                        format!("`entity_arrow_ipc` is not an Arrow IPC stream: {err}"),
                    )
                    .with_field("training_set.entity_arrow_ipc", "an Arrow IPC stream")
                })?;
            let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|err| {
                ApiError::invalid_argument(
                    "ENTITY_ROWS_INVALID",
                    format!("`entity_arrow_ipc` does not decode: {err}"),
                )
                .with_field("training_set.entity_arrow_ipc", "an Arrow IPC stream")
            })?;
            EntityInput::Batches(batches)
        }
        _ => {
            return Err(ApiError::required(
                "training_set.entities",
                "give the entity rows as a lake dataset, a Parquet URL or an Arrow IPC stream",
            ));
        }
    };
    Ok((plan, entities))
}

/// Builds the training set into the lake dataset `output`.
pub(crate) async fn build_to_dataset(
    store: &FeatureStore,
    request: pb::TrainingSetRequest,
    output: DatasetName,
) -> Result<pb::GetTrainingSetResponse, ApiError> {
    let (plan, entities) = prepare(store, request)?;
    let columns: Vec<String> = plan
        .views
        .iter()
        .flat_map(|view| {
            view.features
                .iter()
                .map(|feature| feature.output_name.clone())
        })
        .collect();
    let summary = build_training_set(
        store.offline(),
        plan,
        entities,
        OutputSink::LakeDataset(output.as_str().to_owned()),
    )
    .await
    .map_err(crate::error::offline)?;
    Ok(pb::GetTrainingSetResponse {
        output_url: summary.output_url.unwrap_or_default(),
        row_count: i64::try_from(summary.rows).unwrap_or(i64::MAX),
        columns,
    })
}

/// The training set as a stream of batches.
pub(crate) fn stream(
    store: &FeatureStore,
    request: pb::TrainingSetRequest,
) -> Result<BoxStream<'static, Result<arrow::record_batch::RecordBatch, OfflineError>>, ApiError> {
    let (plan, entities) = prepare(store, request)?;
    Ok(stream_training_set(store.offline().clone(), plan, entities))
}
