//! Decoding a Parquet row group on blocking threads, its columns split across the machine's cores.
//!
//! A row group's projected column chunks are fetched in one ranged read, then split into column groups
//! of about equal compressed size; each group is decoded by the synchronous Arrow reader on a blocking
//! thread of its own, a couple of batches ahead, and the groups' batches are put side by side again.
//! Every group reads the same rows in the same batch size, so the `n`-th batch of each covers the same
//! rows. Memory holds one row group's compressed chunks and a few decoded batches per group.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema};
use bytes::{Buf, Bytes};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{ChunkReader, Length};
use tokio::sync::mpsc;

/// Batches each column group's decoder may run ahead of the reader.
const AHEAD: usize = 2;

/// The most column groups (decoding threads) one row group uses.
const MAX_GROUPS: usize = 8;

/// How many column groups to decode in parallel: one per core, at most [`MAX_GROUPS`].
pub(super) fn parallelism() -> usize {
    crate::domain::threads_for(MAX_GROUPS, 1)
}

/// Splits the projected root columns `roots` into at most `groups` groups of about equal compressed
/// size over the file's row groups; each group's roots in file order. Always at least one group (empty
/// when there is no root: the rows are still counted).
pub(super) fn column_groups(
    metadata: &ParquetMetaData,
    roots: &[usize],
    groups: usize,
) -> Vec<Vec<usize>> {
    let n_groups = groups.clamp(1, roots.len().max(1));
    let schema = metadata.file_metadata().schema_descr();
    let mut sizes: Vec<(usize, u64)> = roots.iter().map(|&root| (root, 0)).collect();
    for row_group in metadata.row_groups() {
        for (leaf, column) in row_group.columns().iter().enumerate() {
            let root = schema.get_column_root_idx(leaf);
            if let Some(entry) = sizes.iter_mut().find(|(candidate, _)| *candidate == root) {
                entry.1 += column.compressed_size().max(0) as u64;
            }
        }
    }
    // Largest first, each to the lightest group so far.
    sizes.sort_by(|left, right| right.1.cmp(&left.1).then(left.0.cmp(&right.0)));
    let mut out: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); n_groups];
    for (root, size) in sizes {
        if let Some(lightest) = out.iter_mut().min_by_key(|(total, _)| *total) {
            lightest.0 += size;
            lightest.1.push(root);
        }
    }
    let mut out: Vec<Vec<usize>> = out
        .into_iter()
        .map(|(_, mut group)| {
            group.sort_unstable();
            group
        })
        .filter(|group| !group.is_empty())
        .collect();
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

/// Fetches the column chunks of `roots` in `row_group`, in one ranged read.
pub(super) async fn fetch<R: AsyncFileReader>(
    reader: &mut R,
    metadata: &ParquetMetaData,
    file_len: u64,
    row_group: usize,
    roots: &[usize],
) -> Result<FetchedChunks, ParquetError> {
    let schema = metadata.file_metadata().schema_descr();
    let mut ranges = Vec::new();
    for (leaf, column) in metadata.row_group(row_group).columns().iter().enumerate() {
        if roots.contains(&schema.get_column_root_idx(leaf)) {
            let (start, length) = column.byte_range();
            ranges.push(start..start + length);
        }
    }
    let bytes = if ranges.is_empty() {
        Vec::new()
    } else {
        reader.get_byte_ranges(ranges.clone()).await?
    };
    let mut chunks: Vec<(u64, Bytes)> = ranges
        .into_iter()
        .map(|range| range.start)
        .zip(bytes)
        .collect();
    chunks.sort_by_key(|(start, _)| *start);
    Ok(FetchedChunks(Arc::new(Chunks {
        len: file_len,
        chunks,
    })))
}

struct Chunks {
    len: u64,
    /// Fetched ranges by start offset, sorted, not overlapping.
    chunks: Vec<(u64, Bytes)>,
}

/// The fetched column chunks of one row group, readable by the synchronous Parquet reader as if they
/// were the whole file (a read outside them is an error).
#[derive(Clone)]
pub(super) struct FetchedChunks(Arc<Chunks>);

