//! Predictions by entity key: a model's `features` block (`model.yaml`) names the entity join keys and
//! the `view:feature` columns of its input tensor; [`Predictor::predict_by_key`] checks the client's
//! entity rows against it, reads the features from the feature store (`GetOnlineFeatures`, within the
//! peer's deadline), fills missing, null or expired values from the model's defaults, runs the model once
//! on every row that has all its features, and answers one [`pb::KeyPrediction`] per row, in order.
//!
//! A row whose every feature is NOT_FOUND is `ENTITY_NOT_FOUND`; a row with a feature missing and no
//! default is `MISSING_FEATURES` (listing them); neither reaches the model.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_proto::featurestore::v1 as fs;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;
use plinth_proto::inference::InferTensorContents;
use plinth_proto::serving::v1 as pb;
use plinth_runtime::client::AuthChannel;
use plinth_runtime::config::PeerConfig;

use crate::config::LimitsConfig;
use crate::error::ServingError;
use crate::models::ModelManager;
use crate::monitor::{Monitor, PredictionEvent};
use crate::spec::FeatureSpec;
use crate::tensor::{DataType, Tensor, TensorData};

/// The feature store as PredictByKey calls it: a lazily connected channel (the first call connects, so
/// the server starts while the feature store is down), its URL for messages and the call deadline.
#[derive(Debug, Clone)]
pub struct FeatureStoreClient {
    client: FeatureStoreServiceClient<AuthChannel>,
    url: String,
    timeout: Duration,
}

impl FeatureStoreClient {
    /// A client of the feature store at `peer` (its token, CA and timeout). Connects on first use.
    /// INVALID_ARGUMENT at `feature_store.<key>` when the URL, token file or CA is unusable.
    pub fn new(peer: &PeerConfig) -> Result<Self, ServingError> {
        let channel = peer.connect_lazy().map_err(|err| {
            ServingError::invalid("feature_store", format!("cannot use {}: {err}", peer.url))
        })?;
        Ok(FeatureStoreClient {
            client: FeatureStoreServiceClient::new(channel),
            url: peer.url.to_string(),
            timeout: peer.timeout,
        })
    }

    /// Reads `features` for the entity rows, full feature names (`view__feature`), within the deadline.
    async fn online_features(
        &self,
        model: &str,
        features: &[String],
        entities: HashMap<String, fs::RepeatedValue>,
    ) -> Result<fs::GetOnlineFeaturesResponse, ServingError> {
        let request = fs::GetOnlineFeaturesRequest {
            features: Some(fs::FeatureSelection {
                selection: Some(fs::feature_selection::Selection::Features(
                    fs::FeatureList {
                        refs: features.to_vec(),
                    },
                )),
            }),
            entities,
            full_feature_names: true,
        };
        let mut client = self.client.clone();
        // The channel carries the same deadline; this bounds the call even if a connection hangs
        // half-open between the two.
        let call = tokio::time::timeout(self.timeout, client.get_online_features(request));
        match call.await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.status_error(model, &status)),
            Err(_) => Err(ServingError::DeadlineExceeded {
                message: format!(
                    "feature store at {}: no answer within {:?} (feature_store.timeout)",
                    self.url, self.timeout
                ),
            }),
        }
    }

    /// Maps the feature store's answer to ours, naming the feature store and the cause.
    fn status_error(&self, model: &str, status: &tonic::Status) -> ServingError {
        let url = &self.url;
        let cause = status_cause(status);
        match status.code() {
            tonic::Code::InvalidArgument => ServingError::invalid(
                "entities",
                format!("the feature store at {url} refused the entity keys: {cause}"),
            ),
            tonic::Code::NotFound => ServingError::FailedPrecondition {
                message: format!(
                    "model `{model}` reads features that the feature store at {url} does not have: \
                     {cause}; apply the feature definitions or fix the model's `features` block"
                ),
            },
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                ServingError::DeadlineExceeded {
                    message: format!(
                        "feature store at {url}: no answer within {:?} (feature_store.timeout): \
                         {cause}",
                        self.timeout
                    ),
                }
            }
            tonic::Code::ResourceExhausted => ServingError::ResourceExhausted {
                message: format!("feature store at {url}: {cause}"),
            },
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                ServingError::Unavailable {
                    message: format!(
                        "feature store at {url} refused this server ({:?}): {cause}; check \
                         feature_store.token",
                        status.code()
                    ),
                }
            }
            _ => ServingError::Unavailable {
                message: format!(
                    "feature store at {url}: {cause}; check feature_store.url and that the feature \
                     store is running"
                ),
            },
        }
    }
}

