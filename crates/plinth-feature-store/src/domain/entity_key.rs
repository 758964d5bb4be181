//! The stable binary encoding of an entity key: the bytes the online stores key their rows by.
//!
//! This is a storage format. Rows written under one encoding are unreachable under another, so the
//! layout below must never change silently: a change needs a new version byte, a migration, and new
//! golden bytes in the tests (which exist to catch an accidental change).
//!
//! Layout, version 1 (all integers little-endian):
//!
//! ```text
//! u8   version                     = 0x01
//! u32  number of join keys         n >= 1
//! n times, join keys sorted by name (bytewise on UTF-8):
//!   u32  name length in bytes
//!   ..   name, UTF-8
//!   u8   type tag                  1 = string, 2 = bytes, 3 = int32, 4 = int64
//!   u32  value length in bytes
//!   ..   value                     string: UTF-8; bytes: raw; int32: 4 bytes two's complement;
//!                                  int64: 8 bytes two's complement
//! ```
//!
//! Like Feast's serialization v3 in spirit (sorted names, typed, length-prefixed values), but not
//! byte-compatible with it: ours has a version byte and interleaves each name with its value.
//!
//! The encoder writes a value with the type it has: `driver_id = Int32(7)` and `driver_id = Int64(7)`
//! are different keys. Callers coerce values to the entity's declared join-key type before encoding.

use std::fmt;

use crate::domain::value::{Value, ValueType};

/// The version byte every key of this layout starts with.
pub const ENTITY_KEY_VERSION: u8 = 1;

/// An encoded entity key (see the module doc for the layout).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey(Vec<u8>);

impl EntityKey {
    /// Wraps bytes read back from a store; they are not checked (use [`EntityKey::decode`] to check).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoded bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The bytes as lowercase hex, for logs and error messages.
    pub fn to_hex(&self) -> String {
        let mut hex = String::with_capacity(self.0.len() * 2);
        for byte in &self.0 {
            hex.push_str(&format!("{byte:02x}"));
        }
        hex
    }

    /// The join keys and values back, sorted by name.
    pub fn decode(&self) -> Result<Vec<(String, Value)>, KeyError> {
        decode(&self.0)
    }
}

impl fmt::Debug for EntityKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decode() {
            Ok(pairs) => {
                let mut map = formatter.debug_map();
                for (name, value) in &pairs {
                    map.entry(name, value);
                }
                map.finish()
            }
            Err(_) => write!(formatter, "EntityKey(0x{})", self.to_hex()),
        }
    }
}

/// Why an entity key cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No join key was given.
    #[error(
        "an entity key needs at least one join key; give a value for each of the entity's join keys"
    )]
    Empty,
    /// A join key's value is null.
    #[error("join key `{name}` is null; every join key needs a value")]
    NullValue {
        /// The join key.
        name: String,
    },
    /// A join key's value has a type that cannot be a key.
    #[error(
        "join key `{name}` has a {value_type} value; keys are string, bytes, int32 or int64 (floats, bools and timestamps are not keys)"
    )]
    NotAKeyType {
        /// The join key.
        name: String,
        /// The value's type.
        value_type: ValueType,
    },
    /// The same join key was given twice.
    #[error("join key `{name}` is given twice; give each join key once")]
    DuplicateName {
        /// The join key.
        name: String,
    },
    /// A name or value is longer than a u32 length can say.
    #[error("join key `{name}` or its value is longer than 4 GiB")]
    TooLong {
        /// The join key.
        name: String,
    },
    /// Stored bytes are not a key of this layout.
    #[error("bytes are not an entity key of version {ENTITY_KEY_VERSION}: {reason}")]
    Malformed {
        /// What is wrong with them.
        reason: String,
    },
}

const TAG_STRING: u8 = 1;
const TAG_BYTES: u8 = 2;
const TAG_INT32: u8 = 3;
const TAG_INT64: u8 = 4;

