use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray, TimestampNanosecondArray, UInt64Array,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::columns::{key_type_fits, timestamps_micros};
use super::index::FeatureIndex;
use super::{
    EntityRows, FeatureRows, JoinOptions, KeyGroups, NO_GROUP, PARALLEL_MIN_ROWS, PitError,
    fill_parallel, join, reference, winners, winners_on,
};
use crate::domain::value::ValueType;

fn ts(values: &[Option<i64>]) -> TimestampMicrosecondArray {
    values.iter().copied().collect()
}

fn ints(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(values.iter().copied().collect::<Int64Array>())
}

fn floats(values: &[Option<f64>]) -> ArrayRef {
    Arc::new(values.iter().copied().collect::<Float64Array>())
}

fn winner_list(array: &UInt64Array) -> Vec<Option<u64>> {
    array.iter().collect()
}

/// Feature rows of one int key with `(key, event, created, value)` tuples.
fn feature_rows(rows: &[(i64, i64, Option<i64>, Option<f64>)]) -> FeatureRows {
    FeatureRows {
        keys: vec![ints(
            &rows.iter().map(|row| Some(row.0)).collect::<Vec<_>>(),
        )],
        event_timestamps: ts(&rows.iter().map(|row| Some(row.1)).collect::<Vec<_>>()),
        created_timestamps: Some(ts(&rows.iter().map(|row| row.2).collect::<Vec<_>>())),
        features: vec![floats(&rows.iter().map(|row| row.3).collect::<Vec<_>>())],
    }
}

fn entity_rows(rows: &[(Option<i64>, Option<i64>)]) -> EntityRows {
    EntityRows {
        keys: vec![ints(&rows.iter().map(|row| row.0).collect::<Vec<_>>())],
        timestamps: ts(&rows.iter().map(|row| row.1).collect::<Vec<_>>()),
    }
}

fn check(
    entity: &EntityRows,
    features: &FeatureRows,
    options: JoinOptions,
    expected: &[Option<u64>],
) {
    let fast = winners(entity, features, &options).unwrap();
    let slow = reference::winners(entity, features, &options).unwrap();
    let indexed = FeatureIndex::build(features.clone())
        .unwrap()
        .winners(entity, &options)
        .unwrap();
    assert_eq!(winner_list(&fast), expected, "fast join");
    assert_eq!(winner_list(&slow), expected, "reference join");
    assert_eq!(winner_list(&indexed), expected, "indexed join");
}

#[test]
fn picks_latest_row_at_or_before_the_entity_timestamp() {
    let features = feature_rows(&[
        (1, 10, None, Some(1.0)),
        (1, 20, None, Some(2.0)),
        (1, 30, None, Some(3.0)),
        (2, 15, None, Some(4.0)),
    ]);
    let entity = entity_rows(&[
        (Some(1), Some(25)),
        (Some(1), Some(20)),
        (Some(1), Some(9)),
        (Some(2), Some(100)),
        (Some(3), Some(100)),
        (None, Some(100)),
        (Some(1), None),
        (Some(1), Some(25)),
    ]);
    check(
        &entity,
        &features,
        JoinOptions::default(),
        &[Some(1), Some(1), None, Some(3), None, None, None, Some(1)],
    );
}

#[test]
fn ttl_bounds_are_inclusive_and_zero_means_forever() {
    let features = feature_rows(&[(1, 100, None, Some(1.0))]);
    let entity = entity_rows(&[
        (Some(1), Some(110)),
        (Some(1), Some(111)),
        (Some(1), Some(100)),
    ]);
    let ttl = JoinOptions {
        ttl: Duration::from_micros(10),
        filter_by_created_timestamp: false,
    };
    check(&entity, &features, ttl, &[Some(0), None, Some(0)]);
    check(
        &entity,
        &features,
        JoinOptions::default(),
        &[Some(0), Some(0), Some(0)],
    );
}

#[test]
fn ties_on_event_time_go_to_the_latest_created_then_the_last_row() {
    let features = feature_rows(&[
        (1, 10, Some(12), Some(1.0)),
        (1, 10, Some(15), Some(2.0)),
        (1, 10, None, Some(3.0)),
        (1, 10, Some(11), Some(4.0)),
        (2, 10, Some(5), Some(5.0)),
        (2, 10, Some(5), Some(6.0)),
    ]);
    let entity = entity_rows(&[(Some(1), Some(20)), (Some(2), Some(20))]);
    check(
        &entity,
        &features,
        JoinOptions::default(),
        &[Some(1), Some(5)],
    );
}

