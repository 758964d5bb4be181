//! JSON records read from Kafka, turned into an Arrow [`RecordBatch`] of their dataset's lake schema.
//!
//! The records must already be valid against the subject's schema (the gateway validates at produce,
//! the sink re-checks what other producers wrote); this module only changes their representation.
//! Properties the lake schema does not declare are dropped, missing optional ones become nulls, and
//! values of JSON text columns are stored as their `serde_json::to_string` text.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayData, ArrayRef, Int32Array, Int64Array, RecordBatch, TimestampMillisecondArray, make_array,
};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::ReaderBuilder;
use arrow::json::reader::Decoder;
use serde_json::{Map, Value};

use crate::domain::lake_schema::{SYSTEM_COLUMNS, is_json_text, system_fields};

/// Where and when a record sat in Kafka, and the schema it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaMetadata {
    /// The topic partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's Kafka timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The registry id of the record's schema (from the Confluent wire format header).
    pub schema_id: i32,
}

/// One record to land in the lake: its decoded JSON value and its Kafka metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeRecord {
    /// The record value, already validated against its schema.
    pub value: Value,
    /// Where the record came from.
    pub kafka: KafkaMetadata,
}

/// Why records could not become a batch.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The schema given is not a lake schema: it does not end with the system columns.
    #[error(
        "the schema does not end with the lake's system columns ({expected}); derive it with \
         `derive_lake_schema` or `evolve`",
        expected = SYSTEM_COLUMNS.join(", ")
    )]
    NotALakeSchema,
    /// One record does not fit the lake schema.
    #[error(
        "the record at partition {partition} offset {offset} does not fit the lake schema: {source}; \
         records must be valid against the schema the lake schema was derived from, so check that the \
         dataset's schema was evolved to the record's"
    )]
    RecordDoesNotFit {
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What arrow-json reported.
        source: ArrowError,
    },
    /// The records do not fit the lake schema together, though each fits alone.
    #[error(
        "the records do not fit the lake schema: {source}; records must be valid against the schema the \
         lake schema was derived from, so check that the dataset's schema was evolved to the record's"
    )]
    Decode {
        /// What arrow-json reported.
        source: ArrowError,
    },
}

/// Builds one batch of `schema` (a lake schema: user columns, then the system columns) from `records`,
/// in order.
pub fn to_record_batch(
    schema: &SchemaRef,
    records: &[LakeRecord],
) -> Result<RecordBatch, RecordsError> {
    let user_fields = user_fields(schema)?;
    let user_columns = value_columns(
        &user_fields,
        records.iter().map(|record| (&record.value, record.kafka)),
    )?;
    with_system_columns(
        schema,
        user_columns,
        records.iter().map(|record| &record.kafka),
    )
}

/// The size of the pieces [`TextRecords`] keeps its text in: the text grows a piece at a time, so a
/// buffer of hundreds of MiB is never copied to grow (a record bigger than a piece gets one of its own).
const TEXT_PIECE_BYTES: usize = 4 << 20;

/// Records kept as their JSON text, one after another, with their Kafka metadata: what the lake sink
/// buffers, so that a record's text is parsed once, straight into Arrow, when its file is written
/// ([`text_to_record_batch`]), instead of into a `serde_json::Value` first.
#[derive(Debug, Clone, Default)]
pub struct TextRecords {
    /// The records' text in pieces of [`TEXT_PIECE_BYTES`], each record whole in one piece and followed
    /// by a newline.
    pieces: Vec<Vec<u8>>,
    /// Where each record's text is.
    spans: Vec<TextSpan>,
    kafka: Vec<KafkaMetadata>,
    /// The bytes of the records' JSON text (without the separating newlines).
    json_bytes: usize,
}

/// Where one record's text is in [`TextRecords::pieces`].
#[derive(Debug, Clone, Copy)]
struct TextSpan {
    piece: usize,
    start: usize,
    /// Exclusive, before the record's newline.
    end: usize,
}