/// A status's message with the innermost transport cause (connection refused, ...).
fn status_cause(status: &tonic::Status) -> String {
    let mut cause = status.message().to_owned();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        let text = err.to_string();
        if !cause.contains(&text) {
            cause = format!("{cause}: {text}");
        }
        source = err.source();
    }
    if cause.is_empty() {
        format!("{:?}", status.code())
    } else {
        cause
    }
}

/// Predicts by entity key.
#[derive(Debug)]
pub struct Predictor {
    manager: Arc<ModelManager>,
    feature_store: FeatureStoreClient,
    monitor: Option<Monitor>,
    max_batch_rows: usize,
}

/// What one entity row's features came to.
enum RowOutcome {
    /// Every feature has a value; the row is `index` of the batch sent to the model.
    Predict { index: usize },
    /// No feature of the key exists.
    EntityNotFound,
    /// These features are missing without a default.
    Missing(Vec<String>),
}

impl Predictor {
    /// A predictor over the loaded models, reading features from `feature_store` and logging sampled
    /// predictions to `monitor`.
    pub fn new(
        manager: Arc<ModelManager>,
        feature_store: FeatureStoreClient,
        monitor: Option<Monitor>,
        limits: &LimitsConfig,
    ) -> Self {
        Predictor {
            manager,
            feature_store,
            monitor,
            max_batch_rows: limits.max_batch_rows,
        }
    }

    /// The models this predictor serves.
    pub fn manager(&self) -> &Arc<ModelManager> {
        &self.manager
    }

    /// One prediction per entity row of `request`, in order.
    pub async fn predict_by_key(
        &self,
        request: pb::PredictByKeyRequest,
    ) -> Result<pb::PredictByKeyResponse, ServingError> {
        let started = Instant::now();
        let pb::PredictByKeyRequest {
            model: name,
            version,
            entities,
            include_features,
            request_id,
        } = request;
        let version = (!version.is_empty()).then_some(version.as_str());
        let model = self.manager.get(&name, version)?;
        let spec = model.spec.features.as_ref().ok_or_else(|| ServingError::FailedPrecondition {
            message: format!(
                "model `{}` version {} has no `features` block in model.yaml, so it cannot predict \
                 by key; send its inputs through ModelInfer instead",
                model.name, model.version
            ),
        })?;
        let rows = check_entities(spec, &entities, self.max_batch_rows)?;
        let input = model
            .spec
            .inputs
            .iter()
            .find(|input| input.name == spec.input)
            .ok_or_else(|| {
                ServingError::bad_model(format!(
                    "model `{}` version {}: features.input `{}` is not one of its inputs",
                    model.name, model.version, spec.input
                ))
            })?;
        let datatype = input.datatype;
        if !matches!(datatype, DataType::Fp32 | DataType::Fp64 | DataType::Int64) {
            return Err(ServingError::bad_model(format!(
                "model `{}` version {}: input `{}` is {datatype}; features fill FP32, FP64 or \
                 INT64 inputs only",
                model.name, model.version, input.name
            )));
        }
        let request_id = if request_id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            request_id
        };
        if rows == 0 {
            return Ok(pb::PredictByKeyResponse {
                model: model.name.clone(),
                version: model.version.clone(),
                predictions: Vec::new(),
                request_id,
            });
        }

        // Kept for the log only when this request is sampled.
        let logged_entities = self
            .monitor
            .as_ref()
            .filter(|monitor| monitor.sample())
            .map(|_| entities.clone());

        let answer = self
            .feature_store
            .online_features(&model.name, &spec.names, entities)
            .await?;
        let columns = feature_columns(spec, &answer, rows)?;

