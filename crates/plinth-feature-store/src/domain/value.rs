//! Value types and values of features and entity keys.
//!
//! The set is Feast's scalar types. Timestamps are UTC microseconds since the Unix epoch, the unit the
//! lake's Parquet files use.

use std::fmt;
use std::str::FromStr;

/// The type of a feature or of an entity's join key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    /// UTF-8 text.
    String,
    /// Raw bytes.
    Bytes,
    /// A 32-bit signed integer.
    Int32,
    /// A 64-bit signed integer.
    Int64,
    /// A 32-bit float.
    Float32,
    /// A 64-bit float.
    Float64,
    /// A boolean.
    Bool,
    /// A point in time, UTC, microseconds.
    UnixTimestamp,
}

impl ValueType {
    /// Every type, in declaration order.
    pub const ALL: [ValueType; 8] = [
        ValueType::String,
        ValueType::Bytes,
        ValueType::Int32,
        ValueType::Int64,
        ValueType::Float32,
        ValueType::Float64,
        ValueType::Bool,
        ValueType::UnixTimestamp,
    ];

    /// The name used in definition files (`int64`).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Bytes => "bytes",
            ValueType::Int32 => "int32",
            ValueType::Int64 => "int64",
            ValueType::Float32 => "float32",
            ValueType::Float64 => "float64",
            ValueType::Bool => "bool",
            ValueType::UnixTimestamp => "unix_timestamp",
        }
    }

    /// Whether the type can be an entity's join key (floats cannot: equality on them is not a key).
    pub fn is_key_type(self) -> bool {
        matches!(
            self,
            ValueType::String | ValueType::Bytes | ValueType::Int32 | ValueType::Int64
        )
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A type name that is not one of [`ValueType`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a value type; use one of string, bytes, int32, int64, float32, float64, bool, unix_timestamp"
)]
pub struct UnknownValueType(pub String);

impl FromStr for ValueType {
    type Err = UnknownValueType;

    /// Accepts the definition-file names (`int64`) and Feast's type names (`Int64`, `UnixTimestamp`),
    /// case-insensitively.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let lowered = name.trim().to_ascii_lowercase();
        let found = match lowered.as_str() {
            "string" | "str" => ValueType::String,
            "bytes" => ValueType::Bytes,
            "int32" => ValueType::Int32,
            "int64" => ValueType::Int64,
            "float32" | "float" => ValueType::Float32,
            "float64" | "double" => ValueType::Float64,
            "bool" | "boolean" => ValueType::Bool,
            "unix_timestamp" | "unixtimestamp" | "timestamp" => ValueType::UnixTimestamp,
            _ => return Err(UnknownValueType(name.to_owned())),
        };
        Ok(found)
    }
}

/// One value of a feature or key; `Null` is a written null.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// UTF-8 text.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A 32-bit signed integer.
    Int32(i32),
    /// A 64-bit signed integer.
    Int64(i64),
    /// A 32-bit float.
    Float32(f32),
    /// A 64-bit float.
    Float64(f64),
    /// A boolean.
    Bool(bool),
    /// A point in time, UTC microseconds since the epoch.
    UnixTimestamp(i64),
}

impl Value {
    /// The value's type; `None` for `Null`.
    pub fn value_type(&self) -> Option<ValueType> {
        Some(match self {
            Value::Null => return None,
            Value::String(_) => ValueType::String,
            Value::Bytes(_) => ValueType::Bytes,
            Value::Int32(_) => ValueType::Int32,
            Value::Int64(_) => ValueType::Int64,
            Value::Float32(_) => ValueType::Float32,
            Value::Float64(_) => ValueType::Float64,
            Value::Bool(_) => ValueType::Bool,
            Value::UnixTimestamp(_) => ValueType::UnixTimestamp,
        })
    }