impl TextRecords {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one record: `json` must be one JSON value (the caller checked it parses).
    pub fn push(&mut self, json: &[u8], kafka: KafkaMetadata) {
        let needed = json.len() + 1;
        if self
            .pieces
            .last()
            .is_none_or(|piece| piece.capacity() - piece.len() < needed)
        {
            self.pieces
                .push(Vec::with_capacity(needed.max(TEXT_PIECE_BYTES)));
        }
        let index = self.pieces.len() - 1;
        let piece = &mut self.pieces[index];
        let start = piece.len();
        piece.extend_from_slice(json);
        let end = piece.len();
        piece.push(b'\n');
        self.spans.push(TextSpan {
            piece: index,
            start,
            end,
        });
        self.kafka.push(kafka);
        self.json_bytes += json.len();
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.kafka.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.kafka.is_empty()
    }

    /// The bytes of the records' JSON text (without the separating newlines).
    pub fn json_bytes(&self) -> usize {
        self.json_bytes
    }

    /// Every record's Kafka metadata, in order.
    pub fn metadata(&self) -> &[KafkaMetadata] {
        &self.kafka
    }

    /// The text of the records in `range`, newline-separated, as one slice per piece it spans.
    fn text_of(&self, range: &Range<usize>) -> Vec<&[u8]> {
        if range.is_empty() {
            return Vec::new();
        }
        let (Some(first), Some(last)) =
            (self.spans.get(range.start), self.spans.get(range.end - 1))
        else {
            return Vec::new();
        };
        (first.piece..=last.piece)
            .map(|piece| {
                let text = &self.pieces[piece];
                let from = if piece == first.piece { first.start } else { 0 };
                let to = if piece == last.piece {
                    last.end
                } else {
                    text.len()
                };
                &text[from..to]
            })
            .collect()
    }

    /// The text of record `index`.
    fn record(&self, index: usize) -> &[u8] {
        let span = self.spans[index];
        &self.pieces[span.piece][span.start..span.end]
    }
}

/// Builds one batch of `schema` (a lake schema) from the records of `records` in `range`, in order: the
/// same batch [`to_record_batch`] builds from the records' parsed values. Each record's text is decoded
/// straight into the Arrow columns, except for schemas with JSON text columns, whose values need the
/// parsed record.
pub fn text_to_record_batch(
    schema: &SchemaRef,
    records: &TextRecords,
    range: Range<usize>,
) -> Result<RecordBatch, RecordsError> {
    let user_fields = user_fields(schema)?;
    let Some(metadata) = records.kafka.get(range.clone()) else {
        return Err(RecordsError::Decode {
            source: ArrowError::InvalidArgumentError(format!(
                "records {range:?} asked of {} records",
                records.len()
            )),
        });
    };
    let user_columns = if user_fields.iter().any(holds_json_text) {
        let values = range
            .clone()
            .map(|index| {
                serde_json::from_slice::<Value>(records.record(index)).map_err(|err| {
                    RecordsError::RecordDoesNotFit {
                        partition: records.kafka[index].partition,
                        offset: records.kafka[index].offset,
                        source: ArrowError::JsonError(err.to_string()),
                    }
                })
            })
            .collect::<Result<Vec<Value>, RecordsError>>()?;
        value_columns(&user_fields, values.iter().zip(metadata.iter().copied()))?
    } else {
        match decode_user_text(&user_fields, &records.text_of(&range), range.len()) {
            Ok(columns) => columns,
            Err(source) => {
                let first = range.clone().find_map(|index| {
                    decode_user_text(&user_fields, &[records.record(index)], 1)
                        .err()
                        .map(|source| (index, source))
                });
                return Err(match first {
                    Some((index, source)) => RecordsError::RecordDoesNotFit {
                        partition: records.kafka[index].partition,
                        offset: records.kafka[index].offset,
                        source,
                    },
                    None => RecordsError::Decode { source },
                });
            }
        }
    };
    with_system_columns(schema, user_columns, metadata.iter())
}

/// The user columns of a lake schema (all but the system columns).
fn user_fields(schema: &Schema) -> Result<Fields, RecordsError> {
    let user_field_count = user_field_count(schema)?;
    Ok(schema.fields()[..user_field_count]
        .iter()
        .cloned()
        .collect())
}

