//! A view's feature rows prepared once for many joins: numbered by key and sorted by time within each
//! key, so that a join costs a key lookup and a binary search per entity row, whatever the number of
//! feature rows. The offline store keeps indexes of recently read sources in memory
//! (`crate::offline::cache`), which makes repeated training sets over the same files (a notebook
//! iterating on a model, one training set per model version) proportional to the entity rows.
//!
//! The semantics are those of [`super::join`] (the same candidates, the same winner, ties included):
//! a key group's rows are in (event time, created time, input position) order, and an entity row's
//! winner is the last row of its group at or before its timestamp, unless the TTL puts that row out of
//! reach; with the created-time filter, rows created after the entity row's timestamp are stepped over.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, Int64Array, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

use super::{
    BuildIntHasher, FeatureRows, JoinOptions, KeyGroups, NO_GROUP, PitError, SortedFeatures,
    all_valid, check_entity_shapes, check_feature_shapes, fill_parallel, group_number,
    groups_of_rows, normalize_keys,
};
use crate::domain::pit::EntityRows;

/// Feature rows ready to be joined to any number of entity row sets.
pub struct FeatureIndex {
    features: FeatureRows,
    key_types: Vec<DataType>,
    lookup: KeyLookup,
    sorted: SortedFeatures,
}

impl std::fmt::Debug for FeatureIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureIndex")
            .field("rows", &self.features.event_timestamps.len())
            .field("key_types", &self.key_types)
            .field("groups", &self.sorted.starts.len().saturating_sub(1))
            .finish_non_exhaustive()
    }
}

/// How an entity row's key finds its group.
enum KeyLookup {
    /// A view without join keys: every row is in group 0.
    Global,
    /// One integer key.
    Int(HashMap<i64, u32, BuildIntHasher>),
    /// Any other keys, by their row encoding.
    Rows {
        converter: RowConverter,
        numbers: HashMap<Box<[u8]>, u32>,
    },
}

impl FeatureIndex {
    /// Numbers the rows' keys and sorts each key's rows by time. Rows with a null key or event time
    /// are left out (they are never a candidate).
    pub fn build(features: FeatureRows) -> Result<Self, PitError> {
        check_feature_shapes(&features)?;
        let keys = normalize_keys("feature", &features.keys)?;
        let key_types: Vec<DataType> = keys.iter().map(|key| key.data_type().clone()).collect();
        let (lookup, groups) = number_keys(&keys)?;
        let sorted = SortedFeatures::new(&groups, &features);
        Ok(Self {
            features,
            key_types,
            lookup,
            sorted,
        })
    }

    /// For each entity row, the index of its winning feature row, null where there is none; equal to
    /// [`super::winners`] of the same rows.
    pub fn winners(
        &self,
        entity: &EntityRows,
        options: &JoinOptions,
    ) -> Result<UInt64Array, PitError> {
        check_entity_shapes(entity, self.key_types.len())?;
        let n_entities = entity.timestamps.len();
        let keys = normalize_keys("entity", &entity.keys)?;
        for (position, (key, feature_type)) in keys.iter().zip(&self.key_types).enumerate() {
            if key.data_type() != feature_type {
                return Err(PitError::KeyTypeMismatch {
                    position,
                    entity: key.data_type().clone(),
                    features: feature_type.clone(),
                });
            }
        }
        let groups = self.entity_groups(&keys)?;
        let ttl = options.ttl_micros();
        let filter_created =
            options.filter_by_created_timestamp && self.features.created_timestamps.is_some();
        let mut found: Vec<Option<u64>> = vec![None; n_entities];
        self.sorted.fill_winners(
            &mut found,
            // A global view's entity rows have no key, so no group list: all are in group 0.
            |row_idx| groups.get(row_idx).copied().unwrap_or(0),
            &entity.timestamps,
            ttl,
            filter_created,
        );
        Ok(found.into_iter().collect())
    }

    /// The feature columns, one value per entity row, in entity row order; equal to [`super::join`]
    /// of the same rows.
    pub fn join(
        &self,
        entity: &EntityRows,
        options: &JoinOptions,
    ) -> Result<Vec<ArrayRef>, PitError> {
        let winners = self.winners(entity, options)?;
        self.features
            .features
            .iter()
            .map(|column| take(column.as_ref(), &winners, None).map_err(PitError::from))
            .collect()
    }

