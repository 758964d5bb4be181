//! The Open Inference Protocol V2 front ends of model serving, through independent clients:
//! tritonclient[grpc] and tritonclient[http] (Python scripts next to this file) for health, metadata,
//! inference of every data type with raw, typed, binary and JSON tensors, and bad requests; and
//! tonic's generated client for the model repository extension (index, load, unload).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use plinth_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use plinth_proto::inference::model_repository_parameter::ParameterChoice;
use plinth_proto::inference::{
    ModelInferRequest, ModelReadyRequest, ModelRepositoryParameter, RepositoryIndexRequest,
    RepositoryModelLoadRequest, RepositoryModelUnloadRequest, model_infer_request,
};
use plinth_tests::{ServingServer, python, serving_models};

/// `libonnxruntime.so`, found as the service finds it (`ORT_DYLIB_PATH`, else the tools venv's wheel).
fn onnx_library() -> PathBuf {
    plinth_serving::engine::find_library().expect(
        "no libonnxruntime.so: run `bash deploy/scripts/tools.sh venv` or set ORT_DYLIB_PATH",
    )
}

/// Serving with `load` loaded at start, ready.
async fn serving(load: &[&str]) -> ServingServer {
    let load: Vec<String> = load.iter().map(|s| (*s).to_owned()).collect();
    let server = ServingServer::start_with(|config| {
        config.models.load = load;
        config.onnx.library = Some(onnx_library());
    })
    .await;
    server.wait_ready(Duration::from_secs(60)).await;
    server
}

async fn run_script(script: &str, address: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("it")
        .join(script);
    let output = tokio::process::Command::new(python())
        .arg(&path)
        .arg(address)
        .arg(serving_models().join("expected.json"))
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("all ok"),
        "{script} did not finish:\n{stdout}"
    );
}

#[tokio::test]
async fn tritonclient_grpc_infers_every_type_and_gets_clear_errors() {
    let server = serving(&["iris:v1", "types"]).await;
    run_script("serving_oip_grpc.py", &server.grpc.to_string()).await;
    server.stop().await;
}

#[tokio::test]
async fn tritonclient_http_infers_binary_and_json_and_manages_the_repository() {
    let server = serving(&["iris:v1", "types"]).await;
    run_script("serving_oip_http.py", &server.http.to_string()).await;
    server.stop().await;
}

fn string_param(value: &str) -> ModelRepositoryParameter {
    ModelRepositoryParameter {
        parameter_choice: Some(ParameterChoice::StringParam(value.to_owned())),
    }
}

fn iris_request(version: &str) -> ModelInferRequest {
    let rows: [f32; 4] = [5.1, 3.5, 1.4, 0.2];
    ModelInferRequest {
        model_name: "iris".to_owned(),
        model_version: version.to_owned(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "input".to_owned(),
            datatype: "FP32".to_owned(),
            shape: vec![1, 4],
            ..Default::default()
        }],
        raw_input_contents: vec![rows.iter().flat_map(|x| x.to_le_bytes()).collect()],
        ..Default::default()
    }
}