impl FetchedChunks {
    /// The bytes from `start` to the end of the fetched range holding it (at least one).
    fn tail(&self, start: u64) -> Result<Bytes, ParquetError> {
        let chunks = &self.0.chunks;
        let index = chunks.partition_point(|(offset, _)| *offset <= start);
        index
            .checked_sub(1)
            .and_then(|index| chunks.get(index))
            .and_then(|(offset, bytes)| {
                let skip = usize::try_from(start - offset).ok()?;
                (skip < bytes.len()).then(|| bytes.slice(skip..))
            })
            .ok_or_else(|| {
                ParquetError::General(format!(
                    "offset {start} is outside the column chunks fetched for this row group"
                ))
            })
    }
}

impl Length for FetchedChunks {
    fn len(&self) -> u64 {
        self.0.len
    }
}

impl ChunkReader for FetchedChunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(self.tail(start)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        if length == 0 {
            return Ok(Bytes::new());
        }
        let tail = self.tail(start)?;
        if length > tail.len() {
            return Err(ParquetError::General(format!(
                "{length} bytes at offset {start} run past the column chunk fetched for them"
            )));
        }
        Ok(tail.slice(..length))
    }
}

/// A row group being decoded: one blocking decoder per column group, read back in step.
pub(super) struct RowGroupBatches {
    receivers: Vec<mpsc::Receiver<Result<RecordBatch, ParquetError>>>,
}

impl RowGroupBatches {
    /// Starts decoding `row_group` of the file whose chunks are `chunks`, one decoder per group of
    /// `groups`, `batch_rows` rows per batch.
    pub(super) fn start(
        chunks: &FetchedChunks,
        metadata: &ArrowReaderMetadata,
        row_group: usize,
        groups: &[Vec<usize>],
        batch_rows: usize,
    ) -> Self {
        let receivers = groups
            .iter()
            .map(|roots| {
                let (sender, receiver) = mpsc::channel(AHEAD);
                let chunks = chunks.clone();
                let metadata = metadata.clone();
                let roots = roots.clone();
                tokio::task::spawn_blocking(move || {
                    decode_group(chunks, metadata, row_group, roots, batch_rows, &sender);
                });
                receiver
            })
            .collect();
        Self { receivers }
    }

    /// The next batch with every group's columns (in group order), `None` after the last.
    pub(super) async fn next(&mut self) -> Option<Result<RecordBatch, ParquetError>> {
        let mut parts = Vec::with_capacity(self.receivers.len());
        for receiver in &mut self.receivers {
            match receiver.recv().await {
                Some(Ok(batch)) => parts.push(Some(batch)),
                Some(Err(err)) => return Some(Err(err)),
                None => parts.push(None),
            }
        }
        if parts.iter().all(Option::is_none) {
            return None;
        }
        let parts: Option<Vec<RecordBatch>> = parts.into_iter().collect();
        let Some(parts) = parts else {
            return Some(Err(ParquetError::General(
                "the column groups of a row group ended at different rows".to_owned(),
            )));
        };
        Some(side_by_side(parts))
    }
}

fn decode_group(
    chunks: FetchedChunks,
    metadata: ArrowReaderMetadata,
    row_group: usize,
    roots: Vec<usize>,
    batch_rows: usize,
    sender: &mpsc::Sender<Result<RecordBatch, ParquetError>>,
) {
    let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, metadata)
        .with_projection(mask)
        .with_row_groups(vec![row_group])
        .with_batch_size(batch_rows.max(1))
        .build();
    let reader = match reader {
        Ok(reader) => reader,
        Err(err) => {
            // The reader may be gone; then nobody is left to tell.
            let _ = sender.blocking_send(Err(err));
            return;
        }
    };
    for batch in reader {
        let failed = batch.is_err();
        if sender
            .blocking_send(batch.map_err(ParquetError::from))
            .is_err()
            || failed
        {
            return;
        }
    }
}

