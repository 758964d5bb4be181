//! Reading a dataset: its files (from a listing, parsed by name), their Parquet footers (schema and
//! row count, cached: a lake file never changes once written), the schema that reads them all, and
//! their rows, one file at a time, projected onto that schema.
//!
//! A dataset holds three kinds of file:
//!
//! - Kafka files, written by its lake sink:
//!   `event_date=YYYY-MM-DD/partition=<p>/<first:020>-<last:020>.parquet` ([`LakeFile`]); their names
//!   are the sink's progress record.
//! - Written files, written through Arrow Flight `DoPut`:
//!   `event_date=YYYY-MM-DD/written/<uuidv7>.parquet`. Their rows have `_kafka_partition` = -1 and
//!   `_kafka_offset` = the row's index in its write; the UUIDv7 makes names unique without
//!   coordination and sort in write order. Sinks ignore them, so they never move a sink's offsets.
//! - Flat files, written by batch jobs (the feature store's training sets, the orchestrator's
//!   batch-score outputs): `<name>.parquet` directly under the dataset (`part-00000.parquet`, ...),
//!   with a `_SUCCESS` marker put after the last one. They have no event date and their rows no Kafka
//!   metadata, unless the job wrote such columns itself. A job that is still writing, or that failed,
//!   left no marker: its flat files are not listed, so a reader sees a batch job's dataset whole or not
//!   at all (the Spark and Hive convention the writers follow).
//!
//! Paths with a segment starting with `_` or `.` (the marker, a job's `_temporary/` parts, a `.crc`
//! checksum) are skipped silently, as Spark and Hive readers do. Any other object under a dataset (an
//! editor's backup, a Parquet file in a subdirectory) is skipped with a warning, never read.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{Array, BooleanArray, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use plinth_runtime::error::ApiError;

use crate::domain::lake_path::{DatasetName, LakeFile};
use crate::domain::lake_schema::KAFKA_TIMESTAMP_COLUMN;
use crate::domain::schema_evolution::{evolve, project};
use plinth_runtime::storage::Location;

/// The directory under an event date that holds written (non-Kafka) files.
pub(crate) const WRITTEN_DIRECTORY: &str = "written";
/// The empty object a batch job puts directly under its dataset once every flat file is in place.
pub(crate) const SUCCESS_MARKER: &str = "_SUCCESS";
/// Rows per batch when reading a file.
const READ_BATCH_ROWS: usize = 8192;
/// Bytes fetched from a file's end in one request to read its footer.
const FOOTER_GUESS_BYTES: u64 = 64 * 1024;
/// Footers kept in memory before the cache starts over.
const FOOTER_CACHE_ENTRIES: usize = 100_000;

/// What a file holds, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Written by the lake sink from Kafka.
    Kafka(LakeFile),
    /// Written through Flight `DoPut`.
    Written {
        /// The UTC date of its rows' `_kafka_timestamp`.
        event_date: NaiveDate,
    },
    /// Written by a batch job directly under the dataset: no event date, no Kafka metadata.
    Flat,
}

/// One file of a dataset, as listed.
#[derive(Debug, Clone)]
pub(crate) struct DatasetFile {
    /// The path relative to the dataset's location.
    pub(crate) relative: String,
    /// What its name says.
    pub(crate) kind: FileKind,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// When it was written.
    pub(crate) last_modified: DateTime<Utc>,
}

impl DatasetFile {
    /// The event date in its path; `None` for a flat file, which has none.
    pub(crate) fn event_date(&self) -> Option<NaiveDate> {
        match &self.kind {
            FileKind::Kafka(file) => Some(file.event_date()),
            FileKind::Written { event_date } => Some(*event_date),
            FileKind::Flat => None,
        }
    }

    /// The Kafka file, when it is one.
    pub(crate) fn kafka(&self) -> Option<&LakeFile> {
        match &self.kind {
            FileKind::Kafka(file) => Some(file),
            FileKind::Written { .. } | FileKind::Flat => None,
        }
    }

    /// Whether a batch job wrote it.
    pub(crate) fn is_flat(&self) -> bool {
        self.kind == FileKind::Flat
    }
}

/// The relative path of a new written file.
pub(crate) fn written_file_path(dataset: &DatasetName, event_date: NaiveDate) -> String {
    format!(
        "{dataset}/event_date={}/{WRITTEN_DIRECTORY}/{}.parquet",
        event_date.format("%Y-%m-%d"),
        uuid::Uuid::now_v7().simple()
    )
}

