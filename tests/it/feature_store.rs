//! The feature store end to end in one process: definitions applied over gRPC (and refused with the
//! file and line), a lake dataset materialized to the online store (embedded and Redis), online reads
//! over gRPC and Feast's HTTP JSON with statuses, a point-in-time-correct training set written to the
//! lake, push, and a Redis that is down answering UNAVAILABLE.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, TimeUnit};
use plinth_proto::featurestore::v1 as pb;
use plinth_tests::{FeatureStoreServer, unique_name};

const HOUR: i64 = 3_600_000_000;
/// 2026-01-01T00:00:00Z in µs.
const T0: i64 = 1_767_225_600_000_000;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

/// Writes the driver stats source into the lake: 1001 at T0 (0.1) and T0+2h (0.2, corrected to 0.25 by
/// a later-created row), 1002 at T0 (0.5, trips null).
pub(crate) fn write_source(lake_dir: &std::path::Path, dataset: &str) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", ts_type(), false),
        Field::new("created", ts_type(), true),
        Field::new("conv_rate", DataType::Float64, true),
        Field::new("trips", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1001, 1001, 1001, 1002])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![T0, T0 + 2 * HOUR, T0 + 2 * HOUR, T0])
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![T0, T0 + 2 * HOUR, T0 + 3 * HOUR, T0])
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from(vec![0.1, 0.25, 0.2, 0.5])),
            Arc::new(Int64Array::from(vec![Some(3), Some(5), Some(6), None])),
        ],
    )
    .unwrap();
    // The correction (created at T0+3h, conv 0.2) sits before the original in the file on purpose:
    // created time decides, not file order.
    let batch = arrow::compute::take_record_batch(
        &batch,
        &arrow::array::UInt32Array::from(vec![0, 2, 1, 3]),
    )
    .unwrap();
    let dir = lake_dir.join(dataset).join("event_date=2026-01-01");
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

pub(crate) fn definitions(dataset: &str) -> String {
    format!(
        r#"
entities:
  - name: driver
    join_keys: [{{name: driver_id, type: int64}}]
    description: a driver
sources:
  - name: driver_stats
    lake: {{dataset: {dataset}}}
    timestamp_field: event_timestamp
    created_timestamp_column: created
  - name: driver_push
    push: {{}}
    timestamp_field: event_timestamp
feature_views:
  - name: driver_hourly
    entities: [driver]
    ttl: 0
    source: driver_stats
    owner: growth
    tags: {{team: growth}}
    features:
      - {{name: conv_rate, type: float64}}
      - {{name: trips, type: int64}}
  - name: driver_recent
    entities: [driver]
    ttl: 1h
    source: driver_stats
    features:
      - {{name: conv_rate, type: float64}}
  - name: driver_live
    entities: [driver]
    source: driver_push
    features:
      - {{name: speed, type: float64}}
feature_services:
  - name: ranking_v1
    features:
      - driver_hourly
      - driver_recent: [conv_rate]
"#
    )
}

pub(crate) fn file(path: &str, content: &str) -> pb::DefinitionFile {
    pb::DefinitionFile {
        path: path.to_owned(),
        content: content.to_owned(),
    }
}

fn service(name: &str) -> Option<pb::FeatureSelection> {
    Some(pb::FeatureSelection {
        selection: Some(pb::feature_selection::Selection::FeatureService(
            name.to_owned(),
        )),
    })
}

fn int64s(values: &[i64]) -> pb::RepeatedValue {
    pb::RepeatedValue {
        val: values
            .iter()
            .map(|value| pb::Value {
                val: Some(pb::value::Val::Int64Val(*value)),
            })
            .collect(),
    }
}

