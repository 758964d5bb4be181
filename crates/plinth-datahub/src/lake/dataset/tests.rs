use std::sync::Arc;

use arrow::array::{
    AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit};
use object_store::PutPayload;
use object_store::memory::InMemory;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use plinth_runtime::error::ErrorCode;

use super::*;

const DAY_ONE_MS: i64 = 1_772_359_200_000;

fn location() -> Location {
    Location {
        store: Arc::new(InMemory::new()),
        prefix: Path::from("lake"),
        url: "memory:///lake".to_owned(),
    }
}

fn dataset(name: &str) -> DatasetName {
    DatasetName::new(name).unwrap()
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.into_inner().unwrap()
}

async fn put(location: &Location, relative: &str, bytes: Vec<u8>) {
    location
        .store
        .put(&location.path(relative), PutPayload::from(bytes))
        .await
        .unwrap();
}

/// A batch-score output's part: driver ids from `first`, a score and an event time.
fn scores(first: i64, rows: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("score", DataType::Float64, true),
        Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|id| *id as f64 / 10.0),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(ids.iter().map(|id| DAY_ONE_MS + id))
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

/// A Kafka file's rows: one user column and the lake's system columns.
fn kafka_rows(partition: i32, offsets: std::ops::Range<i64>, timestamp_ms: i64) -> RecordBatch {
    let rows = offsets.clone().count();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("_kafka_partition", DataType::Int32, false),
        Field::new("_kafka_offset", DataType::Int64, false),
        Field::new(
            KAFKA_TIMESTAMP_COLUMN,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(offsets.clone())),
            Arc::new(Int32Array::from(vec![partition; rows])),
            Arc::new(Int64Array::from_iter_values(offsets)),
            Arc::new(
                TimestampMillisecondArray::from(vec![timestamp_ms; rows]).with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

#[test]
fn paths_under_a_dataset_classify_by_layout() {
    let scored = dataset("scored");
    let kafka = "scored/event_date=2026-03-01/partition=0/00000000000000000000-00000000000000000009.parquet";
    assert!(matches!(
        classify_path(kafka, &scored),
        Entry::File(FileKind::Kafka(_))
    ));
    let written = format!(
        "scored/event_date=2026-03-01/written/{}.parquet",
        uuid::Uuid::now_v7().simple()
    );
    assert_eq!(
        classify_path(&written, &scored),
        Entry::File(FileKind::Written {
            event_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        })
    );
    for flat in ["scored/part-00000.parquet", "scored/scores.parquet"] {
        assert_eq!(
            classify_path(flat, &scored),
            Entry::File(FileKind::Flat),
            "{flat}"
        );
    }
    assert_eq!(
        classify_path("scored/_SUCCESS", &scored),
        Entry::SuccessMarker
    );
    // What Spark and Hive readers skip: a job's temporary parts, checksums, hidden files.
    for hidden in [
        "scored/_temporary/job-1/part-00000.parquet",
        "scored/.part-00000.parquet.crc",
        "scored/_committed",
        "scored/.parquet",
        "scored/event_date=2026-03-01/partition=0/.00000000000000000000-00000000000000000009.parquet.tmp",
        "scored/nested/_SUCCESS",
    ] {
        assert_eq!(classify_path(hidden, &scored), Entry::Hidden, "{hidden}");
    }
    for unknown in [
        "scored/notes.txt",
        "scored/parquet",
        "scored/nested/part-00000.parquet",
        "scored/event_date=2026-03-01/partition=0/1-9.parquet",
        "scored/event_date=2026-03-01/written/not-a-uuid.parquet",
    ] {
        assert_eq!(classify_path(unknown, &scored), Entry::Unknown, "{unknown}");
    }
    assert_eq!(
        classify_path("scored-2/part-00000.parquet", &scored),
        Entry::OtherDataset
    );
    // A dataset named like a hidden path (Kafka allows `_` first) still has flat files.
    assert_eq!(
        classify_path("_scores/part-00000.parquet", &dataset("_scores")),
        Entry::File(FileKind::Flat)
    );
}

#[tokio::test]
async fn flat_files_are_listed_only_once_the_success_marker_exists() {
    let location = location();
    let scored = dataset("scored");
    put(
        &location,
        "scored/part-00001.parquet",
        parquet_bytes(&scores(3, 2)),
    )
    .await;
    put(
        &location,
        "scored/part-00000.parquet",
        parquet_bytes(&scores(0, 3)),
    )
    .await;
    put(
        &location,
        "scored/_temporary/job-1/part-00002.parquet",
        parquet_bytes(&scores(5, 1)),
    )
    .await;
    put(&location, "scored/.part-00000.parquet.crc", vec![1, 2, 3]).await;
    put(&location, "scored/notes.txt", b"stray".to_vec()).await;

    let unfinished = list_dataset(&location, &scored).await.unwrap();
    assert!(unfinished.files.is_empty(), "{:?}", unfinished.files);
    assert_eq!(unfinished.unfinished_flat_files, 2);
    let error = unfinished.nothing_to_read(&scored);
    assert_eq!(error.code, ErrorCode::NotFound);
    assert_eq!(error.reason, "DATASET_INCOMPLETE");
    assert!(error.message.contains("_SUCCESS"), "{}", error.message);
    assert!(list_files(&location, &scored).await.unwrap().is_empty());

    put(&location, "scored/_SUCCESS", Vec::new()).await;
    let listing = list_dataset(&location, &scored).await.unwrap();
    assert_eq!(listing.unfinished_flat_files, 0);
    let names: Vec<&str> = listing
        .files
        .iter()
        .map(|file| file.relative.as_str())
        .collect();
    assert_eq!(
        names,
        ["scored/part-00000.parquet", "scored/part-00001.parquet"]
    );
    assert!(
        listing
            .files
            .iter()
            .all(|file| file.is_flat() && file.event_date().is_none() && file.kafka().is_none())
    );
    let refused = listing
        .check_no_batch_job(&scored, "write into another dataset")
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::FailedPrecondition);
    assert_eq!(refused.reason, "DATASET_WRITTEN_BY_BATCH_JOB");
    assert!(
        refused
            .message
            .ends_with("one writer; write into another dataset")
    );
    assert!(unfinished.check_no_batch_job(&scored, "").is_err());

    let absent = list_dataset(&location, &dataset("absent")).await.unwrap();
    assert!(absent.files.is_empty());
    assert_eq!(
        absent.nothing_to_read(&dataset("absent")).reason,
        "DATASET_NOT_FOUND"
    );
    assert!(absent.check_no_batch_job(&dataset("absent"), "").is_ok());
}

#[tokio::test]
async fn a_dataset_of_kafka_and_flat_files_lists_both_in_name_order() {
    let location = location();
    let mixed = dataset("mixed");
    let kafka = LakeFile::new(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), 0, 0, 1).unwrap();
    put(
        &location,
        &kafka.path(&mixed),
        parquet_bytes(&kafka_rows(0, 0..2, DAY_ONE_MS)),
    )
    .await;
    put(
        &location,
        "mixed/part-00000.parquet",
        parquet_bytes(&scores(0, 1)),
    )
    .await;
    // Without the marker only the Kafka file is read; the sink's progress never sees flat files.
    let files = list_files(&location, &mixed).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].kafka(), Some(&kafka));

    put(&location, "mixed/_SUCCESS", Vec::new()).await;
    let files = list_files(&location, &mixed).await.unwrap();
    let kinds: Vec<bool> = files.iter().map(DatasetFile::is_flat).collect();
    assert_eq!(kinds, [false, true], "event_date=... sorts before part-...");
    assert_eq!(files[0].event_date(), NaiveDate::from_ymd_opt(2026, 3, 1));
}