/// Reads a written file's relative path back: its dataset and event date.
fn parse_written(relative: &str) -> Option<(DatasetName, NaiveDate)> {
    let segments: Vec<&str> = relative.split('/').collect();
    let [dataset, date, directory, file_name] = segments.as_slice() else {
        return None;
    };
    let dataset = DatasetName::new(dataset).ok()?;
    let event_date =
        NaiveDate::parse_from_str(date.strip_prefix("event_date=")?, "%Y-%m-%d").ok()?;
    let id = file_name.strip_suffix(".parquet")?;
    let valid_id = uuid::Uuid::try_parse(id).is_ok_and(|uuid| uuid.simple().to_string() == id);
    (*directory == WRITTEN_DIRECTORY && valid_id).then_some((dataset, event_date))
}

/// What a path under a dataset is, from its name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A file the lake reads.
    File(FileKind),
    /// The `_SUCCESS` marker directly under the dataset.
    SuccessMarker,
    /// A path with a segment (below the dataset) starting with `_` or `.`: skipped silently.
    Hidden,
    /// A path of another dataset: a listing by prefix never yields one.
    OtherDataset,
    /// Anything else: skipped with a warning.
    Unknown,
}

/// Classifies `relative` (`<dataset>/...`, relative to the lake location) as an entry of `dataset`.
fn classify_path(relative: &str, dataset: &DatasetName) -> Entry {
    if let Ok((name, file)) = LakeFile::parse(relative) {
        return if name == *dataset {
            Entry::File(FileKind::Kafka(file))
        } else {
            Entry::OtherDataset
        };
    }
    if let Some((name, event_date)) = parse_written(relative) {
        return if name == *dataset {
            Entry::File(FileKind::Written { event_date })
        } else {
            Entry::OtherDataset
        };
    }
    let mut segments = relative.split('/');
    if segments.next() != Some(dataset.as_str()) {
        return Entry::OtherDataset;
    }
    let below: Vec<&str> = segments.collect();
    match below.as_slice() {
        [name] if *name == SUCCESS_MARKER => Entry::SuccessMarker,
        _ if below.iter().any(|segment| segment.starts_with(['_', '.'])) => Entry::Hidden,
        [name] if name.len() > ".parquet".len() && name.ends_with(".parquet") => {
            Entry::File(FileKind::Flat)
        }
        _ => Entry::Unknown,
    }
}

/// A dataset's files, as listed.
#[derive(Debug, Default)]
pub(crate) struct DatasetListing {
    /// Its readable files, in name order.
    pub(crate) files: Vec<DatasetFile>,
    /// Flat files left out because the dataset has no `_SUCCESS` marker: a batch job is still writing
    /// them, or failed.
    pub(crate) unfinished_flat_files: usize,
}

impl DatasetListing {
    /// The error for a dataset with nothing to read: NOT_FOUND, saying so when a batch job's write is
    /// unfinished.
    pub(crate) fn nothing_to_read(&self, dataset: &DatasetName) -> ApiError {
        let message = if self.unfinished_flat_files > 0 {
            format!(
                "dataset `{dataset}` is not complete: it holds {} Parquet files but no `{SUCCESS_MARKER}` marker, so the batch job writing it (a training set or batch scoring) is still running or has failed; it is read once the job puts `{SUCCESS_MARKER}` last: wait for the job, or delete the leftover files and run it again",
                self.unfinished_flat_files
            )
        } else {
            format!(
                "dataset `{dataset}` has no files in the lake; list datasets with `plinth lake ls`"
            )
        };
        let reason = if self.unfinished_flat_files > 0 {
            "DATASET_INCOMPLETE"
        } else {
            "DATASET_NOT_FOUND"
        };
        ApiError::not_found(reason, message).with_metadata("dataset", dataset.as_str())
    }

    /// Refuses a second writer (a Flight write, a lake sink) into a batch job's dataset: a dataset has
    /// one writer, and the job owns it. `instead` says what to do.
    pub(crate) fn check_no_batch_job(
        &self,
        dataset: &DatasetName,
        instead: &str,
    ) -> Result<(), ApiError> {
        if self.unfinished_flat_files == 0 && !self.files.iter().any(DatasetFile::is_flat) {
            return Ok(());
        }
        Err(ApiError::failed_precondition(
            "DATASET_WRITTEN_BY_BATCH_JOB",
            format!(
                "dataset `{dataset}` holds flat Parquet files (`{dataset}/part-*.parquet` and `{SUCCESS_MARKER}`) written by a batch job (a training set or batch scoring): a dataset has one writer; {instead}"
            ),
        )
        .with_metadata("dataset", dataset.as_str()))
    }
}

