//! The lake's metric names, in one place. Every series carries a `dataset` label.

/// Records landed in Parquet files by sinks (counter).
pub(crate) const RECORDS_WRITTEN: &str = "plinth_lake_records_written_total";
/// Bytes of Parquet files written by sinks (counter).
pub(crate) const BYTES_WRITTEN: &str = "plinth_lake_bytes_written_total";
/// Parquet files written by sinks (counter).
pub(crate) const FILES_WRITTEN: &str = "plinth_lake_files_written_total";
/// Records skipped because the lake already held their offset (a consumer that rewound) (counter).
pub(crate) const RECORDS_SKIPPED_DUPLICATE: &str = "plinth_lake_records_skipped_duplicate_total";
/// Sink sessions that ended on a transient error and were restarted (counter).
pub(crate) const SINK_RETRIES: &str = "plinth_lake_sink_retries_total";
/// Rows written through Arrow Flight `DoPut` (counter).
pub(crate) const ROWS_PUT: &str = "plinth_lake_rows_put_total";
/// Offsets a sink found missing on the broker before it landed them (retention, compaction, data loss on
/// the broker) (counter). Anything above zero means the dataset lacks those records.
pub(crate) const OFFSETS_MISSING: &str = "plinth_lake_offsets_missing_total";
