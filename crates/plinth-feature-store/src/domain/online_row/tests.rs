use super::*;

fn row(event_ts: i64, created_ts: i64) -> OnlineRow {
    OnlineRow {
        event_ts,
        created_ts,
        values: vec![("trips".into(), Value::Int64(3))],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn a_later_event_supersedes_and_an_earlier_one_does_not() {
    assert!(supersedes(&row(20, 0), &row(10, 99)));
    assert!(!supersedes(&row(10, 99), &row(20, 0)));
}

#[test]
fn a_correction_with_the_same_event_and_a_later_created_time_supersedes() {
    // The fix of feast-dev/feast#2795: Feast's `event_ts <= stored` check skips this write.
    assert!(supersedes(&row(10, 6), &row(10, 5)));
    assert!(!supersedes(&row(10, 5), &row(10, 6)));
}

#[test]
fn an_equal_pair_supersedes_so_replays_are_idempotent() {
    assert!(supersedes(&row(10, 5), &row(10, 5)));
}

#[test]
fn status_of_a_missing_row_or_feature_is_not_found() {
    assert_eq!(
        status(None, "trips", Duration::ZERO, 0),
        (Value::Null, Status::NotFound)
    );
    assert_eq!(
        status(Some(&row(0, 0)), "rating", Duration::ZERO, 0),
        (Value::Null, Status::NotFound)
    );
}

#[test]
fn status_of_a_value_is_present_and_of_a_stored_null_is_null_value() {
    let mut stored = row(0, 0);
    stored.values.push(("rating".into(), Value::Null));
    assert_eq!(
        status(Some(&stored), "trips", Duration::ZERO, i64::MAX),
        (Value::Int64(3), Status::Present)
    );
    assert_eq!(
        status(Some(&stored), "rating", Duration::ZERO, 0),
        (Value::Null, Status::NullValue)
    );
}

#[test]
fn ttl_bounds_the_age_inclusively_and_zero_means_no_limit() {
    let stored = row(1_000_000, 0);
    let ttl = Duration::from_secs(10);
    let at = |now_us| status(Some(&stored), "trips", ttl, now_us);
    assert_eq!(at(11_000_000), (Value::Int64(3), Status::Present));
    assert_eq!(at(11_000_001), (Value::Null, Status::OutsideMaxAge));
    // A row from the future (clock skew) is not too old.
    assert_eq!(at(0), (Value::Int64(3), Status::Present));
    assert_eq!(
        status(Some(&stored), "trips", Duration::ZERO, i64::MAX),
        (Value::Int64(3), Status::Present)
    );
    // Extremes neither overflow nor panic.
    assert_eq!(
        status(Some(&row(i64::MIN, 0)), "trips", ttl, i64::MAX).1,
        Status::OutsideMaxAge
    );
    assert_eq!(
        status(Some(&stored), "trips", Duration::MAX, i64::MAX).1,
        Status::Present
    );
}

#[test]
fn an_expired_null_is_outside_max_age() {
    let stored = OnlineRow {
        event_ts: 0,
        created_ts: 0,
        values: vec![("rating".into(), Value::Null)],
    };
    assert_eq!(
        status(Some(&stored), "rating", Duration::from_micros(1), 2),
        (Value::Null, Status::OutsideMaxAge)
    );
}

/// Golden bytes: a failure means the storage format changed; add a version instead of editing them.
#[test]
fn the_encoding_has_fixed_bytes() {
    let stored = OnlineRow {
        event_ts: 1,
        created_ts: -1,
        values: vec![
            ("s".into(), Value::String("ab".into())),
            ("n".into(), Value::Null),
            ("i".into(), Value::Int32(-2)),
            ("b".into(), Value::Bool(true)),
        ],
    };
    assert_eq!(
        hex(&encode(&stored).unwrap()),
        concat!(
            "01",               // version
            "8000000000000001", // event_ts 1, order-preserving
            "7fffffffffffffff", // created_ts -1
            "04000000",         // four values
            "01000000",
            "73",
            "01",
            "02000000",
            "6162", // s = "ab"
            "01000000",
            "6e",
            "00", // n = null
            "01000000",
            "69",
            "03",
            "feffffff", // i = int32 -2
            "01000000",
            "62",
            "07",
            "01", // b = true
        )
    );
}

#[test]
fn every_value_type_round_trips() {
    let stored = OnlineRow {
        event_ts: i64::MIN,
        created_ts: i64::MAX,
        values: vec![
            ("null".into(), Value::Null),
            ("string".into(), Value::String("héllo".into())),
            ("bytes".into(), Value::Bytes(vec![0, 1, 255])),
            ("int32".into(), Value::Int32(i32::MIN)),
            ("int64".into(), Value::Int64(i64::MAX)),
            ("float32".into(), Value::Float32(-1.5)),
            ("float64".into(), Value::Float64(f64::MAX)),
            ("bool".into(), Value::Bool(false)),
            ("ts".into(), Value::UnixTimestamp(-7)),
        ],
    };
    assert_eq!(decode(&encode(&stored).unwrap()).unwrap(), stored);
    let empty = OnlineRow {
        event_ts: 0,
        created_ts: 0,
        values: vec![],
    };
    assert_eq!(decode(&encode(&empty).unwrap()).unwrap(), empty);
}

#[test]
fn header_bytes_order_like_the_timestamps() {
    let stamps = [
        i64::MIN,
        -1_000_000,
        -1,
        0,
        1,
        1 << 53,
        (1 << 53) + 1,
        i64::MAX,
    ];
    for &left_event in &stamps {
        for &right_event in &stamps {
            for (left_created, right_created) in [(0, 0), (1, 0), (0, 1), (i64::MIN, i64::MAX)] {
                let left = row(left_event, left_created);
                let right = row(right_event, right_created);
                let left_bytes = encode(&left).unwrap();
                let right_bytes = encode(&right).unwrap();
                assert_eq!(
                    left_bytes[1..HEADER_LEN] >= right_bytes[1..HEADER_LEN],
                    supersedes(&left, &right),
                    "{left:?} vs {right:?}"
                );
            }
        }
    }
}

#[test]
fn broken_bytes_are_refused_without_panicking() {
    let bytes = encode(&OnlineRow {
        event_ts: 5,
        created_ts: 6,
        values: vec![
            ("s".into(), Value::String("x".into())),
            ("f".into(), Value::Float64(1.0)),
            ("b".into(), Value::Bool(true)),
        ],
    })
    .unwrap();
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(decode(&trailing).is_err());
    let mut other_version = bytes.clone();
    other_version[0] = 9;
    assert!(decode(&other_version).is_err());
    let mut bad_bool = bytes.clone();
    let last = bad_bool.len() - 1;
    bad_bool[last] = 2;
    assert!(decode(&bad_bool).is_err());
    // A huge count with no values behind it fails instead of allocating.
    let mut huge_count = bytes[..HEADER_LEN].to_vec();
    huge_count.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode(&huge_count).is_err());
}

#[test]
fn get_finds_a_feature_by_name() {
    let stored = row(0, 0);
    assert_eq!(stored.get("trips"), Some(&Value::Int64(3)));
    assert_eq!(stored.get("other"), None);
}
