//! Lake datasets as the feature store lays them out: `<lake root>/<dataset>/`, Parquet files at any
//! depth, `_`- and `.`-prefixed paths hidden from readers. A dataset written here follows the feature
//! store's training-set output: parts under `<dataset>/_temporary/<job>/`, renamed into place on
//! success, `_SUCCESS` put last; on failure the temporary parts are deleted and nothing is visible.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt as _, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use plinth_runtime::storage::Location;

use super::{SUCCESS_MARKER, TaskError};

/// Rows per output Parquet file.
const ROWS_PER_FILE: usize = 1_000_000;

/// Refuses a dataset name that cannot be a dataset directory: 1 to 249 of `[a-zA-Z0-9._-]`, not
/// starting with `_` or `.` (the feature store's rule). `field` names the `with:` key for the message.
pub(super) fn check_dataset_name(name: &str, field: &str) -> Result<(), TaskError> {
    let valid = !name.is_empty()
        && name.len() <= 249
        && !name.starts_with(['_', '.'])
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(TaskError::failed(format!(
            "`{field}` is `{name}`, which is not a lake dataset name: use 1 to 249 of a-z, A-Z, 0-9, `.`, `_`, `-`, not starting with `_` or `.`"
        )))
    }
}

/// Whether a path under a dataset is hidden from readers (a segment starting with `_` or `.`).
fn hidden(relative: &str) -> bool {
    relative
        .split('/')
        .any(|segment| segment.starts_with(['_', '.']))
}

/// The Parquet files of `dataset`, in path order; a dataset without any is an error naming its URL.
pub(super) async fn list_parquet(
    location: &Location,
    dataset: &str,
    field: &str,
) -> Result<Vec<ObjectMeta>, TaskError> {
    let url = location.url_of(dataset);
    let prefix = location.path(dataset);
    let mut listing = location.store.list(Some(&prefix));
    let mut files = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = match meta {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => break,
            Err(err) => {
                return Err(TaskError::retryable(format!(
                    "cannot list the dataset `{dataset}` at {url}: {err}"
                )));
            }
        };
        let Some(relative) = meta.location.prefix_match(&prefix).map(|parts| {
            parts
                .map(|part| part.as_ref().to_owned())
                .collect::<Vec<_>>()
        }) else {
            continue;
        };
        let relative = relative.join("/");
        if !hidden(&relative) && relative.ends_with(".parquet") {
            files.push(meta);
        }
    }
    if files.is_empty() {
        return Err(TaskError::failed(format!(
            "the dataset `{dataset}` (`{field}`) has no Parquet file at {url}; check the name, or run the task that writes it first"
        )));
    }
    files.sort_by(|left, right| left.location.cmp(&right.location));
    Ok(files)
}

/// One Parquet file of a store as the async Parquet reader's input: ranged reads through the store's
/// client, the footer located from the size the listing gave.
#[derive(Debug, Clone)]
pub(super) struct LakeFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl LakeFile {
    /// The file `meta` lists in `store`.
    pub(super) fn new(store: Arc<dyn ObjectStore>, meta: &ObjectMeta) -> Self {
        Self {
            store,
            path: meta.location.clone(),
            size: meta.size,
        }
    }
}

fn external(err: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(err))
}

impl AsyncFileReader for LakeFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_metadata_options(options.map(|options| options.metadata_options().clone()))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A dataset being written; nothing is visible until [`DatasetWriter::commit`].
pub(super) struct DatasetWriter {
    location: Location,
    dataset: String,
    job_dir: String,
    schema: Option<SchemaRef>,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    parts: Vec<String>,
}

