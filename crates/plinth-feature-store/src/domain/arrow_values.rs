//! Values in and out of Arrow columns: one cell as a [`Value`] (materialization reads source rows this
//! way) and a column of values as an Arrow array of the lake's type (Push writes rows to the lake this way).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder,
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

use crate::domain::value::{Value, ValueType};

/// The value of row `row_idx` of `array`, read as `value_type`. Integer widths and float widths convert
/// to the declared type; a cell of a type that does not fit, or a null, is `Null`.
pub fn value_at(array: &dyn Array, row_idx: usize, value_type: ValueType) -> Value {
    if array.is_null(row_idx) {
        return Value::Null;
    }
    let raw = raw_value(array, row_idx);
    match (value_type, raw) {
        (_, Value::Null) => Value::Null,
        (ValueType::Int64, Value::Int32(number)) => Value::Int64(i64::from(number)),
        (ValueType::Int32, Value::Int64(number)) => {
            i32::try_from(number).map_or(Value::Null, Value::Int32)
        }
        (ValueType::Float64, Value::Float32(number)) => Value::Float64(f64::from(number)),
        #[allow(
            clippy::cast_possible_truncation,
            reason = "a float64 column declared float32"
        )]
        (ValueType::Float32, Value::Float64(number)) => Value::Float32(number as f32),
        (expected, value) if value.value_type() == Some(expected) => value,
        _ => Value::Null,
    }
}

/// The cell as the value of its own Arrow type.
fn raw_value(array: &dyn Array, row_idx: usize) -> Value {
    match array.data_type() {
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row_idx).to_owned()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row_idx).to_owned()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row_idx).to_owned()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row_idx).to_vec()),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(row_idx).to_vec()),
        DataType::Int32 => Value::Int32(array.as_primitive::<Int32Type>().value(row_idx)),
        DataType::Int64 => Value::Int64(array.as_primitive::<Int64Type>().value(row_idx)),
        DataType::Float32 => Value::Float32(array.as_primitive::<Float32Type>().value(row_idx)),
        DataType::Float64 => Value::Float64(array.as_primitive::<Float64Type>().value(row_idx)),
        DataType::Boolean => Value::Bool(array.as_boolean().value(row_idx)),
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row_idx)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row_idx)
                    .saturating_mul(1_000),
                TimeUnit::Microsecond => array
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(row_idx),
                TimeUnit::Nanosecond => {
                    array
                        .as_primitive::<TimestampNanosecondType>()
                        .value(row_idx)
                        / 1_000
                }
            };
            Value::UnixTimestamp(micros)
        }
        _ => Value::Null,
    }
}

/// A value that does not fit the column it is written to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row_idx}: {given} does not fit a {expected} column")]
pub struct ValueMismatch {
    /// The row.
    pub row_idx: usize,
    /// The column's type.
    pub expected: ValueType,
    /// What was given (`a string`).
    pub given: String,
}

