//! The offline store: training sets built with the point-in-time join ([`crate::domain::pit`]) over the
//! lake's Parquet, read through `object_store`, with memory bounded by partitioning big inputs on disk.
//!
//! - [`reader`]: a source's Parquet files as a stream of record batches with the columns asked for,
//!   and a source's schema from the files' footers.
//! - [`plan`]: what a training set reads from each view, built from the project and a selection.
//! - [`training_set`]: the driver: partition, join, and hand the rows to a sink (a lake dataset or a
//!   stream for Arrow Flight).
//! - [`cache`]: sources joined in memory, kept indexed for the next training sets over the same files.

pub mod cache;
pub mod plan;
pub mod reader;
pub mod training_set;

pub(crate) mod output;
mod spill;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::DataType;
use plinth_runtime::storage::Locations;

use crate::domain::pit::PitError;
use crate::domain::selection::SelectionError;

/// The default byte budget of the source cache: 512 MiB, two in-memory joins' worth of sources at the
/// default partition size.
pub const DEFAULT_CACHE_BYTES: u64 = 512 * 1024 * 1024;

/// What the offline store needs from the service: where the lake is, and where to spill.
#[derive(Debug, Clone)]
pub struct OfflineContext {
    /// The object-store clients.
    pub locations: Arc<Locations>,
    /// The lake root URL prefix, under which lake datasets sit (`file:///var/lake`, `s3://bucket/lake`).
    pub lake_root: String,
    /// A local directory for the partition files of big training sets; each job makes and removes its
    /// own subdirectory.
    pub scratch_dir: PathBuf,
    /// The number of partitions; `None` chooses one per view from the input sizes.
    pub partitions: Option<usize>,
    /// The in-memory bytes one partition should hold, used when `partitions` is `None`.
    pub target_partition_bytes: u64,
    /// Rows per record batch read from Parquet and written out.
    pub batch_rows: usize,
    /// Training sets of at most this many rows come out in the entity rows' order; bigger ones come out
    /// in partition order (rows of the same join key together, input order within a partition).
    pub max_rows_to_reorder: usize,
    /// Sources kept in memory between training sets ([`cache`]); shared by the clones of a context.
    pub cache: Arc<cache::FeatureCache>,
}

impl OfflineContext {
    /// A context with the defaults: partitions chosen from input sizes (256 MiB each), batches of 64 Ki
    /// rows, input order restored up to 5 M rows, scratch files under the system temp directory, a
    /// cache of [`DEFAULT_CACHE_BYTES`].
    pub fn new(locations: Arc<Locations>, lake_root: impl Into<String>) -> Self {
        Self {
            locations,
            lake_root: lake_root.into(),
            scratch_dir: std::env::temp_dir(),
            partitions: None,
            target_partition_bytes: 256 * 1024 * 1024,
            batch_rows: 64 * 1024,
            max_rows_to_reorder: 5_000_000,
            cache: Arc::new(cache::FeatureCache::new(DEFAULT_CACHE_BYTES)),
        }
    }
}

/// Why a training set or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// A URL does not name a usable object store.
    #[error("cannot open `{url}`: {message}")]
    Location {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A source's files could not be listed or read.
    #[error("cannot read `{url}`: {message}; check that it exists and holds Parquet files")]
    SourceUnreadable {
        /// The file or dataset URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A location holds no Parquet file.
    #[error("`{url}` holds no Parquet file; check the source's location or write data to it first")]
    NoFiles {
        /// The URL.
        url: String,
    },
    /// A source file lacks a column every row needs: the event-time column or a join key.
    #[error(
        "`{url}` has no column `{column}`, which the source needs (its timestamp field or a join key); fix the source's definition (`timestamp_field`, `field_mapping`) or the data"
    )]
    TimestampColumnMissing {
        /// The file.
        url: String,
        /// The column.
        column: String,
    },
    /// A source column cannot be read as the type declared for it.
    #[error(
        "column `{column}` of `{url}` is {found} and cannot be read as {expected}; fix the declared type or the data"
    )]
    SourceColumnType {
        /// The file.
        url: String,
        /// The column.
        column: String,
        /// Its type in the file.
        found: DataType,
        /// The type wanted.
        expected: DataType,
    },
    /// The entity rows lack a column the training set needs.
    #[error("the entity rows have no column `{column}`; add it ({expected})")]
    MissingEntityColumn {
        /// The column.
        column: String,
        /// What it should hold.
        expected: String,
    },
    /// An entity column has the wrong type.
    #[error("entity column `{column}` is {found}; it must be {expected}")]
    EntityColumnType {
        /// The column.
        column: String,
        /// Its type.
        found: DataType,
        /// What it should be.
        expected: String,
    },
    /// An entity column has the name of an output feature column.
    #[error(
        "the entity rows already have a column `{column}`, which the training set adds as a feature; rename the entity column or use full feature names"
    )]
    OutputColumnCollision {
        /// The column.
        column: String,
    },
    /// The selection names a view that is not in the project or cannot be read offline.
    #[error("feature view `{view}` cannot be used for a training set: {reason}")]
    ViewUnusable {
        /// The view.
        view: String,
        /// Why.
        reason: String,
    },
    /// The selection did not resolve (a name collision with short names).
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// The output dataset already holds files.
    #[error(
        "the output `{url}` already exists; choose another name or delete the old training set first"
    )]
    OutputExists {
        /// The dataset URL.
        url: String,
    },
    /// The output could not be written.
    #[error("cannot write `{url}`: {message}")]
    OutputUnwritable {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The join refused its input.
    #[error(transparent)]
    Join(#[from] PitError),
    /// A scratch file could not be written or read.
    #[error(
        "scratch file `{path}` failed: {message}; check the scratch directory's free space and permissions"
    )]
    Scratch {
        /// The path.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Arrow refused an operation.
    #[error("arrow failed while building the training set: {0}")]
    Arrow(String),
    /// The receiver of a streamed training set went away.
    #[error("the training set's reader went away before the end")]
    Cancelled,
}

impl From<arrow::error::ArrowError> for OfflineError {
    fn from(err: arrow::error::ArrowError) -> Self {
        OfflineError::Arrow(err.to_string())
    }
}