#[test]
fn filter_by_created_timestamp_leaves_out_backfills() {
    let features = feature_rows(&[
        (1, 10, Some(10), Some(1.0)),
        (1, 20, Some(50), Some(2.0)),
        (1, 20, None, Some(3.0)),
    ]);
    let entity = entity_rows(&[(Some(1), Some(30)), (Some(1), Some(60))]);
    let filtered = JoinOptions {
        ttl: Duration::ZERO,
        filter_by_created_timestamp: true,
    };
    check(&entity, &features, filtered, &[Some(0), Some(1)]);
    check(
        &entity,
        &features,
        JoinOptions::default(),
        &[Some(1), Some(1)],
    );
}

#[test]
fn filter_by_created_timestamp_leaves_a_source_without_created_times_alone() {
    let mut features = feature_rows(&[(1, 10, None, Some(1.0)), (1, 20, None, Some(2.0))]);
    features.created_timestamps = None;
    let entity = entity_rows(&[(Some(1), Some(30))]);
    let filtered = JoinOptions {
        ttl: Duration::ZERO,
        filter_by_created_timestamp: true,
    };
    check(&entity, &features, filtered, &[Some(1)]);
}

#[test]
fn a_null_winner_is_returned_without_falling_back() {
    let features = feature_rows(&[(1, 10, None, Some(1.0)), (1, 20, None, None)]);
    let entity = entity_rows(&[(Some(1), Some(25))]);
    let columns = join(&entity, &features, &JoinOptions::default()).unwrap();
    assert!(columns[0].is_null(0));
}

#[test]
fn int32_entity_keys_meet_int64_feature_keys_but_not_strings() {
    let features = feature_rows(&[(7, 10, None, Some(1.0))]);
    let entity = EntityRows {
        keys: vec![Arc::new(Int32Array::from(vec![7, 8]))],
        timestamps: ts(&[Some(10), Some(10)]),
    };
    check(&entity, &features, JoinOptions::default(), &[Some(0), None]);
    let text = EntityRows {
        keys: vec![Arc::new(StringArray::from(vec!["7"]))],
        timestamps: ts(&[Some(10)]),
    };
    let err = winners(&text, &features, &JoinOptions::default()).unwrap_err();
    assert!(
        matches!(err, PitError::KeyTypeMismatch { position: 0, .. }),
        "{err}"
    );
    assert!(key_type_fits(
        &arrow::datatypes::DataType::Int32,
        ValueType::Int64
    ));
    assert!(!key_type_fits(
        &arrow::datatypes::DataType::Utf8,
        ValueType::Int64
    ));
    assert!(!key_type_fits(
        &arrow::datatypes::DataType::Float64,
        ValueType::Int64
    ));
}

#[test]
fn timestamps_of_any_unit_zone_dates_and_text_become_utc_micros() {
    let nanos: ArrayRef = Arc::new(
        TimestampNanosecondArray::from(vec![Some(1_500_000_000), None]).with_timezone("+02:00"),
    );
    let micros = timestamps_micros("ts", &nanos).unwrap();
    assert_eq!(
        micros.iter().collect::<Vec<_>>(),
        vec![Some(1_500_000), None]
    );
    let naive: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![42]));
    assert_eq!(timestamps_micros("ts", &naive).unwrap().value(0), 42);
    let dates: ArrayRef = Arc::new(Date32Array::from(vec![1]));
    assert_eq!(
        timestamps_micros("ts", &dates).unwrap().value(0),
        86_400_000_000
    );
    let text: ArrayRef = Arc::new(StringArray::from(vec![
        "1970-01-02T00:00:00Z",
        "1970-01-02T00:00:00",
        "1970-01-02T02:00:00+02:00",
    ]));
    let parsed = timestamps_micros("ts", &text).unwrap();
    assert_eq!(parsed.values().to_vec(), vec![86_400_000_000; 3]);
    let bad: ArrayRef = Arc::new(StringArray::from(vec!["yesterday"]));
    assert!(matches!(
        timestamps_micros("ts", &bad),
        Err(PitError::Cast { .. })
    ));
    let float = floats(&[Some(1.0)]);
    assert!(matches!(
        timestamps_micros("ts", &float),
        Err(PitError::NotATimestamp { .. })
    ));
}

