//! The Confluent Schema Registry REST API, so existing Kafka serializers and tools work unchanged.
//! Error bodies are `{"error_code", "message"}` with Confluent's codes; boolean query parameters are read
//! case-insensitively (the Python client sends `True`/`False`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use plinth_proto::ids::{SchemaId, Subject};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::config::{CompatibilityConfig, CompatibilityLevel, CompatibilityPolicy, Mode};
use crate::domain::schema::{SchemaReference, SchemaType};
use crate::error::Error;
use crate::registry::{
    DeletedFilter, Registry, SchemaInput, StoredSchema, ValidationTarget, VersionSpec, VersionView,
};

/// The media type of every response, as Confluent sends it.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Params = Query<HashMap<String, String>>;
type Shared = State<Arc<Registry>>;

/// The REST router (to be merged with the runtime's `/metrics`, `/healthz`, `/readyz`).
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root).post(root))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route(
            "/subjects/{subject}/versions/{version}/validate",
            post(validate_by_version),
        )
        .route("/schemas", get(list_schemas))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(get_schema))
        .route("/schemas/ids/{id}/schema", get(get_schema_text))
        .route("/schemas/ids/{id}/subjects", get(get_schema_subjects))
        .route("/schemas/ids/{id}/versions", get(get_schema_versions))
        .route("/schemas/ids/{id}/validate", post(validate_by_id))
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route(
            "/mode",
            get(get_global_mode)
                .put(put_global_mode)
                .delete(delete_global_mode),
        )
        .route(
            "/mode/{subject}",
            get(get_subject_mode)
                .put(put_subject_mode)
                .delete(delete_subject_mode),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_version),
        )
        .route("/contexts", get(contexts))
        .route(
            "/associations/resources/{namespace}/{resource}",
            get(no_associations),
        )
        .fallback(not_found)
        // The runtime's body-limit layer enforces `server.max_request_body_bytes` for every route.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(registry)
}

/// A REST error: Confluent's body and status.
#[derive(Debug)]
pub struct RestError {
    status: u16,
    error_code: u32,
    message: String,
}

impl From<Error> for RestError {
    fn from(err: Error) -> Self {
        Self {
            status: err.http_status(),
            error_code: err.error_code(),
            message: err.public_message(),
        }
    }
}

