//! `batch-score` against the model-serving double: a lake dataset in, predictions out.

use std::sync::Arc;
use std::time::Duration;

use super::support::{
    Dirs, ServingDouble, Spawned, TaskLog, closed_addr, lazy_channel, lazy_channel_with_timeout,
    read_dataset, write_parquet,
};
use super::*;
use arrow::array::{AsArray as _, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type, Schema};
use tokio::sync::watch;

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
        &deploy_task("churn", "v1"),
        interval(),
        &log.writer,
        cancelled,
    )
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn batch_score_against_a_model_that_never_answers_ends_at_the_peer_timeout() {
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
    let server = serving.spawn().await;
    let (url, channel) = lazy_channel_with_timeout(server.addr, Duration::from_millis(300));
    let platform = dirs.platform().with_model_serving(url.clone(), channel);
    let log = TaskLog::new(&dirs);
    let task = score_task("churn", "customers", "out", &[]);
    let (message, retryable) = failure(
        tokio::time::timeout(
            Duration::from_secs(5),
            run(&platform, &task, interval(), &log.writer, never_cancelled()),
        )
        .await
        .unwrap(),
    );
    assert!(retryable, "{message}");
    assert!(
        message.contains(&format!(
            "model serving at {url} did not answer ModelInfer in time"
        )),
        "{message}"
    );
    assert!(!dirs.lake.join("out/_SUCCESS").exists());
    server.stop().await;
}
