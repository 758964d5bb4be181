use std::sync::Arc;

use arrow::array::{AsArray, StructArray};
use arrow::datatypes::{
    DataType, Field, Schema, TimestampMicrosecondType, TimestampMillisecondType,
};
use serde_json::json;

use super::*;
use crate::domain::lake_schema::{derive_lake_schema, is_json_text};
use crate::domain::records::{KafkaMetadata, LakeRecord, to_record_batch};

fn sample_batch() -> RecordBatch {
    let json_schema = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" },
            "at": { "type": "string", "format": "date-time" },
            "tags": { "type": "array", "items": { "type": "string" } },
            "meta": { "type": "object", "additionalProperties": true, "patternProperties": { ".": {} } },
            "window": {
                "type": "object",
                "properties": { "start": { "type": "string", "format": "date-time" } },
            },
        },
        "required": ["id", "at"],
    });
    let schema = Arc::new(derive_lake_schema(&json_schema).unwrap());
    let records = [
        json!({ "id": 1, "at": "2024-06-01T23:59:59.999999Z", "tags": ["a", "b"], "meta": { "k": [1] },
                "window": { "start": "2024-06-01T00:00:00+01:00" } }),
        json!({ "id": 2, "at": "1969-12-31T23:59:59Z" }),
    ]
    .into_iter()
    .enumerate()
    .map(|(index, value)| LakeRecord {
        value,
        kafka: KafkaMetadata { partition: 0, offset: index as i64, timestamp_ms: 1_717_286_400_000, schema_id: 1 },
    })
    .collect::<Vec<_>>();
    to_record_batch(&schema, &records).unwrap()
}

#[test]
fn a_file_reads_back_as_written() {
    let batch = sample_batch();
    let file = encode_parquet(&batch.schema(), std::slice::from_ref(&batch)).unwrap();
    let (schema, batches) = decode_parquet(Bytes::from(file)).unwrap();

    assert_eq!(schema, batch.schema());
    assert_eq!(batches, [batch]);
}

#[test]
fn timestamps_and_markers_survive_the_round_trip() {
    let batch = sample_batch();
    let file = encode_parquet(&batch.schema(), &[batch.clone(), batch]).unwrap();
    let (schema, batches) = decode_parquet(Bytes::from(file)).unwrap();
    let read: RecordBatch = arrow::compute::concat_batches(&schema, &batches).unwrap();
    assert_eq!(read.num_rows(), 4);

    let at = read
        .column_by_name("at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_717_286_399_999_999);
    assert_eq!(at.value(1), -1_000_000);
    assert_eq!(at.timezone(), Some("UTC"));

    let window = read
        .column_by_name("window")
        .unwrap()
        .as_any()
        .downcast_ref::<StructArray>()
        .unwrap();
    let start = window
        .column_by_name("start")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(start.value(0), 1_717_196_400_000_000);

    let kafka_timestamp = read
        .column_by_name("_kafka_timestamp")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(kafka_timestamp.value(0), 1_717_286_400_000);
    assert_eq!(kafka_timestamp.timezone(), Some("UTC"));

    assert!(is_json_text(schema.field_with_name("meta").unwrap()));
    assert_eq!(
        read.column_by_name("meta")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        r#"{"k":[1]}"#
    );
}

#[test]
fn an_empty_file_keeps_its_schema() {
    let schema = sample_batch().schema();
    let file = encode_parquet(&schema, &[]).unwrap();
    let (read_schema, batches) = decode_parquet(Bytes::from(file)).unwrap();
    assert_eq!(read_schema, schema);
    assert!(batches.iter().all(|batch| batch.num_rows() == 0));
}

#[test]
fn a_batch_of_another_schema_is_refused() {
    let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
    let error = encode_parquet(&other, &[sample_batch()]).unwrap_err();
    assert!(matches!(error, LakeFileError::SchemaMismatch), "{error}");
}

#[test]
fn bytes_that_are_not_parquet_are_refused() {
    let error = decode_parquet(Bytes::from_static(b"not a parquet file")).unwrap_err();
    assert!(matches!(error, LakeFileError::Decode { .. }), "{error}");

    let mut truncated = encode_parquet(&sample_batch().schema(), &[sample_batch()]).unwrap();
    truncated.truncate(truncated.len() / 2);
    assert!(decode_parquet(Bytes::from(truncated)).is_err());
}
