use super::*;

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn dataset(name: &str) -> DatasetName {
    DatasetName::new(name).unwrap()
}

fn file(event_date: NaiveDate, partition: i32, first_offset: i64, last_offset: i64) -> LakeFile {
    LakeFile::new(event_date, partition, first_offset, last_offset).unwrap()
}

/// Formats `file` under `dataset`, compares with `expected`, and parses it back.
fn check(dataset_name: &str, lake_file: LakeFile, expected: &str) {
    let path = lake_file.path(&dataset(dataset_name));
    assert_eq!(path, expected);
    assert_eq!(
        LakeFile::parse(&path).unwrap(),
        (dataset(dataset_name), lake_file)
    );
}

fn check_not_a_path(path: &str) {
    assert_eq!(
        LakeFile::parse(path),
        Err(LakePathError::NotALakePath {
            path: path.to_owned()
        }),
        "{path}"
    );
}

fn metadata(offset: i64, timestamp_ms: i64) -> KafkaMetadata {
    KafkaMetadata {
        partition: 2,
        offset,
        timestamp_ms,
        schema_id: 1,
    }
}

const DAY_MS: i64 = 86_400_000;

#[test]
fn paths_round_trip() {
    check(
        "orders",
        file(date(2024, 3, 1), 0, 0, 99),
        "orders/event_date=2024-03-01/partition=0/00000000000000000000-00000000000000000099.parquet",
    );
    check(
        "click.stream_v2-eu",
        file(date(1999, 12, 31), 17, 1_234_567, 1_234_567),
        "click.stream_v2-eu/event_date=1999-12-31/partition=17/00000000000001234567-00000000000001234567.parquet",
    );
    check(
        "t",
        file(date(2024, 2, 29), i32::MAX, i64::MAX - 1, i64::MAX),
        "t/event_date=2024-02-29/partition=2147483647/09223372036854775806-09223372036854775807.parquet",
    );
}

#[test]
fn names_sort_in_offset_order() {
    let names: Vec<String> = [(0, 9), (10, 99), (100, 1000)]
        .map(|(first, last)| file(date(2024, 1, 1), 0, first, last).path(&dataset("d")))
        .to_vec();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, names);
}

#[test]
fn other_paths_are_not_lake_files() {
    for path in [
        "",
        "orders",
        "orders/event_date=2024-03-01/partition=0",
        "lake/orders/event_date=2024-03-01/partition=0/00000000000000000000-00000000000000000099.parquet",
        "orders/event_date=2024-3-1/partition=0/00000000000000000000-00000000000000000099.parquet",
        "orders/event_date=2024-02-30/partition=0/00000000000000000000-00000000000000000099.parquet",
        "orders/date=2024-03-01/partition=0/00000000000000000000-00000000000000000099.parquet",
        "orders/event_date=2024-03-01/partition=00/00000000000000000000-00000000000000000099.parquet",
        "orders/event_date=2024-03-01/partition=-1/00000000000000000000-00000000000000000099.parquet",
        "orders/event_date=2024-03-01/partition=0/0-99.parquet",
        "orders/event_date=2024-03-01/partition=0/00000000000000000099-00000000000000000000.parquet",
        "orders/event_date=2024-03-01/partition=0/00000000000000000000-00000000000000000099.parquet.tmp",
        "orders/event_date=2024-03-01/partition=0/00000000000000000000-00000000000000000099.csv",
        "orders/event_date=2024-03-01/partition=0/+0000000000000000000-00000000000000000099.parquet",
        "or ders/event_date=2024-03-01/partition=0/00000000000000000000-00000000000000000099.parquet",
    ] {
        check_not_a_path(path);
    }
}

#[test]
fn invalid_ranges_are_refused() {
    for (partition, first_offset, last_offset) in [(-1, 0, 0), (0, -1, 0), (0, 5, 4)] {
        assert_eq!(
            LakeFile::new(date(2024, 1, 1), partition, first_offset, last_offset),
            Err(LakePathError::InvalidRange {
                partition,
                first_offset,
                last_offset
            })
        );
    }
}

#[test]
fn dataset_names_follow_kafka_topic_rules() {
    for name in ["a", "orders.v1", "A_b-c", &"x".repeat(249)] {
        assert_eq!(DatasetName::new(name).unwrap().as_str(), name);
    }
    for name in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250)] {
        assert!(DatasetName::new(name).is_err(), "{name:?}");
    }
}

