use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::properties::WriterProperties;

use super::{EventWindow, row_groups_in_window};

/// `batch` as the bytes of a Parquet file in row groups of 1,000 rows.
pub(super) fn parquet_in_row_groups_of_1000(batch: &RecordBatch) -> Bytes {
    let mut buffer = Vec::new();
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1_000))
        .build();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    Bytes::from(buffer)
}

/// Three row groups of 1,000 rows, the times of group `g` from `g` s to `g` s + 999 ms.
fn file(time: ArrayRef) -> ArrowReaderMetadata {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ts", time.data_type().clone(), false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from_iter_values(0..3_000)), time],
    )
    .unwrap();
    let bytes = parquet_in_row_groups_of_1000(&batch);
    ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap()
}

fn window(start: Option<i64>, end: Option<i64>) -> EventWindow {
    EventWindow {
        column: "ts".to_owned(),
        start,
        end,
    }
}

#[test]
fn row_groups_outside_the_window_are_skipped_by_their_statistics() {
    // Milliseconds in the file; the window is in microseconds.
    let metadata = file(Arc::new(TimestampMillisecondArray::from_iter_values(
        0..3_000,
    )));
    assert_eq!(metadata.metadata().num_row_groups(), 3);
    let groups = |start, end| row_groups_in_window(&metadata, Some(&window(start, end)));
    assert_eq!(groups(Some(1_500_000), Some(1_800_000)), vec![1]);
    // Bounds are inclusive: group 1 ends at 1,999 ms, group 2 starts at 2,000 ms.
    assert_eq!(groups(Some(1_999_000), None), vec![1, 2]);
    assert_eq!(groups(Some(1_999_001), None), vec![2]);
    assert_eq!(groups(None, Some(1_000_000)), vec![0, 1]);
    assert_eq!(groups(None, Some(999_999)), vec![0]);
    assert_eq!(groups(Some(5_000_000), None), Vec::<usize>::new());
    assert_eq!(groups(None, None), vec![0, 1, 2]);
    assert_eq!(row_groups_in_window(&metadata, None), vec![0, 1, 2]);
}

#[test]
fn a_time_column_that_is_not_a_timestamp_is_never_pruned() {
    // Text sorts by characters, not by time (zones, precision): nothing can be told from it.
    let text = (0..3_000).map(|ms| format!("1970-01-01T00:00:{:02}.{:03}Z", ms / 1000, ms % 1000));
    let metadata = file(Arc::new(StringArray::from_iter_values(text)));
    assert_eq!(
        row_groups_in_window(&metadata, Some(&window(Some(2_500_000), None))),
        vec![0, 1, 2]
    );
    // An unknown column: nothing to tell either.
    let metadata = file(Arc::new(TimestampMillisecondArray::from_iter_values(
        0..3_000,
    )));
    let mut other = window(Some(2_500_000), None);
    other.column = "missing".to_owned();
    assert_eq!(row_groups_in_window(&metadata, Some(&other)), vec![0, 1, 2]);
}

#[test]
fn timestamp_units_and_zones_are_compared_in_utc_microseconds() {
    let metadata = file(Arc::new(
        TimestampMillisecondArray::from_iter_values(0..3_000).with_timezone("+05:00"),
    ));
    assert_eq!(
        row_groups_in_window(&metadata, Some(&window(Some(2_000_000), None))),
        vec![2]
    );
}
