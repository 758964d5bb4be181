//! Writing a dataset through Arrow Flight `DoPut`: every row is turned into JSON and validated against
//! the subject's latest schema, then the rows are stored as written files (see `dataset`) of the lake
//! schema derived from that schema, so they read exactly like rows that came through Kafka.
//!
//! A put is all or nothing for validation: every row is checked before the first file is written, and
//! one invalid row rejects the put with INVALID_ARGUMENT naming the row and the JSON pointer. The rows
//! of one put are held in memory until then, up to [`MAX_PUT_JSON_BYTES`]. System columns sent by the
//! client are not stored as sent: `_kafka_timestamp`, when present, gives each row its event time (else
//! the write time), `_kafka_partition` is -1, `_kafka_offset` the row's index in the put and `_schema_id`
//! the subject's schema id.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, make_array};
use arrow::datatypes::{
    DataType, FieldRef, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use chrono::NaiveDate;
use object_store::{ObjectStoreExt, PutPayload};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::Subject;
use plinth_runtime::error::ApiError;
use plinth_schema_registry::client::{RegistryClient, SubjectSchema};
use serde_json::Value;

use crate::domain::lake_file::encode_parquet;
use crate::domain::lake_path::{DatasetName, event_date};
use crate::domain::lake_schema::{KAFKA_TIMESTAMP_COLUMN, SYSTEM_COLUMNS, derive_lake_schema};
use crate::domain::records::{KafkaMetadata, LakeRecord, to_record_batch};
use crate::domain::schema_evolution::evolve;
use crate::lake::dataset::{Footer, FooterCache, written_file_path};
use crate::lake::metric_names;
use crate::lake::sink::{now_ms, timestamp};
use plinth_runtime::storage::Location;

/// The most JSON one put may hold before it is written.
pub(crate) const MAX_PUT_JSON_BYTES: usize = 256 * 1024 * 1024;
/// The most invalid rows one rejection lists.
const MAX_REPORTED_ROWS: usize = 20;

/// A Flight write in progress: rows validated so far, written by [`DatasetWriter::finish`].
#[derive(Debug)]
pub(crate) struct DatasetWriter {
    dataset: DatasetName,
    location: Location,
    subject: SubjectSchema,
    lake_schema: SchemaRef,
    max_file_rows: usize,
    footers: Arc<FooterCache>,
    records: BTreeMap<NaiveDate, Vec<LakeRecord>>,
    row_count: usize,
    json_bytes: usize,
}

/// What a finished write stored.
#[derive(Debug)]
pub(crate) struct WriteOutcome {
    /// Rows written.
    pub(crate) row_count: u64,
    /// The subject's schema id the rows were validated against.
    pub(crate) schema_id: u32,
    /// The subject version.
    pub(crate) version: i32,
    /// The files written.
    pub(crate) files: Vec<pb::LakeFile>,
}

impl DatasetWriter {
    /// Resolves the subject's latest schema and checks that it evolves the dataset's `existing` schema.
    pub(crate) async fn new(
        dataset: DatasetName,
        location: Location,
        registry: &RegistryClient,
        subject: &str,
        existing: Option<SchemaRef>,
        max_file_rows: usize,
        footers: Arc<FooterCache>,
    ) -> Result<Self, ApiError> {
        if subject.trim().is_empty() {
            return Err(ApiError::required(
                "subject",
                "name the registered subject the rows validate against",
            ));
        }
        let resolved = registry.resolve(&Subject::new(subject), None).await?;
        let lake_schema = derive_lake_schema(&resolved.schema.schema).map_err(|err| {
            ApiError::failed_precondition(
                "NO_LAKE_SCHEMA",
                format!("subject `{subject}` cannot be stored in the lake: {err}"),
            )
        })?;
        if let Some(existing) = &existing {
            evolve(existing, &lake_schema).map_err(|err| {
                ApiError::failed_precondition(
                    "LAKE_SCHEMAS_INCOMPATIBLE",
                    format!("subject `{subject}` does not fit dataset `{dataset}`: {err}"),
                )
            })?;
        }
        Ok(Self {
            dataset,
            location,
            subject: resolved,
            lake_schema: Arc::new(lake_schema),
            max_file_rows: max_file_rows.max(1),
            footers,
            records: BTreeMap::new(),
            row_count: 0,
            json_bytes: 0,
        })
    }

    /// Converts and validates one batch. INVALID_ARGUMENT names the invalid rows (index in the put)
    /// and JSON pointers.
    pub(crate) fn add_batch(&mut self, batch: &RecordBatch) -> Result<(), ApiError> {
        let timestamps = event_times(batch)?;
        let rows = rows_as_json(batch)?;
        let mut invalid: Vec<(usize, String, String)> = Vec::new();
        let mut accepted = Vec::with_capacity(rows.len());
        for (index_in_batch, row) in rows.into_iter().enumerate() {
            let row_index = self.row_count + index_in_batch;
            let errors = self.subject.schema.validator.validate(&row);
            if let Some(first) = errors.first() {
                invalid.push((
                    row_index,
                    first.instance_path.clone(),
                    first.message.clone(),
                ));
                continue;
            }
            self.json_bytes += row.to_string().len();
            let timestamp_ms = timestamps
                .as_ref()
                .and_then(|times| times.get(index_in_batch).copied().flatten())
                .unwrap_or_else(now_ms);
            accepted.push((row, timestamp_ms, row_index));
        }
        if !invalid.is_empty() {
            let subject = &self.subject.subject;
            let mut error = ApiError::invalid_argument(
                "INVALID_ROWS",
                format!(
                    "{} row(s) do not validate against subject `{subject}` version {}; the first is row {} at `{}`: {}; fix the rows and put again (nothing was written)",
                    invalid.len(),
                    self.subject.version,
                    invalid[0].0,
                    pointer_or_root(&invalid[0].1),
                    invalid[0].2
                ),
            );
            for (row_index, pointer, message) in invalid.iter().take(MAX_REPORTED_ROWS) {
                error = error.with_field(format!("rows[{row_index}]{pointer}"), message.clone());
            }
            return Err(error);
        }
        if self.json_bytes > MAX_PUT_JSON_BYTES {
            return Err(ApiError::resource_exhausted(
                "PUT_TOO_LARGE",
                format!(
                    "a put holds at most {MAX_PUT_JSON_BYTES} bytes of rows as JSON; split the data into several puts"
                ),
            ));
        }
        let schema_id = i32::try_from(self.subject.schema.id.value).unwrap_or(i32::MAX);
        for (value, timestamp_ms, row_index) in accepted {
            let date = event_date(timestamp_ms).ok_or_else(|| {
                ApiError::invalid_argument(
                    "INVALID_TIMESTAMP",
                    format!("row {row_index} has `_kafka_timestamp` {timestamp_ms} ms, which has no calendar date"),
                )
            })?;
            self.records.entry(date).or_default().push(LakeRecord {
                value,
                kafka: KafkaMetadata {
                    partition: -1,
                    offset: i64::try_from(row_index).unwrap_or(i64::MAX),
                    timestamp_ms,
                    schema_id,
                },
            });
        }
        self.row_count += batch.num_rows();
        Ok(())
    }

    /// Writes the validated rows: per event date, files of at most `max_file_rows` rows.
    pub(crate) async fn finish(self) -> Result<WriteOutcome, ApiError> {
        let mut files = Vec::new();
        for (date, records) in &self.records {
            for chunk in records.chunks(self.max_file_rows) {
                let schema = Arc::clone(&self.lake_schema);
                let rows = chunk.to_vec();
                let bytes = tokio::task::spawn_blocking(move || {
                    let batch = to_record_batch(&schema, &rows).map_err(|err| {
                        ApiError::invalid_argument("ROWS_DO_NOT_FIT", err.to_string())
                    })?;
                    encode_parquet(&schema, &[batch]).map_err(ApiError::internal)
                })
                .await
                .map_err(ApiError::internal)??;
                let relative = written_file_path(&self.dataset, *date);
                let url = self.location.url_of(&relative);
                let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                self.location
                    .store
                    .put(&self.location.path(&relative), PutPayload::from(bytes))
                    .await
                    .map_err(|err| super::dataset::store_error(&url, &err))?;
                let row_count = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                self.footers.insert(
                    url.clone(),
                    size,
                    Footer {
                        schema: Arc::clone(&self.lake_schema),
                        row_count,
                    },
                );
                files.push(pb::LakeFile {
                    url,
                    partition: -1,
                    first_offset: chunk.first().map_or(0, |record| record.kafka.offset),
                    last_offset: chunk.last().map_or(0, |record| record.kafka.offset),
                    event_date: date.format("%Y-%m-%d").to_string(),
                    row_count,
                    size_bytes: size,
                    write_time: Some(timestamp(now_ms())),
                });
            }
        }
        let row_count = u64::try_from(self.row_count).unwrap_or(u64::MAX);
        metrics::counter!(metric_names::ROWS_PUT, "dataset" => self.dataset.to_string())
            .increment(row_count);
        Ok(WriteOutcome {
            row_count,
            schema_id: self.subject.schema.id.value,
            version: self.subject.version,
            files,
        })
    }
}

fn pointer_or_root(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// The `_kafka_timestamp` of each row in ms, when the batch has that column.
fn event_times(batch: &RecordBatch) -> Result<Option<Vec<Option<i64>>>, ApiError> {
    let Some(column) = batch.column_by_name(KAFKA_TIMESTAMP_COLUMN) else {
        return Ok(None);
    };
    let to_ms = |values: Vec<Option<i64>>, per_ms: i64, ms_per: i64| {
        values
            .into_iter()
            .map(|value| value.map(|value| value.div_euclid(per_ms) * ms_per))
            .collect::<Vec<_>>()
    };
    let times = match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => to_ms(
            column
                .as_primitive::<TimestampSecondType>()
                .iter()
                .collect(),
            1,
            1000,
        ),
        DataType::Timestamp(TimeUnit::Millisecond, _) => to_ms(
            column
                .as_primitive::<TimestampMillisecondType>()
                .iter()
                .collect(),
            1,
            1,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => to_ms(
            column
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect(),
            1000,
            1,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => to_ms(
            column
                .as_primitive::<TimestampNanosecondType>()
                .iter()
                .collect(),
            1_000_000,
            1,
        ),
        other => {
            return Err(ApiError::invalid_argument(
                "INVALID_TIMESTAMP_COLUMN",
                format!(
                    "`{KAFKA_TIMESTAMP_COLUMN}` is {other}; send it as an Arrow timestamp (event time of each row) or leave it out"
                ),
            ));
        }
    };
    Ok(Some(times))
}

/// The batch's rows as JSON objects, without the system columns. Null values are left out, as a JSON
/// producer would leave out an optional property.
fn rows_as_json(batch: &RecordBatch) -> Result<Vec<Value>, ApiError> {
    let user_indices: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| !SYSTEM_COLUMNS.contains(&field.name().as_str()))
        .map(|(index, _)| index)
        .collect();
    let user = batch
        .project(&user_indices)
        .map_err(|err| ApiError::internal(format!("projecting a put batch: {err}")))?;
    if user.num_columns() == 0 {
        return Ok(vec![Value::Object(serde_json::Map::new()); user.num_rows()]);
    }
    // arrow-json formats time zones by name only with chrono-tz; "+00:00" is the same instant.
    let fields: Vec<FieldRef> = user
        .schema()
        .fields()
        .iter()
        .map(utc_offset_field)
        .collect();
    let columns = user
        .columns()
        .iter()
        .zip(&fields)
        .map(|(column, field)| relabel(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad_batch(&err))?;
    let relabelled = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|err| bad_batch(&err))?;
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer.write(&relabelled).map_err(|err| bad_batch(&err))?;
    writer.finish().map_err(|err| bad_batch(&err))?;
    let text = writer.into_inner();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&text).map_err(|err| bad_batch(&err))
}

fn bad_batch(err: &dyn std::fmt::Display) -> ApiError {
    ApiError::invalid_argument(
        "UNCONVERTIBLE_BATCH",
        format!(
            "a put batch cannot be read as JSON rows ({err}); send columns of JSON-compatible types (numbers, strings, booleans, timestamps, dates, structs, lists)"
        ),
    )
}

fn utc_offset_field(field: &FieldRef) -> FieldRef {
    Arc::new(
        field
            .as_ref()
            .clone()
            .with_data_type(utc_offset_type(field.data_type())),
    )
}

fn utc_offset_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, Some("+00:00".into())),
        DataType::Struct(children) => {
            DataType::Struct(children.iter().map(utc_offset_field).collect())
        }
        DataType::List(item) => DataType::List(utc_offset_field(item)),
        DataType::LargeList(item) => DataType::LargeList(utc_offset_field(item)),
        other => other.clone(),
    }
}

/// Gives `array` the type `target`, which differs from its own at most in timestamp time zones: the
/// values are instants, so only the label changes.
fn relabel(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, arrow::error::ArrowError> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    Ok(make_array(crate::domain::records::relabel(
        array.to_data(),
        target,
    )?))
}