#[tokio::test]
async fn repository_load_unload_and_index_switch_versions() {
    let server = serving(&["iris:v1"]).await;
    let mut client = GrpcInferenceServiceClient::new(server.channel().await);

    let index = client
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap()
        .into_inner();
    let states: HashMap<(String, String), String> = index
        .models
        .iter()
        .map(|m| ((m.name.clone(), m.version.clone()), m.state.clone()))
        .collect();
    let state = |name: &str, version: &str| states.get(&(name.to_owned(), version.to_owned()));
    assert_eq!(
        state("iris", "v1").map(String::as_str),
        Some("READY"),
        "{index:?}"
    );
    assert_eq!(
        state("iris", "v2").map(String::as_str),
        Some("UNAVAILABLE"),
        "{index:?}"
    );
    assert_eq!(
        state("types", "1").map(String::as_str),
        Some("UNAVAILABLE"),
        "{index:?}"
    );
    assert!(
        index.models.iter().all(|m| m.name != "incomplete"),
        "a version without _SUCCESS is not listed: {index:?}"
    );
    let ready = client
        .repository_index(RepositoryIndexRequest {
            ready: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ready.models.iter().all(|m| m.state == "READY"), "{ready:?}");
    assert!(ready.models.iter().any(|m| m.name == "iris"), "{ready:?}");

    // Load v2 by the `version` string parameter: it becomes the serving version.
    client
        .repository_model_load(RepositoryModelLoadRequest {
            model_name: "iris".to_owned(),
            parameters: HashMap::from([("version".to_owned(), string_param("v2"))]),
            ..Default::default()
        })
        .await
        .unwrap();
    let ready = |version: &str| ModelReadyRequest {
        name: "iris".to_owned(),
        version: version.to_owned(),
    };
    assert!(
        client
            .model_ready(ready("v2"))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    assert!(
        client
            .model_ready(ready("v1"))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let answer = client
        .model_infer(iris_request(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model_version, "v2");
    let answer = client
        .model_infer(iris_request("v1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model_version, "v1");

    // An int64 `version` parameter.
    client
        .repository_model_load(RepositoryModelLoadRequest {
            model_name: "types".to_owned(),
            parameters: HashMap::from([(
                "version".to_owned(),
                ModelRepositoryParameter {
                    parameter_choice: Some(ParameterChoice::Int64Param(1)),
                },
            )]),
            ..Default::default()
        })
        .await
        .unwrap();
    let types_ready = ModelReadyRequest {
        name: "types".to_owned(),
        version: "1".to_owned(),
    };
    assert!(
        client
            .model_ready(types_ready)
            .await
            .unwrap()
            .into_inner()
            .ready
    );

    // Unload v2: v1 serves again.
    client
        .repository_model_unload(RepositoryModelUnloadRequest {
            model_name: "iris".to_owned(),
            parameters: HashMap::from([("version".to_owned(), string_param("v2"))]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !client
            .model_ready(ready("v2"))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let answer = client
        .model_infer(iris_request(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model_version, "v1");
    let status = client.model_infer(iris_request("v2")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");

    // Bad loads: unknown model and version, a corrupt artifact, an unknown parameter.
    let load = |name: &str, parameters: Vec<(&str, ModelRepositoryParameter)>| {
        RepositoryModelLoadRequest {
            model_name: name.to_owned(),
            parameters: parameters
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ..Default::default()
        }
    };
    let status = client
        .repository_model_load(load("no-such-model", vec![]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(status.message().contains("no-such-model"), "{status:?}");
    let status = client
        .repository_model_load(load("iris", vec![("version", string_param("v9"))]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(status.message().contains("v9"), "{status:?}");
    let status = client
        .repository_model_load(load("corrupt", vec![]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let status = client
        .repository_model_load(load("iris", vec![("colour", string_param("red"))]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("parameters.colour"), "{status:?}");

    let index = client
        .repository_index(RepositoryIndexRequest::default())
        .await
        .unwrap()
        .into_inner();
    let corrupt = index
        .models
        .iter()
        .find(|m| m.name == "corrupt")
        .expect("corrupt is listed");
    assert_eq!(corrupt.state, "UNAVAILABLE", "{corrupt:?}");
    assert!(
        !corrupt.reason.is_empty(),
        "the failure's reason is listed: {corrupt:?}"
    );
    // The failed loads left iris serving.
    let answer = client
        .model_infer(iris_request(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model_version, "v1");

    // Unload every version.
    client
        .repository_model_unload(RepositoryModelUnloadRequest {
            model_name: "iris".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !client
            .model_ready(ready(""))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    server.stop().await;
}

#[tokio::test]
async fn a_request_over_the_row_limit_is_resource_exhausted() {
    let server = ServingServer::start_with(|config| {
        config.models.load = vec!["iris:v1".to_owned()];
        config.onnx.library = Some(onnx_library());
        config.limits.max_batch_rows = 2;
    })
    .await;
    server.wait_ready(Duration::from_secs(60)).await;
    let mut client = GrpcInferenceServiceClient::new(server.channel().await);
    let mut request = iris_request("");
    request.inputs[0].shape = vec![3, 4];
    request.raw_input_contents = vec![[0u8; 48].to_vec()];
    let status = client.model_infer(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_batch_rows") && status.message().contains("input"),
        "{status:?}"
    );
    // Within the limit it answers.
    let answer = client
        .model_infer(iris_request(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.raw_output_contents.len(), 2);
    server.stop().await;
}
