//! Partition files: rows hash-partitioned by join key into Arrow IPC files in a job's scratch directory,
//! so that each partition of the entity rows and of a view's rows fits in memory for the join.
//!
//! Both sides hash the same normal form of the key ([`crate::domain::pit::columns::normalize_key`]), so
//! an Int32 entity key lands in the same partition as the Int64 source key of the same value.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::row::{RowConverter, SortField};

use crate::domain::pit::columns::normalize_key;
use crate::offline::OfflineError;

/// A job's scratch directory, removed with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Makes `<parent>/plinth-training-set-<uuid>`.
    pub(crate) fn new(parent: &Path) -> Result<Self, OfflineError> {
        let path = parent.join(format!("plinth-training-set-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).map_err(|err| scratch_error(&path, &err))?;
        Ok(Self { path })
    }

    /// The path of the scratch file `name`.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot remove a training set's scratch directory");
        }
    }
}

pub(crate) fn scratch_error(path: &Path, err: &dyn std::fmt::Display) -> OfflineError {
    OfflineError::Scratch {
        path: path.to_owned(),
        message: err.to_string(),
    }
}

/// One partition's file, once written.
#[derive(Debug, Clone)]
pub(crate) struct SpilledPartition {
    /// The file; `None` when no row fell in the partition.
    pub(crate) path: Option<PathBuf>,
    /// Its rows.
    pub(crate) rows: u64,
    /// Its size on disk.
    pub(crate) bytes: u64,
}

/// Writes rows into `n` partition files named `<name>-<p>.arrow`, each opened at its first row.
pub(crate) struct PartitionWriter {
    paths: Vec<PathBuf>,
    writers: Vec<Option<FileWriter<BufWriter<File>>>>,
    rows: Vec<u64>,
    schema: SchemaRef,
}

impl PartitionWriter {
    pub(crate) fn new(scratch: &ScratchDir, name: &str, n: usize, schema: SchemaRef) -> Self {
        Self {
            paths: (0..n)
                .map(|partition| scratch.file(&format!("{name}-{partition:05}.arrow")))
                .collect(),
            writers: (0..n).map(|_| None).collect(),
            rows: vec![0; n],
            schema,
        }
    }

    /// The number of partitions.
    pub(crate) fn partitions(&self) -> usize {
        self.paths.len()
    }

    /// The rows' schema.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Writes each row of `batch` to the partition `partitions[row]`.
    pub(crate) fn write(
        &mut self,
        batch: &RecordBatch,
        partitions: &[u32],
    ) -> Result<(), OfflineError> {
        let n = self.paths.len();
        let mut indices: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (row_idx, &partition) in partitions.iter().enumerate() {
            let row_idx = u32::try_from(row_idx)
                .map_err(|_| OfflineError::Arrow("a batch holds over 4 G rows".to_owned()))?;
            indices[partition as usize % n].push(row_idx);
        }
        for (partition, rows) in indices.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let n_rows = rows.len() as u64;
            let part = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(batch, &UInt32Array::from(rows))?
            };
            let path = &self.paths[partition];
            let writer = match &mut self.writers[partition] {
                Some(writer) => writer,
                slot => {
                    let file = File::create(path).map_err(|err| scratch_error(path, &err))?;
                    let writer = FileWriter::try_new_buffered(file, &self.schema)
                        .map_err(|err| scratch_error(path, &err))?;
                    slot.insert(writer)
                }
            };
            writer
                .write(&part)
                .map_err(|err| scratch_error(path, &err))?;
            self.rows[partition] += n_rows;
        }
        Ok(())
    }

    /// Closes the files.
    pub(crate) fn finish(self) -> Result<Vec<SpilledPartition>, OfflineError> {
        let mut partitions = Vec::with_capacity(self.paths.len());
        for ((path, writer), rows) in self.paths.into_iter().zip(self.writers).zip(self.rows) {
            match writer {
                Some(mut writer) => {
                    writer.finish().map_err(|err| scratch_error(&path, &err))?;
                    drop(writer);
                    let bytes = std::fs::metadata(&path)
                        .map_err(|err| scratch_error(&path, &err))?
                        .len();
                    partitions.push(SpilledPartition {
                        path: Some(path),
                        rows,
                        bytes,
                    });
                }
                None => partitions.push(SpilledPartition {
                    path: None,
                    rows: 0,
                    bytes: 0,
                }),
            }
        }
        Ok(partitions)
    }
}

/// The batches of a partition file, in write order.
pub(crate) fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, OfflineError> {
    let file = File::open(path).map_err(|err| scratch_error(path, &err))?;
    let reader =
        FileReader::try_new_buffered(file, None).map_err(|err| scratch_error(path, &err))?;
    reader
        .map(|batch| batch.map_err(|err| scratch_error(path, &err)))
        .collect()
}

/// A partition file as one batch (an empty batch of `schema` for an empty partition).
pub(crate) fn read_partition(
    partition: &SpilledPartition,
    schema: &SchemaRef,
) -> Result<RecordBatch, OfflineError> {
    let Some(path) = &partition.path else {
        return Ok(RecordBatch::new_empty(schema.clone()));
    };
    let batches = read_batches(path)?;
    Ok(concat_batches(schema, &batches)?)
}

/// The partition of each row: a hash of its key columns modulo `n` (all rows in 0 without keys).
pub(crate) fn key_partitions(
    keys: &[ArrayRef],
    n_rows: usize,
    n: usize,
) -> Result<Vec<u32>, OfflineError> {
    let n = u64::try_from(n.max(1)).unwrap_or(1);
    if keys.is_empty() || n == 1 {
        return Ok(vec![0; n_rows]);
    }
    let normalized = keys
        .iter()
        .enumerate()
        .map(|(position, key)| normalize_key(&format!("key {position}"), key))
        .collect::<Result<Vec<_>, _>>()?;
    let converter = RowConverter::new(
        normalized
            .iter()
            .map(|key| SortField::new(key.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(&normalized)?;
    Ok((0..n_rows)
        .map(|row_idx| (fnv1a(rows.row(row_idx).data()) % n) as u32)
        .collect())
}

/// FNV-1a, then a final mix so that the low bits (taken by the modulo) depend on every byte.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}
