//! A real server on 127.0.0.1:0: health, readiness, metrics, reflection, limits, auth, shutdown.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use plinth_runtime::client;
use plinth_runtime::config::ServerConfig;
use plinth_runtime::server::ServerBuilder;
use tokio::sync::Notify;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{ECHO_SERVICE, EchoService, Running, health_status};

fn local_config() -> ServerConfig {
    let mut config = ServerConfig::with_ports(0, 0);
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config
}

fn hello_router() -> axum::Router {
    axum::Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/echo",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
}

#[tokio::test]
async fn health_and_readyz_follow_readiness() {
    let builder = ServerBuilder::new("test-health", local_config())
        .grpc_service(EchoService)
        .http_router(hello_router());
    let server = Running::start(builder).await;
    let http = reqwest::Client::new();

    let channel = server.channel().await;
    assert_eq!(
        health_status(channel.clone(), "").await.unwrap(),
        ServingStatus::NotServing
    );
    assert_eq!(
        health_status(channel.clone(), ECHO_SERVICE).await.unwrap(),
        ServingStatus::NotServing
    );
    let readyz = http.get(server.http_url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 503);
    let healthz = http.get(server.http_url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);

    server.health.set_ready(true).await;
    assert_eq!(
        health_status(channel.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health_status(channel.clone(), ECHO_SERVICE).await.unwrap(),
        ServingStatus::Serving
    );
    let readyz = http.get(server.http_url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 200);

    let unknown = health_status(channel, "plinth.nope.v1.Nope")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let health = server.health.clone();
    server.shutdown().await.unwrap();
    assert!(!health.is_ready(), "shutdown marks the server not ready");
}

#[tokio::test]
async fn server_without_health_handle_is_ready_when_serving() {
    let bound = ServerBuilder::new("test-auto-ready", local_config())
        .bind()
        .await
        .unwrap();
    let health = bound.health();
    let server = Running::serve(bound, health);
    let channel = server.channel().await;
    assert_eq!(
        health_status(channel, "").await.unwrap(),
        ServingStatus::Serving
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_http_and_grpc_requests() {
    let builder = ServerBuilder::new("test-metrics", local_config()).http_router(hello_router());
    let server = Running::start(builder).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(server.http_url("/hello"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "hello"
    );
    assert_eq!(
        http.get(server.http_url("/nowhere"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    health_status(server.channel().await, "").await.unwrap();

    let metrics = http
        .get(server.http_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has_line = |needles: &[&str]| {
        metrics
            .lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)))
    };
    assert!(
        has_line(&[
            "plinth_requests_total{",
            "service=\"test-metrics\"",
            "method=\"GET /hello\"",
            "status=\"200\"",
            "} 1"
        ]),
        "{metrics}"
    );
    assert!(
        has_line(&[
            "plinth_requests_total{",
            "service=\"test-metrics\"",
            "method=\"unmatched\"",
            "status=\"404\""
        ]),
        "{metrics}"
    );
    assert!(
        has_line(&[
            "plinth_requests_total{",
            "service=\"test-metrics\"",
            "method=\"/grpc.health.v1.Health/Check\"",
            "status=\"OK\""
        ]),
        "{metrics}"
    );
    assert!(
        has_line(&[
            "plinth_request_duration_seconds_bucket{",
            "service=\"test-metrics\"",
            "method=\"GET /hello\""
        ]),
        "{metrics}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_services_in_both_versions() {
    let server = Running::start(ServerBuilder::new("test-reflection", local_config())).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(server.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from {names:?}"
        );
    }
    // Services this server does not serve are not advertised, though their descriptors are known.
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("plinth.schemaregistry.")
                || name.starts_with("plinth.datahub.")),
        "{names:?}"
    );

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut stream = AlphaClient::new(server.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(AlphaResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    assert!(
        list.service
            .iter()
            .any(|service| service.name == "grpc.health.v1.Health")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_rejected() {
    let mut config = local_config();
    config.max_request_body_bytes = 1024;
    let builder = ServerBuilder::new("test-limits", config).http_router(hello_router());
    let server = Running::start(builder).await;
    let http = reqwest::Client::new();

    let ok = http
        .post(server.http_url("/echo"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "1000");

    let too_large = http
        .post(server.http_url("/echo"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    let body: serde_json::Value = too_large.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["reason"], "REQUEST_BODY_TOO_LARGE");

    // A gRPC message over the limit fails with RESOURCE_EXHAUSTED.
    let status = health_status(server.channel().await, &"x".repeat(4096))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn slow_requests_time_out() {
    let mut config = local_config();
    config.request_timeout = Duration::from_millis(200);
    let router = axum::Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let builder = ServerBuilder::new("test-timeout", config)
        .http_router(router)
        .grpc_service(EchoService);
    let server = Running::start(builder).await;

    let response = reqwest::get(server.http_url("/slow")).await.unwrap();
    assert_eq!(response.status(), 504);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "DEADLINE_EXCEEDED");

    let status = grpc_unary(&server, &format!("/{ECHO_SERVICE}/Slow")).await;
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    let status = grpc_unary(&server, &format!("/{ECHO_SERVICE}/Fast")).await;
    assert_eq!(status.code(), tonic::Code::Ok, "{status:?}");
    server.shutdown().await.unwrap();
}

/// Calls a gRPC method with an empty message and returns the status.
async fn grpc_unary(server: &Running, path: &str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let path: http::uri::PathAndQuery = path.parse().unwrap();
    match grpc
        .unary::<(), (), _>(tonic::Request::new(()), path, EmptyCodec)
        .await
    {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

/// A codec for `()` messages (zero bytes on the wire).
#[derive(Default)]
struct EmptyCodec;

impl tonic::codec::Codec for EmptyCodec {
    type Encode = ();
    type Decode = ();
    type Encoder = EmptyCodec;
    type Decoder = EmptyCodec;

    fn encoder(&mut self) -> EmptyCodec {
        EmptyCodec
    }

    fn decoder(&mut self) -> EmptyCodec {
        EmptyCodec
    }
}

impl tonic::codec::Encoder for EmptyCodec {
    type Item = ();
    type Error = tonic::Status;

    fn encode(
        &mut self,
        (): (),
        _dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        Ok(())
    }
}

impl tonic::codec::Decoder for EmptyCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(
        &mut self,
        _src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<()>, tonic::Status> {
        Ok(Some(()))
    }
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let started = Arc::new(Notify::new());
    let router = axum::Router::new().route(
        "/slow",
        get({
            let started = Arc::clone(&started);
            move || async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }
        }),
    );
    let builder = ServerBuilder::new("test-shutdown", local_config()).http_router(router);
    let mut server = Running::start(builder).await;
    server.health.set_ready(true).await;

    let request = tokio::spawn(reqwest::get(server.http_url("/slow")));
    started.notified().await;
    server.begin_shutdown();

    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    let http_addr = server.http;
    server.shutdown().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(http_addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn auth_guards_both_listeners() {
    let mut tokens = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        tokens,
        "read reader-token reader\nwrite writer-token writer"
    )
    .unwrap();
    let mut config = local_config();
    config.auth.enabled = true;
    config.auth.tokens_file = Some(tokens.path().to_owned());
    let builder = ServerBuilder::new("test-auth", config)
        .http_router(hello_router())
        .grpc_service(EchoService);
    let server = Running::start(builder).await;
    server.health.set_ready(true).await;
    let http = reqwest::Client::new();

    let anonymous = http.get(server.http_url("/hello")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let reader = http
        .get(server.http_url("/hello"))
        .bearer_auth("reader-token")
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), 200);
    let reader_post = http
        .post(server.http_url("/echo"))
        .bearer_auth("reader-token")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(reader_post.status(), 403);
    for public in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            http.get(server.http_url(public))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{public}"
        );
    }

    // gRPC health is public; the echo service needs a token with the right role.
    assert_eq!(
        health_status(server.channel().await, "").await.unwrap(),
        ServingStatus::Serving
    );
    let status = grpc_unary(&server, &format!("/{ECHO_SERVICE}/Do")).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let grpc_url = server.grpc_url();
    let connect = |token: &str| {
        client::connect(
            &grpc_url,
            None,
            Some(token.to_owned()),
            Duration::from_secs(5),
        )
    };
    let mut grpc = tonic::client::Grpc::new(connect("reader-token").await.unwrap());
    grpc.ready().await.unwrap();
    let denied = grpc
        .unary::<(), (), _>(
            tonic::Request::new(()),
            format!("/{ECHO_SERVICE}/Do").parse().unwrap(),
            EmptyCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let error = plinth_runtime::error::ApiError::from_status(&denied);
    assert_eq!(error.metadata["required_role"], "write");

    let mut grpc = tonic::client::Grpc::new(connect("writer-token").await.unwrap());
    grpc.ready().await.unwrap();
    grpc.unary::<(), (), _>(
        tonic::Request::new(()),
        format!("/{ECHO_SERVICE}/Do").parse().unwrap(),
        EmptyCodec,
    )
    .await
    .unwrap();
    server.shutdown().await.unwrap();
}
