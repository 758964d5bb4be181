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
//! The join numbers the entity rows' distinct keys: a single integer key by its rank in key order (so
//! feature rows written in key order visit the per-key arrays in order, found by a merge cursor with a
//! hash map behind it), other keys through a hash map of their row encoding; feature rows whose key no
//! entity row has are dropped. Without the created-time filter, the entity rows are sorted by (key,
//! ts), each feature row goes to the first entity row of its key at or after its event time, keeping the
//! best per slot, and a running maximum along each key gives every entity row its winner
//! (`scatter_winners`, over the cores): O(n log n + m). With `filter_by_created_timestamp` the feature
//! rows are grouped by key with a counting sort and each group sorted by (event_ts, created_ts, input
//! position); each entity row finds the last row of its group at or before `ts` with a binary search,
//! then steps back over rows created after `ts`, which are rare (backfills) but make the worst case
//! O(n * m).
//!
//! Everything here is in memory; `crate::offline` partitions big inputs so that each call fits.

pub mod columns;
pub mod index;
#[cfg(test)]
pub(crate) mod reference;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, Int64Array, TimestampMicrosecondArray, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

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
    winners_on(entity, features, options, None)
}

/// [`winners`], on `threads` threads (`None`: one per core for big inputs).
fn winners_on(
    entity: &EntityRows,
    features: &FeatureRows,
    options: &JoinOptions,
    threads: Option<usize>,
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
    let groups = KeyGroups::new(&entity_keys, &feature_keys)?;
    let ttl = options.ttl_micros();
    let filter_created =
        options.filter_by_created_timestamp && features.created_timestamps.is_some();
    if !filter_created {
        let threads = threads.unwrap_or_else(|| {
            super::threads_for(features.event_timestamps.len(), PARALLEL_MIN_ROWS)
        });
        let found = scatter_winners(entity, features, &groups, ttl, threads);
        return Ok(found.into_iter().collect());
    }
    let sorted = SortedFeatures::new(&groups, features);
    let mut found: Vec<Option<u64>> = vec![None; entity.timestamps.len()];
    sorted.fill_winners(
        &mut found,
        |row_idx| groups.entity_group(row_idx),
        &entity.timestamps,
        ttl,
        filter_created,
    );
    Ok(found.into_iter().collect())
}

/// A candidate feature row, compared by (event time, created time, input position): the greatest wins.
/// As `Option<Best>`, `None` (no candidate) is below every candidate, so `max` keeps the best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Best {
    event: i64,
    created: i64,
    row_idx: usize,
}