    /// The bytes the index holds in memory: the feature rows' buffers, the sorted rows and the key
    /// map.
    pub fn memory_size(&self) -> usize {
        let features = &self.features;
        let arrays: usize = features
            .keys
            .iter()
            .chain(&features.features)
            .map(|array| array.get_array_memory_size())
            .sum::<usize>()
            + features.event_timestamps.get_array_memory_size()
            + features
                .created_timestamps
                .as_ref()
                .map_or(0, Array::get_array_memory_size);
        let sorted = self.sorted.memory_size();
        let lookup = match &self.lookup {
            KeyLookup::Global => 0,
            // A hash table entry and its control byte, at the table's load factor.
            KeyLookup::Int(numbers) => numbers.capacity() * (std::mem::size_of::<(i64, u32)>() + 1),
            KeyLookup::Rows { numbers, .. } => {
                numbers.capacity() * (std::mem::size_of::<(Box<[u8]>, u32)>() + 1)
                    + numbers.keys().map(|key| key.len()).sum::<usize>()
            }
        };
        arrays + sorted + lookup
    }

    /// Each entity row's group, [`NO_GROUP`] for a key no feature row has or a null key.
    fn entity_groups(&self, keys: &[ArrayRef]) -> Result<Vec<u32>, PitError> {
        let n_rows = keys.first().map_or(0, |key| key.len());
        let mut groups = vec![NO_GROUP; n_rows];
        match &self.lookup {
            KeyLookup::Global => groups.fill(0),
            KeyLookup::Int(numbers) => {
                let Some(ints) = keys
                    .first()
                    .and_then(|key| key.as_any().downcast_ref::<Int64Array>())
                else {
                    return Err(PitError::Arrow(
                        "an integer-keyed index got entity keys that are not int64".to_owned(),
                    ));
                };
                let values = ints.values();
                fill_parallel(&mut groups, |row_idx| {
                    if ints.is_null(row_idx) {
                        return NO_GROUP;
                    }
                    numbers.get(&values[row_idx]).copied().unwrap_or(NO_GROUP)
                });
            }
            KeyLookup::Rows { converter, numbers } => {
                let rows = converter.convert_columns(keys)?;
                groups = groups_of_rows(&rows, &all_valid(keys), numbers);
            }
        }
        Ok(groups)
    }
}

/// Numbers the feature rows' distinct keys in order of first appearance; returns the lookup for entity
/// keys and the rows' groups.
fn number_keys(keys: &[ArrayRef]) -> Result<(KeyLookup, KeyGroups), PitError> {
    let n_rows = keys.first().map_or(0, |key| key.len());
    if keys.is_empty() {
        return Ok((KeyLookup::Global, feature_groups(Vec::new(), 1)));
    }
    let mut feature = vec![NO_GROUP; n_rows];
    if let [key] = keys
        && let Some(ints) = key.as_any().downcast_ref::<Int64Array>()
    {
        let mut numbers: HashMap<i64, u32, BuildIntHasher> = HashMap::default();
        let mut previous: Option<(i64, u32)> = None;
        for (row_idx, &value) in ints.values().iter().enumerate() {
            if ints.is_null(row_idx) {
                continue;
            }
            // Rows of one key often come together (a key's history written at once).
            let group = match previous {
                Some((key, group)) if key == value => group,
                _ => {
                    let next = group_number(numbers.len())?;
                    *numbers.entry(value).or_insert(next)
                }
            };
            previous = Some((value, group));
            feature[row_idx] = group;
        }
        let groups = feature_groups(feature, numbers.len());
        return Ok((KeyLookup::Int(numbers), groups));
    }
    let converter = RowConverter::new(
        keys.iter()
            .map(|key| SortField::new(key.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(keys)?;
    let valid = all_valid(keys);
    let mut numbers: HashMap<Box<[u8]>, u32> = HashMap::new();
    for (row_idx, &valid) in valid.iter().enumerate() {
        if !valid {
            continue;
        }
        let data = rows.row(row_idx).data();
        let group = match numbers.get(data) {
            Some(&group) => group,
            None => {
                let next = group_number(numbers.len())?;
                numbers.insert(data.into(), next);
                next
            }
        };
        feature[row_idx] = group;
    }
    let groups = feature_groups(feature, numbers.len());
    Ok((KeyLookup::Rows { converter, numbers }, groups))
}

/// The groups of the feature rows alone (an index has no entity rows until it is joined).
fn feature_groups(feature: Vec<u32>, count: usize) -> KeyGroups {
    KeyGroups {
        entity: Vec::new(),
        feature,
        count,
    }
}
