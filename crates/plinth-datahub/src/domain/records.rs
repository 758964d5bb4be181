//! JSON records read from Kafka, turned into an Arrow [`RecordBatch`] of their dataset's lake schema.
//!
//! The records must already be valid against the subject's schema (the gateway validates at produce,
//! the sink re-checks what other producers wrote); this module only changes their representation.
//! Properties the lake schema does not declare are dropped, missing optional ones become nulls, and
//! values of JSON text columns are stored as their `serde_json::to_string` text.

use std::sync::Arc;

use arrow::array::{
    ArrayData, ArrayRef, Int32Array, Int64Array, RecordBatch, TimestampMillisecondArray, make_array,
};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::ReaderBuilder;
use serde_json::{Map, Value};

use crate::domain::lake_schema::{SYSTEM_COLUMNS, is_json_text, system_fields};

/// Where and when a record sat in Kafka, and the schema it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaMetadata {
    /// The topic partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's Kafka timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The registry id of the record's schema (from the Confluent wire format header).
    pub schema_id: i32,
}

/// One record to land in the lake: its decoded JSON value and its Kafka metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeRecord {
    /// The record value, already validated against its schema.
    pub value: Value,
    /// Where the record came from.
    pub kafka: KafkaMetadata,
}

/// Why records could not become a batch.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The schema given is not a lake schema: it does not end with the system columns.
    #[error(
        "the schema does not end with the lake's system columns ({expected}); derive it with \
         `derive_lake_schema` or `evolve`",
        expected = SYSTEM_COLUMNS.join(", ")
    )]
    NotALakeSchema,
    /// One record does not fit the lake schema.
    #[error(
        "the record at partition {partition} offset {offset} does not fit the lake schema: {source}; \
         records must be valid against the schema the lake schema was derived from, so check that the \
         dataset's schema was evolved to the record's"
    )]
    RecordDoesNotFit {
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What arrow-json reported.
        source: ArrowError,
    },
    /// The records do not fit the lake schema together, though each fits alone.
    #[error(
        "the records do not fit the lake schema: {source}; records must be valid against the schema the \
         lake schema was derived from, so check that the dataset's schema was evolved to the record's"
    )]
    Decode {
        /// What arrow-json reported.
        source: ArrowError,
    },
}

/// Builds one batch of `schema` (a lake schema: user columns, then the system columns) from `records`,
/// in order.
pub fn to_record_batch(
    schema: &SchemaRef,
    records: &[LakeRecord],
) -> Result<RecordBatch, RecordsError> {
    let user_field_count = user_field_count(schema)?;
    let user_fields: Fields = schema.fields()[..user_field_count]
        .iter()
        .cloned()
        .collect();

    let values: Vec<Value> = records
        .iter()
        .map(|record| encode_json_text(&user_fields, &record.value))
        .collect();
    let user_columns = match decode_user_columns(user_fields.clone(), &values) {
        Ok(columns) => columns,
        Err(source) => {
            return Err(first_record_that_does_not_fit(
                &user_fields,
                records,
                &values,
                source,
            ));
        }
    };

    let mut columns = user_columns;
    columns.push(Arc::new(Int32Array::from_iter_values(
        records.iter().map(|record| record.kafka.partition),
    )));
    columns.push(Arc::new(Int64Array::from_iter_values(
        records.iter().map(|record| record.kafka.offset),
    )));
    columns.push(Arc::new(
        TimestampMillisecondArray::from_iter_values(
            records.iter().map(|record| record.kafka.timestamp_ms),
        )
        .with_timezone("UTC"),
    ));
    columns.push(Arc::new(Int32Array::from_iter_values(
        records.iter().map(|record| record.kafka.schema_id),
    )));
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|source| RecordsError::Decode { source })
}

/// The number of columns before the system columns, once the system columns are checked.
fn user_field_count(schema: &Schema) -> Result<usize, RecordsError> {
    let fields = schema.fields();
    let user_field_count = fields
        .len()
        .checked_sub(SYSTEM_COLUMNS.len())
        .ok_or(RecordsError::NotALakeSchema)?;
    let system_matches = fields[user_field_count..]
        .iter()
        .zip(system_fields())
        .all(|(actual, expected)| actual.as_ref() == &expected);
    if system_matches {
        Ok(user_field_count)
    } else {
        Err(RecordsError::NotALakeSchema)
    }
}