/// Encodes join keys and their values (in any order; they are sorted by name) into an [`EntityKey`].
pub fn encode<N: AsRef<str>>(join_keys: &[(N, Value)]) -> Result<EntityKey, KeyError> {
    if join_keys.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut sorted: Vec<(&str, &Value)> = join_keys
        .iter()
        .map(|(name, value)| (name.as_ref(), value))
        .collect();
    sorted.sort_by(|left, right| left.0.as_bytes().cmp(right.0.as_bytes()));
    for pair in sorted.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(KeyError::DuplicateName {
                name: pair[0].0.to_owned(),
            });
        }
    }
    let mut bytes = Vec::with_capacity(5 + sorted.len() * 24);
    bytes.push(ENTITY_KEY_VERSION);
    push_len(&mut bytes, sorted.len(), "")?;
    for (name, value) in sorted {
        let (tag, payload): (u8, std::borrow::Cow<'_, [u8]>) = match value {
            Value::Null => {
                return Err(KeyError::NullValue {
                    name: name.to_owned(),
                });
            }
            Value::String(text) => (TAG_STRING, text.as_bytes().into()),
            Value::Bytes(raw) => (TAG_BYTES, raw.as_slice().into()),
            Value::Int32(number) => (TAG_INT32, number.to_le_bytes().to_vec().into()),
            Value::Int64(number) => (TAG_INT64, number.to_le_bytes().to_vec().into()),
            Value::Float32(_) | Value::Float64(_) | Value::Bool(_) | Value::UnixTimestamp(_) => {
                return Err(KeyError::NotAKeyType {
                    name: name.to_owned(),
                    value_type: value.value_type().unwrap_or(ValueType::String),
                });
            }
        };
        push_len(&mut bytes, name.len(), name)?;
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(tag);
        push_len(&mut bytes, payload.len(), name)?;
        bytes.extend_from_slice(&payload);
    }
    Ok(EntityKey(bytes))
}

fn push_len(bytes: &mut Vec<u8>, len: usize, name: &str) -> Result<(), KeyError> {
    let len = u32::try_from(len).map_err(|_| KeyError::TooLong {
        name: name.to_owned(),
    })?;
    bytes.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<Vec<(String, Value)>, KeyError> {
    let malformed = |reason: &str| KeyError::Malformed {
        reason: reason.to_owned(),
    };
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(1).map_err(|()| malformed("empty"))?[0] != ENTITY_KEY_VERSION {
        return Err(malformed("unknown version byte"));
    }
    let count = reader
        .length_prefix()
        .map_err(|()| malformed("truncated count"))?;
    if count == 0 {
        return Err(malformed("no join keys"));
    }
    let mut pairs = Vec::new();
    for _ in 0..count {
        let name_len = reader
            .length_prefix()
            .map_err(|()| malformed("truncated name"))?;
        let name = reader
            .take(name_len)
            .map_err(|()| malformed("truncated name"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| malformed("name is not UTF-8"))?;
        let tag = reader.take(1).map_err(|()| malformed("truncated tag"))?[0];
        let value_len = reader
            .length_prefix()
            .map_err(|()| malformed("truncated value"))?;
        let payload = reader
            .take(value_len)
            .map_err(|()| malformed("truncated value"))?;
        let value = match tag {
            TAG_STRING => Value::String(
                String::from_utf8(payload.to_vec())
                    .map_err(|_| malformed("string value is not UTF-8"))?,
            ),
            TAG_BYTES => Value::Bytes(payload.to_vec()),
            TAG_INT32 => Value::Int32(i32::from_le_bytes(
                payload
                    .try_into()
                    .map_err(|_| malformed("int32 value is not 4 bytes"))?,
            )),
            TAG_INT64 => Value::Int64(i64::from_le_bytes(
                payload
                    .try_into()
                    .map_err(|_| malformed("int64 value is not 8 bytes"))?,
            )),
            _ => return Err(malformed("unknown type tag")),
        };
        pairs.push((name, value));
    }
    if reader.at != bytes.len() {
        return Err(malformed("trailing bytes"));
    }
    Ok(pairs)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], ()> {
        let end = self.at.checked_add(len).ok_or(())?;
        let slice = self.bytes.get(self.at..end).ok_or(())?;
        self.at = end;
        Ok(slice)
    }

    fn length_prefix(&mut self) -> Result<usize, ()> {
        let raw: [u8; 4] = self.take(4)?.try_into().map_err(|_| ())?;
        usize::try_from(u32::from_le_bytes(raw)).map_err(|_| ())
    }
}

#[cfg(test)]
mod tests;
