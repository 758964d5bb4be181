//! `plinth model` end to end: the real `plinth` binary against a fake `plinth.serving.v1.ServingService`
//! served by tonic in this test process, asserting the requests the CLI sends (typed entity columns,
//! versions, the bearer token) and what a user sees: exit codes, tables, JSON and errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the first surprise"
)]

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use plinth_proto::featurestore::v1 as fs;
use plinth_proto::inference::InferTensorContents;
use plinth_proto::serving::v1 as pb;
use plinth_proto::serving::v1::serving_service_server::{ServingService, ServingServiceServer};
use tonic::{Request, Response, Status};

/// What the fake saw: each call's method, its request (Debug) and its `authorization` header.
#[derive(Debug, Clone, Default)]
struct Seen {
    calls: Vec<(String, String, Option<String>)>,
    predict: Vec<pb::PredictByKeyRequest>,
}

/// A model server holding `driver` (v1 ready, v2 ready and serving, v3 failed) and `iris` (v1 stored,
/// not loaded). Keys whose `driver_id` is 0 have no features.
#[derive(Clone, Default)]
struct FakeServing {
    seen: Arc<Mutex<Seen>>,
}

impl FakeServing {
    fn record<T: std::fmt::Debug>(&self, method: &str, request: &Request<T>) {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        self.seen.lock().unwrap().calls.push((
            method.to_owned(),
            format!("{:?}", request.get_ref()),
            token,
        ));
    }
}

fn tensor(name: &str, datatype: &str, shape: &[i64]) -> pb::TensorSpec {
    pb::TensorSpec {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape: shape.to_vec(),
    }
}

fn version(name: &str, state: pb::VersionState, serving: bool, reason: &str) -> pb::ModelVersion {
    pb::ModelVersion {
        version: name.to_owned(),
        state: state.into(),
        reason: reason.to_owned(),
        serving,
    }
}

fn models() -> Vec<pb::Model> {
    vec![
        pb::Model {
            name: "driver".to_owned(),
            versions: vec![
                version("v1", pb::VersionState::Ready, false, ""),
                version("v2", pb::VersionState::Ready, true, ""),
                version(
                    "v3",
                    pb::VersionState::Failed,
                    false,
                    "reference output probabilities differs at row 0",
                ),
            ],
            inputs: vec![tensor("input", "FP32", &[-1, 3])],
            outputs: vec![
                tensor("label", "INT64", &[-1]),
                tensor("probabilities", "FP32", &[-1, 2]),
            ],
            feature_service: "driver_model_v1".to_owned(),
            entity_keys: vec!["driver_id".to_owned()],
            features: vec![
                "driver_hourly:conv_rate".to_owned(),
                "driver_hourly:acc_rate".to_owned(),
            ],
        },
        pb::Model {
            name: "iris".to_owned(),
            versions: vec![version("v1", pb::VersionState::Available, false, "")],
            ..pb::Model::default()
        },
    ]
}

