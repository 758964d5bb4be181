//! Where a training set's rows go: a lake dataset written so that a failed job leaves nothing visible,
//! or a channel feeding a stream (Arrow Flight).
//!
//! A lake output is written as `<root>/<dataset>/_temporary/<job>/part-NNNNN.parquet`; on success each
//! part is renamed to `<root>/<dataset>/part-NNNNN.parquet` and `<root>/<dataset>/_SUCCESS` is put last.
//! Readers skip `_`-prefixed paths, so until the renames the dataset holds nothing they read; on failure
//! the temporary parts are deleted. Renames are atomic per file on a local disk; on S3 and GCS a rename
//! is a copy and a delete, so a reader that must see the whole dataset or nothing waits for `_SUCCESS`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use plinth_runtime::storage::Location;
use tokio::sync::mpsc;

use crate::offline::{OfflineContext, OfflineError};

/// The rows per output Parquet file.
const ROWS_PER_FILE: usize = 1_000_000;

/// A training set's destination, opened.
pub(crate) enum Output {
    Lake(LakeOutput),
    Channel(mpsc::Sender<Result<RecordBatch, OfflineError>>),
}

impl Output {
    pub(crate) async fn write(&mut self, batch: RecordBatch) -> Result<(), OfflineError> {
        match self {
            Output::Lake(lake) => lake.write(&batch).await,
            Output::Channel(sender) => sender
                .send(Ok(batch))
                .await
                .map_err(|_| OfflineError::Cancelled),
        }
    }
}

pub(crate) struct LakeOutput {
    location: Location,
    dataset: String,
    job_dir: String,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    parts: Vec<String>,
}

/// Whether `name` can be a dataset directory: 1 to 249 of `[a-zA-Z0-9._-]`, not starting with `_` or
/// `.` (those are hidden from readers).
fn valid_dataset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && !name.starts_with(['_', '.'])
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

impl LakeOutput {
    /// Opens `<lake root>/<dataset>`, refusing a dataset that already holds anything but leftovers of
    /// failed jobs.
    pub(crate) async fn open(
        context: &OfflineContext,
        dataset: &str,
        schema: SchemaRef,
    ) -> Result<Self, OfflineError> {
        let location =
            context
                .locations
                .get(&context.lake_root)
                .map_err(|err| OfflineError::Location {
                    url: context.lake_root.clone(),
                    message: err.to_string(),
                })?;
        let url = location.url_of(dataset);
        if !valid_dataset_name(dataset) {
            return Err(OfflineError::OutputUnwritable {
                url,
                message: "the name must be 1 to 249 of a-z, A-Z, 0-9, `.`, `_`, `-` and not start with `_` or `.`".to_owned(),
            });
        }
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
                        return Err(OfflineError::OutputExists { url });
                    }
                }
                Err(object_store::Error::NotFound { .. }) => break,
                Err(err) => {
                    return Err(OfflineError::OutputUnwritable {
                        url,
                        message: err.to_string(),
                    });
                }
            }
        }
        Ok(Self {
            location,
            dataset: dataset.to_owned(),
            job_dir: format!("{dataset}/_temporary/{}", uuid::Uuid::now_v7()),
            schema,
            pending: Vec::new(),
            pending_rows: 0,
            parts: Vec::new(),
        })
    }

    /// The dataset's URL.
    pub(crate) fn url(&self) -> String {
        self.location.url_of(&self.dataset)
    }

    fn unwritable(&self, err: &dyn std::fmt::Display) -> OfflineError {
        OfflineError::OutputUnwritable {
            url: self.url(),
            message: err.to_string(),
        }
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<(), OfflineError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let room = ROWS_PER_FILE - self.pending_rows;
            let length = room.min(batch.num_rows() - offset);
            self.pending.push(batch.slice(offset, length));
            self.pending_rows += length;
            offset += length;
            if self.pending_rows >= ROWS_PER_FILE {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Encodes the pending rows as one Parquet file (on a blocking thread) and puts it in the job's
    /// directory.
    async fn flush(&mut self) -> Result<(), OfflineError> {
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let schema = Arc::clone(&self.schema);
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

    /// Writes the last part (an empty one when the training set has no row, so the dataset has a
    /// schema), moves the parts into place and puts `_SUCCESS`. Returns the number of files.
    pub(crate) async fn commit(mut self) -> Result<usize, OfflineError> {
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
        let success = self.location.path(&format!("{}/_SUCCESS", self.dataset));
        self.location
            .store
            .put(&success, PutPayload::default())
            .await
            .map_err(|err| self.unwritable(&err))?;
        self.remove_job_dir().await;
        Ok(self.parts.len())
    }

    /// Deletes what the job wrote; the dataset stays as it was.
    pub(crate) async fn abort(self) {
        self.remove_job_dir().await;
    }

    async fn remove_job_dir(&self) {
        let prefix: Path = self.location.path(&self.job_dir);
        let mut listing = self.location.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let Ok(meta) = meta else { break };
            if let Err(err) = self.location.store.delete(&meta.location).await {
                tracing::warn!(path = %meta.location, error = %err, "cannot delete a temporary training set file");
            }
        }
        if let Some(url) = self.location.url.strip_prefix("file://") {
            // A local store keeps empty directories; remove ours (best effort).
            let _ = std::fs::remove_dir_all(format!("{url}/{}", self.job_dir));
            let _ = std::fs::remove_dir(format!("{url}/{}/_temporary", self.dataset));
        }
    }
}

/// Batches of one schema as the bytes of one Parquet file (snappy), the lake's file encoding.
pub(crate) fn encode_parquet(
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
