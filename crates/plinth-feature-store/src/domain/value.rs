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
#[error("`{0}` is not a value type; use one of string, bytes, int32, int64, float32, float64, bool, unix_timestamp")]
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