impl RestError {
    fn plain(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code: u32::from(status),
            message: message.into(),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error_code": self.error_code, "message": self.message});
        (
            status,
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}

type RestResult = Result<Response, RestError>;

fn ok(value: Value) -> RestResult {
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response())
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

fn filter(params: &HashMap<String, String>) -> DeletedFilter {
    DeletedFilter {
        deleted: flag(params, "deleted"),
        deleted_only: flag(params, "deletedOnly"),
    }
}

fn parse_id(value: &str) -> Result<SchemaId, RestError> {
    value
        .parse::<u32>()
        .map(SchemaId::new)
        .map_err(|_| Error::SchemaNotFound { id: None }.into())
}

/// Reads a JSON request body, refusing other media types with 415 and malformed JSON with 400.
fn json_body<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, RestError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let accepted = [
            "application/vnd.schemaregistry.v1+json",
            "application/vnd.schemaregistry+json",
            "application/json",
            "application/octet-stream",
            "",
        ];
        if !accepted.contains(&media) {
            return Err(RestError::plain(
                415,
                format!(
                    "HTTP 415 Unsupported Media Type: `{media}`; send application/vnd.schemaregistry.v1+json or application/json"
                ),
            ));
        }
    }
    serde_json::from_slice(body).map_err(|err| {
        RestError::plain(
            400,
            format!(
                "malformed request body at line {} column {}: {err}",
                err.line(),
                err.column()
            ),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: Option<String>,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<ReferenceBody>,
    id: Option<u32>,
    version: Option<i32>,
}

#[derive(Debug, Deserialize)]
struct ReferenceBody {
    name: String,
    subject: String,
    version: i32,
}

impl SchemaBody {
    fn into_input(self) -> Result<(SchemaInput, Option<u32>, Option<i32>), RestError> {
        let text = self.schema.ok_or_else(|| Error::InvalidRequest {
            field: "schema".into(),
            reason: "missing; send the JSON Schema as a string in `schema`".into(),
        })?;
        let schema_type = match self.schema_type.as_deref() {
            None | Some("") => SchemaType::Json,
            Some(other) => other.parse().map_err(|detail| Error::InvalidSchema {
                schema: String::new(),
                detail,
            })?,
        };
        let references = self
            .references
            .into_iter()
            .map(|reference| SchemaReference {
                name: reference.name,
                subject: Subject::new(reference.subject),
                version: reference.version,
            })
            .collect();
        Ok((
            SchemaInput {
                text,
                schema_type,
                references,
            },
            self.id,
            self.version,
        ))
    }
}

fn references_json(references: &[SchemaReference]) -> Value {
    Value::Array(
        references
            .iter()
            .map(|reference| json!({"name": reference.name, "subject": reference.subject.as_str(), "version": reference.version}))
            .collect(),
    )
}

/// `"schema":..,"schemaType":..[,"references":..]`: the members every schema answer carries, encoded
/// once per schema (escaping a large schema text on every read was the biggest cost of a cached read).
fn schema_members(schema: &StoredSchema) -> Arc<str> {
    schema.encoded_once(|schema| {
        let mut members = String::with_capacity(schema.text.len() + 64);
        members.push_str("\"schema\":");
        members.push_str(&Value::String(schema.text.clone()).to_string());
        members.push_str(",\"schemaType\":\"");
        members.push_str(schema.schema_type.as_str());
        members.push('"');
        if !schema.references.is_empty() {
            members.push_str(",\"references\":");
            members.push_str(&references_json(&schema.references).to_string());
        }
        members
    })
}

/// Confluent's answer for one subject version.
fn version_body(view: &VersionView) -> String {
    let members = schema_members(&view.schema);
    let subject = Value::String(view.subject.value.clone()).to_string();
    let mut body = String::with_capacity(members.len() + subject.len() + 64);
    body.push_str("{\"subject\":");
    body.push_str(&subject);
    body.push_str(&format!(
        ",\"version\":{},\"id\":{},",
        view.version, view.schema.id.value
    ));
    body.push_str(&members);
    if view.deleted {
        body.push_str(",\"deleted\":true");
    }
    body.push('}');
    body
}

fn ok_body(body: String) -> RestResult {
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

async fn root() -> RestResult {
    ok(json!({}))
}

async fn not_found() -> RestError {
    RestError::plain(404, "HTTP 404 Not Found")
}

async fn list_subjects(State(registry): Shared, Query(params): Params) -> RestResult {
    let prefix = params
        .get("subjectPrefix")
        .map(String::as_str)
        .unwrap_or_default();
    let subjects = registry.subjects(prefix, filter(&params)).await?;
    let page = paginate(subjects, &params)?;
    ok(Value::Array(
        page.into_iter()
            .map(|subject| Value::String(subject.value))
            .collect(),
    ))
}

/// Confluent's `offset` and `limit` query parameters (`limit` -1 or absent: no limit).
fn paginate<T>(items: Vec<T>, params: &HashMap<String, String>) -> Result<Vec<T>, RestError> {
    let number = |name: &str| -> Result<Option<i64>, RestError> {
        params
            .get(name)
            .map(|value| {
                value.trim().parse::<i64>().map_err(|_| {
                    Error::InvalidRequest {
                        field: name.to_owned(),
                        reason: format!("`{value}` is not an integer"),
                    }
                    .into()
                })
            })
            .transpose()
    };
    let offset = usize::try_from(number("offset")?.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
    let limit = match number("limit")? {
        Some(limit) if limit >= 0 => usize::try_from(limit).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    Ok(items.into_iter().skip(offset).take(limit).collect())
}

/// `GET /schemas`: every version of every subject (or the latest only), as Confluent lists them.
async fn list_schemas(State(registry): Shared, Query(params): Params) -> RestResult {
    let prefix = params
        .get("subjectPrefix")
        .map(String::as_str)
        .unwrap_or_default();
    let deleted = flag(&params, "deleted");
    let latest_only = flag(&params, "latestOnly");
    let filter = DeletedFilter {
        deleted,
        deleted_only: false,
    };
    let mut views = Vec::new();
    for subject in registry.subjects(prefix, filter).await? {
        if latest_only {
            views.push(
                registry
                    .version(&subject, VersionSpec::Latest, deleted)
                    .await?,
            );
            continue;
        }
        for version in registry.versions(&subject, filter).await? {
            views.push(
                registry
                    .version(&subject, VersionSpec::Number(version), deleted)
                    .await?,
            );
        }
    }
    let page = paginate(views, &params)?;
    let bodies: Vec<String> = page.iter().map(version_body).collect();
    ok_body(format!("[{}]", bodies.join(",")))
}

async fn lookup(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let (input, _, _) = json_body::<SchemaBody>(&headers, &body)?.into_input()?;
    let view = registry
        .lookup(&Subject::new(subject), input, flag(&params, "deleted"))
        .await?;
    ok_body(version_body(&view))
}

async fn delete_subject(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
) -> RestResult {
    let versions = registry
        .delete_subject(&Subject::new(subject), flag(&params, "permanent"))
        .await?;
    ok(json!(versions))
}

async fn list_versions(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
) -> RestResult {
    let subject = Subject::new(subject);
    let versions = paginate(registry.versions(&subject, filter(&params)).await?, &params)?;
    if !flag(&params, "deletedAsNegative") {
        return ok(json!(versions));
    }
    // Confluent's `deletedAsNegative`: soft-deleted versions are listed as negative numbers.
    let live = registry
        .versions(&subject, DeletedFilter::default())
        .await
        .unwrap_or_default();
    let signed: Vec<i32> = versions
        .into_iter()
        .map(|version| {
            if live.contains(&version) {
                version
            } else {
                -version
            }
        })
        .collect();
    ok(json!(signed))
}

async fn register(
    State(registry): Shared,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let (input, id, version) = json_body::<SchemaBody>(&headers, &body)?.into_input()?;
    let subject = Subject::new(subject);
    let view = registry
        .register(&subject, input, id.map(SchemaId::new), version)
        .await?;
    ok_body(version_body(&view))
}

async fn get_version(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> RestResult {
    let view = requested_version(&registry, subject, &version, &params).await?;
    ok_body(version_body(&view))
}

/// The version a `/subjects/{subject}/versions/{version}` path names, with `?deleted=`.
async fn requested_version(
    registry: &Registry,
    subject: String,
    version: &str,
    params: &HashMap<String, String>,
) -> Result<VersionView, RestError> {
    let spec = VersionSpec::parse(version)?;
    Ok(registry
        .version(&Subject::new(subject), spec, flag(params, "deleted"))
        .await?)
}

async fn get_version_schema(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> RestResult {
    let view = requested_version(&registry, subject, &version, &params).await?;
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        view.schema.text.clone(),
    )
        .into_response())
}

async fn referenced_by(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
) -> RestResult {
    let ids = registry
        .referenced_by(&Subject::new(subject), VersionSpec::parse(&version)?)
        .await?;
    ok(json!(ids.iter().map(|id| id.value).collect::<Vec<_>>()))
}

async fn delete_version(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> RestResult {
    let deleted = registry
        .delete_version(
            &Subject::new(subject),
            VersionSpec::parse(&version)?,
            flag(&params, "permanent"),
        )
        .await?;
    ok(json!(deleted))
}

async fn schema_types() -> RestResult {
    ok(json!(["JSON"]))
}

async fn get_schema(State(registry): Shared, Path(id): Path<String>) -> RestResult {
    let schema = registry.schema_by_id(parse_id(&id)?).await?;
    ok_body(format!("{{{}}}", schema_members(&schema)))
}

async fn get_schema_text(State(registry): Shared, Path(id): Path<String>) -> RestResult {
    let schema = registry.schema_by_id(parse_id(&id)?).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], schema.text.clone()).into_response())
}

async fn get_schema_subjects(
    State(registry): Shared,
    Path(id): Path<String>,
    Query(params): Params,
) -> RestResult {
    let usages = registry.usages(parse_id(&id)?, filter(&params)).await?;
    let mut subjects: Vec<String> = usages
        .into_iter()
        .map(|(subject, _)| subject.value)
        .collect();
    subjects.dedup();
    ok(json!(subjects))
}

async fn get_schema_versions(
    State(registry): Shared,
    Path(id): Path<String>,
    Query(params): Params,
) -> RestResult {
    let usages = registry.usages(parse_id(&id)?, filter(&params)).await?;
    ok(Value::Array(
        usages
            .into_iter()
            .map(|(subject, version)| json!({"subject": subject.value, "version": version}))
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigBody {
    compatibility: Option<String>,
    compatibility_level: Option<String>,
    compatibility_policy: Option<String>,
}

fn config_json(config: CompatibilityConfig, key: &str) -> Value {
    let mut body = json!({key: config.level.as_str()});
    if config.policy != CompatibilityPolicy::Strict {
        body["compatibilityPolicy"] = json!(config.policy.as_str());
    }
    body
}

async fn read_config(
    registry: &Registry,
    subject: Option<Subject>,
    params: &HashMap<String, String>,
) -> RestResult {
    let config = registry
        .config(subject.as_ref(), flag(params, "defaultToGlobal"))
        .await?;
    ok(config_json(config, "compatibilityLevel"))
}

async fn write_config(
    registry: &Registry,
    subject: Option<Subject>,
    headers: &HeaderMap,
    body: &Bytes,
) -> RestResult {
    let request = json_body::<ConfigBody>(headers, body)?;
    let current = registry.config(subject.as_ref(), true).await?;
    let level = match request.compatibility.or(request.compatibility_level) {
        Some(value) => value
            .parse::<CompatibilityLevel>()
            .map_err(|_| Error::InvalidCompatibilityLevel { value })?,
        None => current.level,
    };
    let policy = match request.compatibility_policy {
        Some(value) => {
            value
                .parse::<CompatibilityPolicy>()
                .map_err(|err| Error::InvalidRequest {
                    field: "compatibilityPolicy".into(),
                    reason: err.to_string(),
                })?
        }
        None => current.policy,
    };
    let config = registry
        .set_config(subject.as_ref(), CompatibilityConfig { level, policy })
        .await?;
    ok(config_json(config, "compatibility"))
}

async fn get_global_config(State(registry): Shared, Query(params): Params) -> RestResult {
    read_config(&registry, None, &params).await
}

async fn get_subject_config(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
) -> RestResult {
    read_config(&registry, Some(Subject::new(subject)), &params).await
}

async fn put_global_config(State(registry): Shared, headers: HeaderMap, body: Bytes) -> RestResult {
    write_config(&registry, None, &headers, &body).await
}

async fn put_subject_config(
    State(registry): Shared,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    write_config(&registry, Some(Subject::new(subject)), &headers, &body).await
}

async fn delete_global_config(State(registry): Shared) -> RestResult {
    let previous = registry.delete_config(None).await?;
    ok(config_json(previous, "compatibilityLevel"))
}

async fn delete_subject_config(State(registry): Shared, Path(subject): Path<String>) -> RestResult {
    let previous = registry.delete_config(Some(&Subject::new(subject))).await?;
    ok(config_json(previous, "compatibilityLevel"))
}

#[derive(Debug, Deserialize)]
struct ModeBody {
    mode: Option<String>,
}

async fn read_mode(
    registry: &Registry,
    subject: Option<Subject>,
    params: &HashMap<String, String>,
) -> RestResult {
    let mode = registry
        .mode(subject.as_ref(), flag(params, "defaultToGlobal"))
        .await?;
    ok(json!({"mode": mode.as_str()}))
}

async fn write_mode(
    registry: &Registry,
    subject: Option<Subject>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> RestResult {
    let request = json_body::<ModeBody>(headers, body)?;
    let value = request.mode.unwrap_or_default();
    let mode = value
        .parse::<Mode>()
        .map_err(|_| Error::InvalidMode { value })?;
    let mode = registry
        .set_mode(subject.as_ref(), mode, flag(params, "force"))
        .await?;
    ok(json!({"mode": mode.as_str()}))
}

async fn get_global_mode(State(registry): Shared, Query(params): Params) -> RestResult {
    read_mode(&registry, None, &params).await
}

async fn get_subject_mode(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
) -> RestResult {
    read_mode(&registry, Some(Subject::new(subject)), &params).await
}

async fn put_global_mode(
    State(registry): Shared,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    write_mode(&registry, None, &params, &headers, &body).await
}

async fn put_subject_mode(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    write_mode(
        &registry,
        Some(Subject::new(subject)),
        &params,
        &headers,
        &body,
    )
    .await
}

async fn delete_global_mode(State(registry): Shared) -> RestResult {
    let previous = registry.delete_mode(None).await?;
    ok(json!({"mode": previous.as_str()}))
}

async fn delete_subject_mode(State(registry): Shared, Path(subject): Path<String>) -> RestResult {
    let previous = registry.delete_mode(Some(&Subject::new(subject))).await?;
    ok(json!({"mode": previous.as_str()}))
}

async fn check(
    registry: &Registry,
    subject: String,
    version: Option<VersionSpec>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> RestResult {
    let verbose = flag(params, "verbose");
    let (input, _, _) = json_body::<SchemaBody>(headers, body)?.into_input()?;
    let subject = Subject::new(subject);
    match registry.check_compatibility(&subject, input, version).await {
        Ok(messages) => {
            let mut body = json!({"is_compatible": messages.is_empty()});
            if verbose {
                body["messages"] = json!(messages);
            }
            ok(body)
        }
        Err(err @ Error::InvalidSchema { .. }) if verbose => {
            ok(json!({"is_compatible": false, "messages": [err.to_string()]}))
        }
        Err(err) => Err(err.into()),
    }
}

async fn check_all(
    State(registry): Shared,
    Path(subject): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    check(&registry, subject, None, &params, &headers, &body).await
}

async fn check_version(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let spec = VersionSpec::parse(&version)?;
    check(&registry, subject, Some(spec), &params, &headers, &body).await
}

async fn contexts() -> RestResult {
    ok(json!(["."]))
}

/// Plinth has no Confluent "associations"; clients (confluent-kafka 2.16) need a 404 to fall back to
/// the topic name strategy.
async fn no_associations() -> RestError {
    RestError {
        status: 404,
        error_code: 40401,
        message: "no associations for this resource".into(),
    }
}

#[derive(Debug, Deserialize)]
struct ValidateBody {
    documents: Vec<Value>,
}

async fn validate(
    registry: &Registry,
    target: ValidationTarget,
    headers: &HeaderMap,
    body: &Bytes,
) -> RestResult {
    let request = json_body::<ValidateBody>(headers, body)?;
    let documents: Vec<String> = request.documents.iter().map(Value::to_string).collect();
    let (id, results) = registry.validate(target, &documents).await?;
    let results: Vec<Value> = results
        .into_iter()
        .enumerate()
        .map(|(index, errors)| {
            json!({
                "index": index,
                "valid": errors.is_empty(),
                "errors": errors.iter().map(|err| json!({
                    "instance_path": err.instance_path,
                    "schema_path": err.schema_path,
                    "message": err.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    ok(json!({"id": id.value, "results": results}))
}

async fn validate_by_id(
    State(registry): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    validate(
        &registry,
        ValidationTarget::Id(parse_id(&id)?),
        &headers,
        &body,
    )
    .await
}

async fn validate_by_version(
    State(registry): Shared,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let target =
        ValidationTarget::SubjectVersion(Subject::new(subject), VersionSpec::parse(&version)?);
    validate(&registry, target, &headers, &body).await
}
