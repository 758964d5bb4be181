//! One view's latest row for one entity in the online store, its binary encoding, and the two rules of
//! the online path: which write wins ([`supersedes`]) and what a read returns for a feature ([`status`]).
//!
//! A row keeps feature names next to values, so adding a feature to a view later does not misread rows
//! written before: a name the row lacks is NOT_FOUND, never another feature's value.
//!
//! Encoding, version 1. This is a storage format: change it only with a new version byte, keep
//! decoding the old one, and keep the golden test passing.
//!
//! ```text
//! u8   version                          = 0x01
//! u64  event_ts   big-endian, sign bit flipped   (order-preserving: see below)
//! u64  created_ts big-endian, sign bit flipped
//! u32  number of values, little-endian
//! per value:
//!   u32  name length, little-endian;  name, UTF-8
//!   u8   tag: 0 null, 1 string, 2 bytes, 3 int32, 4 int64, 5 float32, 6 float64, 7 bool,
//!        8 unix_timestamp
//!   payload: string and bytes: u32 length (little-endian) then the bytes; int32 and float32: 4
//!        bytes little-endian; int64, float64 and unix_timestamp: 8 bytes little-endian; bool: 1 byte
//!        (0 or 1); null: nothing
//! ```
//!
//! The header (bytes 1 to 16) encodes both timestamps so that comparing those 16 bytes as unsigned
//! bytes orders rows exactly as `(event_ts, created_ts)` does. That lets a store compare a new row
//! with a stored one without decoding numbers (Redis's Lua has only doubles, which lose microseconds
//! past 2^53): see [`HEADER_LEN`] and [`encode`].

use std::collections::HashMap;
use std::time::Duration;

use crate::domain::entity_key::EntityKey;
use crate::domain::value::Value;

/// The version byte every row of this layout starts with.
pub const ONLINE_ROW_VERSION: u8 = 1;

/// The length of the version byte plus the order-preserving timestamps: a store compares bytes
/// `1..HEADER_LEN` of two encoded rows to apply [`supersedes`].
pub const HEADER_LEN: usize = 17;

/// A view's latest values for one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRow {
    /// When the values were true, UTC microseconds since the epoch.
    pub event_ts: i64,
    /// When the row was written to the source (breaks ties between rows of one event time), UTC µs.
    pub created_ts: i64,
    /// Feature name → value.
    pub values: Vec<(String, Value)>,
}

impl OnlineRow {
    /// The value of `feature`, if the row has it.
    pub fn get(&self, feature: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|(name, _)| name == feature)
            .map(|(_, value)| value)
    }
}

/// What a read found for one feature of one entity (the names are Feast's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A value, fresh enough.
    Present,
    /// A null was written.
    NullValue,
    /// No row for the entity, or the row has no such feature.
    NotFound,
    /// The row is older than the view's TTL; its value is not returned.
    OutsideMaxAge,
}

/// Whether `new` replaces `stored`: its `(event_ts, created_ts)` is greater or equal. A correction
/// with the same event time and a later created time replaces the stored row (Feast skips it,
/// feast-dev/feast#2795); an equal pair replaces too, so replaying a batch (at-least-once delivery)
/// is idempotent.
pub fn supersedes(new: &OnlineRow, stored: &OnlineRow) -> bool {
    newer_or_equal(new.event_ts, new.created_ts, stored)
}

/// The write rule on a new row's times.
fn newer_or_equal(event_ts: i64, created_ts: i64, stored: &OnlineRow) -> bool {
    (event_ts, created_ts) >= (stored.event_ts, stored.created_ts)
}

/// The newest row per entity key of one view, by the write rule ([`supersedes`]): what one batch
/// (a materialization window, a push, a batch of stream records) writes to the online store.
#[derive(Debug, Default)]
pub struct LatestRows {
    rows: HashMap<Vec<u8>, (EntityKey, OnlineRow)>,
}

impl LatestRows {
    /// Whether a row of `key` with these times would be kept: no row is held for the key, or the held
    /// one is not newer. Lets a caller skip building an older row's values.
    pub fn would_keep(&self, key: &EntityKey, event_ts: i64, created_ts: i64) -> bool {
        self.rows
            .get(key.as_bytes())
            .is_none_or(|(_, held)| newer_or_equal(event_ts, created_ts, held))
    }