/// An Arrow array of `value_type` (the lake's type for it) holding `values`; integers and floats convert
/// between widths where the value fits.
pub fn array_of(values: &[Value], value_type: ValueType) -> Result<ArrayRef, ValueMismatch> {
    let mismatch = |row_idx: usize, value: &Value| ValueMismatch {
        row_idx,
        expected: value_type,
        given: value
            .value_type()
            .map_or_else(|| "null".to_owned(), |given| format!("a {given}")),
    };
    macro_rules! build {
        ($builder:expr, |$value:ident| $convert:expr) => {{
            let mut builder = $builder;
            for (row_idx, value) in values.iter().enumerate() {
                if value.is_null() {
                    builder.append_null();
                    continue;
                }
                let $value = value;
                match $convert {
                    Some(converted) => builder.append_value(converted),
                    None => return Err(mismatch(row_idx, value)),
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    let array = match value_type {
        ValueType::String => build!(StringBuilder::new(), |value| match value {
            Value::String(text) => Some(text.as_str()),
            _ => None,
        }),
        ValueType::Bytes => build!(BinaryBuilder::new(), |value| match value {
            Value::Bytes(bytes) => Some(bytes.as_slice()),
            _ => None,
        }),
        ValueType::Int32 => build!(Int32Builder::new(), |value| match value {
            Value::Int32(number) => Some(*number),
            Value::Int64(number) => i32::try_from(*number).ok(),
            _ => None,
        }),
        ValueType::Int64 => build!(Int64Builder::new(), |value| match value {
            Value::Int64(number) => Some(*number),
            Value::Int32(number) => Some(i64::from(*number)),
            _ => None,
        }),
        ValueType::Float32 => build!(Float32Builder::new(), |value| match value {
            Value::Float32(number) => Some(*number),
            #[allow(
                clippy::cast_possible_truncation,
                reason = "JSON numbers arrive as float64"
            )]
            Value::Float64(number) => Some(*number as f32),
            #[allow(
                clippy::cast_precision_loss,
                reason = "an integer written to a float column"
            )]
            Value::Int64(number) => Some(*number as f32),
            _ => None,
        }),
        ValueType::Float64 => build!(Float64Builder::new(), |value| match value {
            Value::Float64(number) => Some(*number),
            Value::Float32(number) => Some(f64::from(*number)),
            #[allow(
                clippy::cast_precision_loss,
                reason = "an integer written to a float column"
            )]
            Value::Int64(number) => Some(*number as f64),
            Value::Int32(number) => Some(f64::from(*number)),
            _ => None,
        }),
        ValueType::Bool => build!(BooleanBuilder::new(), |value| match value {
            Value::Bool(flag) => Some(*flag),
            _ => None,
        }),
        ValueType::UnixTimestamp => {
            let mut builder = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            for (row_idx, value) in values.iter().enumerate() {
                match value {
                    Value::Null => builder.append_null(),
                    Value::UnixTimestamp(micros) => builder.append_value(*micros),
                    _ => return Err(mismatch(row_idx, value)),
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }
    };
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_through_arrow() {
        let cases = [
            (
                ValueType::String,
                vec![Value::String("a".to_owned()), Value::Null],
            ),
            (
                ValueType::Bytes,
                vec![Value::Bytes(vec![1, 2]), Value::Null],
            ),
            (ValueType::Int32, vec![Value::Int32(-7), Value::Null]),
            (ValueType::Int64, vec![Value::Int64(1 << 40), Value::Null]),
            (ValueType::Float32, vec![Value::Float32(0.5), Value::Null]),
            (ValueType::Float64, vec![Value::Float64(2.5), Value::Null]),
            (ValueType::Bool, vec![Value::Bool(true), Value::Null]),
            (
                ValueType::UnixTimestamp,
                vec![Value::UnixTimestamp(1_700_000_000_000_001), Value::Null],
            ),
        ];
        for (value_type, values) in cases {
            let array = array_of(&values, value_type).unwrap();
            let back: Vec<Value> = (0..array.len())
                .map(|row_idx| value_at(array.as_ref(), row_idx, value_type))
                .collect();
            assert_eq!(back, values, "{value_type}");
        }
    }

    #[test]
    fn widths_convert_and_mismatches_name_the_row() {
        let array = array_of(&[Value::Int32(3)], ValueType::Int64).unwrap();
        assert_eq!(
            value_at(array.as_ref(), 0, ValueType::Int64),
            Value::Int64(3)
        );
        let array = array_of(&[Value::Int64(3)], ValueType::Float64).unwrap();
        assert_eq!(
            value_at(array.as_ref(), 0, ValueType::Float64),
            Value::Float64(3.0)
        );
        let err = array_of(
            &[Value::Int64(1), Value::String("x".to_owned())],
            ValueType::Int64,
        )
        .unwrap_err();
        assert_eq!(err.row_idx, 1);
        assert_eq!(
            err.to_string(),
            "row 1: a string does not fit a int64 column"
        );
        assert!(array_of(&[Value::Int64(1 << 40)], ValueType::Int32).is_err());
    }
}
