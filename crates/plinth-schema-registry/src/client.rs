//! The registry client other services use: resolves a subject (latest or pinned version) or a global id to
//! the schema and its compiled validator, over `plinth.schemaregistry.v1` gRPC, with a local cache so a
//! record is validated without a network call. Ids are immutable, so schemas by id are cached for the
//! process's life; "latest" is trusted for `latest_ttl`, so a new compatible version applies within it.
//! References are fetched transitively and resolved in memory, as the registry itself does.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use plinth_proto::ids::{SchemaId, Subject};
use plinth_proto::schemaregistry::v1 as pb;
use plinth_proto::schemaregistry::v1::schema_registry_service_client::SchemaRegistryServiceClient;
use plinth_runtime::client::AuthChannel;
use plinth_runtime::error::{ApiError, ErrorCode};
use serde_json::Value;

use crate::domain::schema::{SchemaDraft, parse_schema};
use crate::domain::validation::{CompiledValidator, ResolvedReferences};

/// A registered schema with its validator compiled.
#[derive(Debug)]
pub struct RegisteredSchema {
    /// The global id.
    pub id: SchemaId,
    /// The schema document.
    pub schema: Arc<Value>,
    /// The compiled validator, references resolved.
    pub validator: CompiledValidator,
}

/// A subject version resolved to its schema.
#[derive(Debug, Clone)]
pub struct SubjectSchema {
    /// The subject.
    pub subject: Subject,
    /// The version of the subject.
    pub version: i32,
    /// The schema.
    pub schema: Arc<RegisteredSchema>,
}

/// The cached registry client. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct RegistryClient {
    client: SchemaRegistryServiceClient<AuthChannel>,
    default_draft: SchemaDraft,
    latest_ttl: Duration,
    by_id: RwLock<HashMap<u32, Arc<RegisteredSchema>>>,
    pinned: RwLock<HashMap<(Subject, i32), SubjectSchema>>,
    latest: RwLock<HashMap<Subject, (Instant, SubjectSchema)>>,
    usages: RwLock<HashMap<(Subject, u32), Option<i32>>>,
}