#[tonic::async_trait]
impl ServingService for FakeServing {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        self.record("ListModels", &request);
        let prefix = request.into_inner().prefix;
        let models = models()
            .into_iter()
            .filter(|model| model.name.starts_with(&prefix))
            .collect();
        Ok(Response::new(pb::ListModelsResponse { models }))
    }

    async fn load_model(
        &self,
        request: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::LoadModelResponse>, Status> {
        self.record("LoadModel", &request);
        let request = request.into_inner();
        let Some(model) = models()
            .into_iter()
            .find(|model| model.name == request.name)
        else {
            return Err(Status::not_found(format!(
                "model {} is not in the repository: `plinth model list` shows the models",
                request.name
            )));
        };
        let version = if request.version.is_empty() {
            "v2".to_owned()
        } else {
            request.version
        };
        Ok(Response::new(pb::LoadModelResponse {
            model: Some(model),
            version,
        }))
    }

    async fn unload_model(
        &self,
        request: Request<pb::UnloadModelRequest>,
    ) -> Result<Response<pb::UnloadModelResponse>, Status> {
        self.record("UnloadModel", &request);
        let request = request.into_inner();
        let versions = match (request.name.as_str(), request.version.as_str()) {
            ("driver", "") => vec!["v1".to_owned(), "v2".to_owned()],
            ("driver", version) => vec![version.to_owned()],
            _ => Vec::new(),
        };
        Ok(Response::new(pb::UnloadModelResponse { versions }))
    }

    async fn predict_by_key(
        &self,
        request: Request<pb::PredictByKeyRequest>,
    ) -> Result<Response<pb::PredictByKeyResponse>, Status> {
        self.record("PredictByKey", &request);
        let request = request.into_inner();
        self.seen.lock().unwrap().predict.push(request.clone());
        if request.model != "driver" {
            return Err(Status::not_found(format!(
                "model {} is not loaded: `plinth model load {}` first",
                request.model, request.model
            )));
        }
        let Some(ids) = request.entities.get("driver_id") else {
            return Err(Status::invalid_argument(
                "entities: the model's join key driver_id is missing",
            ));
        };
        let predictions = ids
            .val
            .iter()
            .map(|id| {
                let number = match id.val {
                    Some(fs::value::Val::Int64Val(number)) => number,
                    _ => -1,
                };
                if number == 0 {
                    return pb::KeyPrediction {
                        status: pb::PredictionStatus::EntityNotFound.into(),
                        ..pb::KeyPrediction::default()
                    };
                }
                let features: HashMap<String, fs::Value> = if request.include_features {
                    [(
                        "driver_hourly:conv_rate".to_owned(),
                        fs::Value {
                            val: Some(fs::value::Val::DoubleVal(0.25)),
                        },
                    )]
                    .into_iter()
                    .collect()
                } else {
                    HashMap::new()
                };
                pb::KeyPrediction {
                    status: pb::PredictionStatus::Ok.into(),
                    outputs: vec![
                        pb::PredictionOutput {
                            name: "label".to_owned(),
                            datatype: "INT64".to_owned(),
                            shape: vec![],
                            contents: Some(InferTensorContents {
                                int64_contents: vec![number % 2],
                                ..InferTensorContents::default()
                            }),
                        },
                        pb::PredictionOutput {
                            name: "probabilities".to_owned(),
                            datatype: "FP32".to_owned(),
                            shape: vec![2],
                            contents: Some(InferTensorContents {
                                fp32_contents: vec![0.1, 0.9],
                                ..InferTensorContents::default()
                            }),
                        },
                    ],
                    features,
                    defaulted_features: vec!["driver_hourly:acc_rate".to_owned()],
                    missing_features: Vec::new(),
                }
            })
            .collect();
        Ok(Response::new(pb::PredictByKeyResponse {
            model: request.model,
            version: if request.version.is_empty() {
                "v2".to_owned()
            } else {
                request.version
            },
            predictions,
            request_id: if request.request_id.is_empty() {
                "server-made-id".to_owned()
            } else {
                request.request_id
            },
        }))
    }
}

/// The fake on a free loopback port, in a thread of its own, stopped on drop.
struct Server {
    url: String,
    fake: FakeServing,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let fake = FakeServing::default();
        let service = ServingServiceServer::new(fake.clone());
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound_tx.send(listener.local_addr().unwrap()).unwrap();
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        async move {
                            let _ = stopped.await;
                        },
                    )
                    .await
                    .unwrap();
            });
        });
        let addr = bound_rx.recv().unwrap();
        Self {
            url: format!("http://{addr}"),
            fake,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Seen {
        self.fake.seen.lock().unwrap().clone()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
        command
            .arg("model")
            .args(args)
            .env("PLINTH_SERVING_URL", &self.url)
            .env_remove("PLINTH_TOKEN")
            .env_remove("PLINTH_CA_CERT")
            .env_remove("PLINTH_CLIENT_CERT")
            .env_remove("PLINTH_CLIENT_KEY");
        command
    }

    fn run(&self, args: &[&str]) -> Ran {
        Ran::of(args, self.command(args).output().unwrap())
    }

    /// Runs `plinth model ARGS -o json` expecting `code`, and parses what it printed.
    fn json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
        let stdout = self.run(&args).code(code).stdout;
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Ran {
    line: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn of(args: &[&str], output: std::process::Output) -> Self {
        Self {
            line: args.join(" "),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "plinth model {}\nstdout:\n{}\nstderr:\n{}",
            self.line,
            self.stdout,
            self.stderr
        );
        self
    }
}

#[test]
fn list_shows_each_version_state_the_serving_one_and_the_signature() {
    let server = Server::start();
    let text = server.run(&["list"]).code(0).stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("MODEL "), "{text}");
    assert!(lines[1].starts_with("driver "), "{text}");
    assert!(
        lines[1].contains("v1 ready, v2 ready*, v3 failed"),
        "{text}"
    );
    assert!(lines[1].contains("input FP32[-1,3]"), "{text}");
    assert!(
        lines[1].contains("label INT64[-1], probabilities FP32[-1,2]"),
        "{text}"
    );
    assert!(lines[1].contains("driver_model_v1 (driver_id)"), "{text}");
    assert!(
        lines[2].starts_with("iris ") && lines[2].contains("v1 available"),
        "{text}"
    );
    assert!(
        text.contains("driver v3 failed: reference output probabilities differs at row 0"),
        "{text}"
    );

    let body = server.json(&["list", "--prefix", "dri"], 0);
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body[0]["name"], "driver");
    assert_eq!(body[0]["versions"][1]["serving"], true);
    assert_eq!(body[0]["versions"][2]["state"], "failed");
    assert_eq!(
        body[0]["features"],
        serde_json::json!(["driver_hourly:conv_rate", "driver_hourly:acc_rate"])
    );
    let seen = server.seen();
    assert!(
        seen.calls[1].1.contains("prefix: \"dri\""),
        "{:?}",
        seen.calls
    );

    let none = server.run(&["list", "--prefix", "zz"]).code(0).stdout;
    assert_eq!(none.trim(), "no model name starts with zz");
}