    /// Whether the value is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A value that cannot be read as the declared type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{given} is not a {expected}")]
pub struct CoerceError {
    /// The declared type.
    pub expected: ValueType,
    /// What was given, described (`the string "abc"`).
    pub given: String,
}

impl Value {
    /// The value as `value_type`, for values that arrive loosely typed (JSON): integers widen and narrow
    /// where they fit, integers and float64 become floats, and text in RFC 3339 (`2026-01-02T03:04:05Z`)
    /// or `2026-01-02 03:04:05[.ffffff]` (no zone: UTC) becomes a timestamp. Null stays null.
    pub fn coerce(self, value_type: ValueType) -> Result<Value, CoerceError> {
        let fail = |value: &Value| CoerceError {
            expected: value_type,
            given: match value {
                Value::String(text) => format!("the string {text:?}"),
                other => other
                    .value_type()
                    .map_or_else(|| "null".to_owned(), |given| format!("a {given}")),
            },
        };
        let coerced = match (value_type, self) {
            (_, Value::Null) => Value::Null,
            (ValueType::Int64, Value::Int32(number)) => Value::Int64(i64::from(number)),
            (ValueType::Int32, Value::Int64(number)) => match i32::try_from(number) {
                Ok(number) => Value::Int32(number),
                Err(_) => return Err(fail(&Value::Int64(number))),
            },
            #[allow(
                clippy::cast_precision_loss,
                reason = "an integer given for a float feature"
            )]
            (ValueType::Float64, Value::Int64(number)) => Value::Float64(number as f64),
            (ValueType::Float64, Value::Int32(number)) => Value::Float64(f64::from(number)),
            (ValueType::Float64, Value::Float32(number)) => Value::Float64(f64::from(number)),
            #[allow(
                clippy::cast_precision_loss,
                reason = "an integer given for a float feature"
            )]
            (ValueType::Float32, Value::Int64(number)) => Value::Float32(number as f32),
            #[allow(
                clippy::cast_possible_truncation,
                reason = "JSON numbers arrive as float64"
            )]
            (ValueType::Float32, Value::Float64(number)) => Value::Float32(number as f32),
            (ValueType::UnixTimestamp, Value::String(text)) => match parse_timestamp(&text) {
                Some(micros) => Value::UnixTimestamp(micros),
                None => return Err(fail(&Value::String(text))),
            },
            (expected, value) => {
                if value.value_type() == Some(expected) {
                    value
                } else {
                    return Err(fail(&value));
                }
            }
        };
        Ok(coerced)
    }
}

/// UTC microseconds of an RFC 3339 timestamp, or of `YYYY-MM-DD[T ]HH:MM:SS[.f]` without a zone (read as
/// UTC, as Feast reads naive timestamps).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(parsed) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(parsed.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(parsed) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(parsed.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc().timestamp_micros())
}

/// The RFC 3339 text (UTC, `Z`) of microseconds since the epoch.
pub fn format_timestamp(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || micros.to_string(),
        |time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_values_coerce_to_declared_types() {
        assert_eq!(
            Value::Int64(3).coerce(ValueType::Float64),
            Ok(Value::Float64(3.0))
        );
        assert_eq!(
            Value::Int64(3).coerce(ValueType::Int32),
            Ok(Value::Int32(3))
        );
        assert_eq!(Value::Null.coerce(ValueType::Bool), Ok(Value::Null));
        assert_eq!(
            Value::String("2021-04-12T10:59:42Z".to_owned()).coerce(ValueType::UnixTimestamp),
            Ok(Value::UnixTimestamp(1_618_225_182_000_000))
        );
        assert_eq!(
            Value::String("2021-04-12 10:59:42.5".to_owned()).coerce(ValueType::UnixTimestamp),
            Ok(Value::UnixTimestamp(1_618_225_182_500_000))
        );
        let err = Value::String("abc".to_owned())
            .coerce(ValueType::Int64)
            .unwrap_err();
        assert_eq!(err.to_string(), "the string \"abc\" is not a int64");
        assert!(Value::Int64(1 << 40).coerce(ValueType::Int32).is_err());
    }

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        assert_eq!(
            format_timestamp(1_618_225_182_000_000),
            "2021-04-12T10:59:42Z"
        );
        assert_eq!(
            format_timestamp(1_618_225_182_500_000),
            "2021-04-12T10:59:42.500Z"
        );
        assert_eq!(parse_timestamp("2021-04-12"), Some(1_618_185_600_000_000));
    }
}
