//! The prediction log: sampled PredictByKey predictions as JSON records on a Kafka topic
//! (`plinth.serving.predictions` by default) through the data hub, one record per entity row, validated
//! against [`PREDICTION_SCHEMA`] registered under `<topic>-value`.
//!
//! Serving never waits for the log: [`Monitor::log`] puts the prediction in a bounded queue
//! (`monitoring.queue`) and returns; when the queue is full the prediction is counted in
//! `plinth_serving_predictions_dropped_total` and not logged. A background task registers the schema,
//! creates the topic bound to it when missing, and produces batches of `monitoring.batch` predictions;
//! while the registry or the data hub is down it retries the batch it holds with backoff, and the queue
//! absorbs (then drops) what comes meanwhile. Only PredictByKey is logged: an Open Inference Protocol
//! request carries no entity key or feature names, and the log is the by-key record of what a model
//! saw for an entity.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use plinth_proto::common::v1::TopicName;
use plinth_proto::datahub::v1 as datahub;
use plinth_proto::featurestore::v1 as fs;
use plinth_proto::inference::InferTensorContents;
use plinth_proto::serving::v1 as pb;
use plinth_runtime::client::AuthChannel;
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::MonitoringConfig;
use crate::error::ServingError;

/// The JSON Schema of the prediction records (subject `<topic>-value`).
pub const PREDICTION_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "plinth.serving.Prediction",
  "description": "One entity row of a PredictByKey request to Plinth model serving: the features the model saw and what it answered.",
  "type": "object",
  "properties": {
    "request_id": {"type": "string"},
    "time": {"type": "string", "format": "date-time", "description": "When the answer was made."},
    "model": {"type": "string"},
    "version": {"type": "string"},
    "row": {"type": "integer", "minimum": 0, "description": "The entity row's position in its request."},
    "entity_keys": {"type": "object", "description": "Join key name to the row's key value.", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    "features": {"type": "object", "description": "view:feature to the value the model used; absent when missing.", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    "outputs": {"type": "object", "description": "Output name to the row's values, row-major (status OK).", "additionalProperties": {"type": "array"}},
    "status": {"type": "string", "enum": ["OK", "ENTITY_NOT_FOUND", "MISSING_FEATURES"]},
    "defaulted_features": {"type": "array", "items": {"type": "string"}},
    "missing_features": {"type": "array", "items": {"type": "string"}},
    "latency_ms": {"type": "number", "minimum": 0, "description": "The request's time in the server, features and inference."}
  },
  "required": ["request_id", "time", "model", "version", "row", "entity_keys", "features", "outputs", "status", "latency_ms"],
  "additionalProperties": false
}"#;

/// The longest pause between tries while the data hub or the registry is down.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long the task keeps trying to send what it holds after the server was asked to stop.
const STOP_FLUSH: Duration = Duration::from_secs(2);

/// One logged PredictByKey request.
#[derive(Debug, Clone)]
pub struct PredictionEvent {
    /// When it was answered.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Its time in the server.
    pub latency: Duration,
    /// The entity rows, as sent.
    pub entities: HashMap<String, fs::RepeatedValue>,
    /// Per row, the feature values used (read or defaulted).
    pub features: Vec<HashMap<String, fs::Value>>,
    /// The answer.
    pub response: pb::PredictByKeyResponse,
}

/// The handle that serving logs predictions through; cheap to clone.
#[derive(Debug, Clone)]
pub struct Monitor {
    queue: mpsc::Sender<PredictionEvent>,
    sampler: Arc<Sampler>,
}

/// Picks `rate` of the requests, evenly (every 1/rate-th), without a random generator.
#[derive(Debug)]
struct Sampler {
    rate: f64,
    seen: AtomicU64,
}

impl Sampler {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "counts far below 2^52; floor of non-negative values"
    )]
    fn sample(&self) -> bool {
        if self.rate >= 1.0 {
            return true;
        }
        if self.rate <= 0.0 {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.rate).floor() > (n * self.rate).floor()
    }
}

