//! A source's Parquet files, read through `object_store` as a stream of record batches.
//!
//! A location is a lake dataset (every `*.parquet` under `<lake root>/<dataset>/`, at any depth, as the
//! data hub's sinks write them: `event_date=…/partition=N/…` and `event_date=…/written/…`) or a Parquet
//! URL (one file, or every `*.parquet` under a directory). Paths with a segment starting with `_` or `.`
//! (`_temporary/`, `_SUCCESS`, hidden files) are skipped, as Spark and Hive do.
//!
//! Only the columns asked for are decoded, a row group at a time, its columns split over the cores;
//! with an event window, row groups whose event-time statistics lie wholly outside it are not read.
//! The lake's schemas evolve, so a file that lacks a column yields nulls of the column's type, unless
//! the column is required (the event time), which is an error.
//! Every column is cast to the type asked for (an Int32 file column read as Int64, a timestamp in
//! nanoseconds or without a time zone read as UTC microseconds).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, Scalar, TimestampMicrosecondArray};
use arrow::compute::kernels::cmp::{gt_eq, lt_eq};
use arrow::compute::{and, cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use plinth_runtime::storage::Location;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::domain::definitions::BatchLocation;
use crate::domain::pit::columns::{utc_micros_type, value_type_of};
use crate::domain::value::ValueType;
use crate::offline::{OfflineContext, OfflineError};

mod decode;
mod object_file;
#[cfg(test)]
mod tests;

use self::object_file::ObjectFile;

/// A column to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadColumn {
    /// Its name in the files.
    pub name: String,
    /// The type it is read as.
    pub data_type: DataType,
    /// Whether a file without it is an error (the event time, a join key) rather than a column of
    /// nulls.
    pub required: bool,
}

/// Rows kept by event time: `start <= column <= end`, UTC microseconds; a row with a null time is
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventWindow {
    /// The event-time column, among the columns read as `Timestamp(Microsecond, "UTC")`.
    pub column: String,
    /// The first time kept, if bounded.
    pub start: Option<i64>,
    /// The last time kept, if bounded.
    pub end: Option<i64>,
}

/// The Parquet files of a location, listed once.
#[derive(Debug, Clone)]
pub struct SourceFiles {
    location: Location,
    /// The files, in path order (the lake's date-partitioned names make that oldest first).
    pub files: Vec<ObjectMeta>,
    /// The location's URL, for messages.
    pub url: String,
}

impl SourceFiles {
    /// The files' total size in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    fn file_url(&self, file: &ObjectMeta) -> String {
        match self.location.relative(&file.location) {
            Some(relative) => self.location.url_of(&relative),
            None => self.url.clone(),
        }
    }
}

/// Lists the Parquet files of `location`; a location without any is an error.
pub async fn list_files(
    context: &OfflineContext,
    location: &BatchLocation,
) -> Result<SourceFiles, OfflineError> {
    let open = |url: &str| {
        context
            .locations
            .get(url)
            .map_err(|err| OfflineError::Location {
                url: url.to_owned(),
                message: err.to_string(),
            })
    };
    let (location, prefix, url) = match location {
        BatchLocation::LakeDataset(dataset) => {
            let root = open(&context.lake_root)?;
            let prefix = root.path(dataset);
            let url = root.url_of(dataset);
            (root, prefix, url)
        }
        BatchLocation::ParquetUrl(url) => {
            let trimmed = url.trim().trim_end_matches('/');
            match trimmed.rsplit_once('/') {
                // One file: its directory is the location (opening a `file://` location creates it, which
                // must not happen to the file's own path).
                Some((directory, name)) if name.ends_with(".parquet") => {
                    let parent = open(directory)?;
                    let path = parent.path(name);
                    let meta = parent.store.head(&path).await.map_err(|err| {
                        OfflineError::SourceUnreadable {
                            url: trimmed.to_owned(),
                            message: err.to_string(),
                        }
                    })?;
                    return Ok(SourceFiles {
                        location: parent,
                        files: vec![meta],
                        url: trimmed.to_owned(),
                    });
                }
                _ => {
                    let directory = open(trimmed)?;
                    let prefix = directory.prefix.clone();
                    let url = directory.url.clone();
                    (directory, prefix, url)
                }
            }
        }
    };
    let mut listing = location.store.list(Some(&prefix));
    let mut files = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = match meta {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => break,
            Err(err) => {
                return Err(OfflineError::SourceUnreadable {
                    url,
                    message: err.to_string(),
                });
            }
        };
        let Some(relative) = meta.location.prefix_match(&prefix) else {
            continue;
        };
        let segments: Vec<String> = relative.map(|part| part.as_ref().to_owned()).collect();
        let hidden = segments
            .iter()
            .any(|segment| segment.starts_with('_') || segment.starts_with('.'));
        let parquet = segments
            .last()
            .is_some_and(|name| name.ends_with(".parquet"));
        if parquet && !hidden {
            files.push(meta);
        }
    }
    if files.is_empty() {
        return Err(OfflineError::NoFiles { url });
    }
    files.sort_by(|left, right| left.location.cmp(&right.location));
    Ok(SourceFiles {
        location,
        files,
        url,
    })
}

