//! The platform tasks against a real feature store in this process and an Open Inference Protocol
//! server standing in for model serving (see `support`).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, AsArray as _, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;
use plinth_proto::inference::InferTensorContents;
use tokio::sync::watch;

use super::materialize::{Window, service_views_from_yaml};
use super::tensor::{InputType, OutputTensor, decode_output, encode_input};
use super::*;
use crate::domain::pipeline::TaskKind;

mod support;

use self::support::{
    Dirs, ServingDouble, Spawned, TaskLog, closed_addr, lazy_channel, read_dataset,
    start_feature_store, write_parquet,
};

/// 2026-01-01T00:00:00Z.
const T0_SECONDS: i64 = 1_767_225_600;
const T0_MICROS: i64 = T0_SECONDS * 1_000_000;
const HOUR_MICROS: i64 = 3_600_000_000;

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn interval() -> DataInterval {
    DataInterval {
        start: time(T0_SECONDS),
        end: time(T0_SECONDS + 24 * 3600),
    }
}

fn never_cancelled() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    // Keep the sender alive for the test's duration: a dropped sender must not read as a cancel,
    // but tests also check that path, so leaking one here is fine.
    std::mem::forget(sender);
    receiver
}

fn failure(result: Result<impl std::fmt::Debug, TaskError>) -> (String, bool) {
    match result {
        Err(TaskError::Failed { message, retryable }) => (message, retryable),
        other => panic!("expected a failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// store_model

fn model_dir(dirs: &Dirs, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = dirs
        .dir
        .path()
        .join(format!("model-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for (relative, content) in files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

#[tokio::test]
async fn store_model_uploads_every_file_recursively_and_puts_success_last() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let local = model_dir(
        &dirs,
        &[
            ("model.onnx", "onnx bytes"),
            ("model.yaml", "inputs: []"),
            ("assets/vocab/words.txt", "a\nb\n"),
        ],
    );
    let url = store_model(&platform, "churn", "v1", &local).await.unwrap();
    assert_eq!(url, format!("file://{}/churn/v1/", dirs.models.display()));
    assert_eq!(url, platform.model_url("churn", "v1").unwrap());
    let stored = dirs.models.join("churn/v1");
    assert_eq!(
        std::fs::read_to_string(stored.join("model.onnx")).unwrap(),
        "onnx bytes"
    );
    assert_eq!(
        std::fs::read_to_string(stored.join("assets/vocab/words.txt")).unwrap(),
        "a\nb\n"
    );
    assert!(stored.join("_SUCCESS").exists());
}

#[tokio::test]
async fn store_model_refuses_an_empty_or_missing_model_directory() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let empty = model_dir(&dirs, &[]);
    std::fs::create_dir_all(empty.join("only/directories")).unwrap();
    let (message, retryable) = failure(store_model(&platform, "churn", "v1", &empty).await);
    assert!(
        message.contains("wrote no file to $PLINTH_MODEL_DIR"),
        "{message}"
    );
    assert!(!retryable);
    let missing = dirs.dir.path().join("never-created");
    let (message, _) = failure(store_model(&platform, "churn", "v1", &missing).await);
    assert!(message.contains("wrote no file"), "{message}");
    assert!(!dirs.models.join("churn/v1").exists());
}

#[tokio::test]
async fn store_model_refuses_to_overwrite_a_stored_version() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let first = model_dir(&dirs, &[("model.onnx", "first")]);
    store_model(&platform, "churn", "v1", &first).await.unwrap();
    let second = model_dir(&dirs, &[("model.onnx", "second")]);
    let (message, retryable) = failure(store_model(&platform, "churn", "v1", &second).await);
    assert!(message.contains("already stored"), "{message}");
    assert!(message.contains("bump the version"), "{message}");
    assert!(!retryable);
    assert_eq!(
        std::fs::read_to_string(dirs.models.join("churn/v1/model.onnx")).unwrap(),
        "first"
    );
    store_model(&platform, "churn", "v2", &second)
        .await
        .unwrap();
}

#[tokio::test]
async fn store_model_replaces_what_a_failed_upload_left() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let leftover = dirs.models.join("churn/v1");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("stale.bin"), "half written").unwrap();
    let local = model_dir(&dirs, &[("model.onnx", "complete")]);
    store_model(&platform, "churn", "v1", &local).await.unwrap();
    assert!(!leftover.join("stale.bin").exists());
    assert!(leftover.join("model.onnx").exists());
    assert!(leftover.join("_SUCCESS").exists());
}

#[tokio::test]
async fn store_model_refuses_names_that_are_not_one_path_segment() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let local = model_dir(&dirs, &[("model.onnx", "x")]);
    let (message, _) = failure(store_model(&platform, "../etc", "v1", &local).await);
    assert!(message.contains("`model` is `../etc`"), "{message}");
    let (message, _) = failure(store_model(&platform, "churn", "", &local).await);
    assert!(message.contains("`version` is ``"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// deploy-model

fn deploy(model: &str, version: &str) -> TaskKind {
    TaskKind::DeployModel {
        model: model.to_owned(),
        version: version.to_owned(),
    }
}

#[tokio::test]
async fn deploy_model_loads_the_version_and_waits_until_it_is_ready() {
    let dirs = Dirs::new();
    let serving = ServingDouble::default();
    serving.store("churn", "v1");
    serving.load("churn", "v0");
    let server = serving.spawn().await;
    let (url, channel) = lazy_channel(server.addr);
    let platform = dirs.platform().with_model_serving(url, channel);
    let log = TaskLog::new(&dirs);
    let report = run(
        &platform,
        &deploy("churn", "v1"),
        interval(),
        &log.writer,
        never_cancelled(),
    )
    .await
    .unwrap();
    assert_eq!(report.summary, "deployed model `churn` version `v1`");
    assert_eq!(
        serving.state.lock().unwrap().loaded.get("churn"),
        Some(&"v1".to_owned())
    );
    let text = log.text().await;
    assert!(
        text.contains("to load model `churn` version `v1`"),
        "{text}"
    );
    assert!(text.contains("is loaded and ready"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn deploy_model_of_a_version_not_in_the_repository_fails_without_retry() {
    let dirs = Dirs::new();
    let serving = ServingDouble::default();
    serving.load("churn", "v1");
    let server = serving.spawn().await;
    let (url, channel) = lazy_channel(server.addr);
    let platform = dirs.platform().with_model_serving(url, channel);
    let log = TaskLog::new(&dirs);
    let (message, retryable) = failure(
        run(
            &platform,
            &deploy("churn", "v9"),
            interval(),
            &log.writer,
            never_cancelled(),
        )
        .await,
    );
    assert!(
        message.contains("has no model `churn` version `v9`"),
        "{message}"
    );
    assert!(
        message.contains("store it first with a `train` task"),
        "{message}"
    );
    assert!(!retryable);
    // The running version keeps serving.
    assert_eq!(
        serving.state.lock().unwrap().loaded.get("churn"),
        Some(&"v1".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn deploy_model_with_serving_down_is_retryable_and_names_the_url() {
    let dirs = Dirs::new();
    let (url, channel) = lazy_channel(closed_addr());
    let platform = dirs.platform().with_model_serving(url.clone(), channel);
    let log = TaskLog::new(&dirs);
    let (message, retryable) = failure(
        run(
            &platform,
            &deploy("churn", "v1"),
            interval(),
            &log.writer,
            never_cancelled(),
        )
        .await,
    );
    assert!(retryable, "{message}");
    assert!(message.contains(url.as_str()), "{message}");
    assert!(message.contains("unavailable"), "{message}");
}

#[tokio::test]
async fn deploy_model_without_serving_configured_says_what_to_set() {
    let dirs = Dirs::new();
    let log = TaskLog::new(&dirs);
    let (message, retryable) = failure(
        run(
            &dirs.platform(),
            &deploy("churn", "v1"),
            interval(),
            &log.writer,
            never_cancelled(),
        )
        .await,
    );
    assert!(message.contains("set [serving] url"), "{message}");
    assert!(!retryable);
}

// ---------------------------------------------------------------------------------------------
// materialize and training-set, against a real feature store

const DEFINITIONS: &str = r#"
entities:
  - name: driver
    join_keys: [{name: driver_id, type: int64}]
sources:
  - name: driver_stats
    lake: {dataset: driver_stats}
    timestamp_field: event_timestamp
feature_views:
  - name: driver_hourly
    entities: [driver]
    ttl: 0
    source: driver_stats
    features:
      - {name: conv_rate, type: float64}
      - {name: trips, type: int64}
  - name: driver_daily
    entities: [driver]
    ttl: 0
    source: driver_stats
    features:
      - {name: trips, type: int64}
feature_services:
  - name: ranking_v1
    features:
      - driver_hourly
      - driver_daily: [trips]
"#;

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

/// A feature store with the driver definitions applied and `driver_stats` in the lake: 1001 at T0
/// and T0+2h, 1002 at T0+1h.
async fn feature_store_with_drivers(dirs: &Dirs) -> (Spawned, Platform) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", utc_micros(), false),
        Field::new("conv_rate", DataType::Float64, true),
        Field::new("trips", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1001, 1001, 1002])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    T0_MICROS,
                    T0_MICROS + 2 * HOUR_MICROS,
                    T0_MICROS + HOUR_MICROS,
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from(vec![0.1, 0.2, 0.5])),
            Arc::new(Int64Array::from(vec![3, 5, 7])),
        ],
    )
    .unwrap();
    write_parquet(
        &dirs.lake,
        "driver_stats",
        "event_date=2026-01-01/part-0.parquet",
        &batch,
    );
    let server = start_feature_store(dirs).await;
    let (url, channel) = lazy_channel(server.addr);
    FeatureStoreServiceClient::new(channel.clone())
        .apply_definitions(pb::ApplyDefinitionsRequest {
            files: vec![pb::DefinitionFile {
                path: "drivers.yaml".to_owned(),
                content: DEFINITIONS.to_owned(),
            }],
            prune: false,
        })
        .await
        .unwrap();
    (server, dirs.platform().with_feature_store(url, channel))
}

fn materialize_task(views: &[&str], service: Option<&str>, incremental: bool) -> TaskKind {
    TaskKind::Materialize {
        feature_views: views.iter().map(|view| (*view).to_owned()).collect(),
        feature_service: service.map(str::to_owned),
        incremental,
        start: None,
        end: None,
    }
}

#[tokio::test]
async fn materialize_writes_the_views_over_the_data_interval_and_logs_each_view() {
    let dirs = Dirs::new();
    let (server, platform) = feature_store_with_drivers(&dirs).await;
    let log = TaskLog::new(&dirs);
    let task = materialize_task(&["driver_hourly"], None, false);
    let report = run(&platform, &task, interval(), &log.writer, never_cancelled())
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "materialized 1 feature view: 3 rows read, 2 entities written"
    );
    let text = log.text().await;
    assert!(
        text.contains("feature view `driver_hourly`: window [2026-01-01T00:00:00+00:00, 2026-01-02T00:00:00+00:00], 3 rows read, 2 entities written"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn materialize_a_feature_service_materializes_each_of_its_views_once() {
    let dirs = Dirs::new();
    let (server, platform) = feature_store_with_drivers(&dirs).await;
    let log = TaskLog::new(&dirs);
    let task = materialize_task(&["driver_hourly"], Some("ranking_v1"), true);
    let report = run(&platform, &task, interval(), &log.writer, never_cancelled())
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "materialized 2 feature views: 6 rows read, 4 entities written"
    );
    let text = log.text().await;
    assert!(
        text.contains(
            "feature service `ranking_v1` reads feature views driver_hourly, driver_daily"
        ),
        "{text}"
    );
    assert!(
        text.contains("(incremental: each view from its watermark)"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn materialize_an_unknown_feature_view_fails_naming_it() {
    let dirs = Dirs::new();
    let (server, platform) = feature_store_with_drivers(&dirs).await;
    let log = TaskLog::new(&dirs);
    let task = materialize_task(&["driver_weekly"], None, false);
    let (message, retryable) =
        failure(run(&platform, &task, interval(), &log.writer, never_cancelled()).await);
    assert!(message.contains("driver_weekly"), "{message}");
    assert!(!retryable, "{message}");
    let task = materialize_task(&[], Some("ranking_v9"), false);
    let (message, retryable) =
        failure(run(&platform, &task, interval(), &log.writer, never_cancelled()).await);
    assert!(
        message.contains("the feature service `ranking_v9` is not registered"),
        "{message}"
    );
    assert!(!retryable);
    server.stop().await;
}

#[tokio::test]
async fn materialize_with_the_feature_store_down_is_retryable_and_names_the_url() {
    let dirs = Dirs::new();
    let (url, channel) = lazy_channel(closed_addr());
    let platform = dirs.platform().with_feature_store(url.clone(), channel);
    let log = TaskLog::new(&dirs);
    let task = materialize_task(&["driver_hourly"], None, true);
    let (message, retryable) =
        failure(run(&platform, &task, interval(), &log.writer, never_cancelled()).await);
    assert!(retryable, "{message}");
    assert!(
        message.contains(&format!("the feature store at {url} is unavailable")),
        "{message}"
    );
}

#[test]
fn materialize_window_reads_rfc_3339_and_defaults_to_the_data_interval() {
    let window = Window::resolve(Some("2026-01-01T06:00:00+01:00"), None, interval()).unwrap();
    assert_eq!(window.start, time(T0_SECONDS + 5 * 3600));
    assert_eq!(window.end, interval().end);
    let (message, retryable) = failure(Window::resolve(Some("yesterday"), None, interval()));
    assert!(
        message.contains("`start` is `yesterday`, which is not an RFC 3339 time"),
        "{message}"
    );
    assert!(!retryable);
    let (message, _) = failure(Window::resolve(
        Some("2026-01-03T00:00:00Z"),
        Some("2026-01-02T00:00:00Z"),
        interval(),
    ));
    assert!(message.contains("starts"), "{message}");
}

#[test]
fn feature_service_views_are_read_from_the_canonical_yaml() {
    let yaml = "feature_services:\n  - name: ranking_v1\n    features:\n      - driver_hourly\n      - \"driver-daily\": [trips, conv_rate]\n      - driver_hourly\n    owner: growth\n";
    assert_eq!(
        service_views_from_yaml(yaml),
        Some(vec!["driver_hourly".to_owned(), "driver-daily".to_owned()])
    );
    assert_eq!(service_views_from_yaml("feature_views: []\n"), None);
}

fn training_set_task(service: Option<&str>, features: &[&str], output: &str) -> TaskKind {
    TaskKind::TrainingSet {
        feature_service: service.map(str::to_owned),
        features: features
            .iter()
            .map(|feature| (*feature).to_owned())
            .collect(),
        entities: "driver_labels".to_owned(),
        event_timestamp_column: None,
        output: output.to_owned(),
    }
}

fn write_driver_labels(dirs: &Dirs) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", utc_micros(), false),
        Field::new("label", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1001, 1001, 1002])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    T0_MICROS + HOUR_MICROS,
                    T0_MICROS + 3 * HOUR_MICROS,
                    T0_MICROS + 2 * HOUR_MICROS,
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(vec![0, 1, 1])),
        ],
    )
    .unwrap();
    write_parquet(&dirs.lake, "driver_labels", "part-0.parquet", &batch);
}

#[tokio::test]
async fn training_set_joins_features_into_a_new_lake_dataset() {
    let dirs = Dirs::new();
    let (server, platform) = feature_store_with_drivers(&dirs).await;
    write_driver_labels(&dirs);
    let log = TaskLog::new(&dirs);
    let task = training_set_task(None, &["driver_hourly:conv_rate"], "driver_train");
    let report = run(&platform, &task, interval(), &log.writer, never_cancelled())
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "training set of 3 rows written to dataset `driver_train`"
    );
    assert_eq!(
        report.output_url,
        Some(platform.dataset_url("driver_train").unwrap())
    );
    assert!(dirs.lake.join("driver_train/_SUCCESS").exists());
    let batches = read_dataset(&dirs.lake, "driver_train");
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 3);
    assert!(
        batches[0]
            .column_by_name("driver_hourly__conv_rate")
            .is_some()
    );
    let text = log.text().await;
    assert!(
        text.contains("wrote 3 rows with feature columns driver_hourly__conv_rate"),
        "{text}"
    );

    // The same output again: the feature store refuses, and retrying would not help.
    let log = TaskLog::new(&dirs);
    let (message, retryable) =
        failure(run(&platform, &task, interval(), &log.writer, never_cancelled()).await);
    assert!(message.contains("driver_train"), "{message}");
    assert!(!retryable, "{message}");
    server.stop().await;
}

#[tokio::test]
async fn training_set_needs_exactly_one_feature_selection() {
    let dirs = Dirs::new();
    let log = TaskLog::new(&dirs);
    let platform = dirs.platform();
    let both = training_set_task(Some("ranking_v1"), &["driver_hourly:trips"], "out");
    let (message, _) =
        failure(run(&platform, &both, interval(), &log.writer, never_cancelled()).await);
    assert!(message.contains("not both"), "{message}");
    let neither = training_set_task(None, &[], "out");
    let (message, _) = failure(
        run(
            &platform,
            &neither,
            interval(),
            &log.writer,
            never_cancelled(),
        )
        .await,
    );
    assert!(message.contains("needs `feature_service`"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// batch-score, against the model-serving double

fn score_task(model: &str, input: &str, output: &str, columns: &[&str]) -> TaskKind {
    TaskKind::BatchScore {
        model: model.to_owned(),
        version: None,
        input: input.to_owned(),
        output: output.to_owned(),
        columns: columns.iter().map(|column| (*column).to_owned()).collect(),
    }
}

/// `customers`: `id` (text), `f1` (float64, `i / 10`), `f2` (int64, `i`), in two files of 1,500 and
/// 700 rows.
fn write_customers(dirs: &Dirs) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("f1", DataType::Float64, false),
        Field::new("f2", DataType::Int64, false),
    ]));
    for (file, range) in [
        ("part-0.parquet", 0..1500_i64),
        ("part-1.parquet", 1500..2200),
    ] {
        #[allow(clippy::cast_precision_loss, reason = "small test values")]
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    range.clone().map(|i| format!("c{i}")),
                )),
                Arc::new(Float64Array::from_iter_values(
                    range.clone().map(|i| i as f64 / 10.0),
                )),
                Arc::new(Int64Array::from_iter_values(range)),
            ],
        )
        .unwrap();
        write_parquet(&dirs.lake, "customers", file, &batch);
    }
}

