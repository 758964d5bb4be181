//! The point-in-time join: for each entity row, the feature values a model would have seen at the
//! row's timestamp, never a value from its future.
//!
//! Semantics (Feast's `get_historical_features`, as its SQL stores implement it, without their
//! duplicate-row bug): for an entity row with join keys `k` and timestamp `ts`, the candidates of a view
//! are its rows with keys `k` and `event_ts <= ts`; with a TTL also `event_ts >= ts - ttl` (both bounds
//! inclusive; a zero TTL means no lower bound); with `filter_by_created_timestamp` also
//! `created_ts <= ts` when the source has a created column (a row with a null `created_ts` is then never
//! one; a source without the column is not filtered, as in Feast's SQL template). The winner has the greatest `event_ts`, ties going to the greatest `created_ts`
//! (a null `created_ts` loses to any other), then to the row that comes last in the input. The winner's
//! values are returned even when null; with no candidate every feature is null. An entity row whose key
//! or timestamp is null has no candidate; a feature row whose key or event time is null is never one.
//!
//! The join sorts the feature rows by (key, event_ts, created_ts, input position) once, then finds each
//! entity row's key range with a hash lookup and the last row at or before `ts` with a binary search:
//! O((n + m) log m). With `filter_by_created_timestamp` it then steps back over rows created after `ts`,
//! which are rare (backfills) but make the worst case O(n * m).
//!
//! Everything here is in memory; `crate::offline` partitions big inputs so that each call fits.

pub mod columns;
#[cfg(test)]
pub(crate) mod reference;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, TimestampMicrosecondArray, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, Rows, SortField};

/// Why the join could not run. Each names the column and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PitError {
    /// A join key column has a type no key can have.
    #[error(
        "join key column `{column}` has type {data_type}, which cannot hold a join key; use an integer, string or binary column"
    )]
    UnsupportedKeyType {
        /// The column.
        column: String,
        /// Its type.
        data_type: DataType,
    },
    /// The entity rows and the feature rows name a different number of join keys.
    #[error(
        "the entity rows have {entity} join key columns and the feature rows {features}; pass the view's join keys in both"
    )]
    KeyCountMismatch {
        /// Entity side.
        entity: usize,
        /// Feature side.
        features: usize,
    },
    /// A key on one side is an integer and on the other a string, or the like.
    #[error(
        "join key {position} is {entity} in the entity rows and {features} in the feature rows; give both sides the key's type"
    )]
    KeyTypeMismatch {
        /// The key's position among the join keys.
        position: usize,
        /// Entity side type.
        entity: DataType,
        /// Feature side type.
        features: DataType,
    },
    /// A timestamp column holds something else.
    #[error(
        "column `{column}` has type {data_type}, which is not a timestamp; use an Arrow timestamp, a date or ISO 8601 text"
    )]
    NotATimestamp {
        /// The column.
        column: String,
        /// Its type.
        data_type: DataType,
    },
    /// A conversion failed (a malformed timestamp string, an integer out of range).
    #[error("column `{column}` cannot be converted: {message}")]
    Cast {
        /// The column.
        column: String,
        /// Arrow's explanation.
        message: String,
    },
    /// Columns of one side have different lengths.
    #[error("column `{column}` has {found} rows where {expected} were expected")]
    LengthMismatch {
        /// The column.
        column: String,
        /// The rows expected.
        expected: usize,
        /// The rows found.
        found: usize,
    },
    /// Arrow refused an operation (sorting keys, taking values).
    #[error("arrow failed during the point-in-time join: {0}")]
    Arrow(String),
}

impl From<arrow::error::ArrowError> for PitError {
    fn from(err: arrow::error::ArrowError) -> Self {
        PitError::Arrow(err.to_string())
    }
}

/// The rows features are looked up for.
#[derive(Debug, Clone)]
pub struct EntityRows {
    /// The join key columns, in the view's join key order.
    pub keys: Vec<ArrayRef>,
    /// The rows' timestamps, UTC microseconds (see [`columns::timestamps_micros`]).
    pub timestamps: TimestampMicrosecondArray,
}

