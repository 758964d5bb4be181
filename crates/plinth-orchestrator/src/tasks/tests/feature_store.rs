//! `materialize` and `training-set` against a real feature store in this process.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;

use super::support::{
    Dirs, Spawned, TaskLog, closed_addr, lazy_channel, read_dataset, start_feature_store,
    write_parquet,
};
use super::*;
use crate::tasks::materialize::{Window, service_views_from_yaml};

const T0_MICROS: i64 = T0_SECONDS * 1_000_000;
const HOUR_MICROS: i64 = 3_600_000_000;

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