async fn serving_platform(dirs: &Dirs, serving: &ServingDouble) -> (Spawned, Platform) {
    let server = serving.spawn().await;
    let (url, channel) = lazy_channel(server.addr);
    (server, dirs.platform().with_model_serving(url, channel))
}

#[tokio::test]
async fn batch_score_appends_the_model_outputs_to_every_input_row() {
    let dirs = Dirs::new();
    write_customers(&dirs);
    let serving = ServingDouble::default();
    serving.load("churn", "v1");
    let (server, platform) = serving_platform(&dirs, &serving).await;
    let log = TaskLog::new(&dirs);
    let task = score_task("churn", "customers", "customers_scored", &[]);
    let report = run(&platform, &task, interval(), &log.writer, never_cancelled())
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "scored 2200 rows of `customers` with model `churn` into dataset `customers_scored`"
    );
    assert_eq!(
        report.output_url,
        Some(platform.dataset_url("customers_scored").unwrap())
    );
    assert_eq!(
        serving.state.lock().unwrap().batch_rows,
        vec![1024, 476, 700]
    );
    assert!(dirs.lake.join("customers_scored/_SUCCESS").exists());
    assert!(!dirs.lake.join("customers_scored/_temporary").exists());

    let batches = read_dataset(&dirs.lake, "customers_scored");
    let schema = batches[0].schema();
    let names: Vec<&str> = schema
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    assert_eq!(names, ["id", "f1", "f2", "sum", "doubled", "label"]);
    let mut rows = 0;
    for batch in &batches {
        let f1 = batch.column(1).as_primitive::<Float64Type>();
        let f2 = batch.column(2).as_primitive::<Int64Type>();
        let sum = batch.column(3).as_primitive::<Float64Type>();
        let doubled = batch.column(4).as_fixed_size_list();
        let label = batch.column(5).as_string::<i32>();
        for row_idx in 0..batch.num_rows() {
            #[allow(clippy::cast_precision_loss, reason = "small test values")]
            let expected = f1.value(row_idx) + f2.value(row_idx) as f64;
            assert!((sum.value(row_idx) - expected).abs() < 1e-9);
            let pair = doubled.value(row_idx);
            let pair = pair.as_primitive::<Float32Type>();
            #[allow(clippy::cast_possible_truncation, reason = "the model doubles in f32")]
            let doubled_f1 = (f1.value(row_idx) * 2.0) as f32;
            assert_eq!(pair.value(0), doubled_f1);
            assert_eq!(
                label.value(row_idx),
                if expected > 10.0 { "high" } else { "low" }
            );
        }
        rows += batch.num_rows();
    }
    assert_eq!(rows, 2200);
    let text = log.text().await;
    assert!(
        text.contains("columns f1, f2 as FP64 tensor `features`"),
        "{text}"
    );
    assert!(text.contains("scored 2200 rows in 3 calls"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn batch_score_builds_the_tensor_type_the_model_declares_from_the_columns_given() {
    let dirs = Dirs::new();
    write_customers(&dirs);
    let serving = ServingDouble::default();
    serving.load("churn", "v1");
    serving.state.lock().unwrap().input_datatype = Some("INT64".to_owned());
    let (server, platform) = serving_platform(&dirs, &serving).await;
    let log = TaskLog::new(&dirs);
    let task = score_task("churn", "customers", "scored_int", &["f2"]);
    run(&platform, &task, interval(), &log.writer, never_cancelled())
        .await
        .unwrap();
    for batch in read_dataset(&dirs.lake, "scored_int") {
        let f2 = batch.column(2).as_primitive::<Int64Type>();
        let sum = batch.column(3).as_primitive::<Float64Type>();
        for row_idx in 0..batch.num_rows() {
            #[allow(clippy::cast_precision_loss, reason = "small test values")]
            let expected = f2.value(row_idx) as f64;
            assert_eq!(sum.value(row_idx), expected);
        }
    }
    // A float column cannot feed an INT64 input.
    let task = score_task("churn", "customers", "scored_float", &["f1"]);
    let (message, retryable) =
        failure(run(&platform, &task, interval(), &log.writer, never_cancelled()).await);
    assert!(
        message.contains("column `f1` is Float64, but the model's input is INT64"),
        "{message}"
    );
    assert!(!retryable);
    assert!(!dirs.lake.join("scored_float").exists());
    server.stop().await;
}

#[tokio::test]
async fn batch_score_refuses_bad_inputs_with_what_to_fix() {
    let dirs = Dirs::new();
    write_customers(&dirs);
    let serving = ServingDouble::default();
    serving.load("churn", "v1");
    let (server, platform) = serving_platform(&dirs, &serving).await;
    let log = TaskLog::new(&dirs);
    let check = |task: TaskKind, expected: &'static str| {
        let platform = platform.clone();
        let writer = log.writer.clone();
        async move {
            let (message, retryable) =
                failure(run(&platform, &task, interval(), &writer, never_cancelled()).await);
            assert!(message.contains(expected), "{message}");
            assert!(!retryable, "{message}");
        }
    };
    check(
        score_task("churn", "prospects", "out", &[]),
        "the dataset `prospects` (`input`) has no Parquet file",
    )
    .await;
    check(
        score_task("churn", "customers", "out", &["id"]),
        "column `id` of dataset `customers` is Utf8, not numeric",
    )
    .await;
    check(
        score_task("churn", "customers", "out", &["f3"]),
        "`columns` names `f3`, which dataset `customers` does not have",
    )
    .await;
    check(
        score_task("fraud", "customers", "out", &[]),
        "has no model `fraud` loaded",
    )
    .await;
    check(
        score_task("churn", "customers", "customers", &[]),
        "the output dataset `customers` already exists",
    )
    .await;
    assert_eq!(serving.state.lock().unwrap().infer_calls, 0);
    assert!(!dirs.lake.join("out").exists());
    server.stop().await;
}

#[tokio::test]
async fn batch_score_with_serving_down_is_retryable_and_names_the_url() {
    let dirs = Dirs::new();
    write_customers(&dirs);
    let (url, channel) = lazy_channel(closed_addr());
    let platform = dirs.platform().with_model_serving(url.clone(), channel);
    let log = TaskLog::new(&dirs);
    let task = score_task("churn", "customers", "out", &[]);
    let (message, retryable) =
        failure(run(&platform, &task, interval(), &log.writer, never_cancelled()).await);
    assert!(retryable, "{message}");
    assert!(
        message.contains(&format!("model serving at {url} is unavailable")),
        "{message}"
    );
}

#[tokio::test]
async fn batch_score_cancelled_mid_call_stops_and_leaves_no_output() {
    let dirs = Dirs::new();
    write_customers(&dirs);
    let serving = ServingDouble::default();
    serving.load("churn", "v1");
    serving
        .state
        .lock()
        .unwrap()
        .hanging
        .insert("churn".to_owned());
    let (server, platform) = serving_platform(&dirs, &serving).await;
    let log = TaskLog::new(&dirs);
    let (cancel, cancelled) = watch::channel(false);
    let task = score_task("churn", "customers", "out", &[]);
    let scoring = run(&platform, &task, interval(), &log.writer, cancelled);
    let cancelling = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.send(true).unwrap();
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(scoring, cancelling)
    })
    .await
    .unwrap();
    assert_eq!(result, Err(TaskError::Cancelled));
    assert!(!dirs.lake.join("out/_SUCCESS").exists());
    assert!(read_dataset_or_empty(&dirs, "out").is_empty());
    server.stop().await;
}