#[tokio::test]
async fn a_flat_dataset_reads_with_column_projection() {
    let location = location();
    let scored = dataset("scored");
    put(
        &location,
        "scored/part-00000.parquet",
        parquet_bytes(&scores(0, 3)),
    )
    .await;
    put(
        &location,
        "scored/part-00001.parquet",
        parquet_bytes(&scores(3, 2)),
    )
    .await;
    put(&location, "scored/_SUCCESS", Vec::new()).await;

    let files = list_files(&location, &scored).await.unwrap();
    let cache = FooterCache::default();
    let mut footers = Vec::new();
    for file in &files {
        footers.push(cache.footer(&location, file).await.unwrap());
    }
    assert_eq!(
        footers.iter().map(|footer| footer.row_count).sum::<u64>(),
        5
    );
    let schema = evolved_schema(&scored, footers.iter().map(AsRef::as_ref))
        .unwrap()
        .unwrap();
    let names: Vec<&str> = schema
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    assert_eq!(names, ["driver_id", "score", "event_timestamp"]);

    // `score, driver_id`: read in the file's order, sent in the asked order.
    let read_schema = Arc::new(schema.project(&[0, 1]).unwrap());
    let output_schema = Arc::new(schema.project(&[1, 0]).unwrap());
    let unbounded = TimeRange {
        start_ms: None,
        end_ms: None,
    };
    let files = unbounded.select(&scored, files).unwrap();
    let mut ids = Vec::new();
    let mut scores_read = Vec::new();
    for file in &files {
        for batch in read_file(&location, file, &read_schema, &output_schema, unbounded)
            .await
            .unwrap()
        {
            assert_eq!(batch.schema(), output_schema);
            scores_read.extend(
                batch
                    .column(0)
                    .as_primitive::<Float64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
            ids.extend(
                batch
                    .column(1)
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
    }
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert_eq!(scores_read, [0.0, 0.1, 0.2, 0.3, 0.4]);
}

#[tokio::test]
async fn a_time_range_over_flat_files_is_refused_and_prunes_kafka_files_by_date() {
    let location = location();
    let scored = dataset("scored");
    put(
        &location,
        "scored/part-00000.parquet",
        parquet_bytes(&scores(0, 1)),
    )
    .await;
    put(&location, "scored/_SUCCESS", Vec::new()).await;
    let files = list_files(&location, &scored).await.unwrap();
    for (range, field) in [
        (
            TimeRange {
                start_ms: Some(DAY_ONE_MS),
                end_ms: None,
            },
            "start_time",
        ),
        (
            TimeRange {
                start_ms: None,
                end_ms: Some(DAY_ONE_MS),
            },
            "end_time",
        ),
    ] {
        let refused = range.select(&scored, files.clone()).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidArgument);
        assert_eq!(refused.reason, "TIME_RANGE_ON_FLAT_DATASET");
        assert_eq!(refused.field_violations[0].field, field);
        assert!(refused.message.contains("without start_time and end_time"));
    }

    let orders = dataset("orders");
    let day_one = LakeFile::new(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), 0, 0, 1).unwrap();
    let day_two = LakeFile::new(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), 0, 2, 3).unwrap();
    put(
        &location,
        &day_one.path(&orders),
        parquet_bytes(&kafka_rows(0, 0..2, DAY_ONE_MS)),
    )
    .await;
    put(
        &location,
        &day_two.path(&orders),
        parquet_bytes(&kafka_rows(0, 2..4, DAY_ONE_MS + 86_400_000)),
    )
    .await;
    let files = list_files(&location, &orders).await.unwrap();
    let second_day = TimeRange {
        start_ms: Some(DAY_ONE_MS + 86_400_000),
        end_ms: None,
    };
    let selected = second_day.select(&orders, files).unwrap();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].kafka(), Some(&day_two));
    let file_schema = kafka_rows(0, 0..1, 0).schema();
    let read_schema = Arc::new(file_schema.project(&[0, 3]).unwrap());
    let output_schema = Arc::new(file_schema.project(&[0]).unwrap());
    let batches = read_file(
        &location,
        &selected[0],
        &read_schema,
        &output_schema,
        second_day,
    )
    .await
    .unwrap();
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|batch| {
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, [2, 3]);
    assert_eq!(batches[0].schema(), output_schema);
}
