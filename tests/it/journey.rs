//! The platform journey of `make run` (`plinth up --demo`) against the real parts, with every service as
//! its own process on its own ports as on Kubernetes: the schema registry, data hub, feature store and
//! orchestrator on PostgreSQL (a schema each), the feature store's online store on Redis, the model
//! repository on the s3rver S3 test server (the orchestrator stores the trained model there, model
//! serving loads it from there), the lake in a directory the processes share, the local
//! Kafka-protocol broker. (The lake stays local because s3rver 3.7.1 answers a truncated ListObjectsV2
//! with an internal error: it cannot make the continuation token on this Node.js (`createCipheriv`
//! fails), and pyarrow, which the project's training script reads the training set with, probes a
//! directory with `max-keys=1`. Plinth's own lake on S3 is covered by tests/it/datahub_lake.rs.) The journey (a
//! `plinth init` project, produce, lake, features, training set, a pipeline that trains with
//! scikit-learn, materializes and deploys, a prediction by key) must end with predictions equal to what
//! the stored model computes, in onnxruntime, on the features model serving says it used.

use std::collections::BTreeMap;
use std::time::Duration;

use object_store::ObjectStoreExt as _;
use plinth_cli::journey::{Endpoints, Options};
use plinth_proto::featurestore::v1 as features;
use plinth_proto::serving::v1 as serving;
use plinth_tests::process::{OnlineStore, OrchestratorPeers, ProcessOptions, ServiceProcess};
use plinth_tests::s3::S3Server;
use plinth_tests::{TempDir, start_broker, unique_name};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A PostgreSQL schema of its own for one service, as its database URL.
async fn postgres_schema(prefix: &str) -> String {
    let schema = unique_name(prefix).replace('-', "_");
    let admin = plinth_runtime::database::connect(POSTGRES, 1, Duration::from_secs(5))
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (make test starts it)");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    format!("{POSTGRES}?options=-csearch_path%3D{schema}")
}

/// `[section.options]` with the S3 server's options, as TOML.
fn options_toml(sections: &[&str], options: &BTreeMap<String, String>) -> String {
    let mut toml = String::new();
    for section in sections {
        toml.push_str(&format!("[{section}.options]\n"));
        for (key, value) in options {
            toml.push_str(&format!("{key} = {value:?}\n"));
        }
    }
    toml
}

fn number(value: Option<&features::Value>) -> f32 {
    match value.and_then(|value| value.val.as_ref()) {
        Some(features::value::Val::Int64Val(number)) => *number as f32,
        Some(features::value::Val::DoubleVal(number)) => *number as f32,
        other => panic!("not a number: {other:?}"),
    }
}