impl Monitor {
    /// Starts the log's background task, which runs until `stop` turns true (then sends what it holds
    /// for up to 2 s). INVALID_ARGUMENT naming `monitoring.datahub` or `monitoring.registry` when their
    /// URL or credentials are unusable; the services themselves may be down (the task retries).
    pub fn start(
        config: &MonitoringConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<(Monitor, JoinHandle<()>), ServingError> {
        let datahub = config.datahub.connect_lazy().map_err(|err| {
            ServingError::invalid(
                "monitoring.datahub",
                format!("cannot use {}: {err}", config.datahub.url),
            )
        })?;
        let registry = config.registry.connect_lazy().map_err(|err| {
            ServingError::invalid(
                "monitoring.registry",
                format!("cannot use {}: {err}", config.registry.url),
            )
        })?;
        let (queue, received) = mpsc::channel(config.queue.max(1));
        let sender = Sender {
            datahub,
            registry,
            topic: config.topic.clone(),
            batch: config.batch.max(1),
        };
        let task = tokio::spawn(sender.run(received, stop));
        let monitor = Monitor {
            queue,
            sampler: Arc::new(Sampler {
                rate: config.sample_rate,
                seen: AtomicU64::new(0),
            }),
        };
        Ok((monitor, task))
    }

    /// Whether to log the next request (by `monitoring.sample_rate`).
    pub fn sample(&self) -> bool {
        self.sampler.sample()
    }

    /// Queues `event` for the log; never waits. A full queue drops it and counts
    /// `plinth_serving_predictions_dropped_total`.
    pub fn log(&self, event: PredictionEvent) {
        let rows = event.response.predictions.len() as u64;
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("plinth_serving_predictions_dropped_total", "reason" => "queue_full")
                    .increment(rows);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::counter!("plinth_serving_predictions_dropped_total", "reason" => "stopped")
                    .increment(rows);
            }
        }
    }
}

/// The background task's state.
struct Sender {
    datahub: AuthChannel,
    registry: AuthChannel,
    topic: String,
    batch: usize,
}