/// One view's rows, projected to what the join needs.
#[derive(Debug, Clone)]
pub struct FeatureRows {
    /// The join key columns, in the view's join key order.
    pub keys: Vec<ArrayRef>,
    /// Each row's event time, UTC microseconds.
    pub event_timestamps: TimestampMicrosecondArray,
    /// Each row's write time, where the source has one.
    pub created_timestamps: Option<TimestampMicrosecondArray>,
    /// The feature columns, returned aligned to the entity rows.
    pub features: Vec<ArrayRef>,
}

/// How candidates are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinOptions {
    /// How long a row stays valid after its event time; zero means forever.
    pub ttl: Duration,
    /// Whether rows created after the entity row's timestamp are left out (no backfill leakage); has
    /// no effect on rows without a created time column.
    pub filter_by_created_timestamp: bool,
}

impl JoinOptions {
    fn ttl_micros(&self) -> Option<i64> {
        if self.ttl.is_zero() {
            None
        } else {
            Some(i64::try_from(self.ttl.as_micros()).unwrap_or(i64::MAX))
        }
    }
}

/// The feature columns of `features`, one value per entity row, in entity row order.
pub fn join(
    entity: &EntityRows,
    features: &FeatureRows,
    options: &JoinOptions,
) -> Result<Vec<ArrayRef>, PitError> {
    let winners = winners(entity, features, options)?;
    features
        .features
        .iter()
        .map(|column| take(column.as_ref(), &winners, None).map_err(PitError::from))
        .collect()
}

/// For each entity row, the index of its winning feature row, null where there is none.
pub fn winners(
    entity: &EntityRows,
    features: &FeatureRows,
    options: &JoinOptions,
) -> Result<UInt64Array, PitError> {
    check_shapes(entity, features)?;
    let entity_keys = normalize_keys("entity", &entity.keys)?;
    let feature_keys = normalize_keys("feature", &features.keys)?;
    for (position, (entity_key, feature_key)) in entity_keys.iter().zip(&feature_keys).enumerate() {
        if entity_key.data_type() != feature_key.data_type() {
            return Err(PitError::KeyTypeMismatch {
                position,
                entity: entity_key.data_type().clone(),
                features: feature_key.data_type().clone(),
            });
        }
    }
    let n_entities = entity.timestamps.len();
    if entity_keys.is_empty() {
        // A global view (no entities): every feature row matches every entity row.
        let sorted = SortedFeatures::new(None, features);
        let range = 0..sorted.order.len();
        let found = (0..n_entities).map(|row_idx| {
            if entity.timestamps.is_null(row_idx) {
                return None;
            }
            sorted.winner(range.clone(), entity.timestamps.value(row_idx), options)
        });
        return Ok(found.collect());
    }
    let sort_fields = feature_keys
        .iter()
        .map(|key| SortField::new(key.data_type().clone()))
        .collect();
    let converter = RowConverter::new(sort_fields)?;
    let feature_rows = converter.convert_columns(&feature_keys)?;
    let entity_rows = converter.convert_columns(&entity_keys)?;
    let feature_valid = all_valid(&feature_keys);
    let entity_valid = all_valid(&entity_keys);

    let sorted = SortedFeatures::new(Some((&feature_rows, &feature_valid)), features);
    let mut ranges: HashMap<&[u8], std::ops::Range<usize>> = HashMap::new();
    let mut start = 0;
    while start < sorted.order.len() {
        let key = feature_rows.row(sorted.order[start]).data();
        let mut end = start + 1;
        while end < sorted.order.len() && feature_rows.row(sorted.order[end]).data() == key {
            end += 1;
        }
        ranges.insert(key, start..end);
        start = end;
    }

    let found = (0..n_entities).map(|row_idx| {
        if entity.timestamps.is_null(row_idx) || !entity_valid[row_idx] {
            return None;
        }
        let range = ranges.get(entity_rows.row(row_idx).data())?;
        sorted.winner(range.clone(), entity.timestamps.value(row_idx), options)
    });
    Ok(found.collect())
}