/// Decodes records one by one to name the first that fails; arrow-json's error does not say which.
fn first_record_that_does_not_fit(
    user_fields: &Fields,
    records: &[LakeRecord],
    values: &[Value],
    batch_error: ArrowError,
) -> RecordsError {
    for (record, value) in records.iter().zip(values) {
        if let Err(source) = decode_user_columns(user_fields.clone(), std::slice::from_ref(value)) {
            return RecordsError::RecordDoesNotFit {
                partition: record.kafka.partition,
                offset: record.kafka.offset,
                source,
            };
        }
    }
    RecordsError::Decode {
        source: batch_error,
    }
}

fn decode_user_columns(user_fields: Fields, values: &[Value]) -> Result<Vec<ArrayRef>, ArrowError> {
    if user_fields.is_empty() {
        return Ok(Vec::new());
    }
    // arrow-json resolves a named time zone only with the chrono-tz feature (a compiled tz database), so
    // timestamps are decoded without a zone, which arrow-json reads as UTC instants (offsets applied),
    // and then labelled "UTC" without touching the values.
    let decode_fields: Fields = user_fields.iter().map(without_time_zones).collect();
    let decode_schema = Arc::new(Schema::new(decode_fields));
    let mut decoder = ReaderBuilder::new(Arc::clone(&decode_schema))
        .with_batch_size(values.len().max(1))
        .build_decoder()?;
    decoder.serialize(values)?;
    let decoded = match decoder.flush()? {
        Some(batch) => batch,
        None => RecordBatch::new_empty(decode_schema),
    };
    decoded
        .columns()
        .iter()
        .zip(user_fields.iter())
        .map(|(column, field)| Ok(make_array(relabel(column.to_data(), field.data_type())?)))
        .collect()
}

fn without_time_zones(field: &FieldRef) -> FieldRef {
    let data_type = match field.data_type() {
        DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, None),
        DataType::Struct(children) => {
            DataType::Struct(children.iter().map(without_time_zones).collect())
        }
        DataType::List(item) => DataType::List(without_time_zones(item)),
        other => other.clone(),
    };
    Arc::new(field.as_ref().clone().with_data_type(data_type))
}

/// Gives `data` the type `target`, which differs from its own at most in timestamp time zones: the
/// values are instants, so only the label changes (at any depth of structs and lists).
pub fn relabel(data: ArrayData, target: &DataType) -> Result<ArrayData, ArrowError> {
    let children = match target {
        DataType::Struct(fields) => fields
            .iter()
            .zip(data.child_data())
            .map(|(field, child)| relabel(child.clone(), field.data_type()))
            .collect::<Result<Vec<_>, _>>()?,
        DataType::List(item) | DataType::LargeList(item) => data
            .child_data()
            .iter()
            .map(|child| relabel(child.clone(), item.data_type()))
            .collect::<Result<Vec<_>, _>>()?,
        _ => data.child_data().to_vec(),
    };
    data.into_builder()
        .data_type(target.clone())
        .child_data(children)
        .build()
}

/// Replaces the values of JSON text columns, at any depth, by their JSON text, so that arrow-json
/// reads them into `Utf8` columns.
fn encode_json_text(fields: &Fields, value: &Value) -> Value {
    let Value::Object(object) = value else {
        return value.clone();
    };
    let mut encoded = Map::new();
    for field in fields {
        if let Some(property) = object.get(field.name()) {
            encoded.insert(field.name().clone(), encode_field(field, property));
        }
    }
    Value::Object(encoded)
}

fn encode_field(field: &Field, value: &Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    if is_json_text(field) {
        return Value::String(value.to_string());
    }
    match (field.data_type(), value) {
        (DataType::Struct(children), _) => encode_json_text(children, value),
        (DataType::List(item), Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|item_value| encode_field(item, item_value))
                .collect(),
        ),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests;