/// The winners without the created-time filter, by scattering: the entity rows are sorted by (group,
/// timestamp); each feature row goes to the first entity row of its group at or after its event time
/// (a binary search in a few rows), where only the best candidate is kept; a running maximum along each
/// group then gives every entity row the best candidate at or before its timestamp. The winner is that
/// row unless the TTL puts it out of reach (then no row is, as it has the latest event time). Feature
/// rows are split over `threads` threads, each with its own slots, merged by maximum. O(n log n + m)
/// with no per-feature-row allocation; the created-time filter needs [`SortedFeatures`].
fn scatter_winners(
    entity: &EntityRows,
    features: &FeatureRows,
    groups: &KeyGroups,
    ttl: Option<i64>,
    threads: usize,
) -> Vec<Option<u64>> {
    let timestamps = &entity.timestamps;
    let n_entities = timestamps.len();
    // Entity rows that can have a winner, by (group, timestamp).
    let mut order: Vec<(u32, i64, u32)> = (0..n_entities)
        .filter_map(|row_idx| {
            let group = groups.entity_group(row_idx);
            (group != NO_GROUP && timestamps.is_valid(row_idx)).then(|| {
                (
                    group,
                    timestamps.value(row_idx),
                    u32::try_from(row_idx).unwrap_or(u32::MAX),
                )
            })
        })
        .collect();
    order.sort_unstable();
    let mut starts = vec![0_usize; groups.count + 1];
    for &(group, _, _) in &order {
        starts[group as usize + 1] += 1;
    }
    for group in 0..groups.count {
        starts[group + 1] += starts[group];
    }
    let sorted_ts: Vec<i64> = order.iter().map(|&(_, ts, _)| ts).collect();

    let events = &features.event_timestamps;
    let event_values = events.values();
    let created = features.created_timestamps.as_ref();
    let scatter = |range: std::ops::Range<usize>| -> Vec<Option<Best>> {
        let mut slots = vec![None; sorted_ts.len()];
        for row_idx in range {
            if events.is_null(row_idx) {
                continue;
            }
            let group = if groups.feature.is_empty() {
                0
            } else {
                groups.feature[row_idx]
            };
            if group == NO_GROUP {
                continue;
            }
            let (first, end) = (starts[group as usize], starts[group as usize + 1]);
            let event = event_values[row_idx];
            let slot = first + sorted_ts[first..end].partition_point(|&ts| ts < event);
            if slot == end {
                // Every entity row of the group is before this event.
                continue;
            }
            let candidate = Best {
                event,
                created: match created {
                    Some(created) if created.is_valid(row_idx) => created.value(row_idx),
                    _ => i64::MIN,
                },
                row_idx,
            };
            slots[slot] = slots[slot].max(Some(candidate));
        }
        slots
    };
    let n_features = events.len();
    let threads = threads.clamp(1, n_features.max(1));
    let slots = if threads == 1 {
        scatter(0..n_features)
    } else {
        let chunk = n_features.div_ceil(threads);
        let mut parts = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads)
                .map(|part| {
                    let scatter = &scatter;
                    scope.spawn(move || scatter(part * chunk..((part + 1) * chunk).min(n_features)))
                })
                .collect();
            let mut parts = vec![scatter(0..chunk.min(n_features))];
            parts.extend(handles.into_iter().map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }));
            parts
        });
        let mut merged = parts.swap_remove(0);
        for part in parts {
            for (slot, candidate) in merged.iter_mut().zip(part) {
                *slot = (*slot).max(candidate);
            }
        }
        merged
    };
    // A running maximum along each group: the best candidate at or before each entity row.
    let mut found = vec![None; n_entities];
    for group in 0..groups.count {
        let mut best: Option<Best> = None;
        for position in starts[group]..starts[group + 1] {
            best = best.max(slots[position]);
            let (_, ts, row_idx) = order[position];
            if let Some(best) = best
                && ttl.is_none_or(|ttl| best.event >= ts.saturating_sub(ttl))
            {
                found[row_idx as usize] = u64::try_from(best.row_idx).ok();
            }
        }
    }
    found
}

/// Rows below which a loop stays on the calling thread: starting a thread costs more than it saves.
const PARALLEL_MIN_ROWS: usize = 1 << 15;

/// Sets `out[i] = value(i)` for every index, in one contiguous chunk per core (the calling thread takes
/// the last one) when `out` is big enough to be worth it.
fn fill_parallel<T, F>(out: &mut [T], value: F)
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    fill_chunks_parallel(out, |base, slice| {
        for (offset, slot) in slice.iter_mut().enumerate() {
            *slot = value(base + offset);
        }
    });
}

/// Calls `fill(base, chunk)` on `out` in one contiguous chunk per core (the calling thread takes the
/// last one) when `out` is big enough to be worth it; `base` is the chunk's first index. For loops that
/// carry state from one element to the next.
fn fill_chunks_parallel<T, F>(out: &mut [T], fill: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let threads = super::threads_for(out.len(), PARALLEL_MIN_ROWS);
    if threads == 1 {
        fill(0, out);
        return;
    }
    let chunk = out.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = out.chunks_mut(chunk).enumerate();
        let last = chunks.next_back();
        for (index, slice) in chunks {
            let fill = &fill;
            scope.spawn(move || fill(index * chunk, slice));
        }
        if let Some((index, slice)) = last {
            fill(index * chunk, slice);
        }
    });
}

/// The group of a row whose key matches no entity row, or is null.
const NO_GROUP: u32 = u32::MAX;

/// Each row's join key as a dense group number: the distinct keys of the entity rows are numbered, and
/// a feature row gets the number of its key, or [`NO_GROUP`] when no entity row has that key (it can
/// never be a candidate). A row with a null key part is in no group. Without keys (a global view)
/// every row is in group 0.
struct KeyGroups {
    entity: Vec<u32>,
    feature: Vec<u32>,
    count: usize,
}