/// Applies the definitions and materializes everything up to T0+4h.
async fn apply_and_materialize(server: &FeatureStoreServer) -> String {
    let dataset = unique_name("driver_stats").replace('-', "_");
    write_source(&server.lake_dir, &dataset);
    let mut client = server.client().await;
    let applied = client
        .apply_definitions(pb::ApplyDefinitionsRequest {
            files: vec![file("features/driver.yaml", &definitions(&dataset))],
            prune: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.changes.len(), 7, "{applied:?}");
    assert!(
        applied
            .changes
            .iter()
            .all(|change| change.change == pb::ChangeKind::Create as i32)
    );
    let materialized = client
        .materialize(pb::MaterializeRequest {
            feature_views: vec!["driver_hourly".to_owned(), "driver_recent".to_owned()],
            start_time: None,
            end_time: Some(prost_types::Timestamp {
                seconds: (T0 + 4 * HOUR) / 1_000_000,
                nanos: 0,
            }),
            incremental: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(materialized.views.len(), 2);
    assert_eq!(materialized.views[0].rows_read, 4);
    assert_eq!(materialized.views[0].entities_written, 2);
    dataset
}

/// Reads ranking_v1 for 1001, 1002 and an unknown 9999, and checks values and statuses.
async fn check_online(server: &FeatureStoreServer) {
    let mut client = server.client().await;
    let answer = client
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: service("ranking_v1"),
            entities: HashMap::from([("driver_id".to_owned(), int64s(&[1001, 1002, 9999]))]),
            full_feature_names: true,
        })
        .await
        .unwrap()
        .into_inner();
    let names = answer.metadata.unwrap().feature_names.unwrap().val;
    assert_eq!(
        names,
        [
            "driver_id",
            "driver_hourly__conv_rate",
            "driver_hourly__trips",
            "driver_recent__conv_rate"
        ]
    );
    let status = |column: usize, row: usize| answer.results[column].statuses[row];
    let value = |column: usize, row: usize| answer.results[column].values[row].val.clone();
    use pb::value::Val;
    // The correction created later wins over the original of the same event time (Feast #2795).
    assert_eq!(value(1, 0), Some(Val::DoubleVal(0.2)));
    assert_eq!(value(2, 0), Some(Val::Int64Val(6)));
    assert_eq!(status(1, 0), pb::FieldStatus::Present as i32);
    assert_eq!(value(1, 1), Some(Val::DoubleVal(0.5)));
    assert_eq!(status(2, 1), pb::FieldStatus::NullValue as i32);
    assert_eq!(status(1, 2), pb::FieldStatus::NotFound as i32);
    assert_eq!(value(1, 2), None);
    // driver_recent has a 1 h TTL and its rows are from January 2026: too old now.
    assert_eq!(status(3, 0), pb::FieldStatus::OutsideMaxAge as i32);
    assert_eq!(value(3, 0), None);

    // A string where the entity declares int64.
    let err = client
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: service("ranking_v1"),
            entities: HashMap::from([(
                "driver_id".to_owned(),
                pb::RepeatedValue {
                    val: vec![pb::Value {
                        val: Some(Val::StringVal("1001".to_owned())),
                    }],
                },
            )]),
            full_feature_names: true,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("driver_id"), "{}", err.message());
    assert!(err.message().contains("int64"), "{}", err.message());

    let err = client
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: service("ranking_v2"),
            entities: HashMap::from([("driver_id".to_owned(), int64s(&[1001]))]),
            full_feature_names: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    assert!(err.message().contains("ranking_v1"), "{}", err.message());
}