/// The batches of `files` with `columns` (all columns of the first file when `None`), filtered by
/// `window`, `batch_rows` rows at most each. Files are read one after the other, a row group at a
/// time, its columns decoded in parallel on blocking threads, a few batches ahead.
pub fn read_batches(
    files: SourceFiles,
    columns: Option<Vec<ReadColumn>>,
    window: Option<EventWindow>,
    batch_rows: usize,
) -> BoxStream<'static, Result<RecordBatch, OfflineError>> {
    let (sender, receiver) = mpsc::channel(2);
    tokio::spawn(async move {
        if let Err(err) = send_batches(&files, columns, window, batch_rows, &sender).await {
            // The receiver may be gone; nothing else to tell.
            let _ = sender.send(Err(err)).await;
        }
    });
    ReceiverStream::new(receiver).boxed()
}

async fn send_batches(
    files: &SourceFiles,
    columns: Option<Vec<ReadColumn>>,
    window: Option<EventWindow>,
    batch_rows: usize,
    sender: &mpsc::Sender<Result<RecordBatch, OfflineError>>,
) -> Result<(), OfflineError> {
    let mut columns = columns;
    let parallelism = decode::parallelism();
    for file in &files.files {
        let url = files.file_url(file);
        let unreadable = |err: parquet::errors::ParquetError| OfflineError::SourceUnreadable {
            url: url.clone(),
            message: err.to_string(),
        };
        let mut reader = ObjectFile::new(
            Arc::clone(&files.location.store),
            Path::from(file.location.as_ref()),
            file.size,
        );
        let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
            .await
            .map_err(unreadable)?;
        let file_schema = Arc::clone(metadata.schema());
        let wanted = columns.get_or_insert_with(|| {
            file_schema
                .fields()
                .iter()
                .map(|field| ReadColumn {
                    name: field.name().clone(),
                    data_type: field.data_type().clone(),
                    required: false,
                })
                .collect()
        });
        let mut roots = Vec::new();
        for column in wanted.iter() {
            match file_schema.index_of(&column.name) {
                Ok(index) => roots.push(index),
                Err(_) if column.required => {
                    return Err(OfflineError::TimestampColumnMissing {
                        url,
                        column: column.name.clone(),
                    });
                }
                Err(_) => {}
            }
        }
        roots.sort_unstable();
        roots.dedup();
        let schema = output_schema(wanted);
        let groups = decode::column_groups(metadata.metadata(), &roots, parallelism);
        for row_group in row_groups_in_window(&metadata, window.as_ref()) {
            let chunks = decode::fetch(
                &mut reader,
                metadata.metadata(),
                file.size,
                row_group,
                &roots,
            )
            .await
            .map_err(unreadable)?;
            let mut batches =
                decode::RowGroupBatches::start(&chunks, &metadata, row_group, &groups, batch_rows);
            while let Some(batch) = batches.next().await {
                let batch = batch.map_err(unreadable)?;
                let batch = conform(&batch, wanted, &schema, &url)?;
                let batch = match &window {
                    Some(window) => keep_window(&batch, window)?,
                    None => batch,
                };
                if batch.num_rows() == 0 {
                    continue;
                }
                if sender.send(Ok(batch)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The row groups of a file that can hold rows inside `window`, by the minimum and maximum event time
/// in their statistics: a row group entirely before the window's start or after its end is skipped
/// without being fetched. Every row group where nothing can be told (no window, no statistics, an event
/// column that is not an Arrow timestamp or date in the file).
fn row_groups_in_window(
    metadata: &ArrowReaderMetadata,
    window: Option<&EventWindow>,
) -> Vec<usize> {
    let n_groups = metadata.metadata().num_row_groups();
    let all = (0..n_groups).collect();
    let Some(window) = window else {
        return all;
    };
    let ordered_in_time = metadata
        .schema()
        .field_with_name(&window.column)
        .is_ok_and(|field| {
            matches!(
                field.data_type(),
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            )
        });
    if !ordered_in_time {
        return all;
    }
    let Ok(converter) =
        StatisticsConverter::try_new(&window.column, metadata.schema(), metadata.parquet_schema())
    else {
        return all;
    };
    let row_groups = metadata.metadata().row_groups();
    let micros = utc_micros_type();
    // The file's values cast as the reader casts them, so a bound compares like the rows it bounds.
    let bounds = converter
        .row_group_mins(row_groups)
        .and_then(|mins| Ok((mins, converter.row_group_maxes(row_groups)?)))
        .ok()
        .and_then(|(mins, maxes)| Some((cast(&mins, &micros).ok()?, cast(&maxes, &micros).ok()?)));
    let Some((mins, maxes)) = bounds else {
        return all;
    };
    let (Some(mins), Some(maxes)) = (
        mins.as_any().downcast_ref::<TimestampMicrosecondArray>(),
        maxes.as_any().downcast_ref::<TimestampMicrosecondArray>(),
    ) else {
        return all;
    };
    (0..n_groups)
        .filter(|&row_group| {
            let before = window
                .start
                .is_some_and(|start| maxes.is_valid(row_group) && maxes.value(row_group) < start);
            let after = window
                .end
                .is_some_and(|end| mins.is_valid(row_group) && mins.value(row_group) > end);
            !(before || after)
        })
        .collect()
}

fn output_schema(columns: &[ReadColumn]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|column| Field::new(&column.name, column.data_type.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// The batch with exactly `columns`, in order, cast to their types; absent columns as nulls.
fn conform(
    batch: &RecordBatch,
    columns: &[ReadColumn],
    schema: &SchemaRef,
    url: &str,
) -> Result<RecordBatch, OfflineError> {
    let arrays = columns
        .iter()
        .map(|column| -> Result<ArrayRef, OfflineError> {
            match batch.column_by_name(&column.name) {
                None => Ok(arrow::array::new_null_array(
                    &column.data_type,
                    batch.num_rows(),
                )),
                Some(array) if array.data_type() == &column.data_type => Ok(Arc::clone(array)),
                Some(array) => {
                    cast(array, &column.data_type).map_err(|_| OfflineError::SourceColumnType {
                        url: url.to_owned(),
                        column: column.name.clone(),
                        found: array.data_type().clone(),
                        expected: column.data_type.clone(),
                    })
                }
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        arrays,
        &options,
    )?)
}

fn keep_window(batch: &RecordBatch, window: &EventWindow) -> Result<RecordBatch, OfflineError> {
    let Some(times) = batch
        .column_by_name(&window.column)
        .and_then(|column| column.as_any().downcast_ref::<TimestampMicrosecondArray>())
    else {
        return Err(OfflineError::Arrow(format!(
            "the event window's column `{}` is not among the columns read as UTC microseconds",
            window.column
        )));
    };
    // Comparison kernels over the values; a null time stays null in the mask, and is dropped.
    let zone = times.timezone().map(Arc::<str>::from);
    let at = |micros: i64| {
        Scalar::new(TimestampMicrosecondArray::from(vec![micros]).with_timezone_opt(zone.clone()))
    };
    let keep = match (window.start, window.end) {
        (Some(start), Some(end)) => and(&gt_eq(times, &at(start))?, &lt_eq(times, &at(end))?)?,
        (Some(start), None) => gt_eq(times, &at(start))?,
        (None, Some(end)) => lt_eq(times, &at(end))?,
        (None, None) => BooleanArray::new(
            arrow::buffer::BooleanBuffer::new_set(times.len()),
            times.nulls().cloned(),
        ),
    };
    let keep = if keep.null_count() > 0 {
        arrow::compute::prep_null_mask_filter(&keep)
    } else {
        keep
    };
    if keep.true_count() == batch.num_rows() {
        return Ok(batch.clone());
    }
    Ok(filter_record_batch(batch, &keep)?)
}

/// The columns of a location's files and their value types, from the Parquet footers: the union over
/// files, a later file's type winning (the lake's paths sort oldest first). Columns of a type no feature
/// can have (lists, structs, decimals) are left out.
pub async fn source_schema(
    context: &OfflineContext,
    location: &BatchLocation,
) -> Result<BTreeMap<String, ValueType>, OfflineError> {
    let files = list_files(context, location).await?;
    let mut schema = BTreeMap::new();
    for file in &files.files {
        let reader = ObjectFile::new(
            Arc::clone(&files.location.store),
            Path::from(file.location.as_ref()),
            file.size,
        );
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|err| OfflineError::SourceUnreadable {
                url: files.file_url(file),
                message: err.to_string(),
            })?;
        for field in builder.schema().fields() {
            if let Some(value_type) = value_type_of(field.data_type()) {
                schema.insert(field.name().clone(), value_type);
            }
        }
    }
    Ok(schema)
}