impl KeyGroups {
    fn new(entity_keys: &[ArrayRef], feature_keys: &[ArrayRef]) -> Result<Self, PitError> {
        let n_entities = entity_keys.first().map_or(0, |key| key.len());
        if entity_keys.is_empty() {
            return Ok(Self {
                entity: Vec::new(),
                feature: Vec::new(),
                count: 1,
            });
        }
        if let ([entity_key], [feature_key]) = (entity_keys, feature_keys)
            && let (Some(entity_ints), Some(feature_ints)) = (
                entity_key.as_any().downcast_ref::<Int64Array>(),
                feature_key.as_any().downcast_ref::<Int64Array>(),
            )
        {
            return Self::of_ints(entity_ints, feature_ints);
        }
        let converter = RowConverter::new(
            feature_keys
                .iter()
                .map(|key| SortField::new(key.data_type().clone()))
                .collect(),
        )?;
        let entity_rows = converter.convert_columns(entity_keys)?;
        let feature_rows = converter.convert_columns(feature_keys)?;
        let entity_valid = all_valid(entity_keys);
        let feature_valid = all_valid(feature_keys);
        let mut numbers: HashMap<&[u8], u32> = HashMap::new();
        let mut entity = Vec::with_capacity(n_entities);
        for (row_idx, &valid) in entity_valid.iter().enumerate() {
            if !valid {
                entity.push(NO_GROUP);
                continue;
            }
            let next = group_number(numbers.len())?;
            entity.push(
                *numbers
                    .entry(entity_rows.row(row_idx).data())
                    .or_insert(next),
            );
        }
        let feature = groups_of_rows(&feature_rows, &feature_valid, &numbers);
        Ok(Self {
            entity,
            feature,
            count: numbers.len(),
        })
    }

    /// The common case, one integer key. Groups are numbered in key order (the rank of the key among
    /// the entity rows' distinct keys), so feature rows written in key order (a snapshot per hour, a
    /// dump per day) visit groups, and the join's per-group arrays, in order too. A feature row's key
    /// is first compared with the distinct key after the previous row's (a merge, when the rows come
    /// in key order) and only otherwise looked up in a hash map of the keys.
    fn of_ints(entity_keys: &Int64Array, feature_keys: &Int64Array) -> Result<Self, PitError> {
        let mut by_key: Vec<(i64, u32)> = Vec::with_capacity(entity_keys.len());
        for (row_idx, &key) in entity_keys.values().iter().enumerate() {
            if entity_keys.is_valid(row_idx) {
                let row_idx = u32::try_from(row_idx)
                    .map_err(|_| PitError::Arrow("over 4 G entity rows in one join".to_owned()))?;
                by_key.push((key, row_idx));
            }
        }
        by_key.sort_unstable();
        let mut entity = vec![NO_GROUP; entity_keys.len()];
        let mut distinct: Vec<i64> = Vec::new();
        let mut group = NO_GROUP;
        for &(key, row_idx) in &by_key {
            if distinct.last() != Some(&key) {
                group = group_number(distinct.len())?;
                distinct.push(key);
            }
            entity[row_idx as usize] = group;
        }
        drop(by_key);
        let numbers: HashMap<i64, u32, BuildIntHasher> = distinct
            .iter()
            .enumerate()
            .map(|(rank, &key)| (key, rank as u32))
            .collect();
        let values = feature_keys.values();
        let mut feature = vec![NO_GROUP; values.len()];
        fill_chunks_parallel(&mut feature, |base, chunk| {
            let mut cursor = 0usize;
            for (offset, slot) in chunk.iter_mut().enumerate() {
                let key = values[base + offset];
                let rank = match distinct.get(cursor) {
                    Some(&next) if next == key => Some(cursor),
                    // Between the previous distinct key and the next: no entity row has it.
                    Some(&next) if key < next && cursor > 0 && distinct[cursor - 1] < key => None,
                    None if cursor > 0 && distinct[cursor - 1] < key => None,
                    _ => numbers.get(&key).map(|&rank| rank as usize),
                };
                if let Some(rank) = rank {
                    cursor = rank + 1;
                    *slot = rank as u32;
                }
            }
        });
        if let Some(nulls) = feature_keys.nulls() {
            for row_idx in nulls
                .iter()
                .enumerate()
                .filter_map(|(idx, valid)| (!valid).then_some(idx))
            {
                feature[row_idx] = NO_GROUP;
            }
        }
        Ok(Self {
            entity,
            feature,
            count: distinct.len(),
        })
    }

    /// The group of entity row `row_idx` (0, the only group, without keys).
    fn entity_group(&self, row_idx: usize) -> u32 {
        self.entity.get(row_idx).copied().unwrap_or(0)
    }
}

