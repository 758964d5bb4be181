use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;

use super::{DecodedChunk, encode_files, slices};
use crate::domain::lake_schema::derive_lake_schema;
use crate::domain::records::{KafkaMetadata, TextRecords, text_to_record_batch};
use crate::domain::schema_evolution::evolve;

/// Milliseconds of 2026-11-26T23:00:00Z: records an hour apart cross into the next event date.
const LATE_ON_THE_26TH_MS: i64 = 1_795_734_000_000;

fn schema(extra: bool) -> SchemaRef {
    let mut properties = json!({
        "id": {"type": "integer"},
        "name": {"type": "string"},
    });
    if extra {
        properties["note"] = json!({"type": "string"});
    }
    let derived = derive_lake_schema(&json!({
        "type": "object",
        "properties": properties,
        "required": ["id"],
    }))
    .unwrap();
    Arc::new(derived)
}

/// Records 0..n of partition 3; the odd ones from offset 10 on carry the field only the new schema has,
/// and from offset 20 on they are an hour apart, so the event date changes at offset 21.
fn records(range: std::ops::Range<i64>) -> TextRecords {
    let mut text = TextRecords::new();
    for offset in range {
        let value = if offset >= 10 && offset % 2 == 1 {
            json!({"id": offset, "name": format!("r{offset}"), "note": "late field"})
        } else {
            json!({"id": offset, "name": format!("r{offset}")})
        };
        text.push(
            value.to_string().as_bytes(),
            KafkaMetadata {
                partition: 3,
                offset,
                timestamp_ms: LATE_ON_THE_26TH_MS + (offset - 20).max(0) * 3_600_000,
                schema_id: 1,
            },
        );
    }
    text
}

fn decoded(records: TextRecords, with: Option<&SchemaRef>) -> DecodedChunk {
    let batch =
        with.map(|schema| text_to_record_batch(schema, &records, 0..records.len()).unwrap());
    DecodedChunk {
        records,
        schema: with.cloned(),
        batch,
    }
}

fn read_parquet(bytes: Vec<u8>) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[test]
fn chunks_decoded_apart_land_like_one_buffer_also_across_a_schema_change_and_dates() {
    let old = schema(false);
    let new = Arc::new(evolve(&old, &schema(true)).unwrap());
    // Chunk 1 decoded with the schema of its time, chunk 2 with the evolved one, the tail not decoded.
    let chunks = vec![
        decoded(records(0..15), Some(&old)),
        decoded(records(15..30), Some(&new)),
        decoded(records(30..34), None),
    ];
    let files = encode_files(&new, chunks).unwrap();
    // One file up to the date change at offset 21 (spanning chunks 1 and 2), then one per hour's date.
    let ranges: Vec<_> = files.iter().map(|file| file.range.clone()).collect();
    assert_eq!(ranges.first(), Some(&(0..21)));
    assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), 34);
    let whole = records(0..34);
    for file in files {
        let expected = text_to_record_batch(&new, &whole, file.range.clone()).unwrap();
        let written = read_parquet(file.bytes);
        assert_eq!(written.num_rows(), file.range.len());
        assert_eq!(
            written.columns(),
            expected.columns(),
            "file of records {:?}",
            file.range
        );
        assert_eq!(file.file.first_offset(), file.range.start as i64);
        assert_eq!(file.file.last_offset(), file.range.end as i64 - 1);
    }
}

#[test]
fn a_record_that_does_not_fit_is_named_also_from_a_decoded_chunk() {
    let schema = schema(false);
    let mut bad = records(0..5);
    bad.push(
        br#"{"id": "not a number"}"#,
        KafkaMetadata {
            partition: 3,
            offset: 5,
            timestamp_ms: LATE_ON_THE_26TH_MS,
            schema_id: 1,
        },
    );
    // Its decoding failed on the blocking thread: no batch.
    let chunk = DecodedChunk {
        records: bad,
        schema: Some(Arc::clone(&schema)),
        batch: None,
    };
    let err = match encode_files(&schema, vec![chunk]) {
        Err(super::SessionError::Fatal(reason)) => reason,
        Err(super::SessionError::Transient(reason)) => panic!("transient: {reason}"),
        Ok(_) => panic!("a record that does not fit was written"),
    };
    assert!(err.contains("offset 5"), "{err}");
}

#[test]
fn slices_take_a_range_across_batches() {
    let schema = schema(false);
    let batches: Vec<RecordBatch> = [0..3, 3..7, 7..8]
        .into_iter()
        .map(|range| {
            let text = records(range);
            text_to_record_batch(&schema, &text, 0..text.len()).unwrap()
        })
        .collect();
    let rows = |range: std::ops::Range<usize>| -> Vec<usize> {
        slices(&batches, range)
            .iter()
            .map(RecordBatch::num_rows)
            .collect()
    };
    assert_eq!(rows(0..8), vec![3, 4, 1]);
    assert_eq!(rows(2..4), vec![1, 1]);
    assert_eq!(rows(3..7), vec![4]);
    assert_eq!(rows(7..8), vec![1]);
    assert!(rows(8..8).is_empty());
}