/// Every lake file of `dataset` at `location`, in name order (event date, partition, first offset;
/// written files after the partitions of their date; flat files by name, only once the `_SUCCESS`
/// marker exists). A dataset without files is empty, not an error.
pub(crate) async fn list_dataset(
    location: &Location,
    dataset: &DatasetName,
) -> Result<DatasetListing, ApiError> {
    let prefix = location.path(dataset.as_str());
    let listed: Vec<ObjectMeta> = match location.store.list(Some(&prefix)).try_collect().await {
        Ok(listed) => listed,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(err) => return Err(store_error(&location.url_of(dataset.as_str()), &err)),
    };
    let mut complete = false;
    let mut files = Vec::new();
    let mut flat = Vec::new();
    for meta in &listed {
        let Some(relative) = location.relative(&meta.location) else {
            continue;
        };
        let kind = match classify_path(&relative, dataset) {
            Entry::File(kind) => kind,
            Entry::SuccessMarker => {
                complete = true;
                continue;
            }
            Entry::Hidden | Entry::OtherDataset => continue,
            Entry::Unknown => {
                tracing::warn!(
                    path = %meta.location,
                    "an object under a dataset is not a lake file name; it is not read"
                );
                continue;
            }
        };
        let file = DatasetFile {
            relative,
            kind,
            size: meta.size,
            last_modified: meta.last_modified,
        };
        if file.is_flat() {
            flat.push(file);
        } else {
            files.push(file);
        }
    }
    let unfinished_flat_files = if complete {
        files.append(&mut flat);
        0
    } else {
        if !flat.is_empty() {
            tracing::debug!(
                %dataset,
                files = flat.len(),
                "a dataset's flat files are not read until its _SUCCESS marker exists"
            );
        }
        flat.len()
    };
    files.sort_by(|left, right| left.relative.cmp(&right.relative));
    Ok(DatasetListing {
        files,
        unfinished_flat_files,
    })
}

/// The readable files of `dataset` at `location` (see [`list_dataset`]).
pub(crate) async fn list_files(
    location: &Location,
    dataset: &DatasetName,
) -> Result<Vec<DatasetFile>, ApiError> {
    Ok(list_dataset(location, dataset).await?.files)
}

/// The names of the datasets directly under `location`.
pub(crate) async fn list_dataset_names(location: &Location) -> Result<Vec<DatasetName>, ApiError> {
    let prefix = (!location.prefix.as_ref().is_empty()).then_some(&location.prefix);
    let listed = match location.store.list_with_delimiter(prefix).await {
        Ok(listed) => listed,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(err) => return Err(store_error(&location.url, &err)),
    };
    Ok(listed
        .common_prefixes
        .iter()
        .filter_map(|path| path.filename())
        .filter_map(|name| DatasetName::new(name).ok())
        .collect())
}

/// An object-store failure, for a client: UNAVAILABLE, so it retries.
pub(crate) fn store_error(url: &str, err: &object_store::Error) -> ApiError {
    ApiError::unavailable(
        "LAKE_STORE_UNAVAILABLE",
        format!(
            "the lake's object store failed at `{url}`: {err}; check that the store is reachable and the credentials are valid, then retry"
        ),
    )
}

/// What a file's footer says.
#[derive(Debug)]
pub(crate) struct Footer {
    /// The Arrow schema stored in the file.
    pub(crate) schema: SchemaRef,
    /// Its number of rows.
    pub(crate) row_count: u64,
}

/// Footers by file URL and size: files are written once with one atomic put, so a footer never changes.
#[derive(Debug, Default)]
pub(crate) struct FooterCache {
    entries: Mutex<HashMap<(String, u64), Arc<Footer>>>,
}

impl FooterCache {
    /// The footer of `file`, read with one or two range requests on a miss.
    pub(crate) async fn footer(
        &self,
        location: &Location,
        file: &DatasetFile,
    ) -> Result<Arc<Footer>, ApiError> {
        let url = location.url_of(&file.relative);
        let key = (url.clone(), file.size);
        if let Some(found) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Arc::clone(found));
        }
        let footer = Arc::new(read_footer(location, file, &url).await?);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= FOOTER_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, Arc::clone(&footer));
        Ok(footer)
    }

    /// Remembers the footer of a file this process just wrote.
    pub(crate) fn insert(&self, url: String, size: u64, footer: Footer) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= FOOTER_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert((url, size), Arc::new(footer));
    }
}