#[test]
fn a_global_view_matches_every_entity_row() {
    let features = FeatureRows {
        keys: vec![],
        event_timestamps: ts(&[Some(10), Some(20)]),
        created_timestamps: None,
        features: vec![floats(&[Some(1.0), Some(2.0)])],
    };
    let entity = EntityRows {
        keys: vec![],
        timestamps: ts(&[Some(15), Some(25), Some(5)]),
    };
    check(
        &entity,
        &features,
        JoinOptions::default(),
        &[Some(0), Some(1), None],
    );
}

/// Random feature and entity rows over small domains, so that keys repeat, event times collide, created
/// times tie exactly or are null, and TTL edges are hit exactly.
struct RandomCase {
    entity: EntityRows,
    features: FeatureRows,
    options: JoinOptions,
}

fn random_keys(rng: &mut StdRng, n_rows: usize, n_keys: usize, null_rate: f64) -> Vec<ArrayRef> {
    (0..n_keys)
        .map(|position| -> ArrayRef {
            if position % 2 == 0 {
                let values: Vec<Option<i64>> = (0..n_rows)
                    .map(|_| (!rng.random_bool(null_rate)).then(|| rng.random_range(0..6)))
                    .collect();
                ints(&values)
            } else {
                let values: Vec<Option<String>> = (0..n_rows)
                    .map(|_| {
                        (!rng.random_bool(null_rate))
                            .then(|| ["a", "b", "c"][rng.random_range(0..3)].to_owned())
                    })
                    .collect();
                Arc::new(StringArray::from(values))
            }
        })
        .collect()
}

fn random_case(rng: &mut StdRng) -> RandomCase {
    let n_keys = rng.random_range(0..3);
    let n_features = rng.random_range(0..60);
    let n_entities = rng.random_range(0..40);
    let has_created = rng.random_bool(0.7);
    let event: Vec<Option<i64>> = (0..n_features)
        .map(|_| (!rng.random_bool(0.03)).then(|| rng.random_range(0..30)))
        .collect();
    let created: Vec<Option<i64>> = event
        .iter()
        .map(|event| {
            let base = event.unwrap_or(0);
            (!rng.random_bool(0.1)).then(|| base + rng.random_range(0..4) * rng.random_range(0..8))
        })
        .collect();
    let values: Vec<Option<f64>> = (0..n_features)
        .map(|row_idx| (!rng.random_bool(0.2)).then_some(row_idx as f64))
        .collect();
    let features = FeatureRows {
        keys: random_keys(rng, n_features, n_keys, 0.03),
        event_timestamps: ts(&event),
        created_timestamps: has_created.then(|| ts(&created)),
        features: vec![floats(&values), ints(&event)],
    };
    let entity_ts: Vec<Option<i64>> = (0..n_entities)
        .map(|_| (!rng.random_bool(0.03)).then(|| rng.random_range(-2..40)))
        .collect();
    let mut entity = EntityRows {
        keys: random_keys(rng, n_entities, n_keys, 0.05),
        timestamps: ts(&entity_ts),
    };
    if n_entities > 1 && rng.random_bool(0.5) {
        // Duplicate entity rows: repeat the first half.
        let half: Vec<u64> = (0..n_entities as u64)
            .map(|row_idx| row_idx % (n_entities as u64 / 2).max(1))
            .collect();
        let indices = UInt64Array::from(half);
        entity = EntityRows {
            keys: entity
                .keys
                .iter()
                .map(|key| arrow::compute::take(key.as_ref(), &indices, None).unwrap())
                .collect(),
            timestamps: arrow::compute::take(&entity.timestamps, &indices, None)
                .unwrap()
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap()
                .clone(),
        };
    }
    let ttl = match rng.random_range(0..3) {
        0 => Duration::ZERO,
        _ => Duration::from_micros(rng.random_range(1..12)),
    };
    RandomCase {
        entity,
        features,
        options: JoinOptions {
            ttl,
            filter_by_created_timestamp: rng.random_bool(0.5),
        },
    }
}