impl DatasetWriter {
    /// Opens `dataset` for writing, refusing one that holds anything but leftovers of failed jobs.
    pub(super) async fn open(
        location: Location,
        dataset: &str,
        field: &str,
    ) -> Result<Self, TaskError> {
        check_dataset_name(dataset, field)?;
        let url = location.url_of(dataset);
        let prefix = location.path(dataset);
        let mut listing = location.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            match meta {
                Ok(meta) => {
                    let temporary = meta
                        .location
                        .prefix_match(&prefix)
                        .and_then(|mut parts| parts.next())
                        .is_some_and(|first| first.as_ref() == "_temporary");
                    if !temporary {
                        return Err(TaskError::failed(format!(
                            "the output dataset `{dataset}` already exists at {url}; choose a new name for `{field}` (for example with {{{{ ds_nodash }}}} or {{{{ run_id }}}} in it) or delete the dataset"
                        )));
                    }
                }
                Err(object_store::Error::NotFound { .. }) => break,
                Err(err) => {
                    return Err(TaskError::retryable(format!(
                        "cannot list the output dataset `{dataset}` at {url}: {err}"
                    )));
                }
            }
        }
        Ok(Self {
            location,
            dataset: dataset.to_owned(),
            job_dir: format!("{dataset}/_temporary/{}", uuid::Uuid::now_v7()),
            schema: None,
            pending: Vec::new(),
            pending_rows: 0,
            parts: Vec::new(),
        })
    }

    /// The dataset's URL.
    pub(super) fn url(&self) -> String {
        self.location.url_of(&self.dataset)
    }

    fn unwritable(&self, err: &dyn std::fmt::Display) -> TaskError {
        TaskError::retryable(format!(
            "cannot write the dataset `{}` at {}: {err}",
            self.dataset,
            self.url()
        ))
    }

    /// Adds rows; every batch has the schema of the first.
    pub(super) async fn write(&mut self, batch: RecordBatch) -> Result<(), TaskError> {
        if self.schema.is_none() {
            self.schema = Some(batch.schema());
        }
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
        if self.pending_rows >= ROWS_PER_FILE {
            self.flush().await?;
        }
        Ok(())
    }

    /// Encodes the pending rows as one Parquet part (on a blocking thread) in the job's directory.
    async fn flush(&mut self) -> Result<(), TaskError> {
        let Some(schema) = self.schema.clone() else {
            return Ok(());
        };
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let encoded = tokio::task::spawn_blocking(move || encode_parquet(schema, &batches))
            .await
            .map_err(|err| self.unwritable(&err))?;
        let bytes = encoded.map_err(|err| self.unwritable(&err))?;
        let name = format!("part-{:05}.parquet", self.parts.len());
        let path = self.location.path(&format!("{}/{name}", self.job_dir));
        self.location
            .store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|err| self.unwritable(&err))?;
        self.parts.push(name);
        Ok(())
    }

    /// Writes the last part (an empty one with `schema` when no row came, so the dataset has a
    /// schema), moves the parts into place and puts `_SUCCESS`. Returns the number of parts.
    pub(super) async fn commit(mut self, empty_schema: SchemaRef) -> Result<usize, TaskError> {
        if self.schema.is_none() {
            self.schema = Some(Arc::clone(&empty_schema));
            self.pending.push(RecordBatch::new_empty(empty_schema));
        }
        if self.pending_rows > 0 || self.parts.is_empty() {
            self.flush().await?;
        }
        for name in &self.parts {
            let from = self.location.path(&format!("{}/{name}", self.job_dir));
            let to = self.location.path(&format!("{}/{name}", self.dataset));
            self.location
                .store
                .rename(&from, &to)
                .await
                .map_err(|err| self.unwritable(&err))?;
        }
        let success = self
            .location
            .path(&format!("{}/{SUCCESS_MARKER}", self.dataset));
        self.location
            .store
            .put(&success, PutPayload::default())
            .await
            .map_err(|err| self.unwritable(&err))?;
        self.remove_job_dir().await;
        Ok(self.parts.len())
    }

    /// Deletes what the job wrote; the dataset stays as it was.
    pub(super) async fn abort(self) {
        self.remove_job_dir().await;
    }

    async fn remove_job_dir(&self) {
        let prefix: Path = self.location.path(&self.job_dir);
        let mut listing = self.location.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let Ok(meta) = meta else { break };
            if let Err(err) = self.location.store.delete(&meta.location).await {
                tracing::warn!(path = %meta.location, error = %err, "cannot delete a temporary dataset file");
            }
        }
        if let Some(root) = self.location.url.strip_prefix("file://") {
            // A local store keeps empty directories; remove ours (best effort).
            let _ = std::fs::remove_dir_all(format!("{root}/{}", self.job_dir));
            let _ = std::fs::remove_dir(format!("{root}/{}/_temporary", self.dataset));
            let _ = std::fs::remove_dir(format!("{root}/{}", self.dataset));
        }
    }
}

/// Batches of one schema as the bytes of one Parquet file (snappy), the lake's file encoding.
fn encode_parquet(
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.into_inner()
}
