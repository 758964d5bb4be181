//! Predictions by entity key end to end: a real feature store (Redis online store) fed by push, model
//! serving reading from it, and the `driver/v1` fixture model (entity `driver_id`, features
//! `driver_hourly:{conv_rate, acc_rate, avg_daily_trips}`, default acc_rate 0.5). The answers are
//! compared with what Python's onnxruntime computed for the same rows (`expected.json`); then unknown
//! keys, defaults, missing features, bad keys, too many rows, a feature store that is down or hangs, and
//! the prediction log on Kafka through the data hub, with its registered schema.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plinth_proto::datahub::v1 as hub;
use plinth_proto::featurestore::v1 as fs;
use plinth_proto::ids::{Subject, TopicName};
use plinth_proto::serving::v1 as pb;
use plinth_proto::serving::v1::serving_service_client::ServingServiceClient;
use plinth_tests::{
    DataHubServer, FeatureStoreServer, RegistryServer, ServingServer, TcpOutage, serving_models,
    start_broker,
};
use tokio_stream::StreamExt as _;

/// One pushed feature row: (driver_id, conv_rate, acc_rate, avg_daily_trips); `None` is null.
type Row = (i64, Option<f64>, Option<f64>, Option<i64>);

/// The feature rows pushed online. 1001..1003 are the rows of `expected.json` (1002's acc_rate comes
/// from the model's default 0.5).
const ROWS: [Row; 4] = [
    (1001, Some(0.9), Some(0.5), Some(12)),
    (1002, Some(0.1), None, Some(3)),
    (1003, Some(1.5), Some(-0.5), Some(40)),
    (1004, None, Some(0.4), Some(7)),
];

const DEFINITIONS: &str = r#"
entities:
  - name: driver
    join_keys: [{name: driver_id, type: int64}]
sources:
  - name: driver_push
    push: {}
    timestamp_field: event_timestamp
feature_views:
  - name: driver_hourly
    entities: [driver]
    source: driver_push
    features:
      - {name: conv_rate, type: float64}
      - {name: acc_rate, type: float64}
      - {name: avg_daily_trips, type: int64}
feature_services:
  - name: driver_model_v1
    features: [driver_hourly]
"#;

fn value(val: Option<fs::value::Val>) -> fs::Value {
    fs::Value { val }
}

fn int64s(values: &[i64]) -> fs::RepeatedValue {
    fs::RepeatedValue {
        val: values
            .iter()
            .map(|v| value(Some(fs::value::Val::Int64Val(*v))))
            .collect(),
    }
}

/// A feature store on Redis with the driver definitions applied and [`ROWS`] pushed online.
async fn feature_store() -> FeatureStoreServer {
    let server = FeatureStoreServer::start_with(|config| {
        config.online.store = plinth_feature_store::config::OnlineStoreKind::Redis;
        config.online.redis_url = "redis://127.0.0.1:6379/0".to_owned();
    })
    .await;
    let mut client = server.client().await;
    client
        .apply_definitions(fs::ApplyDefinitionsRequest {
            files: vec![fs::DefinitionFile {
                path: "features/driver.yaml".to_owned(),
                content: DEFINITIONS.to_owned(),
            }],
            prune: false,
        })
        .await
        .unwrap();
    let now = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp(),
        nanos: 0,
    };
    let column = |f: &dyn Fn(&Row) -> fs::Value| fs::RepeatedValue {
        val: ROWS.iter().map(f).collect(),
    };
    use fs::value::Val;
    let pushed = client
        .push(fs::PushRequest {
            push_source: "driver_push".to_owned(),
            columns: HashMap::from([
                (
                    "driver_id".to_owned(),
                    column(&|r| value(Some(Val::Int64Val(r.0)))),
                ),
                (
                    "event_timestamp".to_owned(),
                    column(&|_| value(Some(Val::UnixTimestampVal(now)))),
                ),
                (
                    "conv_rate".to_owned(),
                    column(&|r| value(r.1.map(Val::DoubleVal))),
                ),
                (
                    "acc_rate".to_owned(),
                    column(&|r| value(r.2.map(Val::DoubleVal))),
                ),
                (
                    "avg_daily_trips".to_owned(),
                    column(&|r| value(r.3.map(Val::Int64Val))),
                ),
            ]),
            to: fs::PushTarget::Online as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pushed.row_count, 4);
    server
}

