use super::*;
use crate::domain::parse::parse;

const DEFINITIONS: &str = r#"
entities:
  - name: driver
    join_keys: [{name: driver_id, type: int64}]
sources:
  - name: driver_events
    stream: {topic: driver_events}
    timestamp_field: event_timestamp
    created_timestamp_column: created
    field_mapping: {rate_v2: conv_rate}
feature_views:
  - name: driver_live
    entities: [driver]
    source: driver_events
    features:
      - {name: conv_rate, type: float64}
      - {name: trips, type: int64}
      - {name: city, type: string}
  - name: driver_offline_only
    entities: [driver]
    source: driver_events
    online: false
    features:
      - {name: trips, type: int64}
"#;

fn project() -> Project {
    match parse(&[("features.yaml", DEFINITIONS)]) {
        Ok(parsed) => parsed.project,
        Err(errors) => panic!("definitions parse: {errors:?}"),
    }
}

/// 2026-01-01T00:00:00Z in µs.
const T0: i64 = 1_767_225_600_000_000;

fn rows_of(
    value: Option<&str>,
    kafka_ts: Option<i64>,
) -> Result<Vec<(String, EntityKey, OnlineRow)>, Skip> {
    let project = project();
    let source = project.sources["driver_events"].clone();
    let views = online_views(&project, "driver_events");
    record_rows(&project, &source, &views, value, kafka_ts)
}

#[test]
fn a_record_maps_to_one_row_per_online_view_through_the_field_mapping() {
    let rows = rows_of(
        Some(r#"{"driver_id": 1001, "event_timestamp": "2026-01-01T00:00:00Z", "rate_v2": 3, "trips": 7, "extra": true}"#),
        Some(T0 + 5),
    )
    .unwrap();
    assert_eq!(rows.len(), 1, "only the online view: {rows:?}");
    let (view, key, row) = &rows[0];
    assert_eq!(view, "driver_live");
    assert_eq!(
        key,
        &entity_key::encode(&[("driver_id", Value::Int64(1001))]).unwrap()
    );
    assert_eq!(row.event_ts, T0);
    // No created column in the record: the Kafka timestamp.
    assert_eq!(row.created_ts, T0 + 5);
    // The integer becomes a float64; the absent feature is null.
    assert_eq!(
        row.values,
        vec![
            ("conv_rate".to_owned(), Value::Float64(3.0)),
            ("trips".to_owned(), Value::Int64(7)),
            ("city".to_owned(), Value::Null),
        ]
    );
}

#[test]
fn the_created_column_wins_over_the_kafka_timestamp() {
    let rows = rows_of(
        Some(r#"{"driver_id": 1, "event_timestamp": "2026-01-01 00:00:00", "created": "2026-01-01T01:00:00+01:00"}"#),
        Some(T0 + 99),
    )
    .unwrap();
    assert_eq!(rows[0].2.created_ts, T0);
    // Neither: the event time.
    let rows = rows_of(
        Some(r#"{"driver_id": 1, "event_timestamp": "2026-01-01T00:00:00Z"}"#),
        None,
    )
    .unwrap();
    assert_eq!(rows[0].2.created_ts, T0);
}

#[test]
fn unreadable_records_are_skips_that_say_what_is_wrong() {
    assert_eq!(rows_of(None, None).unwrap_err(), Skip::Tombstone);
    assert!(matches!(
        rows_of(Some("not json"), None),
        Err(Skip::NotAnObject(_))
    ));
    assert!(
        matches!(rows_of(Some("[1, 2]"), None), Err(Skip::NotAnObject(kind)) if kind.contains("array"))
    );

    let err = rows_of(Some(r#"{"driver_id": 1}"#), None).unwrap_err();
    assert!(matches!(err, Skip::EventTime { .. }), "{err:?}");
    assert!(err.to_string().contains("event_timestamp"), "{err}");
    let err = rows_of(
        Some(r#"{"driver_id": 1, "event_timestamp": 1767225600}"#),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("RFC 3339"), "{err}");
    let err = rows_of(
        Some(r#"{"driver_id": 1, "event_timestamp": "yesterday"}"#),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("yesterday"), "{err}");

    let err = rows_of(Some(r#"{"event_timestamp": "2026-01-01T00:00:00Z"}"#), None).unwrap_err();
    assert!(
        matches!(&err, Skip::Key { field, .. } if field == "driver_id"),
        "{err:?}"
    );
    let err = rows_of(
        Some(r#"{"driver_id": "1001", "event_timestamp": "2026-01-01T00:00:00Z"}"#),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Skip::Key { .. }), "{err:?}");

    let err = rows_of(
        Some(r#"{"driver_id": 1, "event_timestamp": "2026-01-01T00:00:00Z", "trips": "many"}"#),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Skip::Feature { field, .. } if field == "trips"),
        "{err:?}"
    );
    let err = rows_of(
        Some(r#"{"driver_id": 1, "event_timestamp": "2026-01-01T00:00:00Z", "created": "soon"}"#),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Skip::CreatedTime { .. }), "{err:?}");
}

#[test]
fn a_batch_keeps_the_newest_row_per_key_whatever_the_order() {
    let key = entity_key::encode(&[("driver_id", Value::Int64(1))]).unwrap();
    let row = |event_ts: i64, created_ts: i64, trips: i64| OnlineRow {
        event_ts,
        created_ts,
        values: vec![("trips".to_owned(), Value::Int64(trips))],
    };
    let mut batch = BatchRows::default();
    batch.add("v", key.clone(), row(T0 + 10, T0, 2));
    batch.add("v", key.clone(), row(T0, T0, 1));
    batch.add("v", key.clone(), row(T0 + 10, T0 + 1, 3));
    let kept = batch.views["v"].get(&key).unwrap();
    assert_eq!(kept, &row(T0 + 10, T0 + 1, 3));
}