fn read_dataset_or_empty(dirs: &Dirs, dataset: &str) -> Vec<RecordBatch> {
    if dirs.lake.join(dataset).exists() {
        read_dataset(&dirs.lake, dataset)
    } else {
        Vec::new()
    }
}

#[tokio::test]
async fn a_dropped_cancel_sender_does_not_cancel() {
    let dirs = Dirs::new();
    let serving = ServingDouble::default();
    serving.store("churn", "v1");
    let (server, platform) = serving_platform(&dirs, &serving).await;
    let log = TaskLog::new(&dirs);
    let (cancel, cancelled) = watch::channel(false);
    drop(cancel);
    run(
        &platform,
        &deploy("churn", "v1"),
        interval(),
        &log.writer,
        cancelled,
    )
    .await
    .unwrap();
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// tensors

#[test]
fn input_tensor_is_row_major_little_endian_and_refuses_nulls() {
    let f1: arrow::array::ArrayRef = Arc::new(Float64Array::from(vec![1.5, 2.5]));
    let f2: arrow::array::ArrayRef = Arc::new(Int64Array::from(vec![10, 20]));
    let names = ["f1".to_owned(), "f2".to_owned()];
    let raw = encode_input(&[f1.clone(), f2.clone()], &names, InputType::Fp32).unwrap();
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
        .collect();
    assert_eq!(values, [1.5, 10.0, 2.5, 20.0]);
    let with_null: arrow::array::ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
    let (message, _) = failure(encode_input(&[f1, with_null], &names, InputType::Fp64));
    assert!(
        message.contains("column `f2` has a null value (row 1"),
        "{message}"
    );
    assert_eq!(
        InputType::infer(&[&DataType::Int32, &DataType::Int64]),
        InputType::Int64
    );
    assert_eq!(InputType::infer(&[&DataType::Float32]), InputType::Fp32);
    assert_eq!(
        InputType::infer(&[&DataType::Float32, &DataType::Int64]),
        InputType::Fp64
    );
}

#[test]
fn output_tensors_decode_from_typed_and_raw_contents() {
    let contents = InferTensorContents {
        int_contents: vec![1, -2, 3],
        ..Default::default()
    };
    let typed = OutputTensor {
        name: "class",
        datatype: "INT8",
        shape: &[3],
        raw: None,
        contents: Some(&contents),
    };
    let column = decode_output(&typed, 3).unwrap();
    assert_eq!(column.data_type(), &DataType::Int8);
    assert_eq!(column.len(), 3);

    let mut raw = Vec::new();
    for text in ["yes", "no"] {
        raw.extend_from_slice(&u32::try_from(text.len()).unwrap().to_le_bytes());
        raw.extend_from_slice(text.as_bytes());
    }
    let bytes = OutputTensor {
        name: "label",
        datatype: "BYTES",
        shape: &[2, 1],
        raw: Some(&raw),
        contents: None,
    };
    let column = decode_output(&bytes, 2).unwrap();
    assert_eq!(column.as_string::<i32>().value(1), "no");

    let truncated = OutputTensor {
        raw: Some(&raw[..5]),
        ..bytes
    };
    let (message, _) = failure(decode_output(&truncated, 2));
    assert!(message.contains("truncated raw BYTES"), "{message}");

    let wrong_rows = OutputTensor {
        name: "score",
        datatype: "FP32",
        shape: &[3],
        raw: Some(&[0; 12]),
        contents: None,
    };
    let (message, _) = failure(decode_output(&wrong_rows, 2));
    assert!(
        message.contains("model output `score` has shape [3]"),
        "{message}"
    );

    let half = OutputTensor {
        name: "half",
        datatype: "FP16",
        shape: &[1],
        raw: Some(&[0; 2]),
        contents: None,
    };
    let (message, _) = failure(decode_output(&half, 1));
    assert!(
        message.contains("datatype FP16, which batch-score cannot store"),
        "{message}"
    );
}