#[test]
fn load_and_unload_send_the_name_and_version_and_say_what_changed() {
    let server = Server::start();
    let loaded = server
        .run(&["load", "driver", "--version", "v2"])
        .code(0)
        .stdout;
    assert!(
        loaded.starts_with("loaded driver version v2: it serves requests that name no version"),
        "{loaded}"
    );
    let loaded = server.json(&["load", "driver"], 0);
    assert_eq!(loaded["loaded_version"], "v2");
    assert_eq!(loaded["name"], "driver");
    let unloaded = server.run(&["unload", "driver"]).code(0).stdout;
    assert_eq!(unloaded.trim(), "unloaded driver versions v1, v2");
    let unloaded = server.json(&["unload", "driver", "--version", "v1"], 0);
    assert_eq!(
        unloaded,
        serde_json::json!({"model": "driver", "unloaded": ["v1"]})
    );
    let nothing = server.run(&["unload", "iris"]).code(0).stdout;
    assert_eq!(
        nothing.trim(),
        "model iris had no loaded version: nothing unloaded"
    );

    let calls = server.seen().calls;
    let methods: Vec<&str> = calls.iter().map(|(method, _, _)| method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "LoadModel",
            "LoadModel",
            "UnloadModel",
            "UnloadModel",
            "UnloadModel"
        ]
    );
    assert!(
        calls[0].1.contains("name: \"driver\", version: \"v2\""),
        "{calls:?}"
    );
    assert!(calls[1].1.contains("version: \"\""), "{calls:?}");
    assert!(calls[3].1.contains("version: \"v1\""), "{calls:?}");
}

#[test]
fn a_refused_call_prints_the_status_message_and_exits_2() {
    let server = Server::start();
    let ran = server.run(&["load", "nope"]).code(2);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    assert!(
        ran.stderr
            .contains("model nope is not in the repository: `plinth model list` shows the models"),
        "{}",
        ran.stderr
    );
    let ran = server
        .run(&["predict", "iris", "--key", "driver_id=1"])
        .code(2);
    assert!(
        ran.stderr.contains("model iris is not loaded"),
        "{}",
        ran.stderr
    );
}