async fn read_footer(
    location: &Location,
    file: &DatasetFile,
    url: &str,
) -> Result<Footer, ApiError> {
    let path = location.path(&file.relative);
    let unreadable = |why: String| {
        ApiError::failed_precondition(
            "LAKE_FILE_UNREADABLE",
            format!(
                "lake file `{url}` is not readable Parquet ({why}); remove or replace the file"
            ),
        )
    };
    if file.size < 12 {
        return Err(unreadable(format!("{} bytes", file.size)));
    }
    let tail_start = file.size.saturating_sub(FOOTER_GUESS_BYTES);
    let tail = location
        .store
        .get_range(&path, tail_start..file.size)
        .await
        .map_err(|err| store_error(url, &err))?;
    let tail_len = tail.len();
    let footer_bytes: [u8; 8] = tail
        .get(tail_len.saturating_sub(8)..)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| unreadable("short read".to_owned()))?;
    let footer_tail =
        FooterTail::try_new(&footer_bytes).map_err(|err| unreadable(err.to_string()))?;
    let metadata_len = footer_tail.metadata_length();
    let metadata_bytes: Bytes = if metadata_len + 8 <= tail_len {
        tail.slice(tail_len - 8 - metadata_len..tail_len - 8)
    } else {
        let metadata_len = u64::try_from(metadata_len).unwrap_or(u64::MAX);
        let range: Range<u64> = file.size.saturating_sub(8 + metadata_len)..file.size - 8;
        location
            .store
            .get_range(&path, range)
            .await
            .map_err(|err| store_error(url, &err))?
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&metadata_bytes)
        .map_err(|err| unreadable(err.to_string()))?;
    let file_metadata = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(
        file_metadata.schema_descr(),
        file_metadata.key_value_metadata(),
    )
    .map_err(|err| unreadable(err.to_string()))?;
    Ok(Footer {
        schema: Arc::new(schema),
        row_count: u64::try_from(file_metadata.num_rows()).unwrap_or(0),
    })
}

/// The schema that reads every one of `footers`: their schemas evolved in file order.
pub(crate) fn evolved_schema<'a>(
    dataset: &DatasetName,
    footers: impl IntoIterator<Item = &'a Footer>,
) -> Result<Option<SchemaRef>, ApiError> {
    let mut evolved: Option<Schema> = None;
    for footer in footers {
        evolved = Some(match evolved {
            None => footer.schema.as_ref().clone(),
            Some(schema) => evolve(&schema, &footer.schema).map_err(|err| {
                ApiError::failed_precondition(
                    "LAKE_SCHEMAS_INCOMPATIBLE",
                    format!("the files of dataset `{dataset}` do not share one schema: {err}"),
                )
                .with_metadata("dataset", dataset.as_str())
            })?,
        });
    }
    Ok(evolved.map(Arc::new))
}

/// A time range on `_kafka_timestamp`, in ms: `start <= t < end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeRange {
    /// Inclusive start.
    pub(crate) start_ms: Option<i64>,
    /// Exclusive end.
    pub(crate) end_ms: Option<i64>,
}

impl TimeRange {
    /// Whether the range bounds anything.
    pub(crate) fn is_bounded(&self) -> bool {
        self.start_ms.is_some() || self.end_ms.is_some()
    }

    /// Whether a file of `event_date` may hold rows in the range.
    fn may_hold(&self, event_date: NaiveDate) -> bool {
        let day_start = event_date
            .and_hms_opt(0, 0, 0)
            .map(|start| start.and_utc().timestamp_millis());
        let Some(day_start) = day_start else {
            return true;
        };
        let day_end = day_start + 86_400_000;
        self.start_ms.is_none_or(|start| start < day_end)
            && self.end_ms.is_none_or(|end| end > day_start)
    }

