//! Model serving at start: the configured models are loaded before readiness turns true, and a configured
//! model that cannot load stops the service with its reason instead of leaving a pod that never serves.

use std::time::Duration;

use plinth_proto::inference::ModelReadyRequest;
use plinth_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use plinth_tests::{ServingServer, serving_models};

#[tokio::test]
async fn configured_models_are_loaded_before_ready() {
    let server = ServingServer::start_with(|config| {
        config.models.load = vec!["iris".to_owned(), "driver:v1".to_owned()];
    })
    .await;
    server.wait_ready(Duration::from_secs(60)).await;
    let mut client = GrpcInferenceServiceClient::new(server.channel().await);
    for (name, version) in [("iris", ""), ("iris", "v2"), ("driver", "v1")] {
        let ready = client
            .model_ready(ModelReadyRequest {
                name: name.to_owned(),
                version: version.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .ready;
        // The latest iris (v2) is the one loaded for a bare name; driver as pinned.
        assert!(ready, "{name} {version:?} is ready once the server is");
    }
    let v1 = client
        .model_ready(ModelReadyRequest {
            name: "iris".to_owned(),
            version: "v1".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .ready;
    assert!(!v1, "a bare name loads the latest version only");
    server.stop().await;
}

/// Binds serving with `load` and serves until it stops by itself; returns its error.
async fn start_error(load: &str) -> String {
    let mut config = plinth_serving::Config::default();
    config.server.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.server.http.listen = "127.0.0.1:0".parse().unwrap();
    config.server.shutdown_grace_period = Duration::from_secs(1);
    config.models.root = format!("file://{}", serving_models().display());
    config.models.load = vec![load.to_owned()];
    let bound = plinth_serving::bind(&config).await.unwrap();
    let served = tokio::time::timeout(
        Duration::from_secs(60),
        bound.serve(std::future::pending::<()>()),
    )
    .await
    .expect("serving stops by itself when a configured model does not load");
    served
        .expect_err("a configured model that does not load is an error")
        .to_string()
}

#[tokio::test]
async fn a_configured_model_that_cannot_load_stops_the_service_with_the_reason() {
    let corrupt = start_error("corrupt").await;
    assert!(corrupt.contains("corrupt"), "{corrupt}");
    let wrong = start_error("wrongref").await;
    assert!(
        wrong.contains("wrongref") && wrong.contains("reference"),
        "{wrong}"
    );
    let missing = start_error("nosuch").await;
    assert!(missing.contains("nosuch"), "{missing}");
    // What exists is listed, so the typo can be fixed.
    assert!(missing.contains("iris"), "{missing}");
}

#[tokio::test]
async fn load_all_serves_what_loads_and_marks_the_rest_failed() {
    let server = ServingServer::start_with(|config| {
        config.models.load_all = true;
    })
    .await;
    server.wait_ready(Duration::from_secs(60)).await;
    let mut client = GrpcInferenceServiceClient::new(server.channel().await);
    for (name, ready) in [
        ("iris", true),
        ("types", true),
        ("driver", true),
        ("corrupt", false),
    ] {
        let answer = client
            .model_ready(ModelReadyRequest {
                name: name.to_owned(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .ready;
        assert_eq!(answer, ready, "{name}");
    }
    let mut serving = plinth_proto::serving::v1::serving_service_client::ServingServiceClient::new(
        server.channel().await,
    );
    let models = serving
        .list_models(plinth_proto::serving::v1::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models;
    let corrupt = models.iter().find(|m| m.name == "corrupt").unwrap();
    let version = &corrupt.versions[0];
    assert_eq!(
        version.state,
        plinth_proto::serving::v1::VersionState::Failed as i32
    );
    assert!(
        !version.reason.is_empty(),
        "the reason is kept: {version:?}"
    );
    server.stop().await;
}