#[test]
fn predict_by_key_sends_typed_columns_and_prints_each_key() {
    let server = Server::start();
    // Every key predicted: exit 0, a header line, one row per key with its outputs and features.
    let text = server
        .run(&[
            "predict",
            "driver",
            "--key",
            "driver_id=1001",
            "--key",
            "driver_id=1002",
            "--features",
            "--request-id",
            "ci-7",
        ])
        .code(0)
        .stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "model driver version v2 (request ci-7): 2 of 2 keys predicted",
        "{text}"
    );
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "driver_id",
            "STATUS",
            "label",
            "probabilities",
            "driver_hourly:conv_rate"
        ],
        "{text}"
    );
    let first: Vec<&str> = lines[2]
        .split("  ")
        .filter(|cell| !cell.is_empty())
        .collect();
    assert_eq!(
        first.iter().map(|cell| cell.trim()).collect::<Vec<_>>(),
        [
            "1001",
            "ok (defaulted: driver_hourly:acc_rate)",
            "1",
            "[0.1,0.9]",
            "0.25"
        ],
        "{text}"
    );
    assert!(lines[3].starts_with("1002 "), "{text}");

    // A key without features: exit 1, its status in the JSON.
    let body = server.json(
        &[
            "predict",
            "driver",
            "--entities",
            r#"{"driver_id": [7, 0]}"#,
            "--version",
            "v1",
        ],
        1,
    );
    assert_eq!(body["version"], "v1");
    assert_eq!(body["request_id"], "server-made-id");
    assert_eq!(
        body["predictions"][0]["key"],
        serde_json::json!({"driver_id": 7})
    );
    assert_eq!(body["predictions"][0]["status"], "ok");
    assert_eq!(
        body["predictions"][0]["outputs"]["probabilities"]["value"],
        serde_json::json!([0.1, 0.9])
    );
    assert_eq!(body["predictions"][0]["outputs"]["label"]["value"], 1);
    assert!(body["predictions"][0].get("features").is_none(), "{body}");
    assert_eq!(body["predictions"][1]["status"], "entity_not_found");

    // What reached the server: int64 columns, the flags.
    let seen = server.seen();
    let int = |number: i64| fs::Value {
        val: Some(fs::value::Val::Int64Val(number)),
    };
    assert_eq!(
        seen.predict[0].entities["driver_id"].val,
        [int(1001), int(1002)]
    );
    assert!(seen.predict[0].include_features);
    assert_eq!(seen.predict[0].request_id, "ci-7");
    assert_eq!(seen.predict[0].version, "");
    assert_eq!(seen.predict[1].entities["driver_id"].val, [int(7), int(0)]);
    assert!(!seen.predict[1].include_features);
    assert_eq!(seen.predict[1].version, "v1");
}

#[test]
fn entities_json_types_reach_the_server_as_given() {
    let server = Server::start();
    // The fake knows driver_id only as int64: text and other columns pass through untouched.
    let ran = server.run(&[
        "predict",
        "driver",
        "--entities",
        r#"{"driver_id": ["1001"], "score": [0.5], "vip": [true]}"#,
        "-o",
        "json",
    ]);
    ran.code(0);
    let request = &server.seen().predict[0];
    let val = |key: &str| request.entities[key].val[0].val.clone().unwrap();
    assert_eq!(
        val("driver_id"),
        fs::value::Val::StringVal("1001".to_owned())
    );
    assert_eq!(val("score"), fs::value::Val::DoubleVal(0.5));
    assert_eq!(val("vip"), fs::value::Val::BoolVal(true));
}

#[test]
fn bad_rows_are_refused_before_any_call() {
    let server = Server::start();
    let ran = server
        .run(&[
            "predict",
            "driver",
            "--key",
            "driver_id=1",
            "--key",
            "rider_id=2",
        ])
        .code(2);
    assert!(
        ran.stderr.contains("every row needs the same join keys"),
        "{}",
        ran.stderr
    );
    let ran = server
        .run(&[
            "predict",
            "driver",
            "--entities",
            r#"{"driver_id": [1, 2], "x": [1]}"#,
        ])
        .code(2);
    assert!(ran.stderr.contains("one value per row"), "{}", ran.stderr);
    // clap refuses a malformed --key with its usage error (code 2) too.
    let ran = server
        .run(&["predict", "driver", "--key", "driver_id"])
        .code(2);
    assert!(ran.stderr.contains("is not KEY=VALUE"), "{}", ran.stderr);
    assert!(server.seen().calls.is_empty(), "{:?}", server.seen().calls);
}

#[test]
fn the_token_is_sent_as_a_bearer_header() {
    let server = Server::start();
    let output = server
        .command(&["list"])
        .env("PLINTH_TOKEN", "s3cret")
        .output()
        .unwrap();
    Ran::of(&["list"], output).code(0);
    let calls = server.seen().calls;
    assert_eq!(calls[0].2.as_deref(), Some("Bearer s3cret"), "{calls:?}");
}

#[test]
fn an_unreachable_server_is_an_error_naming_it() {
    // Port 1 on loopback: nothing listens there.
    let output = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args([
            "model",
            "list",
            "--serving",
            "http://127.0.0.1:1",
            "--timeout",
            "2s",
        ])
        .env_remove("PLINTH_TOKEN")
        .output()
        .unwrap();
    let ran = Ran::of(&["list"], output).code(2);
    assert!(
        ran.stderr
            .starts_with("error: cannot reach http://127.0.0.1:1/"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
}

#[test]
fn help_shows_examples_and_the_url_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(["model", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains("plinth model predict driver --key driver_id=1001"),
        "{help}"
    );
    assert!(help.contains("PLINTH_SERVING_URL"), "{help}");
    for command in ["list", "load", "unload", "predict"] {
        assert!(help.contains(command), "{command}: {help}");
    }
}