/// A lock was poisoned by a panic elsewhere; the cache is only ever a copy, so keep going.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RegistryClient {
    /// A client over `channel` (see `plinth_runtime::client::connect_lazy`). `default_draft` reads schemas
    /// without `$schema` (the registry's `registry.default_draft`, 7 unless changed).
    pub fn new(channel: AuthChannel, default_draft: SchemaDraft, latest_ttl: Duration) -> Self {
        Self {
            client: SchemaRegistryServiceClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024),
            default_draft,
            latest_ttl,
            by_id: RwLock::default(),
            pinned: RwLock::default(),
            latest: RwLock::default(),
            usages: RwLock::default(),
        }
    }

    /// The schema of `subject` at `version` (`None`: the latest, re-read after `latest_ttl`).
    /// NOT_FOUND names the subject or version; UNAVAILABLE when the registry does not answer.
    pub async fn resolve(
        &self,
        subject: &Subject,
        version: Option<i32>,
    ) -> Result<SubjectSchema, ApiError> {
        match version {
            Some(version) => {
                let known = read(&self.pinned).get(&(subject.clone(), version)).cloned();
                if let Some(found) = known {
                    return Ok(found);
                }
                let found = self.fetch_version(subject, version).await?;
                write(&self.pinned).insert((subject.clone(), version), found.clone());
                Ok(found)
            }
            None => {
                let known = read(&self.latest).get(subject).cloned();
                if let Some((at, found)) = known
                    && at.elapsed() < self.latest_ttl
                {
                    return Ok(found);
                }
                let found = self.fetch_version(subject, -1).await?;
                write(&self.latest).insert(subject.clone(), (Instant::now(), found.clone()));
                Ok(found)
            }
        }
    }

    /// Forgets the cached latest version of `subject`, so the next [`resolve`](Self::resolve) asks.
    pub fn invalidate_latest(&self, subject: &Subject) {
        write(&self.latest).remove(subject);
    }

    /// The schema with global id `id`. NOT_FOUND when no schema has it.
    pub async fn by_id(&self, id: SchemaId) -> Result<Arc<RegisteredSchema>, ApiError> {
        let known = read(&self.by_id).get(&id.value).cloned();
        if let Some(found) = known {
            return Ok(found);
        }
        let response = self
            .client
            .clone()
            .get_schema(pb::GetSchemaRequest { id: Some(id) })
            .await
            .map_err(|status| registry_error(&status, &format!("schema id {id}")))?
            .into_inner();
        let schema = response.schema.ok_or_else(|| missing("schema"))?;
        self.compile(id, &schema).await
    }

    /// The version of `subject` that holds schema `id`, or `None` when the subject does not hold it.
    pub async fn version_of(
        &self,
        subject: &Subject,
        id: SchemaId,
    ) -> Result<Option<i32>, ApiError> {
        let key = (subject.clone(), id.value);
        let known = read(&self.usages).get(&key).copied();
        if let Some(found) = known {
            return Ok(found);
        }
        let response = self
            .client
            .clone()
            .get_schema_usages(pb::GetSchemaUsagesRequest {
                id: Some(id),
                deleted: true,
            })
            .await
            .map_err(|status| registry_error(&status, &format!("schema id {id}")))?
            .into_inner();
        let version = response
            .usages
            .iter()
            .filter(|usage| usage.subject.as_ref() == Some(subject))
            .map(|usage| usage.version)
            .max();
        // A later registration can only add usages of other subjects or versions of this one; caching a
        // found version is safe, a miss is re-asked next time.
        if version.is_some() {
            write(&self.usages).insert(key, version);
        }
        Ok(version)
    }

    async fn fetch_version(
        &self,
        subject: &Subject,
        version: i32,
    ) -> Result<SubjectSchema, ApiError> {
        let response = self
            .client
            .clone()
            .get_subject_version(pb::GetSubjectVersionRequest {
                subject: Some(subject.clone()),
                version,
                deleted: false,
            })
            .await
            .map_err(|status| {
                let what = if version > 0 {
                    format!("subject `{subject}` version {version}")
                } else {
                    format!("subject `{subject}`")
                };
                registry_error(&status, &what)
            })?
            .into_inner();
        let found = response.version.ok_or_else(|| missing("version"))?;
        let id = found.id.ok_or_else(|| missing("version.id"))?;
        let known = read(&self.by_id).get(&id.value).cloned();
        let schema = match known {
            Some(known) => known,
            None => {
                let document = found.schema.ok_or_else(|| missing("version.schema"))?;
                self.compile(id, &document).await?
            }
        };
        Ok(SubjectSchema {
            subject: subject.clone(),
            version: found.version,
            schema,
        })
    }

    async fn compile(
        &self,
        id: SchemaId,
        schema: &pb::Schema,
    ) -> Result<Arc<RegisteredSchema>, ApiError> {
        if schema.schema_type() != pb::SchemaType::Json {
            return Err(ApiError::failed_precondition(
                "SCHEMA_NOT_JSON",
                format!("schema id {id} is not a JSON Schema; Plinth validates JSON records only"),
            ));
        }
        let parsed = parse_schema(&schema.schema, self.default_draft).map_err(|err| {
            ApiError::internal(format!("registered schema id {id} does not parse: {err}"))
        })?;
        let references = self.resolve_references(&schema.references).await?;
        let validator = CompiledValidator::compile(&parsed.value, parsed.draft, references)
            .map_err(|err| {
                ApiError::internal(format!("registered schema id {id} does not compile: {err}"))
            })?;
        let registered = Arc::new(RegisteredSchema {
            id,
            schema: Arc::new(parsed.value),
            validator,
        });
        write(&self.by_id).insert(id.value, registered.clone());
        Ok(registered)
    }

    /// Fetches every referenced schema, transitively, keyed by the name used in `$ref`.
    async fn resolve_references(
        &self,
        references: &[pb::SchemaReference],
    ) -> Result<ResolvedReferences, ApiError> {
        let mut resolved = ResolvedReferences::new();
        let mut pending: Vec<pb::SchemaReference> = references.to_vec();
        while let Some(reference) = pending.pop() {
            if resolved.contains_key(&reference.name) {
                continue;
            }
            let subject = reference.subject.clone().unwrap_or_default();
            let response = self
                .client
                .clone()
                .get_subject_version(pb::GetSubjectVersionRequest {
                    subject: Some(subject.clone()),
                    version: reference.version,
                    deleted: true,
                })
                .await
                .map_err(|status| {
                    registry_error(
                        &status,
                        &format!(
                            "reference `{}` (subject `{subject}` version {})",
                            reference.name, reference.version
                        ),
                    )
                })?
                .into_inner();
            let document = response
                .version
                .and_then(|version| version.schema)
                .ok_or_else(|| missing("version.schema"))?;
            let value: Value = serde_json::from_str(&document.schema).map_err(|err| {
                ApiError::internal(format!("reference `{}` is not JSON: {err}", reference.name))
            })?;
            resolved.insert(reference.name.clone(), Arc::new(value));
            pending.extend(document.references);
        }
        Ok(resolved)
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::internal(format!("the schema registry answered without `{field}`"))
}

/// Keeps NOT_FOUND (with what was looked up) and reports everything else as the registry being
/// unavailable, so callers answer UNAVAILABLE and clients retry.
fn registry_error(status: &tonic::Status, what: &str) -> ApiError {
    let inner = ApiError::from_status(status);
    match inner.code {
        ErrorCode::NotFound => ApiError::not_found(
            inner.reason.clone(),
            format!(
                "{what} is not registered in the schema registry ({}); register it first with `plinth schema register`",
                inner.message
            ),
        ),
        ErrorCode::PermissionDenied | ErrorCode::Unauthenticated => ApiError::new(
            ErrorCode::FailedPrecondition,
            "REGISTRY_ACCESS_DENIED",
            format!(
                "the schema registry refused the gateway's token ({}); give the gateway a token with the read role (registry.token)",
                inner.message
            ),
        ),
        _ => ApiError::unavailable(
            "REGISTRY_UNAVAILABLE",
            format!(
                "the schema registry did not answer for {what}: {}; check registry.url and that the registry is running",
                status.message()
            ),
        ),
    }
}