impl Sender {
    async fn run(
        self,
        mut queue: mpsc::Receiver<PredictionEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ready = false;
        let mut records: Vec<datahub::ProduceRecord> = Vec::new();
        let mut delay = Duration::from_millis(200);
        let mut stopping = false;
        loop {
            if records.is_empty() {
                if stopping {
                    // What is still queued gets one try.
                    while let Ok(event) = queue.try_recv() {
                        records.extend(event_records(&event));
                    }
                    if records.is_empty() {
                        return;
                    }
                } else {
                    tokio::select! {
                        event = queue.recv() => match event {
                            Some(event) => records.extend(event_records(&event)),
                            None => return,
                        },
                        _ = stop.wait_for(|stopped| *stopped) => {
                            stopping = true;
                            continue;
                        }
                    }
                    // Whatever else is waiting joins the batch.
                    while records.len() < self.batch {
                        match queue.try_recv() {
                            Ok(event) => records.extend(event_records(&event)),
                            Err(_) => break,
                        }
                    }
                }
            }
            let attempt = async {
                if !ready {
                    self.ensure_topic().await?;
                    ready = true;
                    tracing::info!(topic = %self.topic, "logging predictions");
                }
                self.produce(&mut records).await
            };
            let result = if stopping {
                tokio::time::timeout(STOP_FLUSH, attempt)
                    .await
                    .unwrap_or_else(|_| Err("the data hub did not answer in time".to_owned()))
            } else {
                attempt.await
            };
            match result {
                Ok(()) => delay = Duration::from_millis(200),
                Err(err) => {
                    if stopping {
                        tracing::warn!(error = %err, dropped = records.len(), topic = %self.topic, "stopping with predictions not logged");
                        metrics::counter!("plinth_serving_predictions_dropped_total", "reason" => "stopped")
                            .increment(records.len() as u64);
                        return;
                    }
                    tracing::warn!(error = %err, waiting = records.len(), topic = %self.topic, "cannot log predictions yet; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|stopped| *stopped) => stopping = true,
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Registers the schema and creates the topic bound to it (both idempotent).
    async fn ensure_topic(&self) -> Result<(), String> {
        plinth_runtime::client::ensure_json_topic(
            self.registry.clone(),
            self.datahub.clone(),
            &self.topic,
            PREDICTION_SCHEMA,
            "the prediction schema",
        )
        .await
    }

    /// Produces up to `batch` of `records`, removing what the data hub took (written, or refused as
    /// invalid, which is a bug here and is not retried).
    async fn produce(&self, records: &mut Vec<datahub::ProduceRecord>) -> Result<(), String> {
        while !records.is_empty() {
            let take = records.len().min(self.batch);
            let chunk: Vec<datahub::ProduceRecord> = records[..take].to_vec();
            let mut hub =
                datahub::data_hub_service_client::DataHubServiceClient::new(self.datahub.clone());
            let response = hub
                .produce(datahub::ProduceRequest {
                    batch: Some(datahub::ProduceBatch {
                        topic: Some(TopicName::new(self.topic.clone())),
                        records: chunk,
                        accept_partial: true,
                    }),
                })
                .await
                .map_err(|status| {
                    format!(
                        "producing predictions to {}: {}",
                        self.topic,
                        status.message()
                    )
                })?
                .into_inner();
            let errors: Vec<&datahub::RecordError> = response
                .results
                .iter()
                .filter_map(|result| match &result.outcome {
                    Some(datahub::record_result::Outcome::Error(err)) => Some(err),
                    _ => None,
                })
                .collect();
            if let Some(first) = errors.first() {
                tracing::error!(
                    invalid = errors.len(),
                    first = ?first,
                    topic = %self.topic,
                    "the data hub refused prediction records"
                );
                metrics::counter!("plinth_serving_predictions_dropped_total", "reason" => "invalid")
                    .increment(errors.len() as u64);
            }
            metrics::counter!("plinth_serving_predictions_logged_total")
                .increment(u64::from(response.written_count));
            records.drain(..take);
        }
        Ok(())
    }
}

/// The records of one request: one per entity row.
fn event_records(event: &PredictionEvent) -> Vec<datahub::ProduceRecord> {
    let response = &event.response;
    let time = event
        .time
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let timestamp = prost_types::Timestamp {
        seconds: event.time.timestamp(),
        nanos: i32::try_from(event.time.timestamp_subsec_nanos()).unwrap_or(0),
    };
    let latency_ms = event.latency.as_secs_f64() * 1000.0;
    response
        .predictions
        .iter()
        .enumerate()
        .map(|(row, prediction)| {
            let entity_keys: serde_json::Map<String, Json> = event
                .entities
                .iter()
                .map(|(key, column)| {
                    let value = column.val.get(row).map_or(Json::Null, value_json);
                    (key.clone(), value)
                })
                .collect();
            let features: serde_json::Map<String, Json> = event
                .features
                .get(row)
                .map(|features| {
                    features
                        .iter()
                        .map(|(name, value)| (name.clone(), value_json(value)))
                        .collect()
                })
                .unwrap_or_default();
            let outputs: serde_json::Map<String, Json> = prediction
                .outputs
                .iter()
                .map(|output| {
                    let values = output
                        .contents
                        .as_ref()
                        .map_or(Json::Array(Vec::new()), contents_json);
                    (output.name.clone(), values)
                })
                .collect();
            let status = match pb::PredictionStatus::try_from(prediction.status) {
                Ok(pb::PredictionStatus::EntityNotFound) => "ENTITY_NOT_FOUND",
                Ok(pb::PredictionStatus::MissingFeatures) => "MISSING_FEATURES",
                _ => "OK",
            };
            let record = json!({
                "request_id": response.request_id,
                "time": time,
                "model": response.model,
                "version": response.version,
                "row": row,
                "entity_keys": entity_keys,
                "features": features,
                "outputs": outputs,
                "status": status,
                "defaulted_features": prediction.defaulted_features,
                "missing_features": prediction.missing_features,
                "latency_ms": latency_ms,
            });
            datahub::ProduceRecord {
                key: Some(response.request_id.clone().into_bytes()),
                value: record.to_string(),
                headers: Vec::new(),
                partition: None,
                timestamp: Some(timestamp),
            }
        })
        .collect()
}

/// A feature-store value as JSON (bytes as lowercase hex, times as RFC 3339, NaN as null).
fn value_json(value: &fs::Value) -> Json {
    use fs::value::Val;
    match &value.val {
        None => Json::Null,
        Some(Val::BoolVal(v)) => Json::Bool(*v),
        Some(Val::Int32Val(v)) => json!(v),
        Some(Val::Int64Val(v)) => json!(v),
        Some(Val::FloatVal(v)) => json!(v),
        Some(Val::DoubleVal(v)) => json!(v),
        Some(Val::StringVal(v)) => Json::String(v.clone()),
        Some(Val::BytesVal(v)) => Json::String(v.iter().map(|b| format!("{b:02x}")).collect()),
        Some(Val::UnixTimestampVal(ts)) => {
            chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
                .map_or(Json::Null, |time| {
                    Json::String(time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                })
        }
    }
}

/// An output row's values as a JSON array (serde_json writes NaN and infinities as null).
fn contents_json(contents: &InferTensorContents) -> Json {
    let bytes = |v: &Vec<u8>| Json::String(String::from_utf8_lossy(v).into_owned());
    let values: Vec<Json> = if !contents.fp32_contents.is_empty() {
        contents.fp32_contents.iter().map(|v| json!(v)).collect()
    } else if !contents.fp64_contents.is_empty() {
        contents.fp64_contents.iter().map(|v| json!(v)).collect()
    } else if !contents.int64_contents.is_empty() {
        contents.int64_contents.iter().map(|v| json!(v)).collect()
    } else if !contents.int_contents.is_empty() {
        contents.int_contents.iter().map(|v| json!(v)).collect()
    } else if !contents.bool_contents.is_empty() {
        contents.bool_contents.iter().map(|v| json!(v)).collect()
    } else {
        contents.bytes_contents.iter().map(bytes).collect()
    };
    Json::Array(values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sampling_takes_the_configured_share_evenly() {
        let sampler = Sampler {
            rate: 0.25,
            seen: AtomicU64::new(0),
        };
        let taken = (0..1000).filter(|_| sampler.sample()).count();
        assert_eq!(taken, 250);
        let none = Sampler {
            rate: 0.0,
            seen: AtomicU64::new(0),
        };
        assert!(!(0..100).any(|_| none.sample()));
    }

    #[test]
    fn records_carry_every_schema_field_and_nothing_else() {
        let schema: Json = serde_json::from_str(PREDICTION_SCHEMA).unwrap();
        let event = PredictionEvent {
            time: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            latency: Duration::from_micros(1500),
            entities: HashMap::from([(
                "driver_id".to_owned(),
                fs::RepeatedValue {
                    val: vec![
                        fs::Value {
                            val: Some(fs::value::Val::Int64Val(1001)),
                        },
                        fs::Value {
                            val: Some(fs::value::Val::Int64Val(9999)),
                        },
                    ],
                },
            )]),
            features: vec![
                HashMap::from([(
                    "v:a".to_owned(),
                    fs::Value {
                        val: Some(fs::value::Val::DoubleVal(0.5)),
                    },
                )]),
                HashMap::new(),
            ],
            response: pb::PredictByKeyResponse {
                model: "driver".into(),
                version: "v1".into(),
                request_id: "r1".into(),
                predictions: vec![
                    pb::KeyPrediction {
                        status: pb::PredictionStatus::Ok.into(),
                        outputs: vec![pb::PredictionOutput {
                            name: "label".into(),
                            datatype: "INT64".into(),
                            shape: vec![],
                            contents: Some(InferTensorContents {
                                int64_contents: vec![1],
                                ..Default::default()
                            }),
                        }],
                        ..Default::default()
                    },
                    pb::KeyPrediction {
                        status: pb::PredictionStatus::EntityNotFound.into(),
                        ..Default::default()
                    },
                ],
            },
        };
        let records = event_records(&event);
        assert_eq!(records.len(), 2);
        let first: Json = serde_json::from_str(&records[0].value).unwrap();
        assert_eq!(first["entity_keys"]["driver_id"], 1001);
        assert_eq!(first["features"]["v:a"], 0.5);
        assert_eq!(first["outputs"]["label"], json!([1]));
        assert_eq!(first["time"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(first["latency_ms"], 1.5);
        let second: Json = serde_json::from_str(&records[1].value).unwrap();
        assert_eq!(second["status"], "ENTITY_NOT_FOUND");
        assert_eq!(second["row"], 1);
        let properties = schema["properties"].as_object().unwrap();
        for key in first.as_object().unwrap().keys() {
            assert!(properties.contains_key(key), "{key} is not in the schema");
        }
        for required in schema["required"].as_array().unwrap() {
            assert!(
                first.get(required.as_str().unwrap()).is_some(),
                "{required}"
            );
        }
    }
}