    /// The files of `dataset` a scan in the range reads: those whose event date may hold rows in it.
    /// A bounded range over a dataset with flat files is refused (INVALID_ARGUMENT): flat files have no
    /// event date and their rows no Kafka timestamp to select on, and reading none of them, or all of
    /// them, would answer something the range did not ask.
    pub(crate) fn select(
        &self,
        dataset: &DatasetName,
        files: Vec<DatasetFile>,
    ) -> Result<Vec<DatasetFile>, ApiError> {
        if !self.is_bounded() {
            return Ok(files);
        }
        if files.iter().any(DatasetFile::is_flat) {
            let field = if self.start_ms.is_some() {
                "start_time"
            } else {
                "end_time"
            };
            return Err(ApiError::invalid_argument(
                "TIME_RANGE_ON_FLAT_DATASET",
                format!(
                    "dataset `{dataset}` holds flat Parquet files written by a batch job (a training set or batch scoring), which have no Kafka timestamps, so a time range cannot select their rows; scan it without start_time and end_time (`plinth lake scan` without --from and --to) and filter on the dataset's own time column"
                ),
            )
            .with_field(field, "must be unset for a dataset of flat files")
            .with_metadata("dataset", dataset.as_str()));
        }
        Ok(files
            .into_iter()
            .filter(|file| file.event_date().is_none_or(|date| self.may_hold(date)))
            .collect())
    }

    /// Keeps the rows of `batch` in the range; `batch` must hold `_kafka_timestamp`.
    fn filter(&self, batch: &RecordBatch) -> Result<RecordBatch, ApiError> {
        if !self.is_bounded() {
            return Ok(batch.clone());
        }
        let timestamps = batch
            .column_by_name(KAFKA_TIMESTAMP_COLUMN)
            .and_then(|column| column.as_any().downcast_ref::<TimestampMillisecondArray>())
            .ok_or_else(|| {
                ApiError::internal("a lake batch has no millisecond `_kafka_timestamp` column")
            })?;
        let mask: BooleanArray = (0..timestamps.len())
            .map(|index| {
                let value = timestamps.value(index);
                Some(
                    !timestamps.is_null(index)
                        && self.start_ms.is_none_or(|start| value >= start)
                        && self.end_ms.is_none_or(|end| value < end),
                )
            })
            .collect();
        arrow::compute::filter_record_batch(batch, &mask)
            .map_err(|err| ApiError::internal(format!("filtering a lake batch: {err}")))
    }
}

/// Reads one file's rows: only the columns of `read_schema` (a subset of the dataset's evolved schema,
/// in its order), projected onto it, filtered by `time_range`, then narrowed to `output_schema`.
pub(crate) async fn read_file(
    location: &Location,
    file: &DatasetFile,
    read_schema: &SchemaRef,
    output_schema: &SchemaRef,
    time_range: TimeRange,
) -> Result<Vec<RecordBatch>, ApiError> {
    let url = location.url_of(&file.relative);
    let bytes = location
        .store
        .get(&location.path(&file.relative))
        .await
        .map_err(|err| store_error(&url, &err))?
        .bytes()
        .await
        .map_err(|err| store_error(&url, &err))?;
    let read_schema = Arc::clone(read_schema);
    let output_schema = Arc::clone(output_schema);
    tokio::task::spawn_blocking(move || {
        decode_file(bytes, &url, &read_schema, &output_schema, time_range)
    })
    .await
    .map_err(ApiError::internal)?
}

fn decode_file(
    bytes: Bytes,
    url: &str,
    read_schema: &SchemaRef,
    output_schema: &SchemaRef,
    time_range: TimeRange,
) -> Result<Vec<RecordBatch>, ApiError> {
    let unreadable = |why: String| {
        ApiError::failed_precondition(
            "LAKE_FILE_UNREADABLE",
            format!("lake file `{url}` is not readable ({why}); remove or replace the file"),
        )
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|err| unreadable(err.to_string()))?;
    let file_schema = Arc::clone(builder.schema());
    let roots: Vec<usize> = file_schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| read_schema.field_with_name(field.name()).is_ok())
        .map(|(index, _)| index)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|err| unreadable(err.to_string()))?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|err| unreadable(err.to_string()))?;
        let projected = project(&batch, read_schema).map_err(|err| unreadable(err.to_string()))?;
        let filtered = time_range.filter(&projected)?;
        if filtered.num_rows() == 0 {
            continue;
        }
        let indices: Vec<usize> = output_schema
            .fields()
            .iter()
            .filter_map(|field| read_schema.index_of(field.name()).ok())
            .collect();
        let narrowed = filtered
            .project(&indices)
            .map_err(|err| ApiError::internal(format!("narrowing a lake batch: {err}")))?;
        batches.push(narrowed);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests;
