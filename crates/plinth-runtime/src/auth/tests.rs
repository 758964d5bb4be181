use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tower::{ServiceBuilder, ServiceExt as _, service_fn};

use super::*;

const TOKENS: &str = "
# role  token        name
read    r-token      reader
write   w-token      writer   # trailing comment
admin   a-token
";

fn store() -> Arc<TokenStore> {
    Arc::new(TokenStore::parse(TOKENS, Path::new("tokens.txt")).unwrap())
}

#[test]
fn tokens_file_is_parsed() {
    let store = store();
    assert_eq!(store.len(), 3);
    assert_eq!(
        store.authenticate("r-token"),
        Some(Caller {
            role: Role::Read,
            name: "reader".to_owned()
        })
    );
    assert_eq!(store.authenticate("a-token").unwrap().name, "line 5");
    assert_eq!(store.authenticate("nope"), None);
    assert_eq!(store.authenticate("r-toke"), None);
    assert!(
        !format!("{store:?}").contains("r-token"),
        "Debug must not show tokens"
    );
}

#[test]
fn malformed_tokens_files_are_rejected_with_the_line() {
    let path = Path::new("tokens.txt");
    let err = TokenStore::parse("read r\nroot t\n", path)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("tokens file tokens.txt line 2: unknown role `root`"),
        "{err}"
    );
    let err = TokenStore::parse("write\n", path).unwrap_err().to_string();
    assert!(err.contains("line 1: missing token"), "{err}");
    let err = TokenStore::parse("read a b c\n", path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("too many words"), "{err}");
    let err = TokenStore::parse("# nothing\n\n", path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no token"), "{err}");
}

#[test]
fn roles_are_ordered() {
    assert!(Role::Admin > Role::Write && Role::Write > Role::Read);
}

#[test]
fn default_policy() {
    let policy = DefaultAccessPolicy;
    let check = |method: Method, path: &str| policy.required_role(&method, path);
    assert_eq!(check(Method::POST, "/grpc.health.v1.Health/Check"), None);
    assert_eq!(
        check(
            Method::POST,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ),
        None
    );
    assert_eq!(check(Method::GET, "/metrics"), None);
    assert_eq!(check(Method::GET, "/healthz"), None);
    assert_eq!(check(Method::GET, "/readyz"), None);
    for method in [
        "GetSchema",
        "ListSubjects",
        "LookupSchema",
        "CheckCompatibility",
        "ValidateSchema",
        "DescribeRun",
        "WatchRuns",
        "SubscribeEvents",
        "ServerReady",
        "ModelInfer",
    ] {
        assert_eq!(
            check(Method::POST, &format!("/plinth.x.v1.Svc/{method}")),
            Some(Role::Read),
            "{method}"
        );
    }
    for method in ["RegisterSchema", "DeleteSubject", "Getaway2"] {
        let expected = if method.starts_with("Get") {
            Role::Read
        } else {
            Role::Write
        };
        assert_eq!(
            check(Method::POST, &format!("/plinth.x.v1.Svc/{method}")),
            Some(expected),
            "{method}"
        );
    }
    assert_eq!(check(Method::GET, "/v1/subjects"), Some(Role::Read));
    assert_eq!(check(Method::HEAD, "/v1/subjects"), Some(Role::Read));
    assert_eq!(check(Method::POST, "/v1/subjects"), Some(Role::Write));
    assert_eq!(check(Method::DELETE, "/v1/subjects/x"), Some(Role::Write));
}

/// An inner service that echoes the caller it was given.
async fn echo_caller(request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let caller = request
        .extensions()
        .get::<Caller>()
        .map(|caller| format!("{} {}", caller.role, caller.name))
        .unwrap_or_else(|| "anonymous".to_owned());
    Ok(Response::new(Body::from(caller)))
}

async fn call(method: Method, path: &str, token: Option<&str>, grpc: bool) -> Response<Body> {
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(store(), Arc::new(DefaultAccessPolicy)))
        .service(service_fn(echo_caller));
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if grpc {
        request = request.header("content-type", "application/grpc");
    }
    service
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: Response<Body>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn http_without_token_is_401_json() {
    let response = call(Method::GET, "/v1/subjects", None, false).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["reason"], "MISSING_TOKEN");

    let response = call(Method::GET, "/v1/subjects", Some("wrong"), false).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(body["error"]["reason"], "INVALID_TOKEN");
}

#[tokio::test]
async fn grpc_without_token_is_unauthenticated_status() {
    let response = call(Method::POST, "/plinth.x.v1.Svc/RegisterSchema", None, true).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["grpc-status"], "16");
    assert_eq!(response.headers()["content-type"], "application/grpc");
}

#[tokio::test]
async fn read_token_on_write_route_is_forbidden() {
    let response = call(Method::POST, "/v1/subjects", Some("r-token"), false).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(body["error"]["code"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["metadata"]["required_role"], "write");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs the write role")
    );

    let response = call(
        Method::POST,
        "/plinth.x.v1.Svc/RegisterSchema",
        Some("r-token"),
        true,
    )
    .await;
    let status = tonic::Status::from_header_map(response.headers()).unwrap();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let error = crate::error::ApiError::from_status(&status);
    assert_eq!(error.reason, "INSUFFICIENT_ROLE");
    assert_eq!(error.metadata["required_role"], "write");
}

#[tokio::test]
async fn sufficient_roles_pass_with_the_caller_in_extensions() {
    let response = call(Method::POST, "/v1/subjects", Some("a-token"), false).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "admin line 5");
    let response = call(Method::POST, "/v1/subjects", Some("w-token"), false).await;
    assert_eq!(text(response).await, "write writer");
    let response = call(Method::GET, "/v1/subjects", Some("r-token"), false).await;
    assert_eq!(text(response).await, "read reader");
}

#[tokio::test]
async fn public_paths_need_no_token() {
    for path in ["/metrics", "/healthz", "/readyz"] {
        let response = call(Method::GET, path, None, false).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(text(response).await, "anonymous");
    }
    let response = call(Method::POST, "/grpc.health.v1.Health/Check", None, true).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("grpc-status").is_none());
}

#[test]
fn auth_layer_fits_a_tonic_server() {
    // Compile-time check that the layer is accepted by tonic's own server builder, not only by axum.
    let (_reporter, health) = tonic_health::server::health_reporter();
    let _router = tonic::transport::Server::builder()
        .layer(AuthLayer::new(store(), Arc::new(DefaultAccessPolicy)))
        .add_service(health);
}