#[test]
fn the_sink_resumes_after_the_highest_last_offset_of_each_partition() {
    let files = [
        file(date(2024, 1, 1), 0, 0, 9),
        file(date(2024, 1, 2), 0, 10, 14),
        file(date(2024, 1, 1), 0, 15, 20),
        file(date(2024, 1, 1), 1, 0, 3),
        file(date(2024, 1, 3), 3, 500, 700),
    ];
    assert_eq!(
        next_offsets(&files),
        BTreeMap::from([(0, 21), (1, 4), (3, 701)])
    );
    assert_eq!(
        next_offsets(files.iter().rev()),
        BTreeMap::from([(0, 21), (1, 4), (3, 701)])
    );
    assert_eq!(next_offsets([]), BTreeMap::new());
}

#[test]
fn resuming_from_listed_paths() {
    let listed = [
        "orders/event_date=2024-01-01/partition=0/00000000000000000000-00000000000000000009.parquet",
        "orders/event_date=2024-01-02/partition=0/00000000000000000010-00000000000000000041.parquet",
        "orders/event_date=2024-01-01/partition=1/00000000000000000007-00000000000000000007.parquet",
    ];
    let files: Vec<LakeFile> = listed
        .iter()
        .map(|path| LakeFile::parse(path).unwrap().1)
        .collect();
    assert_eq!(next_offsets(&files), BTreeMap::from([(0, 42), (1, 8)]));
}

#[test]
fn event_dates_are_utc_dates_of_kafka_timestamps() {
    assert_eq!(event_date(0), Some(date(1970, 1, 1)));
    assert_eq!(event_date(DAY_MS - 1), Some(date(1970, 1, 1)));
    assert_eq!(event_date(DAY_MS), Some(date(1970, 1, 2)));
    assert_eq!(event_date(-1), Some(date(1969, 12, 31)));
    assert_eq!(event_date(i64::MAX), None);
}

#[test]
fn records_split_into_runs_of_one_event_date() {
    let day_one = 19_723 * DAY_MS; // 2024-01-01
    let records = [
        metadata(10, day_one),
        metadata(11, day_one + 5),
        metadata(13, day_one + DAY_MS), // a gap in offsets, as transaction markers leave
        metadata(14, day_one + 1),      // a late event
        metadata(15, day_one + 2),
    ];
    assert_eq!(
        split_into_files(&records).unwrap(),
        [
            (file(date(2024, 1, 1), 2, 10, 11), 0..2),
            (file(date(2024, 1, 2), 2, 13, 13), 2..3),
            (file(date(2024, 1, 1), 2, 14, 15), 3..5),
        ]
    );
    assert_eq!(split_into_files(&[]).unwrap(), []);
}

#[test]
fn a_crash_between_files_loses_and_duplicates_nothing() {
    // The sink consumed offsets 0..10 of partition 2 over two days, wrote the first file, then crashed.
    let consumed: Vec<KafkaMetadata> = (0..10)
        .map(|offset| metadata(offset, offset / 4 * DAY_MS))
        .collect();
    let planned = split_into_files(&consumed).unwrap();
    assert_eq!(planned.len(), 3);
    let written = [planned[0].0];
    let resume_at = next_offsets(&written)[&2];

    // After the restart it consumes from `resume_at` and, this time, writes everything.
    let replayed: Vec<KafkaMetadata> = consumed
        .iter()
        .copied()
        .filter(|record| record.offset >= resume_at)
        .collect();
    let mut lake: Vec<LakeFile> = written.to_vec();
    lake.extend(
        split_into_files(&replayed)
            .unwrap()
            .into_iter()
            .map(|(file, _)| file),
    );

    let mut offsets_in_lake: Vec<i64> = consumed
        .iter()
        .filter(|record| {
            lake.iter()
                .any(|file| (file.first_offset()..=file.last_offset()).contains(&record.offset))
        })
        .map(|record| record.offset)
        .collect();
    offsets_in_lake.dedup();
    assert_eq!(offsets_in_lake, (0..10).collect::<Vec<_>>());
    // No two files overlap.
    for (index, one) in lake.iter().enumerate() {
        for other in &lake[index + 1..] {
            assert!(
                one.last_offset() < other.first_offset()
                    || other.last_offset() < one.first_offset()
            );
        }
    }
}

#[test]
fn records_out_of_order_are_refused() {
    assert_eq!(
        split_into_files(&[metadata(5, 0), metadata(5, 0)]),
        Err(LakePathError::RecordsOutOfOrder { index: 1 })
    );
    let other_partition = KafkaMetadata {
        partition: 3,
        ..metadata(6, 0)
    };
    assert_eq!(
        split_into_files(&[metadata(5, 0), other_partition]),
        Err(LakePathError::RecordsOutOfOrder { index: 1 })
    );
    assert_eq!(
        split_into_files(&[metadata(0, i64::MAX)]),
        Err(LakePathError::TimestampOutOfRange {
            index: 0,
            timestamp_ms: i64::MAX
        })
    );
}