fn output<'a>(prediction: &'a serving::KeyPrediction, name: &str) -> &'a serving::PredictionOutput {
    prediction
        .outputs
        .iter()
        .find(|output| output.name == name)
        .unwrap_or_else(|| panic!("no output {name}: {prediction:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_journey_runs_with_every_service_in_its_own_process() {
    let dir = TempDir::new("plinth-journey");
    let broker = start_broker().await;
    let s3 = S3Server::start(&dir).await;
    let run = unique_name("journey");
    let lake_dir = dir.0.join("lake");
    std::fs::create_dir_all(&lake_dir).unwrap();
    let lake_root = format!("file://{}", lake_dir.display());
    let models_root = format!("s3://lake/{run}/models");
    let s3_options = s3.options();

    let registry = ServiceProcess::schema_registry(
        Some(&postgres_schema("journey_registry").await),
        ProcessOptions::default(),
    )
    .await;
    let datahub = ServiceProcess::datahub(
        &registry.grpc_url(),
        &broker.bootstrap_servers(),
        Some(&postgres_schema("journey_datahub").await),
        Some(&lake_root),
        ProcessOptions::default(),
    )
    .await;
    let feature_store = ServiceProcess::feature_store(
        Some(&datahub.grpc_url()),
        OnlineStore::Redis {
            url: "redis://127.0.0.1:6379/0".to_owned(),
            key_prefix: run.clone(),
        },
        Some(&postgres_schema("journey_features").await),
        Some(&lake_root),
        ProcessOptions::default(),
    )
    .await;
    let model_serving = ServiceProcess::serving(
        &models_root,
        &[],
        Some(&feature_store.grpc_url()),
        ProcessOptions {
            toml: Some(options_toml(&["models"], &s3_options)),
            ..ProcessOptions::default()
        },
    )
    .await;
    let orchestrator = ServiceProcess::orchestrator(
        Some(&postgres_schema("journey_orchestrator").await),
        OrchestratorPeers {
            registry: Some(registry.grpc_url()),
            datahub: Some(datahub.grpc_url()),
            feature_store: Some(feature_store.grpc_url()),
            serving: Some(model_serving.grpc_url()),
        },
        ProcessOptions {
            toml: Some(options_toml(&["models"], &s3_options)),
            ..ProcessOptions::default()
        }
        .env("PLINTH_LAKE__ROOT", &lake_root)
        .env("PLINTH_MODELS__ROOT", &models_root),
    )
    .await;

    let url = |process: &ServiceProcess| process.grpc_url().parse().unwrap();
    let endpoints = Endpoints {
        registry: url(&registry),
        datahub: url(&datahub),
        feature_store: url(&feature_store),
        orchestrator: url(&orchestrator),
        serving: url(&model_serving),
    };
    let options = Options {
        project_dir: dir.0.join("project").join("e2e_churn"),
        name: "e2e_churn".to_owned(),
        customers: 200,
        python: plinth_tests::python(),
        lake_wait: Duration::from_secs(120),
    };
    let outcome = match plinth_cli::journey::run(&endpoints, &options).await {
        Ok(outcome) => outcome,
        Err(err) => {
            let logs: Vec<String> = [
                &registry,
                &datahub,
                &feature_store,
                &model_serving,
                &orchestrator,
            ]
            .iter()
            .map(|process| format!("--- {}:\n{}", process.binary, process.output_tail(40)))
            .collect();
            panic!("the journey failed: {err:#}\n{}", logs.join("\n"));
        }
    };

    // The model is on the S3 server, the events in the lake.
    let store = s3.store();
    let stored = |path: String| {
        let store = store.clone();
        async move {
            store
                .get(&object_store::path::Path::from(path.as_str()))
                .await
                .unwrap_or_else(|err| panic!("{path} is not on S3: {err}"))
                .bytes()
                .await
                .unwrap()
        }
    };
    let model_dir = format!("{run}/models/e2e_churn/{}", outcome.model_version);
    stored(format!("{model_dir}/_SUCCESS")).await;
    let model = stored(format!("{model_dir}/model.onnx")).await;
    let model_path = dir.0.join("model.onnx");
    std::fs::write(&model_path, &model).unwrap();
    assert!(
        lake_dir.join("e2e_churn_events").is_dir(),
        "the events landed in the lake"
    );

    // Three customers with features and one without, in request order.
    let predictions = &outcome.prediction.predictions;
    assert_eq!(outcome.customers.len(), 4);
    assert_eq!(predictions.len(), 4);
    assert_eq!(
        predictions[3].status(),
        serving::PredictionStatus::EntityNotFound
    );
    let view = "e2e_churn_customer_stats";
    let mut rows = Vec::new();
    for prediction in &predictions[..3] {
        assert_eq!(
            prediction.status(),
            serving::PredictionStatus::Ok,
            "{prediction:?}"
        );
        assert!(prediction.defaulted_features.is_empty(), "{prediction:?}");
        rows.push(
            ["orders_7d", "avg_basket", "days_since_last_order"]
                .map(|feature| number(prediction.features.get(&format!("{view}:{feature}")))),
        );
    }
    let script = "import json, sys\nimport numpy as np, onnxruntime as ort\n\
                  session = ort.InferenceSession(sys.argv[1])\n\
                  label, probabilities = session.run(['label', 'probabilities'], {'input': np.array(json.loads(sys.argv[2]), dtype=np.float32)})\n\
                  print(json.dumps({'label': label.tolist(), 'probabilities': probabilities.tolist()}))\n";
    let answer = std::process::Command::new(plinth_tests::python())
        .args(["-c", script])
        .arg(&model_path)
        .arg(serde_json::to_string(&rows).unwrap())
        .output()
        .unwrap();
    assert!(
        answer.status.success(),
        "onnxruntime: {}",
        String::from_utf8_lossy(&answer.stderr)
    );
    let expected: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    for (index, prediction) in predictions[..3].iter().enumerate() {
        let label = output(prediction, "label")
            .contents
            .as_ref()
            .unwrap()
            .int64_contents
            .clone();
        assert_eq!(
            label,
            vec![expected["label"][index].as_i64().unwrap()],
            "customer {}",
            outcome.customers[index]
        );
        let probabilities = &output(prediction, "probabilities")
            .contents
            .as_ref()
            .unwrap()
            .fp32_contents;
        let wanted: Vec<f64> = expected["probabilities"][index]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_f64().unwrap())
            .collect();
        assert_eq!(probabilities.len(), wanted.len());
        for (got, want) in probabilities.iter().zip(&wanted) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-5,
                "customer {}: {probabilities:?} vs {wanted:?}",
                outcome.customers[index]
            );
        }
    }

    orchestrator.stop().await;
    model_serving.stop().await;
    feature_store.stop().await;
    datahub.stop().await;
    registry.stop().await;
}