#[tokio::test]
async fn definitions_materialize_and_serve_online_over_grpc_and_feast_http() {
    let server = FeatureStoreServer::start_with(|_| {}).await;
    let dataset = apply_and_materialize(&server).await;
    check_online(&server).await;

    // Applying the same files again changes nothing.
    let mut client = server.client().await;
    let plan = client
        .plan_definitions(pb::PlanDefinitionsRequest {
            files: vec![file("features/driver.yaml", &definitions(&dataset))],
            prune: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        plan.changes
            .iter()
            .all(|change| change.change == pb::ChangeKind::Unchanged as i32),
        "{plan:?}"
    );

    // Feast's HTTP shape.
    let http = reqwest::Client::new();
    let body: serde_json::Value = http
        .post(format!("http://{}/get-online-features", server.http))
        .json(&serde_json::json!({
            "features": ["driver_hourly:conv_rate", "driver_hourly:trips"],
            "entities": {"driver_id": [1001, 9999]},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["metadata"]["feature_names"],
        serde_json::json!(["driver_id", "conv_rate", "trips"])
    );
    assert_eq!(
        body["results"][0]["values"],
        serde_json::json!([1001, 9999])
    );
    assert_eq!(body["results"][1]["values"], serde_json::json!([0.2, null]));
    assert_eq!(
        body["results"][1]["statuses"],
        serde_json::json!(["PRESENT", "NOT_FOUND"])
    );
    assert_eq!(
        body["results"][1]["event_timestamps"][0],
        serde_json::json!("2026-01-01T02:00:00Z")
    );

    // Push to the online store through Feast's /push, then read it back.
    let pushed = http
        .post(format!("http://{}/push", server.http))
        .json(&serde_json::json!({
            "push_source_name": "driver_push",
            "df": {"driver_id": [1001], "event_timestamp": ["2026-01-01 05:00:00"], "speed": [42.5]},
            "to": "online",
        }))
        .send()
        .await
        .unwrap();
    assert!(pushed.status().is_success(), "{:?}", pushed.text().await);
    let body: serde_json::Value = http
        .post(format!("http://{}/get-online-features", server.http))
        .json(&serde_json::json!({
            "features": ["driver_live:speed"],
            "entities": {"driver_id": [1001]},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["results"][1]["values"], serde_json::json!([42.5]));

    // A push missing a feature column is refused with the column's name.
    let refused = http
        .post(format!("http://{}/push", server.http))
        .json(&serde_json::json!({
            "push_source_name": "driver_push",
            "df": {"driver_id": [1001], "event_timestamp": ["2026-01-01 05:00:00"]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("speed"));
    server.stop().await;
}

#[tokio::test]
async fn bad_definitions_are_refused_with_the_file_and_line() {
    let server = FeatureStoreServer::start_with(|_| {}).await;
    let mut client = server.client().await;
    let yaml = "feature_views:\n  - name: v\n    entities: [rider]\n    source: nowhere\n    features:\n      - {name: x, type: float64}\n";
    let err = client
        .apply_definitions(pb::ApplyDefinitionsRequest {
            files: vec![file("views.yaml", yaml)],
            prune: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("views.yaml:3"), "{}", err.message());
    assert!(err.message().contains("rider"), "{}", err.message());
    assert!(err.message().contains("nowhere"), "{}", err.message());
    // Nothing was stored.
    let listed = client
        .list_definitions(pb::ListDefinitionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.definitions.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn training_sets_join_point_in_time_into_the_lake() {
    let server = FeatureStoreServer::start_with(|_| {}).await;
    apply_and_materialize(&server).await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", ts_type(), false),
        Field::new("label", DataType::Int64, false),
    ]));
    // 1001 between the two events, 1001 after the second (twice), 1002 before its first, and 1003.
    let entity_times = [
        T0 + HOUR,
        T0 + 3 * HOUR,
        T0 + 3 * HOUR,
        T0 - HOUR,
        T0 + HOUR,
    ];
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1001, 1001, 1001, 1002, 1003])),
            Arc::new(TimestampMicrosecondArray::from(entity_times.to_vec()).with_timezone("UTC")),
            Arc::new(Int64Array::from(vec![0, 1, 2, 3, 4])),
        ],
    )
    .unwrap();
    let mut ipc = Vec::new();
    {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &schema).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
    }
    let output = unique_name("training").replace('-', "_");
    let mut client = server.client().await;
    let answer = client
        .get_training_set(pb::GetTrainingSetRequest {
            training_set: Some(pb::TrainingSetRequest {
                features: service("ranking_v1"),
                entities: Some(pb::training_set_request::Entities::EntityArrowIpc(ipc)),
                ..Default::default()
            }),
            output_dataset: Some(plinth_proto::ids::DatasetName::new(output.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.row_count, 5);

    // Read the output back and index it by label.
    let mut rows: HashMap<i64, (Option<f64>, Option<f64>)> = HashMap::new();
    for batch in read_dataset(&server.lake_dir.join(&output)) {
        let labels = batch
            .column_by_name("label")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        let hourly = batch
            .column_by_name("driver_hourly__conv_rate")
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone();
        let recent = batch
            .column_by_name("driver_recent__conv_rate")
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone();
        for row in 0..batch.num_rows() {
            let get = |array: &arrow::array::PrimitiveArray<Float64Type>| {
                (!array.is_null(row)).then(|| array.value(row))
            };
            rows.insert(labels.value(row), (get(&hourly), get(&recent)));
        }
    }
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[&0], (Some(0.1), Some(0.1)));
    // After T0+2h: the later-created correction; the 1 h TTL still covers T0+2h from T0+3h.
    assert_eq!(rows[&1], (Some(0.2), Some(0.2)));
    assert_eq!(rows[&2], (Some(0.2), Some(0.2)));
    // Before 1002's first row, and an unknown driver: nulls, rows kept.
    assert_eq!(rows[&3], (None, None));
    assert_eq!(rows[&4], (None, None));
    server.stop().await;
}

/// Every record batch of the Parquet files of a local lake dataset.
fn read_dataset(dir: &std::path::Path) -> Vec<RecordBatch> {
    walk(dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .flat_map(|path| {
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&path).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
        })
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn redis_online_store_serves_and_a_dead_redis_is_unavailable() {
    let server = FeatureStoreServer::start_with(|config| {
        config.online.store = plinth_feature_store::config::OnlineStoreKind::Redis;
        config.online.redis_url = "redis://127.0.0.1:6379/0".to_owned();
    })
    .await;
    apply_and_materialize(&server).await;
    check_online(&server).await;
    server.stop().await;

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = FeatureStoreServer::start_with(|config| {
        config.online.store = plinth_feature_store::config::OnlineStoreKind::Redis;
        config.online.redis_url = format!("redis://127.0.0.1:{closed_port}/0");
        config.online.timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let mut client = server.client().await;
    let dataset = unique_name("driver_stats").replace('-', "_");
    write_source(&server.lake_dir, &dataset);
    client
        .apply_definitions(pb::ApplyDefinitionsRequest {
            files: vec![file("features/driver.yaml", &definitions(&dataset))],
            prune: false,
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: service("ranking_v1"),
            entities: HashMap::from([("driver_id".to_owned(), int64s(&[1001]))]),
            full_feature_names: true,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("online store"), "{}", err.message());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_push_lands_in_the_lake_and_feeds_training_sets() {
    let server = FeatureStoreServer::start_with(|_| {}).await;
    let dataset = unique_name("speeds").replace('-', "_");
    let definitions = format!(
        r#"
entities:
  - name: driver
    join_keys: [{{name: driver_id, type: int64}}]
sources:
  - name: speed_push
    push: {{dataset: {dataset}}}
    timestamp_field: event_timestamp
feature_views:
  - name: driver_speed
    entities: [driver]
    source: speed_push
    features:
      - {{name: speed, type: float64}}
"#
    );
    let mut client = server.client().await;
    client
        .apply_definitions(pb::ApplyDefinitionsRequest {
            files: vec![file("speed.yaml", &definitions)],
            ..Default::default()
        })
        .await
        .unwrap();
    let timestamps = |micros: &[i64]| pb::RepeatedValue {
        val: micros
            .iter()
            .map(|micros| pb::Value {
                val: Some(pb::value::Val::UnixTimestampVal(prost_types::Timestamp {
                    seconds: micros / 1_000_000,
                    nanos: 0,
                })),
            })
            .collect(),
    };
    let doubles = |values: &[f64]| pb::RepeatedValue {
        val: values
            .iter()
            .map(|value| pb::Value {
                val: Some(pb::value::Val::DoubleVal(*value)),
            })
            .collect(),
    };
    let pushed = client
        .push(pb::PushRequest {
            push_source: "speed_push".to_owned(),
            columns: [
                ("driver_id".to_owned(), int64s(&[1001, 1001, 1002])),
                (
                    "event_timestamp".to_owned(),
                    timestamps(&[T0, T0 + 2 * HOUR, T0 + HOUR]),
                ),
                ("speed".to_owned(), doubles(&[10.0, 20.0, 30.0])),
            ]
            .into_iter()
            .collect(),
            to: pb::PushTarget::OnlineAndOffline as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pushed.row_count, 3);
    assert_eq!(pushed.feature_views, ["driver_speed"]);

    // The rows are Parquet in the push source's dataset.
    let pushed_rows: usize = read_dataset(&server.lake_dir.join(&dataset))
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(pushed_rows, 3);

    // A training set over the pushed rows is point-in-time correct: 1001 at T0+1h sees 10.0, at T0+3h
    // sees 20.0; 1002 before its push sees nothing.
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", ts_type(), false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1001, 1001, 1002])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![T0 + HOUR, T0 + 3 * HOUR, T0])
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    let mut ipc = Vec::new();
    {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &schema).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
    }
    let output = unique_name("speed_training").replace('-', "_");
    client
        .get_training_set(pb::GetTrainingSetRequest {
            training_set: Some(pb::TrainingSetRequest {
                features: Some(pb::FeatureSelection {
                    selection: Some(pb::feature_selection::Selection::Features(
                        pb::FeatureList {
                            refs: vec!["driver_speed:speed".to_owned()],
                        },
                    )),
                }),
                entities: Some(pb::training_set_request::Entities::EntityArrowIpc(ipc)),
                ..Default::default()
            }),
            output_dataset: Some(plinth_proto::ids::DatasetName::new(output.clone())),
        })
        .await
        .unwrap();
    let mut speeds: Vec<(i64, i64, Option<f64>)> = Vec::new();
    for batch in read_dataset(&server.lake_dir.join(&output)) {
        let ids = batch
            .column_by_name("driver_id")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        let times = batch
            .column_by_name("event_timestamp")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .clone();
        let values = batch
            .column_by_name("driver_speed__speed")
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone();
        for row in 0..batch.num_rows() {
            speeds.push((
                ids.value(row),
                times.value(row),
                values.is_valid(row).then(|| values.value(row)),
            ));
        }
    }
    speeds.sort_by_key(|(id, time, _)| (*id, *time));
    assert_eq!(
        speeds,
        [
            (1001, T0 + HOUR, Some(10.0)),
            (1001, T0 + 3 * HOUR, Some(20.0)),
            (1002, T0, None)
        ]
    );
    server.stop().await;
}