/// Whether `field` or a field inside it is a JSON text column.
fn holds_json_text(field: &FieldRef) -> bool {
    is_json_text(field)
        || match field.data_type() {
            DataType::Struct(children) => children.iter().any(holds_json_text),
            DataType::List(item) | DataType::LargeList(item) => holds_json_text(item),
            _ => false,
        }
}

/// The user columns of parsed records, through arrow-json's serializer.
fn value_columns<'a>(
    user_fields: &Fields,
    records: impl Iterator<Item = (&'a Value, KafkaMetadata)>,
) -> Result<Vec<ArrayRef>, RecordsError> {
    let (values, metadata): (Vec<Value>, Vec<KafkaMetadata>) = records
        .map(|(value, kafka)| (encode_json_text(user_fields, value), kafka))
        .unzip();
    decode_user_columns(user_fields.clone(), &values)
        .map_err(|source| first_record_that_does_not_fit(user_fields, &metadata, &values, source))
}

/// Appends the system columns to `user_columns`.
fn with_system_columns<'a>(
    schema: &SchemaRef,
    mut columns: Vec<ArrayRef>,
    metadata: impl Iterator<Item = &'a KafkaMetadata> + Clone,
) -> Result<RecordBatch, RecordsError> {
    columns.push(Arc::new(Int32Array::from_iter_values(
        metadata.clone().map(|kafka| kafka.partition),
    )));
    columns.push(Arc::new(Int64Array::from_iter_values(
        metadata.clone().map(|kafka| kafka.offset),
    )));
    columns.push(Arc::new(
        TimestampMillisecondArray::from_iter_values(
            metadata.clone().map(|kafka| kafka.timestamp_ms),
        )
        .with_timezone("UTC"),
    ));
    columns.push(Arc::new(Int32Array::from_iter_values(
        metadata.map(|kafka| kafka.schema_id),
    )));
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|source| RecordsError::Decode { source })
}

/// Decodes `rows` newline-separated JSON records, given as slices that each end at a record boundary,
/// into the user columns.
fn decode_user_text(
    user_fields: &Fields,
    text: &[&[u8]],
    rows: usize,
) -> Result<Vec<ArrayRef>, ArrowError> {
    if user_fields.is_empty() {
        return Ok(Vec::new());
    }
    let mut decoder = decoder_for(user_fields, rows)?;
    for piece in text {
        let mut rest = *piece;
        while !rest.is_empty() {
            let consumed = decoder.decode(rest)?;
            if consumed == 0 {
                break;
            }
            rest = &rest[consumed..];
        }
        if !rest.iter().all(u8::is_ascii_whitespace) {
            return Err(ArrowError::JsonError(
                "the text holds more JSON values than records".to_owned(),
            ));
        }
    }
    let (columns, decoded_rows) = decoded_columns(decoder, user_fields)?;
    if decoded_rows != rows {
        return Err(ArrowError::JsonError(format!(
            "the text holds {decoded_rows} JSON values for {rows} records"
        )));
    }
    Ok(columns)
}

/// A decoder of `rows` records into the user columns, with timestamps decoded without time zones.
fn decoder_for(user_fields: &Fields, rows: usize) -> Result<Decoder, ArrowError> {
    // arrow-json resolves a named time zone only with the chrono-tz feature (a compiled tz database), so
    // timestamps are decoded without a zone, which arrow-json reads as UTC instants (offsets applied),
    // and then labelled "UTC" without touching the values (`decoded_columns`).
    let decode_schema = Arc::new(Schema::new(
        user_fields
            .iter()
            .map(without_time_zones)
            .collect::<Fields>(),
    ));
    ReaderBuilder::new(decode_schema)
        .with_batch_size(rows.max(1))
        .build_decoder()
}

