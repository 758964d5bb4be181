use super::*;
use crate::domain::parse::parse;

fn project(yaml: &str) -> Project {
    match parse(&[("features.yaml", yaml)]) {
        Ok(parsed) => parsed.project,
        Err(errors) => panic!("definitions parse: {errors:?}"),
    }
}

#[test]
fn only_stream_sources_with_online_views_get_a_consumer() {
    let project = project(
        r#"
entities:
  - name: driver
    join_keys: [{name: driver_id, type: int64}]
sources:
  - name: live
    stream: {topic: driver_events, dataset: driver_lake}
    timestamp_field: ts
  - name: offline_only
    stream: {topic: other_events}
    timestamp_field: ts
  - name: unused
    stream: {topic: unused_events}
    timestamp_field: ts
  - name: batch
    lake: {dataset: driver_stats}
    timestamp_field: ts
feature_views:
  - name: a
    entities: [driver]
    source: live
    features: [{name: x, type: int64}]
  - name: b
    entities: [driver]
    source: offline_only
    online: false
    features: [{name: x, type: int64}]
  - name: c
    entities: [driver]
    source: batch
    features: [{name: x, type: int64}]
"#,
    );
    assert_eq!(
        stream_sources(&project),
        BTreeMap::from([("live".to_owned(), "driver_events".to_owned())])
    );
    assert_eq!(consumer_group("live"), "plinth-feature-store.live");
}

#[test]
fn commits_name_the_offset_after_each_partitions_last_record() {
    let record = |topic: &str, partition: i32, offset: i64| pb::ConsumedRecord {
        topic: Some(TopicName::new(topic)),
        partition,
        offset,
        ..Default::default()
    };
    let offsets = next_offsets(&[
        record("t", 0, 4),
        record("t", 1, 9),
        record("t", 0, 5),
        record("t", 1, 7),
    ]);
    let pairs: Vec<(i32, i64)> = offsets.iter().map(|o| (o.partition, o.offset)).collect();
    assert_eq!(pairs, [(0, 6), (1, 10)]);
    assert!(
        offsets
            .iter()
            .all(|o| o.topic.as_ref().is_some_and(|t| t.value == "t"))
    );
}

#[test]
fn protobuf_timestamps_become_microseconds() {
    let ts = prost_types::Timestamp {
        seconds: 1_767_225_600,
        nanos: 123_456_789,
    };
    assert_eq!(timestamp_micros(&ts), Some(1_767_225_600_123_456));
    let huge = prost_types::Timestamp {
        seconds: i64::MAX,
        nanos: 0,
    };
    assert_eq!(timestamp_micros(&huge), None);
}