#[test]
fn the_fast_join_equals_the_brute_force_join_on_random_data() {
    let mut rng = StdRng::seed_from_u64(0x5eed_f171);
    for case_idx in 0..3000 {
        let case = random_case(&mut rng);
        let fast = winners(&case.entity, &case.features, &case.options).unwrap();
        let slow = reference::winners(&case.entity, &case.features, &case.options).unwrap();
        assert_eq!(
            winner_list(&fast),
            winner_list(&slow),
            "case {case_idx}: options {:?}\nentity {:?}\nfeatures {:?}",
            case.options,
            case.entity,
            case.features
        );
        let index = FeatureIndex::build(case.features.clone()).unwrap();
        let indexed = index.winners(&case.entity, &case.options).unwrap();
        assert_eq!(
            winner_list(&indexed),
            winner_list(&slow),
            "case {case_idx} (indexed): options {:?}\nentity {:?}\nfeatures {:?}",
            case.options,
            case.entity,
            case.features
        );
        let fast_columns = join(&case.entity, &case.features, &case.options).unwrap();
        let slow_columns = reference::join(&case.entity, &case.features, &case.options).unwrap();
        let indexed_columns = index.join(&case.entity, &case.options).unwrap();
        assert_eq!(fast_columns.len(), slow_columns.len());
        for (indexed_column, slow_column) in indexed_columns.iter().zip(&slow_columns) {
            assert_eq!(
                indexed_column.to_data(),
                slow_column.to_data(),
                "case {case_idx}"
            );
        }
        for (fast_column, slow_column) in fast_columns.iter().zip(&slow_columns) {
            assert_eq!(
                fast_column.to_data(),
                slow_column.to_data(),
                "case {case_idx}"
            );
            assert_eq!(fast_column.len(), case.entity.timestamps.len());
        }
    }
}

#[test]
fn several_views_joined_to_the_same_entity_rows_each_equal_the_reference() {
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..300 {
        let first = random_case(&mut rng);
        // Other views over the same entity rows: same key shape, other rows and options.
        for _ in 0..3 {
            let mut other = random_case(&mut rng);
            while other.features.keys.len() != first.entity.keys.len() {
                other = random_case(&mut rng);
            }
            let fast = winners(&first.entity, &other.features, &other.options).unwrap();
            let slow = reference::winners(&first.entity, &other.features, &other.options).unwrap();
            assert_eq!(winner_list(&fast), winner_list(&slow));
            // One index serves every entity row set.
            let index = FeatureIndex::build(other.features.clone()).unwrap();
            for entity in [&first.entity, &other.entity] {
                let indexed = index.winners(entity, &other.options).unwrap();
                let slow = reference::winners(entity, &other.features, &other.options).unwrap();
                assert_eq!(winner_list(&indexed), winner_list(&slow));
            }
        }
    }
}

#[test]
fn fill_parallel_sets_every_slot_from_its_index_at_any_size() {
    for len in [
        0,
        1,
        PARALLEL_MIN_ROWS - 1,
        PARALLEL_MIN_ROWS * 2,
        PARALLEL_MIN_ROWS * 5 + 7,
    ] {
        let mut out = vec![u64::MAX; len];
        fill_parallel(&mut out, |index| index as u64 * 3);
        assert!(
            out.iter()
                .enumerate()
                .all(|(index, &value)| value == index as u64 * 3),
            "length {len}"
        );
    }
}

#[test]
fn the_scattering_join_split_over_threads_equals_the_brute_force_join() {
    let mut rng = StdRng::seed_from_u64(0x5ca7_7e25);
    for case_idx in 0..400 {
        let mut case = random_case(&mut rng);
        case.options.filter_by_created_timestamp = false;
        let slow = reference::winners(&case.entity, &case.features, &case.options).unwrap();
        for threads in [1, 2, 3, 7] {
            let fast =
                winners_on(&case.entity, &case.features, &case.options, Some(threads)).unwrap();
            assert_eq!(
                winner_list(&fast),
                winner_list(&slow),
                "case {case_idx} on {threads} threads: options {:?}\nentity {:?}\nfeatures {:?}",
                case.options,
                case.entity,
                case.features
            );
        }
    }
}

