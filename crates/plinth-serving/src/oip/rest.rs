//! The protocol's REST form: `GET /v2` (server metadata), `/v2/health/{live,ready}`,
//! `/v2/models/{name}[/versions/{version}]` (metadata), `.../ready`, `POST .../infer`, and Triton's
//! repository extension `POST /v2/repository/index`, `/v2/repository/models/{name}/load` and
//! `/unload`. Health and readiness answer 200 for true and 400 for false, as the specification says;
//! errors are `{"error": "..."}` with the status of [`ServingError::http_status`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{InferCall, ModelMetadata, json as codec_json};
use crate::error::ServingError;
use crate::models::ModelManager;

/// The largest request body: an inference request's tensors or a repository request.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
struct Shared {
    manager: Arc<ModelManager>,
}

type Ctx = State<Arc<Shared>>;

/// The `/v2/...` routes, to be merged with the runtime's `/metrics`, `/healthz` and `/readyz`.
pub fn router(manager: Arc<ModelManager>) -> Router {
    let shared = Arc::new(Shared { manager });
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(version_infer),
        )
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/repository/models/{name}/load", post(repository_load))
        .route(
            "/v2/repository/models/{name}/unload",
            post(repository_unload),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// A [`ServingError`] as `{"error": "..."}`.
#[derive(Debug)]
struct RestError(ServingError);

impl From<ServingError> for RestError {
    fn from(err: ServingError) -> Self {
        RestError(err)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = self.0.http_status();
        (status, axum::Json(json!({"error": self.0.to_string()}))).into_response()
    }
}

type RestResult = Result<Response, RestError>;

/// 200 for true, 400 for false (the specification's boolean health answers).
fn boolean(value: bool) -> Response {
    if value {
        StatusCode::OK.into_response()
    } else {
        StatusCode::BAD_REQUEST.into_response()
    }
}

async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": super::SERVER_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": super::EXTENSIONS,
    }))
    .into_response()
}

async fn live() -> Response {
    boolean(true)
}

async fn ready(State(shared): Ctx) -> Response {
    boolean(shared.manager.is_ready())
}

fn metadata_json(metadata: ModelMetadata) -> Response {
    let tensors = |tensors: Vec<super::TensorMetadata>| -> Vec<Value> {
        tensors
            .into_iter()
            .map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape}))
            .collect()
    };
    axum::Json(json!({
        "name": metadata.name,
        "versions": metadata.versions,
        "platform": metadata.platform,
        "inputs": tensors(metadata.inputs),
        "outputs": tensors(metadata.outputs),
    }))
    .into_response()
}

async fn model_metadata(State(shared): Ctx, Path(name): Path<String>) -> RestResult {
    Ok(metadata_json(
        super::model_metadata(&shared.manager, &name, None).await?,
    ))
}

async fn version_metadata(
    State(shared): Ctx,
    Path((name, version)): Path<(String, String)>,
) -> RestResult {
    Ok(metadata_json(
        super::model_metadata(&shared.manager, &name, Some(&version)).await?,
    ))
}

async fn model_ready(State(shared): Ctx, Path(name): Path<String>) -> RestResult {
    Ok(boolean(super::model_ready(&shared.manager, &name, None)?))
}

async fn version_ready(
    State(shared): Ctx,
    Path((name, version)): Path<(String, String)>,
) -> RestResult {
    Ok(boolean(super::model_ready(
        &shared.manager,
        &name,
        Some(&version),
    )?))
}

async fn infer(
    State(shared): Ctx,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    run_infer(&shared, &name, None, &headers, &body).await
}

async fn version_infer(
    State(shared): Ctx,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    run_infer(&shared, &name, Some(&version), &headers, &body).await
}