/// Each row's group by its row-encoded key in `numbers`; [`NO_GROUP`] where a key part is null
/// (`valid` false) or the key is not numbered.
fn groups_of_rows<K>(rows: &arrow::row::Rows, valid: &[bool], numbers: &HashMap<K, u32>) -> Vec<u32>
where
    K: std::borrow::Borrow<[u8]> + std::hash::Hash + Eq + Sync,
{
    let mut groups = vec![NO_GROUP; valid.len()];
    fill_parallel(&mut groups, |row_idx| {
        if !valid[row_idx] {
            return NO_GROUP;
        }
        numbers
            .get(rows.row(row_idx).data())
            .copied()
            .unwrap_or(NO_GROUP)
    });
    groups
}

fn group_number(count: usize) -> Result<u32, PitError> {
    u32::try_from(count)
        .ok()
        .filter(|&number| number != NO_GROUP)
        .ok_or_else(|| PitError::Arrow("over 4 G distinct join keys in one join".to_owned()))
}

/// A hasher for one `i64` key: a folded multiply, enough to spread keys that are often consecutive
/// over a hash table's buckets and control bytes, several times faster than SipHash.
#[derive(Default, Clone, Copy)]
struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        let product = u128::from(self.0) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_i64(&mut self, value: i64) {
        self.0 = value as u64;
    }
}

type BuildIntHasher = std::hash::BuildHasherDefault<IntHasher>;

/// A feature row that can be a candidate, with what orders it among its key's rows (only while
/// [`SortedFeatures`] sorts them).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    event: i64,
    /// The created time, `i64::MIN` where null or absent (it then loses every tie).
    created: i64,
    created_valid: bool,
    row_idx: usize,
}

/// Entity rows whose searches are started together in [`SortedFeatures::fill_winners`].
const SEARCH_BLOCK: usize = 32;

/// Candidate feature rows grouped by key group, each group in (event_ts, created_ts, input position)
/// order: a counting sort by group, then a sort of each (small) group.
///
/// The rows are kept as columns (event times, input positions, and created times only when the
/// created-time filter may need them): a search reads a group's event times, a few contiguous bytes,
/// and then one position.
struct SortedFeatures {
    events: Vec<i64>,
    /// The input position of each row.
    positions: Vec<usize>,
    /// Each row's created time where valid; empty when the rows have no created time.
    created: Vec<Option<i64>>,
    /// Group `g`'s rows are `[starts[g], starts[g + 1])`.
    starts: Vec<usize>,
}

impl SortedFeatures {
    fn new(groups: &KeyGroups, features: &FeatureRows) -> Self {
        let events = &features.event_timestamps;
        let n_rows = events.len();
        let group_of = |row_idx: usize| -> u32 {
            if events.is_null(row_idx) {
                NO_GROUP
            } else if groups.feature.is_empty() {
                0
            } else {
                groups.feature[row_idx]
            }
        };
        let mut starts = vec![0_usize; groups.count + 1];
        for row_idx in 0..n_rows {
            let group = group_of(row_idx);
            if group != NO_GROUP {
                starts[group as usize + 1] += 1;
            }
        }
        for group in 0..groups.count {
            starts[group + 1] += starts[group];
        }
        let mut next = starts.clone();
        let empty = Candidate {
            event: 0,
            created: i64::MIN,
            created_valid: false,
            row_idx: 0,
        };
        let mut rows = vec![empty; starts[groups.count]];
        let event_values = events.values();
        let created = features.created_timestamps.as_ref();
        for row_idx in 0..n_rows {
            let group = group_of(row_idx);
            if group == NO_GROUP {
                continue;
            }
            let (created, created_valid) = match created {
                Some(created) if created.is_valid(row_idx) => (created.value(row_idx), true),
                _ => (i64::MIN, false),
            };
            let slot = &mut next[group as usize];
            rows[*slot] = Candidate {
                event: event_values[row_idx],
                created,
                created_valid,
                row_idx,
            };
            *slot += 1;
        }
        // Rows went in by input position, so a stable sort by (event, created) keeps the position as
        // the last tie-break.
        for group in 0..groups.count {
            let slice = &mut rows[starts[group]..starts[group + 1]];
            if !slice.is_sorted_by_key(|row| (row.event, row.created)) {
                slice.sort_by_key(|row| (row.event, row.created));
            }
        }
        let created = if created.is_some() {
            rows.iter()
                .map(|row| row.created_valid.then_some(row.created))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            events: rows.iter().map(|row| row.event).collect(),
            positions: rows.iter().map(|row| row.row_idx).collect(),
            created,
            starts,
        }
    }

