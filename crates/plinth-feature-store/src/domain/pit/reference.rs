//! The point-in-time join written the obvious way, for tests: for each entity row, scan every feature
//! row. Slow (O(n * m)) and independent of the fast join's sorting and key encoding, so that comparing
//! the two on random data checks the fast one.

use arrow::array::{
    Array, ArrayRef, BinaryArray, Int64Array, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow::compute::take;

use crate::domain::pit::{EntityRows, FeatureRows, JoinOptions, PitError, columns};

/// One key value, compared by value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyValue {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

fn key_values(keys: &[ArrayRef], n_rows: usize) -> Result<Vec<Option<Vec<KeyValue>>>, PitError> {
    let normalized: Vec<ArrayRef> = keys
        .iter()
        .map(|key| columns::normalize_key("key", key))
        .collect::<Result<_, _>>()?;
    Ok((0..n_rows)
        .map(|row_idx| {
            normalized
                .iter()
                .map(|key| {
                    if key.is_null(row_idx) {
                        return None;
                    }
                    let any = key.as_any();
                    if let Some(ints) = any.downcast_ref::<Int64Array>() {
                        Some(KeyValue::Int(ints.value(row_idx)))
                    } else if let Some(texts) = any.downcast_ref::<StringArray>() {
                        Some(KeyValue::Text(texts.value(row_idx).to_owned()))
                    } else {
                        any.downcast_ref::<BinaryArray>()
                            .map(|bytes| KeyValue::Bytes(bytes.value(row_idx).to_vec()))
                    }
                })
                .collect()
        })
        .collect())
}

fn optional(array: &TimestampMicrosecondArray, row_idx: usize) -> Option<i64> {
    array.is_valid(row_idx).then(|| array.value(row_idx))
}

/// The winning feature row of each entity row, by brute force.
pub(crate) fn winners(
    entity: &EntityRows,
    features: &FeatureRows,
    options: &JoinOptions,
) -> Result<UInt64Array, PitError> {
    let n_entities = entity.timestamps.len();
    let n_features = features.event_timestamps.len();
    let entity_keys = key_values(&entity.keys, n_entities)?;
    let feature_keys = key_values(&features.keys, n_features)?;
    let ttl = i64::try_from(options.ttl.as_micros()).unwrap_or(i64::MAX);
    let mut found = Vec::with_capacity(n_entities);
    for (entity_idx, entity_key) in entity_keys.iter().enumerate() {
        let (Some(entity_key), Some(ts)) = (entity_key, optional(&entity.timestamps, entity_idx))
        else {
            found.push(None);
            continue;
        };
        // (event, created, position) of the best candidate so far; a null created time ranks lowest.
        let mut best: Option<(i64, Option<i64>, usize)> = None;
        for (feature_idx, feature_key) in feature_keys.iter().enumerate() {
            if feature_key.as_ref() != Some(entity_key) {
                continue;
            }
            let Some(event) = optional(&features.event_timestamps, feature_idx) else {
                continue;
            };
            let created = features
                .created_timestamps
                .as_ref()
                .and_then(|created| optional(created, feature_idx));
            let in_window = event <= ts && (ttl == 0 || event >= ts.saturating_sub(ttl));
            let created_ok = !options.filter_by_created_timestamp
                || features.created_timestamps.is_none()
                || created.is_some_and(|created| created <= ts);
            if !in_window || !created_ok {
                continue;
            }
            let candidate = (event, created, feature_idx);
            // `Option`'s order puts `None` first, which is what "a null created time loses" means;
            // the position, last, makes the later row win an exact tie.
            if best.is_none_or(|best| candidate > best) {
                best = Some(candidate);
            }
        }
        found.push(best.and_then(|(_, _, idx)| u64::try_from(idx).ok()));
    }
    Ok(found.into_iter().collect())
}

/// The feature columns aligned to the entity rows, by brute force.
pub(crate) fn join(
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