/// Feature rows that can be candidates, in (key, event_ts, created_ts, input position) order.
struct SortedFeatures {
    order: Vec<usize>,
    event: Vec<i64>,
    /// The created time, `i64::MIN` where null or absent (it then loses every tie).
    created: Vec<i64>,
    created_valid: Vec<bool>,
    /// Whether the rows have a created time column at all (without one nothing is filtered by it).
    has_created: bool,
}

impl SortedFeatures {
    fn new(keys: Option<(&Rows, &[bool])>, features: &FeatureRows) -> Self {
        let n_rows = features.event_timestamps.len();
        let event = features.event_timestamps.values().to_vec();
        let (created, created_valid) = match &features.created_timestamps {
            Some(created) => (0..n_rows)
                .map(|row_idx| {
                    if created.is_null(row_idx) {
                        (i64::MIN, false)
                    } else {
                        (created.value(row_idx), true)
                    }
                })
                .unzip(),
            None => (vec![i64::MIN; n_rows], vec![false; n_rows]),
        };
        let mut order: Vec<usize> = (0..n_rows)
            .filter(|&row_idx| {
                !features.event_timestamps.is_null(row_idx)
                    && keys.is_none_or(|(_, valid)| valid[row_idx])
            })
            .collect();
        order.sort_unstable_by(|&left, &right| {
            let by_key = match keys {
                Some((rows, _)) => rows.row(left).cmp(&rows.row(right)),
                None => std::cmp::Ordering::Equal,
            };
            by_key
                .then(event[left].cmp(&event[right]))
                .then(created[left].cmp(&created[right]))
                .then(left.cmp(&right))
        });
        Self {
            order,
            event,
            created,
            created_valid,
            has_created: features.created_timestamps.is_some(),
        }
    }

    /// The winner for an entity row at `ts` among `order[range]` (the rows of its key).
    fn winner(&self, range: std::ops::Range<usize>, ts: i64, options: &JoinOptions) -> Option<u64> {
        let rows = &self.order[range];
        let after_last = rows.partition_point(|&row_idx| self.event[row_idx] <= ts);
        let lower = options.ttl_micros().map(|ttl| ts.saturating_sub(ttl));
        for &row_idx in rows[..after_last].iter().rev() {
            if lower.is_some_and(|lower| self.event[row_idx] < lower) {
                return None;
            }
            if options.filter_by_created_timestamp
                && self.has_created
                && (!self.created_valid[row_idx] || self.created[row_idx] > ts)
            {
                continue;
            }
            return u64::try_from(row_idx).ok();
        }
        None
    }
}

fn check_shapes(entity: &EntityRows, features: &FeatureRows) -> Result<(), PitError> {
    if entity.keys.len() != features.keys.len() {
        return Err(PitError::KeyCountMismatch {
            entity: entity.keys.len(),
            features: features.keys.len(),
        });
    }
    let n_entities = entity.timestamps.len();
    for (position, key) in entity.keys.iter().enumerate() {
        check_length(&format!("entity key {position}"), n_entities, key.len())?;
    }
    let n_features = features.event_timestamps.len();
    for (position, key) in features.keys.iter().enumerate() {
        check_length(&format!("feature key {position}"), n_features, key.len())?;
    }
    if let Some(created) = &features.created_timestamps {
        check_length("created timestamp", n_features, created.len())?;
    }
    for (position, feature) in features.features.iter().enumerate() {
        check_length(&format!("feature {position}"), n_features, feature.len())?;
    }
    Ok(())
}

fn check_length(column: &str, expected: usize, found: usize) -> Result<(), PitError> {
    if expected == found {
        Ok(())
    } else {
        Err(PitError::LengthMismatch {
            column: column.to_owned(),
            expected,
            found,
        })
    }
}

fn normalize_keys(side: &str, keys: &[ArrayRef]) -> Result<Vec<ArrayRef>, PitError> {
    keys.iter()
        .enumerate()
        .map(|(position, key)| columns::normalize_key(&format!("{side} key {position}"), key))
        .collect()
}

/// Whether every key of a row is non-null.
fn all_valid(keys: &[ArrayRef]) -> Vec<bool> {
    let n_rows = keys.first().map_or(0, |key| key.len());
    (0..n_rows)
        .map(|row_idx| keys.iter().all(|key| key.is_valid(row_idx)))
        .collect()
}