async fn run_infer(
    shared: &Shared,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> RestResult {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && encoding.as_bytes() != b"identity"
    {
        return Err(ServingError::invalid(
            "Content-Encoding",
            format!(
                "compressed requests ({}) are not supported: send the body uncompressed",
                String::from_utf8_lossy(encoding.as_bytes())
            ),
        )
        .into());
    }
    let header_length = match headers.get(codec_json::HEADER_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ServingError::invalid(
                        "Inference-Header-Content-Length",
                        "must be the byte length of the JSON part of the body",
                    )
                })?,
        ),
    };
    let request = codec_json::decode_request(body, header_length)?;
    let requested: Vec<String> = request.outputs.iter().map(|(n, _)| n.clone()).collect();
    let call = InferCall {
        model: name,
        version,
        inputs: request.inputs,
        outputs: requested,
    };
    let (model, outputs) = super::infer(&shared.manager, call).await?;
    let binary: Vec<bool> = if request.outputs.is_empty() {
        vec![request.binary_by_default; outputs.len()]
    } else {
        request.outputs.iter().map(|(_, binary)| *binary).collect()
    };
    let encoded = codec_json::encode_response(
        &model.name,
        &model.version,
        request.id.as_deref(),
        outputs,
        &binary,
    )?;
    let mut response = encoded.body.into_response();
    let headers = response.headers_mut();
    match encoded.header_length {
        Some(length) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(codec_json::HEADER_LENGTH, HeaderValue::from(length));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(response)
}

/// A repository request's JSON body; an empty body is `{}` (tritonclient sends none for the index).
fn repository_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ServingError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|err| ServingError::invalid("body", format!("not a repository request: {err}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexBody {
    #[serde(default)]
    ready: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelBody {
    #[serde(default)]
    parameters: Map<String, Value>,
}

async fn repository_index(State(shared): Ctx, body: Bytes) -> RestResult {
    let body: IndexBody = repository_body(&body)?;
    let entries: Vec<Value> = super::repository_index(&shared.manager, body.ready)
        .await?
        .into_iter()
        .map(|e| {
            let mut entry = json!({"name": e.name, "version": e.version, "state": e.state});
            if !e.reason.is_empty() {
                entry["reason"] = Value::String(e.reason);
            }
            entry
        })
        .collect();
    Ok(axum::Json(entries).into_response())
}

/// The `version` parameter (a string or an integer); any parameter outside `accepted` is
/// INVALID_ARGUMENT.
fn rest_version(
    parameters: &Map<String, Value>,
    accepted: &[&str],
) -> Result<Option<String>, ServingError> {
    let mut version = None;
    for (key, value) in parameters {
        match (key.as_str(), value) {
            ("version", Value::String(v)) if !v.is_empty() => version = Some(v.clone()),
            ("version", Value::Number(n)) if n.is_i64() => version = Some(n.to_string()),
            ("version", _) => {
                return Err(ServingError::invalid(
                    "parameters.version",
                    "must be a non-empty string or an integer naming the version",
                ));
            }
            (key, _) if accepted.contains(&key) => {}
            ("config", _) => {
                return Err(ServingError::invalid(
                    "parameters.config",
                    "a configuration override is not supported: the model's model.yaml in the \
                     repository describes it",
                ));
            }
            (key, _) => {
                return Err(ServingError::invalid(
                    format!("parameters.{key}"),
                    format!(
                        "unknown parameter: the accepted ones are {}",
                        accepted.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(version)
}

async fn repository_load(State(shared): Ctx, Path(name): Path<String>, body: Bytes) -> RestResult {
    let body: ModelBody = repository_body(&body)?;
    let version = rest_version(&body.parameters, &["version"])?;
    shared.manager.load(&name, version.as_deref()).await?;
    Ok(StatusCode::OK.into_response())
}

async fn repository_unload(
    State(shared): Ctx,
    Path(name): Path<String>,
    body: Bytes,
) -> RestResult {
    let body: ModelBody = repository_body(&body)?;
    let version = rest_version(&body.parameters, &["version", "unload_dependents"])?;
    shared.manager.unload(&name, version.as_deref()).await?;
    Ok(StatusCode::OK.into_response())
}