#[test]
fn integer_keys_are_numbered_by_rank_and_found_in_any_row_order() {
    let mut rng = StdRng::seed_from_u64(0x0bad_5eed);
    let entity: Vec<Option<i64>> = (0..5_000)
        .map(|_| (!rng.random_bool(0.02)).then(|| rng.random_range(0..20_000) * 3))
        .collect();
    let mut distinct: Vec<i64> = entity.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let rank = |key: Option<i64>| -> u32 {
        key.and_then(|key| distinct.binary_search(&key).ok())
            .map_or(NO_GROUP, |rank| rank as u32)
    };
    // Keys in runs of ascending order (a snapshot per hour), descending, and shuffled; with keys
    // below, between and above the entity rows' and nulls; long enough to be split over threads.
    let ascending: Vec<Option<i64>> = (0..3)
        .flat_map(|_| -5..60_005)
        .map(|key| (key % 97 != 0).then_some(key))
        .collect();
    let descending: Vec<Option<i64>> = ascending.iter().rev().copied().collect();
    let mut shuffled = ascending.clone();
    for index in (1..shuffled.len()).rev() {
        shuffled.swap(index, rng.random_range(0..=index));
    }
    assert!(ascending.len() > PARALLEL_MIN_ROWS * 4);
    for (order, features) in [
        ("ascending runs", ascending),
        ("descending", descending),
        ("shuffled", shuffled),
    ] {
        let groups = KeyGroups::of_ints(
            &Int64Array::from(entity.clone()),
            &Int64Array::from(features.clone()),
        )
        .unwrap();
        assert_eq!(groups.count, distinct.len(), "{order}");
        for (row_idx, &key) in entity.iter().enumerate() {
            assert_eq!(
                groups.entity[row_idx],
                rank(key),
                "{order}: entity row {row_idx}"
            );
        }
        for (row_idx, &key) in features.iter().enumerate() {
            assert_eq!(
                groups.feature[row_idx],
                rank(key),
                "{order}: feature row {row_idx} ({key:?})"
            );
        }
    }
}

#[test]
fn an_indexed_join_of_many_rows_gathers_every_column_like_the_scanning_join() {
    // Enough entity rows for the columns to be gathered on several threads, and columns of three types.
    let mut rng = StdRng::seed_from_u64(0x0b16_c01f);
    let n_features = 20_000;
    let keys: Vec<Option<i64>> = (0..n_features)
        .map(|_| Some(rng.random_range(0..500)))
        .collect();
    let events: Vec<Option<i64>> = (0..n_features)
        .map(|_| Some(rng.random_range(0..10_000)))
        .collect();
    let mut features = FeatureRows {
        keys: vec![ints(&keys)],
        event_timestamps: ts(&events),
        created_timestamps: None,
        features: Vec::new(),
    };
    features.features = vec![
        floats(
            &(0..n_features)
                .map(|i| Some(i as f64 / 2.0))
                .collect::<Vec<_>>(),
        ),
        ints(
            &(0..n_features)
                .map(|i| (i % 7 != 0).then_some(i as i64))
                .collect::<Vec<_>>(),
        ),
        Arc::new(
            (0..n_features)
                .map(|i| Some(format!("v{i}")))
                .collect::<StringArray>(),
        ),
    ];
    let n_entities = PARALLEL_MIN_ROWS + 123;
    let entity = EntityRows {
        keys: vec![ints(
            &(0..n_entities)
                .map(|_| Some(rng.random_range(0..520)))
                .collect::<Vec<_>>(),
        )],
        timestamps: ts(&(0..n_entities)
            .map(|_| Some(rng.random_range(0..11_000)))
            .collect::<Vec<_>>()),
    };
    let options = JoinOptions::default();
    let index = FeatureIndex::build(features.clone()).unwrap();
    let indexed = index.join(&entity, &options).unwrap();
    // The scanning join, itself checked against the brute-force one above (which is too slow here).
    let scanned = join(&entity, &features, &options).unwrap();
    assert_eq!(indexed.len(), 3);
    for (position, (indexed_column, scanned_column)) in indexed.iter().zip(&scanned).enumerate() {
        assert_eq!(indexed_column.len(), n_entities);
        assert!(
            indexed_column.null_count() < n_entities,
            "column {position}"
        );
        assert_eq!(
            indexed_column.to_data(),
            scanned_column.to_data(),
            "column {position}"
        );
    }
}
