//! The column shapes the point-in-time join accepts, and their normal forms: join keys become Int64,
//! Utf8 or Binary (so an Int32 key in the entity rows meets an Int64 key in the source), timestamps of any
//! unit, with or without a time zone, become UTC microseconds.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, TimestampMicrosecondArray};
use arrow::compute::{CastOptions, cast, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit};

use crate::domain::pit::PitError;
use crate::domain::value::ValueType;

/// The Arrow type a column of `value_type` has in the lake and in training sets.
pub fn arrow_type(value_type: ValueType) -> DataType {
    match value_type {
        ValueType::String => DataType::Utf8,
        ValueType::Bytes => DataType::Binary,
        ValueType::Int32 => DataType::Int32,
        ValueType::Int64 => DataType::Int64,
        ValueType::Float32 => DataType::Float32,
        ValueType::Float64 => DataType::Float64,
        ValueType::Bool => DataType::Boolean,
        ValueType::UnixTimestamp => utc_micros_type(),
    }
}

/// `Timestamp(Microsecond, "UTC")`, the lake's timestamp type.
pub fn utc_micros_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

/// The value type of an Arrow column, where it has one (timestamps of any unit are
/// [`ValueType::UnixTimestamp`]; nested types, decimals and the like have none).
pub fn value_type_of(data_type: &DataType) -> Option<ValueType> {
    Some(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ValueType::String,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => ValueType::Bytes,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            ValueType::Int32
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ValueType::Int64,
        DataType::Float16 | DataType::Float32 => ValueType::Float32,
        DataType::Float64 => ValueType::Float64,
        DataType::Boolean => ValueType::Bool,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => ValueType::UnixTimestamp,
        DataType::Dictionary(_, value) => return value_type_of(value),
        _ => return None,
    })
}

/// Whether a column of `data_type` can hold join keys of `expected` type: integers of any width for
/// Int32 and Int64 keys, any string layout for String keys, any binary layout for Bytes keys.
pub fn key_type_fits(data_type: &DataType, expected: ValueType) -> bool {
    let integer = matches!(expected, ValueType::Int32 | ValueType::Int64);
    match value_type_of(data_type) {
        Some(ValueType::Int32 | ValueType::Int64) => integer,
        Some(found) => found == expected && expected.is_key_type(),
        None => false,
    }
}

/// The key column in its normal form: integers as Int64, strings as Utf8, bytes as Binary.
pub fn normalize_key(column: &str, array: &ArrayRef) -> Result<ArrayRef, PitError> {
    let target = match value_type_of(array.data_type()) {
        Some(ValueType::Int32 | ValueType::Int64) => DataType::Int64,
        Some(ValueType::String) => DataType::Utf8,
        Some(ValueType::Bytes) => DataType::Binary,
        _ => {
            return Err(PitError::UnsupportedKeyType {
                column: column.to_owned(),
                data_type: array.data_type().clone(),
            });
        }
    };
    if array.data_type() == &target {
        return Ok(Arc::clone(array));
    }
    cast(array, &target).map_err(|err| PitError::Cast {
        column: column.to_owned(),
        message: err.to_string(),
    })
}

/// The column as UTC microseconds since the epoch. Accepts timestamps of any unit (a timestamp without a
/// time zone is read as UTC), Date32/Date64 (midnight UTC) and ISO 8601 strings (without an offset: UTC).
pub fn timestamps_micros(
    column: &str,
    array: &ArrayRef,
) -> Result<TimestampMicrosecondArray, PitError> {
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let micros = match array.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => Arc::clone(array),
        // Arrow stores every timestamp as an offset from the UTC epoch whatever its zone, so changing the
        // unit is all that is needed; the zone is dropped below.
        DataType::Timestamp(_, zone) => cast_with_options(
            array,
            &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            &strict,
        )
        .map_err(|err| cast_error(column, &err))?,
        DataType::Date32 | DataType::Date64 => cast_with_options(
            array,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            &strict,
        )
        .map_err(|err| cast_error(column, &err))?,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            cast_with_options(array, &utc_micros_type(), &strict)
                .map_err(|err| cast_error(column, &err))?
        }
        other => {
            return Err(PitError::NotATimestamp {
                column: column.to_owned(),
                data_type: other.clone(),
            });
        }
    };
    let micros = micros
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| PitError::NotATimestamp {
            column: column.to_owned(),
            data_type: array.data_type().clone(),
        })?;
    Ok(TimestampMicrosecondArray::new(
        micros.values().clone(),
        micros.nulls().cloned(),
    ))
}

fn cast_error(column: &str, err: &arrow::error::ArrowError) -> PitError {
    PitError::Cast {
        column: column.to_owned(),
        message: err.to_string(),
    }
}