/// The columns of `parts` (batches over the same rows) as one batch.
fn side_by_side(mut parts: Vec<RecordBatch>) -> Result<RecordBatch, ParquetError> {
    if parts.len() == 1
        && let Some(only) = parts.pop()
    {
        return Ok(only);
    }
    let rows = parts.first().map_or(0, RecordBatch::num_rows);
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for part in &parts {
        if part.num_rows() != rows {
            return Err(ParquetError::General(format!(
                "the column groups of a row group decoded batches of {rows} and {} rows",
                part.num_rows()
            )));
        }
        fields.extend(part.schema().fields().iter().cloned());
        columns.extend(part.columns().iter().cloned());
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &options,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{Float64Array, Int64Array, StringArray};
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt};
    use parquet::arrow::arrow_reader::ArrowReaderOptions;

    /// A file of three columns in row groups of 1,000 rows.
    fn file(rows: usize) -> Bytes {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", arrow::datatypes::DataType::Int64, false),
            Field::new("name", arrow::datatypes::DataType::Utf8, true),
            Field::new("score", arrow::datatypes::DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|row| (row % 7 != 0).then(|| format!("name-{row}"))),
                )),
                Arc::new(Float64Array::from_iter(
                    (0..rows).map(|row| (row % 5 != 0).then_some(row as f64 / 3.0)),
                )),
            ],
        )
        .unwrap();
        super::super::tests::parquet_in_row_groups_of_1000(&batch)
    }

    /// The file in an in-memory object store, read as the service reads lake files.
    async fn stored(bytes: &Bytes) -> super::super::ObjectFile {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("data/file.parquet");
        store.put(&path, bytes.clone().into()).await.unwrap();
        super::super::ObjectFile::new(store, path, bytes.len() as u64)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_groups_decode_what_one_reader_decodes() {
        let bytes = file(2_500);
        let mut source = stored(&bytes).await;
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap();
        assert_eq!(metadata.metadata().num_row_groups(), 3);
        let expected: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), metadata.clone())
                .with_batch_size(300)
                .build()
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let roots = [0, 1, 2];
        let groups = column_groups(metadata.metadata(), &roots, 2);
        assert_eq!(groups.len(), 2);
        let mut all: Vec<usize> = groups.concat();
        all.sort_unstable();
        assert_eq!(all, roots);
        let mut decoded = Vec::new();
        for row_group in 0..3 {
            let chunks = fetch(
                &mut source,
                metadata.metadata(),
                bytes.len() as u64,
                row_group,
                &roots,
            )
            .await
            .unwrap();
            let mut batches = RowGroupBatches::start(&chunks, &metadata, row_group, &groups, 300);
            while let Some(batch) = batches.next().await {
                decoded.push(batch.unwrap());
            }
        }
        let total: usize = decoded.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(total, 2_500);
        let expected = arrow::compute::concat_batches(&expected[0].schema(), &expected).unwrap();
        for name in ["id", "name", "score"] {
            let columns: Vec<&dyn arrow::array::Array> = decoded
                .iter()
                .map(|batch| batch.column_by_name(name).unwrap().as_ref())
                .collect();
            let column = arrow::compute::concat(&columns).unwrap();
            assert_eq!(
                &column,
                expected.column_by_name(name).unwrap(),
                "column {name}"
            );
        }
    }

    #[tokio::test]
    async fn a_read_outside_the_fetched_chunks_is_an_error() {
        let bytes = file(1_500);
        let mut source = stored(&bytes).await;
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap();
        // Only the `id` column fetched, but every column asked for.
        let chunks = fetch(
            &mut source,
            metadata.metadata(),
            bytes.len() as u64,
            0,
            &[0],
        )
        .await
        .unwrap();
        let mut batches = RowGroupBatches::start(&chunks, &metadata, 0, &[vec![0, 1, 2]], 500);
        let err = batches.next().await.unwrap().unwrap_err();
        assert!(
            err.to_string().contains("outside the column chunks"),
            "{err}"
        );
        assert!(chunks.get_bytes(0, 4).is_err());
    }

    #[test]
    fn no_root_is_one_empty_group() {
        let bytes = file(10);
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap();
        assert_eq!(
            column_groups(metadata.metadata(), &[], 4),
            vec![Vec::<usize>::new()]
        );
        assert_eq!(column_groups(metadata.metadata(), &[2], 4), vec![vec![2]]);
    }
}