        let width = spec.names.len();
        let mut data = TensorData::with_capacity(datatype, rows * width);
        let mut outcomes = Vec::with_capacity(rows);
        let mut defaulted: Vec<Vec<String>> = vec![Vec::new(); rows];
        let mut used: Vec<HashMap<String, fs::Value>> = Vec::new();
        if include_features || logged_entities.is_some() {
            used = vec![HashMap::with_capacity(width); rows];
        }
        let mut predicted = 0usize;
        let mut row_values: Vec<Cell> = Vec::with_capacity(width);
        for (row, defaulted_row) in defaulted.iter_mut().enumerate() {
            row_values.clear();
            let mut missing = Vec::new();
            let mut not_found = 0usize;
            for (feature, column) in spec.names.iter().zip(&columns) {
                let status = column.statuses.get(row).copied().unwrap_or_default();
                let value = column.values.get(row).and_then(|value| value.val.as_ref());
                let present = status == fs::FieldStatus::Present as i32;
                if status == fs::FieldStatus::NotFound as i32 {
                    not_found += 1;
                }
                match value.filter(|_| present) {
                    Some(value) => {
                        row_values.push(cell(&model.name, feature, value)?);
                        if let Some(used) = used.get_mut(row) {
                            used.insert(
                                feature.clone(),
                                fs::Value {
                                    val: Some(value.clone()),
                                },
                            );
                        }
                    }
                    None => match spec.defaults.get(feature) {
                        Some(default) => {
                            row_values.push(Cell::Float(*default));
                            defaulted_row.push(feature.clone());
                            if let Some(used) = used.get_mut(row) {
                                used.insert(
                                    feature.clone(),
                                    fs::Value {
                                        val: Some(fs::value::Val::DoubleVal(*default)),
                                    },
                                );
                            }
                        }
                        None => missing.push(feature.clone()),
                    },
                }
            }
            if not_found == width {
                outcomes.push(RowOutcome::EntityNotFound);
                defaulted_row.clear();
                if let Some(used) = used.get_mut(row) {
                    used.clear();
                }
            } else if !missing.is_empty() {
                outcomes.push(RowOutcome::Missing(missing));
            } else {
                push_row(&mut data, &row_values);
                outcomes.push(RowOutcome::Predict { index: predicted });
                predicted += 1;
            }
        }

        let outputs = if predicted > 0 {
            let shape = vec![
                i64::try_from(predicted).unwrap_or(i64::MAX),
                i64::try_from(width).unwrap_or(i64::MAX),
            ];
            let tensor = Tensor::new(input.name.clone(), shape, data)?;
            model.infer(vec![tensor]).await?
        } else {
            Vec::new()
        };

        let mut predictions = Vec::with_capacity(rows);
        for (row, outcome) in outcomes.into_iter().enumerate() {
            let features = if include_features {
                used.get(row).cloned().unwrap_or_default()
            } else {
                HashMap::new()
            };
            let defaulted_features = std::mem::take(&mut defaulted[row]);
            let prediction = match outcome {
                RowOutcome::Predict { index } => pb::KeyPrediction {
                    status: pb::PredictionStatus::Ok.into(),
                    outputs: outputs
                        .iter()
                        .map(|output| output_row(output, index))
                        .collect::<Result<_, _>>()?,
                    features,
                    defaulted_features,
                    missing_features: Vec::new(),
                },
                RowOutcome::EntityNotFound => pb::KeyPrediction {
                    status: pb::PredictionStatus::EntityNotFound.into(),
                    outputs: Vec::new(),
                    features,
                    defaulted_features: Vec::new(),
                    missing_features: Vec::new(),
                },
                RowOutcome::Missing(missing) => pb::KeyPrediction {
                    status: pb::PredictionStatus::MissingFeatures.into(),
                    outputs: Vec::new(),
                    features,
                    defaulted_features,
                    missing_features: missing,
                },
            };
            predictions.push(prediction);
        }
        let response = pb::PredictByKeyResponse {
            model: model.name.clone(),
            version: model.version.clone(),
            predictions,
            request_id,
        };
        if let (Some(monitor), Some(entities)) = (&self.monitor, logged_entities) {
            monitor.log(PredictionEvent {
                time: chrono::Utc::now(),
                latency: started.elapsed(),
                entities,
                features: used,
                response: response.clone(),
            });
        }
        Ok(response)
    }
}