    /// The bytes the sorted rows hold.
    fn memory_size(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<i64>()
            + self.positions.capacity() * std::mem::size_of::<usize>()
            + self.created.capacity() * std::mem::size_of::<Option<i64>>()
            + self.starts.capacity() * std::mem::size_of::<usize>()
    }

    /// Sets `out[i]` to the winner of entity row `i`, whose group is `group_of(i)` ([`NO_GROUP`]
    /// for none), over the cores for big inputs.
    ///
    /// Entity rows come in random key order, so each search would wait for its group's rows to come
    /// from memory, one search after the other. Rows are taken [`SEARCH_BLOCK`] at a time instead: a
    /// first loop reads the first and last event time and position of each row's group (independent
    /// loads the processor overlaps), and the searches then find them in cache.
    fn fill_winners<G>(
        &self,
        out: &mut [Option<u64>],
        group_of: G,
        timestamps: &TimestampMicrosecondArray,
        ttl: Option<i64>,
        filter_created: bool,
    ) where
        G: Fn(usize) -> u32 + Sync,
    {
        fill_chunks_parallel(out, |base, chunk| {
            for (block_idx, block) in chunk.chunks_mut(SEARCH_BLOCK).enumerate() {
                let first = base + block_idx * SEARCH_BLOCK;
                for offset in 0..block.len() {
                    let group = group_of(first + offset);
                    if group != NO_GROUP {
                        self.touch(group);
                    }
                }
                for (offset, slot) in block.iter_mut().enumerate() {
                    let row_idx = first + offset;
                    let group = group_of(row_idx);
                    *slot = if group == NO_GROUP || timestamps.is_null(row_idx) {
                        None
                    } else {
                        self.winner(group, timestamps.value(row_idx), ttl, filter_created)
                    };
                }
            }
        });
    }

    /// Loads the ends of `group`'s rows (most groups fit in a cache line or two), so that a search
    /// soon after finds them in cache.
    fn touch(&self, group: u32) {
        let group = group as usize;
        let (Some(&start), Some(&end)) = (self.starts.get(group), self.starts.get(group + 1))
        else {
            return;
        };
        if start < end {
            let last = end - 1;
            std::hint::black_box((
                self.events.get(start).copied(),
                self.events.get(last).copied(),
                self.positions.get(start).copied(),
                self.positions.get(last).copied(),
                self.created.get(last).copied(),
            ));
        }
    }

    /// The winner for an entity row of `group` at `ts`.
    fn winner(&self, group: u32, ts: i64, ttl: Option<i64>, filter_created: bool) -> Option<u64> {
        let group = group as usize;
        let (start, end) = (self.starts[group], self.starts[group + 1]);
        let events = &self.events[start..end];
        let after_last = events.partition_point(|&event| event <= ts);
        let lower = ttl.map(|ttl| ts.saturating_sub(ttl));
        for offset in (0..after_last).rev() {
            let row = start + offset;
            if lower.is_some_and(|lower| self.events[row] < lower) {
                return None;
            }
            if filter_created
                && self
                    .created
                    .get(row)
                    .is_none_or(|created| created.is_none_or(|created| created > ts))
            {
                continue;
            }
            return u64::try_from(self.positions[row]).ok();
        }
        None
    }
}

fn check_shapes(entity: &EntityRows, features: &FeatureRows) -> Result<(), PitError> {
    check_entity_shapes(entity, features.keys.len())?;
    check_feature_shapes(features)
}

/// Checks that the entity rows have `n_keys` key columns, each as long as the timestamps.
fn check_entity_shapes(entity: &EntityRows, n_keys: usize) -> Result<(), PitError> {
    if entity.keys.len() != n_keys {
        return Err(PitError::KeyCountMismatch {
            entity: entity.keys.len(),
            features: n_keys,
        });
    }
    let n_entities = entity.timestamps.len();
    for (position, key) in entity.keys.iter().enumerate() {
        check_length(&format!("entity key {position}"), n_entities, key.len())?;
    }
    Ok(())
}

/// Checks that every column of the feature rows has as many rows as the event times.
fn check_feature_shapes(features: &FeatureRows) -> Result<(), PitError> {
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