/// The decoder's rows as the user columns, their timestamps labelled with the fields' time zones, and
/// the number of rows.
fn decoded_columns(
    mut decoder: Decoder,
    user_fields: &Fields,
) -> Result<(Vec<ArrayRef>, usize), ArrowError> {
    let Some(decoded) = decoder.flush()? else {
        let empty = user_fields
            .iter()
            .map(|field| arrow::array::new_empty_array(field.data_type()))
            .collect();
        return Ok((empty, 0));
    };
    let columns = decoded
        .columns()
        .iter()
        .zip(user_fields.iter())
        .map(|(column, field)| Ok(make_array(relabel(column.to_data(), field.data_type())?)))
        .collect::<Result<_, ArrowError>>()?;
    Ok((columns, decoded.num_rows()))
}

/// The number of columns before the system columns, once the system columns are checked.
fn user_field_count(schema: &Schema) -> Result<usize, RecordsError> {
    let fields = schema.fields();
    let user_field_count = fields
        .len()
        .checked_sub(SYSTEM_COLUMNS.len())
        .ok_or(RecordsError::NotALakeSchema)?;
    let system_matches = fields[user_field_count..]
        .iter()
        .zip(system_fields())
        .all(|(actual, expected)| actual.as_ref() == &expected);
    if system_matches {
        Ok(user_field_count)
    } else {
        Err(RecordsError::NotALakeSchema)
    }
}

/// Decodes records one by one to name the first that fails; arrow-json's error does not say which.
fn first_record_that_does_not_fit(
    user_fields: &Fields,
    metadata: &[KafkaMetadata],
    values: &[Value],
    batch_error: ArrowError,
) -> RecordsError {
    for (kafka, value) in metadata.iter().zip(values) {
        if let Err(source) = decode_user_columns(user_fields.clone(), std::slice::from_ref(value)) {
            return RecordsError::RecordDoesNotFit {
                partition: kafka.partition,
                offset: kafka.offset,
                source,
            };
        }
    }
    RecordsError::Decode {
        source: batch_error,
    }
}

fn decode_user_columns(user_fields: Fields, values: &[Value]) -> Result<Vec<ArrayRef>, ArrowError> {
    if user_fields.is_empty() {
        return Ok(Vec::new());
    }
    let mut decoder = decoder_for(&user_fields, values.len())?;
    decoder.serialize(values)?;
    Ok(decoded_columns(decoder, &user_fields)?.0)
}

fn without_time_zones(field: &FieldRef) -> FieldRef {
    let data_type = match field.data_type() {
        DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, None),
        DataType::Struct(children) => {
            DataType::Struct(children.iter().map(without_time_zones).collect())
        }
        DataType::List(item) => DataType::List(without_time_zones(item)),
        other => other.clone(),
    };
    Arc::new(field.as_ref().clone().with_data_type(data_type))
}

/// Gives `data` the type `target`, which differs from its own at most in timestamp time zones: the
/// values are instants, so only the label changes (at any depth of structs and lists).
pub fn relabel(data: ArrayData, target: &DataType) -> Result<ArrayData, ArrowError> {
    let children = match target {
        DataType::Struct(fields) => fields
            .iter()
            .zip(data.child_data())
            .map(|(field, child)| relabel(child.clone(), field.data_type()))
            .collect::<Result<Vec<_>, _>>()?,
        DataType::List(item) | DataType::LargeList(item) => data
            .child_data()
            .iter()
            .map(|child| relabel(child.clone(), item.data_type()))
            .collect::<Result<Vec<_>, _>>()?,
        _ => data.child_data().to_vec(),
    };
    data.into_builder()
        .data_type(target.clone())
        .child_data(children)
        .build()
}

/// Replaces the values of JSON text columns, at any depth, by their JSON text, so that arrow-json
/// reads them into `Utf8` columns.
fn encode_json_text(fields: &Fields, value: &Value) -> Value {
    let Value::Object(object) = value else {
        return value.clone();
    };
    let mut encoded = Map::new();
    for field in fields {
        if let Some(property) = object.get(field.name()) {
            encoded.insert(field.name().clone(), encode_field(field, property));
        }
    }
    Value::Object(encoded)
}

fn encode_field(field: &Field, value: &Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    if is_json_text(field) {
        return Value::String(value.to_string());
    }
    match (field.data_type(), value) {
        (DataType::Struct(children), _) => encode_json_text(children, value),
        (DataType::List(item), Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|item_value| encode_field(item, item_value))
                .collect(),
        ),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests;