/// Checks the entity columns against the model's join keys; answers the row count.
fn check_entities(
    spec: &FeatureSpec,
    entities: &HashMap<String, fs::RepeatedValue>,
    max_rows: usize,
) -> Result<usize, ServingError> {
    for key in &spec.entities {
        if !entities.contains_key(key) {
            return Err(ServingError::invalid(
                format!("entities.{key}"),
                format!(
                    "the column is missing; this model's entity keys are [{}]",
                    spec.entities.join(", ")
                ),
            ));
        }
    }
    let mut unknown: Vec<&String> = entities
        .keys()
        .filter(|key| !spec.entities.contains(key))
        .collect();
    unknown.sort();
    if let Some(key) = unknown.first() {
        return Err(ServingError::invalid(
            format!("entities.{key}"),
            format!(
                "not an entity key of this model; send exactly [{}]",
                spec.entities.join(", ")
            ),
        ));
    }
    let mut rows = None;
    for key in &spec.entities {
        let len = entities.get(key).map_or(0, |column| column.val.len());
        match rows {
            None => rows = Some((key, len)),
            Some((first, expected)) if expected != len => {
                return Err(ServingError::invalid(
                    format!("entities.{key}"),
                    format!(
                        "has {len} values but entities.{first} has {expected}; every column \
                         holds one value per row"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let rows = rows.map_or(0, |(_, len)| len);
    if rows > max_rows {
        return Err(ServingError::ResourceExhausted {
            message: format!(
                "{rows} entity rows is more than limits.max_batch_rows ({max_rows}); split the \
                 request"
            ),
        });
    }
    Ok(rows)
}

/// The feature store's columns in the order of `spec.names`.
fn feature_columns<'a>(
    spec: &FeatureSpec,
    answer: &'a fs::GetOnlineFeaturesResponse,
    rows: usize,
) -> Result<Vec<&'a fs::FeatureVector>, ServingError> {
    let names = answer
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.feature_names.as_ref())
        .map(|names| names.val.as_slice())
        .unwrap_or_default();
    spec.names
        .iter()
        .map(|feature| {
            let full = feature.replacen(':', "__", 1);
            let column = names
                .iter()
                .position(|name| *name == full)
                .and_then(|index| answer.results.get(index))
                .ok_or_else(|| ServingError::Unavailable {
                    message: format!(
                        "the feature store's answer has no column `{full}` for feature `{feature}`"
                    ),
                })?;
            if column.statuses.len() != rows {
                return Err(ServingError::Unavailable {
                    message: format!(
                        "the feature store answered {} rows of `{feature}` for {rows} entity rows",
                        column.statuses.len()
                    ),
                });
            }
            Ok(column)
        })
        .collect()
}

/// One feature value, as read.
#[derive(Clone, Copy)]
enum Cell {
    Int(i64),
    Float(f64),
}

fn cell(model: &str, feature: &str, value: &fs::value::Val) -> Result<Cell, ServingError> {
    use fs::value::Val;
    Ok(match value {
        Val::Int64Val(v) => Cell::Int(*v),
        Val::Int32Val(v) => Cell::Int(i64::from(*v)),
        Val::DoubleVal(v) => Cell::Float(*v),
        Val::FloatVal(v) => Cell::Float(f64::from(*v)),
        Val::BoolVal(v) => Cell::Int(i64::from(*v)),
        Val::StringVal(_) | Val::BytesVal(_) | Val::UnixTimestampVal(_) => {
            return Err(ServingError::FailedPrecondition {
                message: format!(
                    "model `{model}`: feature `{feature}` is not numeric in the feature store; a \
                     model input can only be filled from int, float or bool features"
                ),
            });
        }
    })
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "feature values take the input's type, as the model was trained"
)]
fn push_row(data: &mut TensorData, row: &[Cell]) {
    match data {
        TensorData::Fp32(values) => values.extend(row.iter().map(|cell| match *cell {
            Cell::Int(v) => v as f32,
            Cell::Float(v) => v as f32,
        })),
        TensorData::Fp64(values) => values.extend(row.iter().map(|cell| match *cell {
            Cell::Int(v) => v as f64,
            Cell::Float(v) => v,
        })),
        TensorData::Int64(values) => values.extend(row.iter().map(|cell| match *cell {
            Cell::Int(v) => v,
            Cell::Float(v) => v.round() as i64,
        })),
        // The input's type was checked to be one of the three above.
        _ => {}
    }
}

/// Row `index` of a model output as a [`pb::PredictionOutput`].
fn output_row(output: &Tensor, index: usize) -> Result<pb::PredictionOutput, ServingError> {
    let row_len = output.row_len();
    let start = index * row_len;
    let end = start + row_len;
    if end > output.data.len() {
        return Err(ServingError::internal(format!(
            "output `{}` has shape {:?}; row {index} is out of range",
            output.name, output.shape
        )));
    }
    let mut contents = InferTensorContents::default();
    match &output.data {
        TensorData::Bool(v) => contents.bool_contents = v[start..end].to_vec(),
        TensorData::Int32(v) => contents.int_contents = v[start..end].to_vec(),
        TensorData::Int64(v) => contents.int64_contents = v[start..end].to_vec(),
        TensorData::Fp32(v) => contents.fp32_contents = v[start..end].to_vec(),
        TensorData::Fp64(v) => contents.fp64_contents = v[start..end].to_vec(),
        TensorData::Bytes(v) => contents.bytes_contents = v[start..end].to_vec(),
    }
    Ok(pb::PredictionOutput {
        name: output.name.clone(),
        datatype: output.datatype().name().to_owned(),
        shape: output.shape.get(1..).unwrap_or_default().to_vec(),
        contents: Some(contents),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn spec() -> FeatureSpec {
        FeatureSpec {
            service: "driver_model_v1".to_owned(),
            entities: vec!["driver_id".to_owned()],
            input: "input".to_owned(),
            names: vec!["v:a".to_owned(), "v:b".to_owned()],
            defaults: BTreeMap::from([("v:b".to_owned(), 0.5)]),
        }
    }

    fn column(values: &[i64]) -> fs::RepeatedValue {
        fs::RepeatedValue {
            val: values
                .iter()
                .map(|v| fs::Value {
                    val: Some(fs::value::Val::Int64Val(*v)),
                })
                .collect(),
        }
    }

    #[test]
    fn entity_columns_must_match_the_join_keys() {
        let ok = HashMap::from([("driver_id".to_owned(), column(&[1, 2, 3]))]);
        assert_eq!(check_entities(&spec(), &ok, 10).unwrap(), 3);

        let missing = HashMap::from([("rider_id".to_owned(), column(&[1]))]);
        let err = check_entities(&spec(), &missing, 10).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.to_string().contains("entities.driver_id"), "{err}");

        let extra = HashMap::from([
            ("driver_id".to_owned(), column(&[1])),
            ("zone".to_owned(), column(&[1])),
        ]);
        let err = check_entities(&spec(), &extra, 10).unwrap_err();
        assert!(err.to_string().contains("entities.zone"), "{err}");

        let err = check_entities(&spec(), &ok, 2).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.to_string().contains("max_batch_rows (2)"), "{err}");

        let mut two = spec();
        two.entities.push("zone".to_owned());
        let uneven = HashMap::from([
            ("driver_id".to_owned(), column(&[1, 2])),
            ("zone".to_owned(), column(&[1])),
        ]);
        let err = check_entities(&two, &uneven, 10).unwrap_err();
        assert!(err.to_string().contains("has 1 values"), "{err}");
    }

    #[test]
    fn columns_are_found_by_full_name_and_rows_take_the_input_type() {
        let answer = fs::GetOnlineFeaturesResponse {
            metadata: Some(fs::GetOnlineFeaturesResponseMetadata {
                feature_names: Some(fs::FeatureNames {
                    val: vec!["driver_id".into(), "v__b".into(), "v__a".into()],
                }),
            }),
            results: vec![
                fs::FeatureVector {
                    values: vec![fs::Value::default()],
                    statuses: vec![1],
                    event_timestamps: vec![],
                },
                fs::FeatureVector {
                    values: vec![fs::Value::default()],
                    statuses: vec![2],
                    event_timestamps: vec![],
                },
                fs::FeatureVector {
                    values: vec![fs::Value::default()],
                    statuses: vec![1],
                    event_timestamps: vec![],
                },
            ],
        };
        let columns = feature_columns(&spec(), &answer, 1).unwrap();
        assert_eq!(columns[0].statuses, [1]);
        assert_eq!(columns[1].statuses, [2]);
        assert!(feature_columns(&spec(), &answer, 2).is_err());

        let mut data = TensorData::with_capacity(DataType::Fp32, 2);
        push_row(&mut data, &[Cell::Int(3), Cell::Float(0.25)]);
        assert_eq!(data, TensorData::Fp32(vec![3.0, 0.25]));
        let mut data = TensorData::with_capacity(DataType::Int64, 2);
        push_row(&mut data, &[Cell::Int(3), Cell::Float(1.6)]);
        assert_eq!(data, TensorData::Int64(vec![3, 2]));
    }

    #[test]
    fn output_rows_are_sliced_with_the_row_shape() {
        let output = Tensor::new(
            "probabilities",
            vec![2, 2],
            TensorData::Fp32(vec![0.1, 0.9, 0.7, 0.3]),
        )
        .unwrap();
        let row = output_row(&output, 1).unwrap();
        assert_eq!(row.shape, [2]);
        assert_eq!(row.datatype, "FP32");
        assert_eq!(row.contents.unwrap().fp32_contents, [0.7, 0.3]);
        let labels = Tensor::new("label", vec![2], TensorData::Int64(vec![1, 0])).unwrap();
        let row = output_row(&labels, 1).unwrap();
        assert!(row.shape.is_empty());
        assert_eq!(row.contents.unwrap().int64_contents, [0]);
        assert!(output_row(&labels, 2).is_err());
    }
}