    /// Keeps `row` for `key` unless a newer row is held for it.
    pub fn add(&mut self, key: EntityKey, row: OnlineRow) {
        if self.would_keep(&key, row.event_ts, row.created_ts) {
            self.rows.insert(key.as_bytes().to_vec(), (key, row));
        }
    }

    /// The row held for `key`.
    pub fn get(&self, key: &EntityKey) -> Option<&OnlineRow> {
        self.rows.get(key.as_bytes()).map(|(_, row)| row)
    }

    /// How many entities have a row.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in no particular order.
    pub fn into_rows(self) -> Vec<(EntityKey, OnlineRow)> {
        self.rows.into_values().collect()
    }
}

/// What a read returns for `feature` given the stored `row` (if any), the view's `ttl` (zero: no
/// limit) and the current time `now_us` (UTC µs). A row is outside the max age when
/// `now_us - event_ts > ttl` (a row exactly `ttl` old is still served, like the offline join's
/// inclusive window); its value comes back as null. Checks run in this order: no row or no such
/// feature (NOT_FOUND), too old (OUTSIDE_MAX_AGE, even for a stored null), stored null (NULL_VALUE).
pub fn status(
    row: Option<&OnlineRow>,
    feature: &str,
    ttl: Duration,
    now_us: i64,
) -> (Value, Status) {
    let Some(row) = row else {
        return (Value::Null, Status::NotFound);
    };
    let Some(value) = row.get(feature) else {
        return (Value::Null, Status::NotFound);
    };
    if !ttl.is_zero() {
        let age = i128::from(now_us) - i128::from(row.event_ts);
        let ttl_us = i128::try_from(ttl.as_micros()).unwrap_or(i128::MAX);
        if age > ttl_us {
            return (Value::Null, Status::OutsideMaxAge);
        }
    }
    if value.is_null() {
        return (Value::Null, Status::NullValue);
    }
    (value.clone(), Status::Present)
}

/// Why stored bytes are not an online row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// The bytes are not a row of a known version, or are cut or padded.
    #[error("stored bytes are not an online row of version {ONLINE_ROW_VERSION}: {reason}")]
    Malformed {
        /// What is wrong with them.
        reason: String,
    },
    /// A name or value is longer than a u32 length can say.
    #[error("feature `{name}` or its value is longer than 4 GiB")]
    TooLong {
        /// The feature.
        name: String,
    },
}

const TAG_NULL: u8 = 0;
const TAG_STRING: u8 = 1;
const TAG_BYTES: u8 = 2;
const TAG_INT32: u8 = 3;
const TAG_INT64: u8 = 4;
const TAG_FLOAT32: u8 = 5;
const TAG_FLOAT64: u8 = 6;
const TAG_BOOL: u8 = 7;
const TAG_UNIX_TIMESTAMP: u8 = 8;

const SIGN_BIT: u64 = 1 << 63;

/// The 8 header bytes of a timestamp: big-endian with the sign bit flipped, so byte order is
/// numeric order (i64::MIN → 00.., -1 → 7f ff.., 0 → 80 00..).
fn ordered_bytes(timestamp: i64) -> [u8; 8] {
    (timestamp.cast_unsigned() ^ SIGN_BIT).to_be_bytes()
}

fn from_ordered_bytes(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ SIGN_BIT).cast_signed()
}