/// Serving with driver and iris loaded, reading features from `feature_store_url`.
async fn serving(
    feature_store_url: &str,
    configure: impl FnOnce(&mut plinth_serving::Config),
) -> ServingServer {
    let url = feature_store_url.parse().unwrap();
    let server = ServingServer::start_with(|config| {
        config.models.load = vec!["driver".to_owned(), "iris:v1".to_owned()];
        config.onnx.library = Some(plinth_tests::process::onnx_library());
        config.feature_store.url = url;
        config.limits.max_batch_rows = 16;
        configure(config);
    })
    .await;
    server.wait_ready(Duration::from_secs(60)).await;
    server
}

async fn client(
    server: &ServingServer,
) -> ServingServiceClient<plinth_runtime::client::AuthChannel> {
    ServingServiceClient::new(server.channel().await)
}

fn request(ids: &[i64], include_features: bool) -> pb::PredictByKeyRequest {
    pb::PredictByKeyRequest {
        model: "driver".to_owned(),
        entities: HashMap::from([("driver_id".to_owned(), int64s(ids))]),
        include_features,
        ..Default::default()
    }
}

/// The outputs onnxruntime (Python) computed for the driver rows: per row, label and probabilities.
fn expected_driver() -> Vec<(i64, Vec<f32>)> {
    let text = std::fs::read_to_string(serving_models().join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let outputs = &expected["driver"]["v1"]["outputs"];
    let inputs = &expected["driver"]["v1"]["inputs"]["input"]["data"];
    let rows: Vec<f64> = inputs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    // The fixture's rows are the features pushed for 1001..1003.
    for (row, (_, conv, acc, trips)) in ROWS[..3].iter().enumerate() {
        let acc = acc.unwrap_or(0.5);
        let want = [conv.unwrap(), acc, trips.unwrap() as f64];
        for (got, want) in rows[row * 3..row * 3 + 3].iter().zip(want) {
            assert!(
                (got - want).abs() < 1e-6,
                "expected.json's driver rows changed: {rows:?}"
            );
        }
    }
    let labels = outputs["label"]["data"].as_array().unwrap();
    let probabilities: Vec<f32> = outputs["probabilities"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    labels
        .iter()
        .enumerate()
        .map(|(row, label)| {
            (
                label.as_i64().unwrap(),
                probabilities[row * 2..row * 2 + 2].to_vec(),
            )
        })
        .collect()
}

fn assert_prediction(prediction: &pb::KeyPrediction, expected: &(i64, Vec<f32>)) {
    assert_eq!(
        prediction.status,
        pb::PredictionStatus::Ok as i32,
        "{prediction:?}"
    );
    let output = |name: &str| {
        prediction
            .outputs
            .iter()
            .find(|output| output.name == name)
            .unwrap_or_else(|| panic!("no output {name}: {prediction:?}"))
    };
    let label = output("label");
    assert_eq!(label.datatype, "INT64");
    assert!(label.shape.is_empty(), "{label:?}");
    assert_eq!(
        label.contents.as_ref().unwrap().int64_contents,
        [expected.0]
    );
    let probabilities = output("probabilities");
    assert_eq!(probabilities.datatype, "FP32");
    assert_eq!(probabilities.shape, [2]);
    let got = &probabilities.contents.as_ref().unwrap().fp32_contents;
    assert_eq!(got.len(), 2);
    for (got, want) in got.iter().zip(&expected.1) {
        assert!((got - want).abs() < 1e-5, "{got:?} vs {:?}", expected.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_by_key_use_the_stored_features_defaults_and_statuses() {
    let store = feature_store().await;
    let server = serving(&format!("http://{}", store.grpc), |_| {}).await;
    let mut client = client(&server).await;
    let expected = expected_driver();

    let answer = client
        .predict_by_key(request(&[1001, 1002, 9999, 1004, 1003], true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model, "driver");
    assert_eq!(answer.version, "v1");
    assert!(
        uuid::Uuid::parse_str(&answer.request_id).is_ok(),
        "{}",
        answer.request_id
    );
    let p = &answer.predictions;
    assert_eq!(p.len(), 5);
    assert_prediction(&p[0], &expected[0]);
    assert!(p[0].defaulted_features.is_empty());
    // 1002 has a null acc_rate: the model's default fills it.
    assert_prediction(&p[1], &expected[1]);
    assert_eq!(p[1].defaulted_features, ["driver_hourly:acc_rate"]);
    assert_eq!(
        p[1].features["driver_hourly:acc_rate"].val,
        Some(fs::value::Val::DoubleVal(0.5))
    );
    assert_eq!(
        p[1].features["driver_hourly:avg_daily_trips"].val,
        Some(fs::value::Val::Int64Val(3))
    );
    assert_eq!(
        p[2].status,
        pb::PredictionStatus::EntityNotFound as i32,
        "{:?}",
        p[2]
    );
    assert!(p[2].outputs.is_empty());
    // 1004 has no conv_rate and the model no default for it.
    assert_eq!(
        p[3].status,
        pb::PredictionStatus::MissingFeatures as i32,
        "{:?}",
        p[3]
    );
    assert_eq!(p[3].missing_features, ["driver_hourly:conv_rate"]);
    assert!(p[3].outputs.is_empty());
    assert_prediction(&p[4], &expected[2]);
    assert_eq!(p[4].features.len(), 3);

    // Without include_features, no values; a client's request id is kept; a version can be named.
    let mut plain = request(&[1003], false);
    plain.request_id = "req-42".to_owned();
    plain.version = "v1".to_owned();
    let answer = client.predict_by_key(plain).await.unwrap().into_inner();
    assert_eq!(answer.request_id, "req-42");
    assert!(answer.predictions[0].features.is_empty());
    assert_prediction(&answer.predictions[0], &expected[2]);

    // Every key unknown: no inference, every row ENTITY_NOT_FOUND.
    let answer = client
        .predict_by_key(request(&[7, 8], false))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer
            .predictions
            .iter()
            .all(|p| p.status == pb::PredictionStatus::EntityNotFound as i32),
        "{answer:?}"
    );

    // Per-model latency and errors on /metrics.
    let mut unknown_model = request(&[1001], false);
    unknown_model.model = "nope".to_owned();
    client.predict_by_key(unknown_model).await.unwrap_err();
    let page = reqwest::get(format!("{}/metrics", server.http_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.lines().any(
            |line| line.starts_with("plinth_serving_predict_by_key_seconds")
                && line.contains(r#"model="driver""#)
        ),
        "{page}"
    );
    assert!(
        page.lines().any(
            |line| line.starts_with("plinth_serving_predict_by_key_errors_total")
                && line.contains(r#"model="unknown""#)
                && line.contains(r#"code="not_found""#)
        ),
        "{page}"
    );

    // ListModels shows the features block of the serving version.
    let models = client
        .list_models(pb::ListModelsRequest {
            prefix: "driver".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .models;
    let driver = models.iter().find(|m| m.name == "driver").unwrap();
    assert_eq!(driver.entity_keys, ["driver_id"]);
    assert_eq!(driver.feature_service, "driver_model_v1");
    assert_eq!(driver.features.len(), 3);
    assert_eq!(driver.inputs[0].datatype, "FP32");
    assert!(
        driver
            .versions
            .iter()
            .any(|v| v.version == "v1" && v.serving && v.state == pb::VersionState::Ready as i32),
        "{driver:?}"
    );
    server.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_unknown_models_and_too_many_rows_are_refused_with_the_field() {
    let store = feature_store().await;
    let server = serving(&format!("http://{}", store.grpc), |_| {}).await;
    let mut client = client(&server).await;

    let mut wrong_column = request(&[1001], false);
    wrong_column.entities = HashMap::from([("rider_id".to_owned(), int64s(&[1001]))]);
    let err = client.predict_by_key(wrong_column).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("entities.driver_id"),
        "{}",
        err.message()
    );

    let mut extra_column = request(&[1001], false);
    extra_column
        .entities
        .insert("zone".to_owned(), int64s(&[3]));
    let err = client.predict_by_key(extra_column).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("entities.zone"), "{}", err.message());

    // A string key where the entity is int64: the feature store's refusal, naming the key.
    let mut wrong_type = request(&[], false);
    wrong_type.entities = HashMap::from([(
        "driver_id".to_owned(),
        fs::RepeatedValue {
            val: vec![value(Some(fs::value::Val::StringVal("1001".to_owned())))],
        },
    )]);
    let err = client.predict_by_key(wrong_type).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("driver_id"), "{}", err.message());

    let ids: Vec<i64> = (0..17).collect();
    let err = client
        .predict_by_key(request(&ids, false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("max_batch_rows (16)"),
        "{}",
        err.message()
    );

    let mut unknown = request(&[1001], false);
    unknown.model = "nope".to_owned();
    let err = client.predict_by_key(unknown).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

    let mut unknown_version = request(&[1001], false);
    unknown_version.version = "v9".to_owned();
    let err = client.predict_by_key(unknown_version).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

    // iris has no features block: it predicts through ModelInfer only.
    let mut iris = request(&[1001], false);
    iris.model = "iris".to_owned();
    let err = client.predict_by_key(iris).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("`features`"), "{}", err.message());
    server.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_store_that_is_down_or_hangs_answers_fast_with_the_cause() {
    // Nobody listens: UNAVAILABLE at once, naming the feature store and the cause.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}");
    let server = serving(&url, |config| {
        config.feature_store.timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = client(&server).await;
    let started = Instant::now();
    let err = client
        .predict_by_key(request(&[1001], false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains(&url), "{}", err.message());
    assert!(err.message().contains("feature store"), "{}", err.message());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;

    // A peer that accepts connections and never answers: no hang past the deadline.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let server = serving(&format!("http://{silent_addr}"), |config| {
        config.feature_store.timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = ServingServiceClient::new(server.channel().await);
    let started = Instant::now();
    let err = client
        .predict_by_key(request(&[1001], false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Unavailable
        ),
        "{err:?}"
    );
    assert!(err.message().contains("feature store"), "{}", err.message());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;

    // A feature store behind a link that goes down and comes back: UNAVAILABLE, then answers again.
    let store = feature_store().await;
    let proxy = TcpOutage::start().await;
    proxy.forward_to(store.grpc);
    let server = serving(&format!("http://{}", proxy.addr), |config| {
        config.feature_store.timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = ServingServiceClient::new(server.channel().await);
    let answer = client
        .predict_by_key(request(&[1001], false))
        .await
        .unwrap();
    assert_eq!(
        answer.into_inner().predictions[0].status,
        pb::PredictionStatus::Ok as i32
    );
    proxy.set_up(false);
    let started = Instant::now();
    let err = client
        .predict_by_key(request(&[1001], false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    proxy.set_up(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.predict_by_key(request(&[1001], false)).await {
            Ok(answer) => {
                assert_eq!(
                    answer.into_inner().predictions[0].status,
                    pb::PredictionStatus::Ok as i32
                );
                break;
            }
            Err(err) => {
                assert!(Instant::now() < deadline, "the link is back but: {err:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    held.abort();
    server.stop().await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_are_logged_to_kafka_with_the_registered_schema() {
    let store = feature_store().await;
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    let datahub = DataHubServer::start(&registry, &broker.bootstrap_servers()).await;
    // The data hub is out of reach when serving starts: predictions still answer, the log waits.
    let link = TcpOutage::start().await;
    link.forward_to(datahub.grpc);
    link.set_up(false);
    let registry_url = registry.grpc_url().parse().unwrap();
    let link_url = format!("http://{}", link.addr).parse().unwrap();
    let server = serving(&format!("http://{}", store.grpc), |config| {
        config.monitoring.enabled = true;
        config.monitoring.sample_rate = 1.0;
        config.monitoring.datahub.url = link_url;
        config.monitoring.datahub.timeout = Duration::from_secs(2);
        config.monitoring.registry.url = registry_url;
    })
    .await;
    let mut client = client(&server).await;
    let started = Instant::now();
    let answer = client
        .predict_by_key(pb::PredictByKeyRequest {
            request_id: "logged-1".to_owned(),
            ..request(&[1001, 9999], false)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the log must not hold serving"
    );
    let expected = expected_driver();
    assert_prediction(&answer.predictions[0], &expected[0]);
    link.set_up(true);
    client
        .predict_by_key(pb::PredictByKeyRequest {
            request_id: "logged-2".to_owned(),
            ..request(&[1002], false)
        })
        .await
        .unwrap();

    let topic = "plinth.serving.predictions";
    let mut hub_client = datahub.client().await;
    // The log creates the topic once the data hub is reachable again (it retries with backoff).
    let subscribe = hub::SubscribeRequest {
        consumer_group: "prediction-readers".into(),
        topics: vec![TopicName::new(topic)],
        start_position: hub::StartPosition::Earliest.into(),
        ..Default::default()
    };
    let topic_deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match hub_client.subscribe(subscribe.clone()).await {
            Ok(stream) => break stream.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                assert!(
                    Instant::now() < topic_deadline,
                    "no topic {topic}: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("subscribe: {status:?}"),
        }
    };
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while records.len() < 3 {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of 3 prediction records arrived", records.len()));
        records.extend(next.expect("stream open").expect("stream ok").records);
    }

    // The records were validated and written with the schema registered under <topic>-value.
    let mut registry_client = registry.grpc_client(None).await;
    let registered = registry_client
        .get_subject_version(plinth_proto::schemaregistry::v1::GetSubjectVersionRequest {
            subject: Some(Subject::new(format!("{topic}-value"))),
            version: -1,
            deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(&registered.schema.unwrap().schema).unwrap();
    assert_eq!(schema["title"], "plinth.serving.Prediction");
    let mut by_row: HashMap<(String, i64), serde_json::Value> = HashMap::new();
    for record in &records {
        assert_eq!(record.schema_id, registered.id, "{record:?}");
        let json: serde_json::Value =
            serde_json::from_str(record.value.as_deref().unwrap()).unwrap();
        for required in schema["required"].as_array().unwrap() {
            assert!(
                json.get(required.as_str().unwrap()).is_some(),
                "{required} in {json}"
            );
        }
        let key = (
            json["request_id"].as_str().unwrap().to_owned(),
            json["row"].as_i64().unwrap(),
        );
        by_row.insert(key, json);
    }
    let first = &by_row[&("logged-1".to_owned(), 0)];
    assert_eq!(first["model"], "driver");
    assert_eq!(first["version"], "v1");
    assert_eq!(first["status"], "OK");
    assert_eq!(first["entity_keys"]["driver_id"], 1001);
    assert_eq!(first["features"]["driver_hourly:conv_rate"], 0.9);
    assert_eq!(first["outputs"]["label"][0], expected[0].0);
    assert!(first["latency_ms"].as_f64().unwrap() > 0.0);
    let unknown = &by_row[&("logged-1".to_owned(), 1)];
    assert_eq!(unknown["status"], "ENTITY_NOT_FOUND");
    assert_eq!(unknown["entity_keys"]["driver_id"], 9999);
    let defaulted = &by_row[&("logged-2".to_owned(), 0)];
    assert_eq!(defaulted["defaulted_features"][0], "driver_hourly:acc_rate");
    assert_eq!(defaulted["features"]["driver_hourly:acc_rate"], 0.5);

    server.stop().await;
    datahub.stop().await;
    store.stop().await;
}
