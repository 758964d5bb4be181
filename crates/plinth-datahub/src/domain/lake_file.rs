//! One lake file: Arrow batches encoded as Parquet in memory, and read back.
//!
//! Encoding is separate from storage so that the sink can write the bytes through `object_store` (or
//! anything else) with one atomic put per file: a file is either whole in the lake or absent.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

/// Why a lake file could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum LakeFileError {
    /// A batch does not have the file's schema.
    #[error(
        "a batch does not have the file's schema; write batches of one dataset schema per file, and \
         evolve the schema before writing batches of a newer one"
    )]
    SchemaMismatch,
    /// Parquet refused to encode the batches.
    #[error("encoding the lake file failed: {source}")]
    Encode {
        /// What the Parquet writer reported.
        source: ParquetError,
    },
    /// The bytes are not a Parquet file this crate can read.
    #[error(
        "the lake file is not readable Parquet ({source}); it may be truncated or not a lake file"
    )]
    Decode {
        /// What the Parquet reader reported.
        source: ParquetError,
    },
}

/// Encodes `batches`, all of `schema`, as one Snappy-compressed Parquet file. The Arrow schema is
/// stored in the file, so a reader gets back the exact types (time zones, JSON text markers).
pub fn encode_parquet(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, LakeFileError> {
    if batches.iter().any(|batch| batch.schema() != *schema) {
        return Err(LakeFileError::SchemaMismatch);
    }
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let encode_error = |source| LakeFileError::Encode { source };
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties)).map_err(encode_error)?;
    for batch in batches {
        writer.write(batch).map_err(encode_error)?;
    }
    writer.into_inner().map_err(encode_error)
}

/// Decodes a Parquet file into its schema and batches.
pub fn decode_parquet(file: Bytes) -> Result<(SchemaRef, Vec<RecordBatch>), LakeFileError> {
    let decode_error = |source| LakeFileError::Decode { source };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(decode_error)?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(decode_error)?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| decode_error(ParquetError::ArrowError(source.to_string())))?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests;