/// Encodes a row (see the module doc for the layout).
pub fn encode(row: &OnlineRow) -> Result<Vec<u8>, RowError> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 4 + row.values.len() * 24);
    bytes.push(ONLINE_ROW_VERSION);
    bytes.extend_from_slice(&ordered_bytes(row.event_ts));
    bytes.extend_from_slice(&ordered_bytes(row.created_ts));
    push_len(&mut bytes, row.values.len(), "")?;
    for (name, value) in &row.values {
        push_len(&mut bytes, name.len(), name)?;
        bytes.extend_from_slice(name.as_bytes());
        match value {
            Value::Null => bytes.push(TAG_NULL),
            Value::String(text) => {
                bytes.push(TAG_STRING);
                push_len(&mut bytes, text.len(), name)?;
                bytes.extend_from_slice(text.as_bytes());
            }
            Value::Bytes(raw) => {
                bytes.push(TAG_BYTES);
                push_len(&mut bytes, raw.len(), name)?;
                bytes.extend_from_slice(raw);
            }
            Value::Int32(number) => {
                bytes.push(TAG_INT32);
                bytes.extend_from_slice(&number.to_le_bytes());
            }
            Value::Int64(number) => {
                bytes.push(TAG_INT64);
                bytes.extend_from_slice(&number.to_le_bytes());
            }
            Value::Float32(number) => {
                bytes.push(TAG_FLOAT32);
                bytes.extend_from_slice(&number.to_le_bytes());
            }
            Value::Float64(number) => {
                bytes.push(TAG_FLOAT64);
                bytes.extend_from_slice(&number.to_le_bytes());
            }
            Value::Bool(flag) => {
                bytes.push(TAG_BOOL);
                bytes.push(u8::from(*flag));
            }
            Value::UnixTimestamp(micros) => {
                bytes.push(TAG_UNIX_TIMESTAMP);
                bytes.extend_from_slice(&micros.to_le_bytes());
            }
        }
    }
    Ok(bytes)
}

fn push_len(bytes: &mut Vec<u8>, len: usize, name: &str) -> Result<(), RowError> {
    let len = u32::try_from(len).map_err(|_| RowError::TooLong {
        name: name.to_owned(),
    })?;
    bytes.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Decodes bytes written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<OnlineRow, RowError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(1, "empty")?[0] != ONLINE_ROW_VERSION {
        return Err(malformed("unknown version byte"));
    }
    let event_ts = from_ordered_bytes(reader.array("truncated header")?);
    let created_ts = from_ordered_bytes(reader.array("truncated header")?);
    let count = reader.length_prefix("truncated value count")?;
    // Each value takes at least 5 bytes: do not let a corrupt count reserve gigabytes.
    let mut values = Vec::with_capacity(count.min(bytes.len() / 5));
    for _ in 0..count {
        let name_len = reader.length_prefix("truncated name")?;
        let name = reader.take(name_len, "truncated name")?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| malformed("name is not UTF-8"))?;
        let tag = reader.take(1, "truncated tag")?[0];
        let value = match tag {
            TAG_NULL => Value::Null,
            TAG_STRING => {
                let len = reader.length_prefix("truncated string")?;
                let text = reader.take(len, "truncated string")?;
                Value::String(
                    String::from_utf8(text.to_vec())
                        .map_err(|_| malformed("string value is not UTF-8"))?,
                )
            }
            TAG_BYTES => {
                let len = reader.length_prefix("truncated bytes")?;
                Value::Bytes(reader.take(len, "truncated bytes")?.to_vec())
            }
            TAG_INT32 => Value::Int32(i32::from_le_bytes(reader.array("truncated int32")?)),
            TAG_INT64 => Value::Int64(i64::from_le_bytes(reader.array("truncated int64")?)),
            TAG_FLOAT32 => Value::Float32(f32::from_le_bytes(reader.array("truncated float32")?)),
            TAG_FLOAT64 => Value::Float64(f64::from_le_bytes(reader.array("truncated float64")?)),
            TAG_BOOL => match reader.take(1, "truncated bool")?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(malformed("bool is neither 0 nor 1")),
            },
            TAG_UNIX_TIMESTAMP => {
                Value::UnixTimestamp(i64::from_le_bytes(reader.array("truncated timestamp")?))
            }
            _ => return Err(malformed("unknown type tag")),
        };
        values.push((name, value));
    }
    if reader.at != bytes.len() {
        return Err(malformed("trailing bytes"));
    }
    Ok(OnlineRow {
        event_ts,
        created_ts,
        values,
    })
}

fn malformed(reason: &str) -> RowError {
    RowError::Malformed {
        reason: reason.to_owned(),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, reason: &str) -> Result<&'a [u8], RowError> {
        let end = self.at.checked_add(len).ok_or_else(|| malformed(reason))?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| malformed(reason))?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, reason: &str) -> Result<[u8; N], RowError> {
        self.take(N, reason)?
            .try_into()
            .map_err(|_| malformed(reason))
    }

    fn length_prefix(&mut self, reason: &str) -> Result<usize, RowError> {
        let raw: [u8; 4] = self.array(reason)?;
        usize::try_from(u32::from_le_bytes(raw)).map_err(|_| malformed(reason))
    }
}

#[cfg(test)]
mod tests;
