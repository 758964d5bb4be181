use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::compute::{cast, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, TimeUnit};
use futures::TryStreamExt;
use plinth_runtime::storage::Locations;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{EntityInput, OutputSink, build_training_set, stream_training_set};
use crate::domain::definitions::{
    BatchLocation, Entity, Feature, FeatureView, JoinKey, Metadata, Project, Source, SourceKind,
};
use crate::domain::pit::columns::timestamps_micros;
use crate::domain::pit::{EntityRows, FeatureRows, JoinOptions, reference};
use crate::domain::selection::SelectedView;
use crate::domain::value::ValueType;
use crate::offline::plan::TrainingSetPlan;
use crate::offline::reader::{list_files, read_batches, source_schema};
use crate::offline::{OfflineContext, OfflineError};

const HOUR: i64 = 3_600_000_000;

struct Lake {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    context: OfflineContext,
}

fn lake() -> Lake {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    let mut context = OfflineContext::new(
        Arc::new(Locations::new(BTreeMap::new())),
        format!("file://{}", root.display()),
    );
    context.scratch_dir = scratch;
    context.partitions = Some(7);
    context.batch_rows = 37;
    Lake {
        _dir: dir,
        root,
        context,
    }
}

fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

fn utc(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

/// The driver view's rows in canonical form: driver_id, event_ts, created_ts, conv_rate, trips.
fn driver_rows(rng: &mut StdRng, n_rows: usize) -> RecordBatch {
    let keys: Vec<i64> = (0..n_rows).map(|_| rng.random_range(0..25)).collect();
    let events: Vec<Option<i64>> = (0..n_rows)
        .map(|_| Some(rng.random_range(0..48) * HOUR))
        .collect();
    let created: Vec<Option<i64>> = events
        .iter()
        .map(|event| {
            (!rng.random_bool(0.1)).then(|| event.unwrap_or(0) + rng.random_range(0..3) * HOUR)
        })
        .collect();
    let rates: Vec<Option<f64>> = (0..n_rows)
        .map(|row| (!rng.random_bool(0.1)).then_some(row as f64 / 10.0))
        .collect();
    let trips: Vec<Option<i64>> = (0..n_rows)
        .map(|row| (!rng.random_bool(0.1)).then_some(row as i64))
        .collect();
    RecordBatch::try_from_iter(vec![
        ("driver_id", Arc::new(Int64Array::from(keys)) as ArrayRef),
        ("event_ts", utc(events)),
        ("created_ts", utc(created)),
        ("conv_rate", Arc::new(Float64Array::from(rates)) as ArrayRef),
        ("trips", Arc::new(Int64Array::from(trips)) as ArrayRef),
    ])
    .unwrap()
}

/// The customer view's rows: the key column is `cust` in the source (mapped to `customer_id`).
fn customer_rows(rng: &mut StdRng, n_rows: usize) -> RecordBatch {
    let keys: Vec<Option<String>> = (0..n_rows)
        .map(|_| Some(format!("c{}", rng.random_range(0..10))))
        .collect();
    let events: Vec<Option<i64>> = (0..n_rows)
        .map(|_| Some(rng.random_range(0..48) * HOUR))
        .collect();
    let spend: Vec<Option<f64>> = (0..n_rows).map(|row| Some(row as f64)).collect();
    RecordBatch::try_from_iter(vec![
        ("cust", Arc::new(StringArray::from(keys)) as ArrayRef),
        ("ts", utc(events)),
        ("spend", Arc::new(Float64Array::from(spend)) as ArrayRef),
    ])
    .unwrap()
}

/// Writes the driver rows in three lake files: the oldest without `trips` (added later), one with
/// nanosecond timestamps without a time zone, one under `written/`.
fn write_driver_lake(root: &std::path::Path, rows: &RecordBatch) -> RecordBatch {
    let third = rows.num_rows() / 3;
    let dataset = root.join("driver_stats");
    let old = rows.slice(0, third).project(&[0, 1, 2, 3]).unwrap();
    write_parquet(
        &dataset.join(
            "event_date=2024-01-01/partition=0/00000000000000000000-00000000000000000009.parquet",
        ),
        &old,
    );
    let middle = rows.slice(third, third);
    let nanos = cast(
        middle.column(1),
        &DataType::Timestamp(TimeUnit::Nanosecond, None),
    )
    .unwrap();
    let mut columns = middle.columns().to_vec();
    columns[1] = nanos;
    let middle = RecordBatch::try_from_iter(
        ["driver_id", "event_ts", "created_ts", "conv_rate", "trips"]
            .into_iter()
            .zip(columns),
    )
    .unwrap();
    write_parquet(
        &dataset.join(
            "event_date=2024-01-02/partition=1/00000000000000000010-00000000000000000019.parquet",
        ),
        &middle,
    );
    write_parquet(
        &dataset.join("event_date=2024-01-03/written/0190a7c2-0000-7000-8000-000000000000.parquet"),
        &rows.slice(2 * third, rows.num_rows() - 2 * third),
    );
    // A leftover of a failed write: hidden, never read.
    write_parquet(&dataset.join("_temporary/x/part-00000.parquet"), rows);
    // What the reader sees: `trips` null in the oldest file.
    let mut trips: Vec<Option<i64>> = vec![None; third];
    let all_trips = rows
        .column(4)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    trips.extend(
        (third..rows.num_rows()).map(|row| all_trips.is_valid(row).then(|| all_trips.value(row))),
    );
    let mut columns = rows.columns().to_vec();
    columns[4] = Arc::new(Int64Array::from(trips));
    RecordBatch::try_new(rows.schema(), columns).unwrap()
}

fn project(customer_url: &str) -> Project {
    let entity = |name: &str, key: &str, value_type| Entity {
        name: name.to_owned(),
        join_keys: vec![JoinKey {
            name: key.to_owned(),
            value_type,
        }],
        metadata: Metadata::default(),
    };
    let feature = |name: &str, value_type| Feature {
        name: name.to_owned(),
        value_type,
        description: String::new(),
    };
    let view = |name: &str, entity: &str, features, ttl, source: &str| FeatureView {
        name: name.to_owned(),
        entities: vec![entity.to_owned()],
        features,
        ttl,
        source: source.to_owned(),
        online: true,
        offline: true,
        metadata: Metadata::default(),
    };
    let mut project = Project::default();
    project.entities.insert(
        "driver".to_owned(),
        entity("driver", "driver_id", ValueType::Int64),
    );
    project.entities.insert(
        "customer".to_owned(),
        entity("customer", "customer_id", ValueType::String),
    );
    project.sources.insert(
        "driver_source".to_owned(),
        Source {
            name: "driver_source".to_owned(),
            kind: SourceKind::Batch(BatchLocation::LakeDataset("driver_stats".to_owned())),
            timestamp_field: "event_ts".to_owned(),
            created_timestamp_column: Some("created_ts".to_owned()),
            field_mapping: BTreeMap::new(),
            metadata: Metadata::default(),
        },
    );
    project.sources.insert(
        "customer_source".to_owned(),
        Source {
            name: "customer_source".to_owned(),
            kind: SourceKind::Batch(BatchLocation::ParquetUrl(customer_url.to_owned())),
            timestamp_field: "ts".to_owned(),
            created_timestamp_column: None,
            field_mapping: BTreeMap::from([("cust".to_owned(), "customer_id".to_owned())]),
            metadata: Metadata::default(),
        },
    );
    project.feature_views.insert(
        "driver_stats".to_owned(),
        view(
            "driver_stats",
            "driver",
            vec![
                feature("conv_rate", ValueType::Float64),
                feature("trips", ValueType::Int64),
            ],
            Duration::from_secs(6 * 3600),
            "driver_source",
        ),
    );
    project.feature_views.insert(
        "customer_stats".to_owned(),
        view(
            "customer_stats",
            "customer",
            vec![feature("spend", ValueType::Float64)],
            Duration::ZERO,
            "customer_source",
        ),
    );
    project
}

fn selection() -> Vec<SelectedView> {
    vec![
        SelectedView {
            view: "driver_stats".to_owned(),
            features: vec!["trips".to_owned(), "conv_rate".to_owned()],
        },
        SelectedView {
            view: "customer_stats".to_owned(),
            features: vec!["spend".to_owned()],
        },
    ]
}

/// Entity rows: an Int32 driver id (the view's key is Int64), a string customer id, millisecond
/// timestamps without a time zone, a label to pass through; the second half repeats the first.
fn entity_rows(rng: &mut StdRng, n_rows: usize) -> RecordBatch {
    let half = n_rows / 2;
    let drivers: Vec<Option<i32>> = (0..half)
        .map(|_| (!rng.random_bool(0.05)).then(|| rng.random_range(0..30)))
        .collect();
    let customers: Vec<Option<String>> = (0..half)
        .map(|_| Some(format!("c{}", rng.random_range(0..12))))
        .collect();
    let times: Vec<i64> = (0..half)
        .map(|_| rng.random_range(-2..52) * HOUR / 1000 + rng.random_range(-1..2))
        .collect();
    let repeat = |count: usize| (0..count).map(move |row| row % half.max(1));
    let labels: Vec<i64> = (0..n_rows as i64).collect();
    RecordBatch::try_from_iter(vec![
        (
            "driver_id",
            Arc::new(
                repeat(n_rows)
                    .map(|row| drivers[row])
                    .collect::<Int32Array>(),
            ) as ArrayRef,
        ),
        (
            "customer_id",
            Arc::new(
                repeat(n_rows)
                    .map(|row| customers[row].clone())
                    .collect::<StringArray>(),
            ) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(TimestampMillisecondArray::from(
                repeat(n_rows).map(|row| times[row]).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("label", Arc::new(Int64Array::from(labels)) as ArrayRef),
    ])
    .unwrap()
}

/// The expected training set: the entity rows with each view's features from the brute-force join.
fn expected(
    entities: &RecordBatch,
    drivers: &RecordBatch,
    customers: &RecordBatch,
    filter_by_created_timestamp: bool,
) -> Vec<ArrayRef> {
    let entity_ts = timestamps_micros("event_timestamp", entities.column(2)).unwrap();
    let driver_join = reference::join(
        &EntityRows {
            keys: vec![Arc::clone(entities.column(0))],
            timestamps: entity_ts.clone(),
        },
        &FeatureRows {
            keys: vec![Arc::clone(drivers.column(0))],
            event_timestamps: timestamps_micros("e", drivers.column(1)).unwrap(),
            created_timestamps: Some(timestamps_micros("c", drivers.column(2)).unwrap()),
            features: vec![Arc::clone(drivers.column(4)), Arc::clone(drivers.column(3))],
        },
        &JoinOptions {
            ttl: Duration::from_secs(6 * 3600),
            filter_by_created_timestamp,
        },
    )
    .unwrap();
    let customer_join = reference::join(
        &EntityRows {
            keys: vec![Arc::clone(entities.column(1))],
            timestamps: entity_ts,
        },
        &FeatureRows {
            keys: vec![Arc::clone(customers.column(0))],
            event_timestamps: timestamps_micros("e", customers.column(1)).unwrap(),
            created_timestamps: None,
            features: vec![Arc::clone(customers.column(2))],
        },
        &JoinOptions {
            ttl: Duration::ZERO,
            filter_by_created_timestamp,
        },
    )
    .unwrap();
    let mut columns = entities.columns().to_vec();
    columns.extend(driver_join);
    columns.extend(customer_join);
    columns
}

struct Fixture {
    lake: Lake,
    plan: TrainingSetPlan,
    entities: RecordBatch,
    /// The driver rows as the reader sees them.
    drivers: RecordBatch,
    expected: Vec<ArrayRef>,
}

fn fixture(seed: u64, n_entities: usize, filter_by_created_timestamp: bool) -> Fixture {
    fixture_with(seed, filter_by_created_timestamp, |rng| {
        entity_rows(rng, n_entities)
    })
}

fn fixture_with(
    seed: u64,
    filter_by_created_timestamp: bool,
    entities: impl FnOnce(&mut StdRng) -> RecordBatch,
) -> Fixture {
    let lake = lake();
    let mut rng = StdRng::seed_from_u64(seed);
    let drivers = write_driver_lake(&lake.root, &driver_rows(&mut rng, 600));
    let customers = customer_rows(&mut rng, 200);
    let customer_dir = lake.root.parent().unwrap().join("customers");
    write_parquet(&customer_dir.join("a.parquet"), &customers.slice(0, 120));
    write_parquet(&customer_dir.join("b.parquet"), &customers.slice(120, 80));
    let customer_url = format!("file://{}", customer_dir.display());
    let plan = TrainingSetPlan::new(
        &project(&customer_url),
        &selection(),
        false,
        filter_by_created_timestamp,
    )
    .unwrap();
    let entities = entities(&mut rng);
    let expected = expected(&entities, &drivers, &customers, filter_by_created_timestamp);
    Fixture {
        lake,
        plan,
        entities,
        drivers,
        expected,
    }
}

/// The rows of lake dataset `name`, as one batch.
async fn read_dataset(context: &OfflineContext, name: &str) -> RecordBatch {
    let files = list_files(context, &BatchLocation::LakeDataset(name.to_owned()))
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = read_batches(files, None, None, 1000)
        .try_collect()
        .await
        .unwrap();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn assert_columns(batch: &RecordBatch, expected: &[ArrayRef]) {
    assert_eq!(batch.num_columns(), expected.len());
    for (position, (found, wanted)) in batch.columns().iter().zip(expected).enumerate() {
        assert_eq!(
            found.to_data(),
            wanted.to_data(),
            "column {} differs",
            batch.schema().field(position).name()
        );
    }
}

#[tokio::test]
async fn a_lake_training_set_equals_the_reference_join_in_entity_order() {
    for filter in [false, true] {
        let fixture = fixture(7, 400, filter);
        let summary = build_training_set(
            &fixture.lake.context,
            fixture.plan.clone(),
            EntityInput::Batches(vec![
                fixture.entities.slice(0, 150),
                fixture.entities.slice(150, 250),
            ]),
            OutputSink::LakeDataset("training".to_owned()),
        )
        .await
        .unwrap();
        assert_eq!(summary.rows, 400);
        assert!(summary.in_input_order);
        assert_eq!(summary.partitions, vec![7, 7]);
        let output = fixture.lake.root.join("training");
        assert!(output.join("_SUCCESS").exists());
        assert!(!output.join("_temporary").exists());

        let output = read_dataset(&fixture.lake.context, "training").await;
        let schema = output.schema();
        let names: Vec<&str> = schema
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "driver_id",
                "customer_id",
                "event_timestamp",
                "label",
                "driver_stats__trips",
                "driver_stats__conv_rate",
                "customer_stats__spend"
            ]
        );
        assert_columns(&output, &fixture.expected);
        let matched = output.column(4).len() - output.column(5).null_count();
        assert!(matched > 50, "too few matches ({matched}) to test anything");

        let again = build_training_set(
            &fixture.lake.context,
            fixture.plan.clone(),
            EntityInput::Batches(vec![fixture.entities.clone()]),
            OutputSink::LakeDataset("training".to_owned()),
        )
        .await;
        assert!(
            matches!(again, Err(OfflineError::OutputExists { .. })),
            "{again:?}"
        );
    }
}

#[tokio::test]
async fn a_big_training_set_comes_out_in_partition_order_with_the_same_rows() {
    let mut fixture = fixture(11, 300, false);
    fixture.lake.context.max_rows_to_reorder = 10;
    fixture.lake.context.partitions = Some(3);
    let batches: Vec<RecordBatch> = stream_training_set(
        fixture.lake.context.clone(),
        fixture.plan.clone(),
        EntityInput::Batches(vec![fixture.entities.clone()]),
    )
    .try_collect()
    .await
    .unwrap();
    let output = concat_batches(&batches[0].schema(), &batches).unwrap();
    let labels = output.column(3);
    let in_order: Vec<i64> = (0..300).collect();
    let found: Vec<i64> = labels
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec();
    assert_ne!(
        found, in_order,
        "partition order should differ from input order"
    );
    let order = sort_to_indices(labels, None, None).unwrap();
    assert_columns(
        &take_record_batch(&output, &order).unwrap(),
        &fixture.expected,
    );
}

#[tokio::test]
async fn entity_rows_from_parquet_with_naive_timestamps_are_read_as_utc() {
    let fixture = fixture(3, 120, false);
    let entity_dir = fixture.lake.root.join("entity_rows");
    write_parquet(
        &entity_dir.join("event_date=2024-01-01/written/a.parquet"),
        &fixture.entities.slice(0, 70),
    );
    write_parquet(
        &entity_dir.join("event_date=2024-01-02/written/b.parquet"),
        &fixture.entities.slice(70, 50),
    );
    let mut context = fixture.lake.context.clone();
    context.partitions = None;
    context.target_partition_bytes = 4096;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1000);
    let summary = build_training_set(
        &context,
        fixture.plan.clone(),
        EntityInput::LakeDataset("entity_rows".to_owned()),
        OutputSink::Channel(sender),
    )
    .await
    .unwrap();
    assert!(
        summary.partitions.iter().all(|&count| count > 1),
        "{summary:?}"
    );
    let mut batches = Vec::new();
    while let Some(batch) = receiver.recv().await {
        batches.push(batch.unwrap());
    }
    let output = concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_columns(&output, &fixture.expected);
}

#[tokio::test]
async fn entity_columns_are_checked_before_any_work() {
    let fixture = fixture(5, 10, false);
    let check = |batch: RecordBatch| {
        let context = fixture.lake.context.clone();
        let plan = fixture.plan.clone();
        async move {
            build_training_set(
                &context,
                plan,
                EntityInput::Batches(vec![batch]),
                OutputSink::LakeDataset("never".to_owned()),
            )
            .await
            .unwrap_err()
        }
    };
    let without_driver = fixture.entities.project(&[1, 2, 3]).unwrap();
    let err = check(without_driver).await;
    assert!(
        matches!(&err, OfflineError::MissingEntityColumn { column, .. } if column == "driver_id"),
        "{err}"
    );
    let float_driver = RecordBatch::try_from_iter(vec![
        (
            "driver_id",
            Arc::new(Float64Array::from(vec![1.0; 10])) as ArrayRef,
        ),
        ("customer_id", Arc::clone(fixture.entities.column(1))),
        ("event_timestamp", Arc::clone(fixture.entities.column(2))),
    ])
    .unwrap();
    let err = check(float_driver).await;
    assert!(
        matches!(&err, OfflineError::EntityColumnType { column, .. } if column == "driver_id"),
        "{err}"
    );
    assert!(err.to_string().contains("int64"), "{err}");
    let without_time = fixture.entities.project(&[0, 1, 3]).unwrap();
    let err = check(without_time).await;
    assert!(
        matches!(&err, OfflineError::MissingEntityColumn { column, .. } if column == "event_timestamp"),
        "{err}"
    );
    assert!(!fixture.lake.root.join("never").exists());
}

#[tokio::test]
async fn short_names_that_collide_are_refused() {
    let mut project = project("file:///nowhere");
    let view = project.feature_views.get_mut("customer_stats").unwrap();
    view.features[0].name = "trips".to_owned();
    let selection = vec![
        SelectedView {
            view: "driver_stats".to_owned(),
            features: vec!["trips".to_owned()],
        },
        SelectedView {
            view: "customer_stats".to_owned(),
            features: vec!["trips".to_owned()],
        },
    ];
    let err = TrainingSetPlan::new(&project, &selection, true, false).unwrap_err();
    assert!(matches!(err, OfflineError::Selection(_)), "{err}");
    let plan = TrainingSetPlan::new(&project, &selection, false, false).unwrap();
    assert_eq!(
        plan.views[1].features[0].output_name,
        "customer_stats__trips"
    );
    assert_eq!(plan.views[1].key_columns, vec!["cust".to_owned()]);
}

#[tokio::test]
async fn source_schema_is_the_union_of_the_footers() {
    let fixture = fixture(1, 2, false);
    let schema = source_schema(
        &fixture.lake.context,
        &BatchLocation::LakeDataset("driver_stats".to_owned()),
    )
    .await
    .unwrap();
    let expected = BTreeMap::from([
        ("conv_rate".to_owned(), ValueType::Float64),
        ("created_ts".to_owned(), ValueType::UnixTimestamp),
        ("driver_id".to_owned(), ValueType::Int64),
        ("event_ts".to_owned(), ValueType::UnixTimestamp),
        ("trips".to_owned(), ValueType::Int64),
    ]);
    assert_eq!(schema, expected);
    let missing = source_schema(
        &fixture.lake.context,
        &BatchLocation::LakeDataset("nothing_here".to_owned()),
    )
    .await
    .unwrap_err();
    assert!(matches!(missing, OfflineError::NoFiles { .. }), "{missing}");
}

#[tokio::test]
async fn a_source_file_without_the_event_time_is_an_error_naming_it() {
    let fixture = fixture(2, 20, false);
    let broken = RecordBatch::try_from_iter(vec![
        ("driver_id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        (
            "conv_rate",
            Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    write_parquet(
        &fixture
            .lake
            .root
            .join("driver_stats/event_date=2024-01-04/written/broken.parquet"),
        &broken,
    );
    let err = build_training_set(
        &fixture.lake.context,
        fixture.plan.clone(),
        EntityInput::Batches(vec![fixture.entities.clone()]),
        OutputSink::LakeDataset("failed".to_owned()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, OfflineError::TimestampColumnMissing { url, column } if url.ends_with("broken.parquet") && column == "event_ts"),
        "{err}"
    );
    // A failed job leaves nothing a reader would see.
    let left: Vec<_> = walk(&fixture.lake.root.join("failed"));
    assert!(left.iter().all(|path| path.contains("/_")), "{left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path.display().to_string()]
            }
        })
        .collect()
}

#[tokio::test]
async fn an_empty_entity_set_gives_an_empty_training_set_with_the_schema() {
    let fixture = fixture(4, 10, false);
    let empty = fixture.entities.slice(0, 0);
    let batches: Vec<RecordBatch> = stream_training_set(
        fixture.lake.context.clone(),
        fixture.plan.clone(),
        EntityInput::Batches(vec![empty]),
    )
    .try_collect()
    .await
    .unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].num_rows(), 0);
    assert_eq!(batches[0].num_columns(), 7);
}

#[tokio::test]
async fn rows_at_the_edges_of_the_read_window_are_joined() {
    // Every driver at exactly 10 h and 20 h: the source is read from 4 h (10 h minus the 6 h TTL) to
    // 20 h, and rows at both edges must be candidates.
    let fixture = fixture_with(9, true, |_| {
        let n_rows = 50;
        RecordBatch::try_from_iter(vec![
            (
                "driver_id",
                Arc::new(
                    (0..n_rows)
                        .map(|row| Some(row % 25))
                        .collect::<Int32Array>(),
                ) as ArrayRef,
            ),
            (
                "customer_id",
                Arc::new(
                    (0..n_rows)
                        .map(|row| Some(format!("c{}", row % 10)))
                        .collect::<StringArray>(),
                ) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampMillisecondArray::from(
                    (0..n_rows)
                        .map(|row| if row < 25 { 10 } else { 20 } * HOUR / 1000)
                        .collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            (
                "label",
                Arc::new(Int64Array::from((0..i64::from(n_rows)).collect::<Vec<_>>())) as ArrayRef,
            ),
        ])
        .unwrap()
    });
    let batches: Vec<RecordBatch> = stream_training_set(
        fixture.lake.context.clone(),
        fixture.plan.clone(),
        EntityInput::Batches(vec![fixture.entities.clone()]),
    )
    .try_collect()
    .await
    .unwrap();
    let output = concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_columns(&output, &fixture.expected);
    assert!(output.column(5).null_count() < 40);
}

#[tokio::test]
async fn inputs_that_fit_in_memory_are_joined_there_with_the_same_rows_in_entity_order() {
    for filter in [false, true] {
        let mut fixture = fixture(13, 400, filter);
        // Partitions chosen from the (tiny) input sizes: one, joined in memory.
        fixture.lake.context.partitions = None;
        let batches: Vec<RecordBatch> = stream_training_set(
            fixture.lake.context.clone(),
            fixture.plan.clone(),
            EntityInput::Batches(vec![
                fixture.entities.slice(0, 150),
                fixture.entities.slice(150, 250),
            ]),
        )
        .try_collect()
        .await
        .unwrap();
        let output = concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_columns(&output, &fixture.expected);
        let summary = build_training_set(
            &fixture.lake.context,
            fixture.plan.clone(),
            EntityInput::Batches(vec![fixture.entities.clone()]),
            OutputSink::LakeDataset("in_memory".to_owned()),
        )
        .await
        .unwrap();
        assert_eq!(summary.partitions, vec![1, 1]);
        assert!(summary.in_input_order);
        assert_eq!(summary.rows, 400);
    }
}

/// Builds the fixture's training set into the lake dataset `name` and checks its rows against
/// `expected`; returns how many views came from the cache.
async fn build_and_check(fixture: &Fixture, name: &str, expected: &[ArrayRef]) -> usize {
    let summary = build_training_set(
        &fixture.lake.context,
        fixture.plan.clone(),
        EntityInput::Batches(vec![fixture.entities.clone()]),
        OutputSink::LakeDataset(name.to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(summary.partitions, vec![1, 1]);
    let output = read_dataset(&fixture.lake.context, name).await;
    assert_columns(&output, expected);
    summary.cached_views
}

/// Repeats the fixture's training set until both views come from the cache (the index is built after
/// a call answers); each call's rows must equal `expected`.
async fn until_both_views_are_cached(fixture: &Fixture, prefix: &str, expected: &[ArrayRef]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for attempt in 0.. {
        let cached = build_and_check(fixture, &format!("{prefix}_{attempt}"), expected).await;
        if cached == 2 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sources were not kept after {attempt} calls"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_kept_source_gives_the_same_rows_until_a_file_changes() {
    for filter in [false, true] {
        let mut fixture = fixture(17, 400, filter);
        fixture.lake.context.partitions = None;
        assert_eq!(
            build_and_check(&fixture, "first", &fixture.expected).await,
            0
        );
        until_both_views_are_cached(&fixture, "kept", &fixture.expected).await;
        assert!(fixture.lake.context.cache.bytes() > 0);

        // Rewrite one customer file with other values: that view is read anew, the drivers stay kept.
        let mut rng = StdRng::seed_from_u64(99);
        let customers = customer_rows(&mut rng, 200);
        let customer_dir = fixture.lake.root.parent().unwrap().join("customers");
        write_parquet(&customer_dir.join("a.parquet"), &customers.slice(0, 120));
        write_parquet(&customer_dir.join("b.parquet"), &customers.slice(120, 80));
        let changed = expected(&fixture.entities, &fixture.drivers, &customers, filter);
        assert_ne!(
            changed.last().unwrap().to_data(),
            fixture.expected.last().unwrap().to_data(),
            "the rewrite must change the customers' feature"
        );
        assert_eq!(build_and_check(&fixture, "changed", &changed).await, 1);
        until_both_views_are_cached(&fixture, "changed_kept", &changed).await;
    }
}

#[tokio::test]
async fn a_cache_of_zero_bytes_keeps_nothing() {
    let mut fixture = fixture(19, 300, false);
    fixture.lake.context.partitions = None;
    fixture.lake.context.cache = Arc::new(crate::offline::cache::FeatureCache::new(0));
    for attempt in 0..4 {
        let cached = build_and_check(&fixture, &format!("off_{attempt}"), &fixture.expected).await;
        assert_eq!(cached, 0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fixture.lake.context.cache.bytes(), 0);
}

#[tokio::test]
async fn entity_rows_without_timestamps_do_not_keep_an_empty_source() {
    let mut fixture = fixture(23, 200, false);
    fixture.lake.context.partitions = None;
    // First, entity rows whose timestamps are all null: no feature row can match them.
    let mut columns = fixture.entities.columns().to_vec();
    columns[2] = arrow::array::new_null_array(columns[2].data_type(), columns[2].len());
    let fields: Vec<arrow::datatypes::Field> = fixture
        .entities
        .schema()
        .fields()
        .iter()
        .map(|field| field.as_ref().clone().with_nullable(true))
        .collect();
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let timeless = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    let entities = RecordBatch::try_new(schema, fixture.entities.columns().to_vec()).unwrap();
    fixture.entities = entities;
    let summary = build_training_set(
        &fixture.lake.context,
        fixture.plan.clone(),
        EntityInput::Batches(vec![timeless]),
        OutputSink::LakeDataset("timeless".to_owned()),
    )
    .await
    .unwrap();
    assert_eq!(summary.rows, 200);
    // Then the real ones, until both views come from the cache: every call has the full rows.
    until_both_views_are_cached(&fixture, "timed", &fixture.expected).await;
}
