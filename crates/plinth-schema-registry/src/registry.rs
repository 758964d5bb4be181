//! The registry's operations, shared by the gRPC and REST APIs: Confluent's semantics for subjects,
//! versions, ids, compatibility, modes and deletes, on top of the store and the read cache.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use plinth_proto::ids::{SchemaId, Subject};
use serde_json::Value;

use crate::cache::{Cache, CompatKey, Settings};
use crate::domain::compatibility::{SchemaSide, check_pair, config_summary, versions_to_check};
use crate::domain::config::{CompatibilityConfig, Mode};
use crate::domain::schema::{
    InvalidSchema, SchemaDraft, SchemaReference, SchemaType, fingerprint, parse_schema,
};
use crate::domain::subject::validate_subject;
use crate::domain::validation::{CompiledValidator, PayloadError, ResolvedReferences};
use crate::error::{Error, Result, shorten};
use crate::store::{Backend, NewVersion, SETTINGS_CHANGED, Store, StoreError, VersionRow};

/// A boxed future, for the recursion between loading a schema and resolving its references.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How deep references may nest (a guard against cycles created in IMPORT mode).
const MAX_REFERENCE_DEPTH: usize = 32;
/// How often a registration is retried when another writer changed the subject meanwhile.
const MAX_REGISTER_ATTEMPTS: usize = 16;

/// Registry behaviour settings (the `[registry]` configuration block).
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// The draft for schemas without `$schema`.
    pub default_draft: SchemaDraft,
    /// The largest schema text accepted, in bytes.
    pub max_schema_bytes: usize,
    /// The `error_code` of an incompatible registration: 409 (Confluent up to 2025) or 40901.
    pub incompatible_error_code: u32,
    /// The most documents one validation request may carry.
    pub max_validation_documents: usize,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            default_draft: SchemaDraft::Draft7,
            max_schema_bytes: 1024 * 1024,
            incompatible_error_code: 409,
            max_validation_documents: 10_000,
        }
    }
}

/// A schema as a client sends it.
#[derive(Debug, Clone, Default)]
pub struct SchemaInput {
    /// The schema text.
    pub text: String,
    /// The schema type.
    pub schema_type: SchemaType,
    /// References to other registered schemas.
    pub references: Vec<SchemaReference>,
}

/// A client schema after parsing, meta-validation and reference resolution.
#[derive(Debug)]
pub struct PreparedSchema {
    /// The identity across subjects.
    pub fingerprint: Arc<str>,
    /// Canonical text.
    pub canonical: String,
    /// The document.
    pub value: Arc<Value>,
    /// The draft.
    pub draft: SchemaDraft,
    /// The type.
    pub schema_type: SchemaType,
    /// The references as given.
    pub references: Vec<SchemaReference>,
    /// The referenced documents by name, transitively.
    pub resolved: ResolvedReferences,
}

/// A registered schema, as cached.
#[derive(Debug)]
pub struct StoredSchema {
    /// Global id.
    pub id: SchemaId,
    /// Type.
    pub schema_type: SchemaType,
    /// Canonical text.
    pub text: String,
    /// References.
    pub references: Vec<SchemaReference>,
    /// Fingerprint.
    pub fingerprint: Arc<str>,
    /// Parsed document.
    pub value: Arc<Value>,
    /// Draft.
    pub draft: SchemaDraft,
    /// Referenced documents by name, transitively.
    pub resolved: ResolvedReferences,
    validator: OnceLock<std::result::Result<Arc<CompiledValidator>, InvalidSchema>>,
    encoded: OnceLock<Arc<str>>,
}

impl StoredSchema {
    /// An API's encoding of this schema, computed by `encode` on first use and kept: schemas never
    /// change, and every read answers with the same bytes. One API (REST) uses it.
    pub fn encoded_once(&self, encode: impl FnOnce(&Self) -> String) -> Arc<str> {
        self.encoded.get_or_init(|| Arc::from(encode(self))).clone()
    }

    /// The compiled validator, built on first use and kept.
    pub fn validator(&self) -> std::result::Result<Arc<CompiledValidator>, InvalidSchema> {
        self.validator
            .get_or_init(|| {
                CompiledValidator::compile(&self.value, self.draft, self.resolved.clone())
                    .map(Arc::new)
            })
            .clone()
    }
}

/// One version of a subject with its schema.
#[derive(Debug, Clone)]
pub struct VersionView {
    /// The subject.
    pub subject: Subject,
    /// The version.
    pub version: i32,
    /// The schema.
    pub schema: Arc<StoredSchema>,
    /// Soft-deleted.
    pub deleted: bool,
}

/// A version as named in a request: a number or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest live version.
    Latest,
    /// A version number (1..2^31-1).
    Number(i32),
}

impl VersionSpec {
    /// Parses Confluent's version path segment: `latest`, `-1`, or 1..2^31-1.
    pub fn parse(value: &str) -> Result<Self> {
        if value.eq_ignore_ascii_case("latest") || value == "-1" {
            return Ok(Self::Latest);
        }
        match value.parse::<i32>() {
            Ok(number) if number >= 1 => Ok(Self::Number(number)),
            _ => Err(Error::InvalidVersion {
                value: value.to_owned(),
            }),
        }
    }

    /// From the gRPC form, where 0 and -1 mean latest.
    pub fn from_wire(value: i32) -> Result<Self> {
        match value {
            0 | -1 => Ok(Self::Latest),
            number if number >= 1 => Ok(Self::Number(number)),
            other => Err(Error::InvalidVersion {
                value: other.to_string(),
            }),
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Latest => "latest".to_owned(),
            Self::Number(number) => number.to_string(),
        }
    }
}

/// Which schema a payload validation uses.
#[derive(Debug, Clone)]
pub enum ValidationTarget {
    /// A global id.
    Id(SchemaId),
    /// A subject version.
    SubjectVersion(Subject, VersionSpec),
}

/// Which versions a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeletedFilter {
    /// Include soft-deleted entries.
    pub deleted: bool,
    /// Only soft-deleted entries.
    pub deleted_only: bool,
}

impl DeletedFilter {
    fn keeps(self, deleted: bool) -> bool {
        if self.deleted_only {
            deleted
        } else {
            self.deleted || !deleted
        }
    }
}

/// The schema registry service.
#[derive(Debug)]
pub struct Registry {
    store: Store,
    cache: Cache,
    settings: RegistrySettings,
}

impl Registry {
    /// A registry on a connected store.
    pub fn new(store: Store, settings: RegistrySettings) -> Self {
        Self {
            store,
            cache: Cache::new(),
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// The store (for shutdown).
    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---- reads ----------------------------------------------------------------------------------

    /// A schema by global id.
    pub async fn schema_by_id(&self, id: SchemaId) -> Result<Arc<StoredSchema>> {
        self.load_schema(id, 0)
            .await?
            .ok_or(Error::SchemaNotFound { id: Some(id) })
    }

    /// The subject/version pairs that use an id.
    pub async fn usages(&self, id: SchemaId, filter: DeletedFilter) -> Result<Vec<(Subject, i32)>> {
        self.schema_by_id(id).await?;
        let usages = self.store.usages(id).await?;
        Ok(usages
            .into_iter()
            .filter(|(_, row)| filter.keeps(row.deleted))
            .map(|(subject, row)| (subject, row.version))
            .collect())
    }

    /// The subjects, sorted.
    pub async fn subjects(&self, prefix: &str, filter: DeletedFilter) -> Result<Vec<Subject>> {
        let subjects = self.store.subjects(prefix).await?;
        Ok(subjects
            .into_iter()
            .filter(|(_, live)| {
                if filter.deleted_only {
                    !live
                } else {
                    filter.deleted || *live
                }
            })
            .map(|(subject, _)| subject)
            .collect())
    }

    /// The version numbers of a subject.
    pub async fn versions(&self, subject: &Subject, filter: DeletedFilter) -> Result<Vec<i32>> {
        let rows = self.subject_rows(subject).await?;
        let versions: Vec<i32> = rows
            .iter()
            .filter(|row| filter.keeps(row.deleted))
            .map(|row| row.version)
            .collect();
        if versions.is_empty() && !filter.deleted_only {
            return Err(Error::SubjectNotFound {
                subject: subject.clone(),
            });
        }
        Ok(versions)
    }

    /// One version of a subject.
    pub async fn version(
        &self,
        subject: &Subject,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<VersionView> {
        let rows = self.subject_rows(subject).await?;
        if !rows.iter().any(|row| deleted || !row.deleted) {
            return Err(Error::SubjectNotFound {
                subject: subject.clone(),
            });
        }
        let row = match spec {
            VersionSpec::Latest => rows.iter().rev().find(|row| deleted || !row.deleted),
            VersionSpec::Number(number) => rows
                .iter()
                .find(|row| row.version == number && (deleted || !row.deleted)),
        }
        .copied()
        .ok_or_else(|| Error::VersionNotFound {
            version: spec.describe(),
        })?;
        self.view(subject, row).await
    }

    /// Ids of the schemas that reference a subject version.
    pub async fn referenced_by(
        &self,
        subject: &Subject,
        spec: VersionSpec,
    ) -> Result<Vec<SchemaId>> {
        let view = self.version(subject, spec, true).await?;
        Ok(self.store.referenced_by(subject, view.version).await?)
    }

    /// Finds the version of a subject that holds a schema.
    pub async fn lookup(
        &self,
        subject: &Subject,
        input: SchemaInput,
        deleted: bool,
    ) -> Result<VersionView> {
        check_subject(subject)?;
        let rows = self.subject_rows(subject).await?;
        if !rows.iter().any(|row| deleted || !row.deleted) {
            return Err(Error::SubjectNotFound {
                subject: subject.clone(),
            });
        }
        let prepared = self.prepare(input).await?;
        for row in rows.iter().rev().filter(|row| deleted || !row.deleted) {
            let schema = self.schema_by_id(row.schema_id).await?;
            if schema.fingerprint == prepared.fingerprint {
                return self.view(subject, *row).await;
            }
        }
        Err(Error::SchemaNotFound { id: None })
    }

    // ---- registration and compatibility ---------------------------------------------------------

    /// Registers a schema under a subject (Confluent's `POST /subjects/{subject}/versions`).
    pub async fn register(
        &self,
        subject: &Subject,
        input: SchemaInput,
        import_id: Option<SchemaId>,
        import_version: Option<i32>,
    ) -> Result<VersionView> {
        check_subject(subject)?;
        let mode = self.effective_mode(Some(subject)).await?;
        match mode {
            Mode::ReadOnly => {
                return Err(Error::OperationNotPermitted {
                    message: format!(
                        "Subject {subject} is in read-only mode; set the mode to READWRITE to register"
                    ),
                });
            }
            Mode::ReadWrite if import_id.is_some() || import_version.is_some() => {
                return Err(Error::OperationNotPermitted {
                    message: format!(
                        "Subject {subject} is not in import mode; an explicit id or version needs mode IMPORT"
                    ),
                });
            }
            _ => {}
        }
        let prepared = self.prepare(input).await?;
        for _ in 0..MAX_REGISTER_ATTEMPTS {
            let rows = self.subject_rows(subject).await?;
            for row in rows.iter().rev().filter(|row| !row.deleted) {
                let schema = self.schema_by_id(row.schema_id).await?;
                if schema.fingerprint == prepared.fingerprint
                    && import_id.is_none_or(|id| id == schema.id)
                {
                    return self.view(subject, *row).await;
                }
            }
            if mode != Mode::Import {
                let config = self.effective_config(Some(subject)).await?;
                let live: Vec<VersionRow> = rows
                    .iter()
                    .rev()
                    .filter(|row| !row.deleted)
                    .copied()
                    .collect();
                let messages = self
                    .incompatibilities(config, &prepared, versions_to_check(config.level, &live))
                    .await?;
                if !messages.is_empty() {
                    let mut details = messages;
                    details.push(config_summary(config));
                    return Err(Error::Incompatible {
                        subject: subject.clone(),
                        details,
                        error_code: self.settings.incompatible_error_code,
                    });
                }
            }
            let expected_latest = rows
                .iter()
                .rev()
                .find(|row| !row.deleted)
                .map(|row| row.version);
            let outcome = self
                .store
                .register(NewVersion {
                    subject,
                    fingerprint: &prepared.fingerprint,
                    schema_type: prepared.schema_type,
                    text: &prepared.canonical,
                    references: &prepared.references,
                    expected_latest,
                    import_id,
                    import_version,
                })
                .await;
            self.cache.invalidate_subject(subject);
            match outcome {
                Ok(registered) => {
                    let schema = self.schema_by_id(registered.id).await?;
                    tracing::info!(%subject, id = registered.id.value, version = registered.version, created = registered.created, "schema registered");
                    return Ok(VersionView {
                        subject: subject.clone(),
                        version: registered.version,
                        schema,
                        deleted: false,
                    });
                }
                Err(StoreError::Stale) => continue,
                Err(StoreError::IdTaken { id }) => return Err(Error::IdConflict { id }),
                Err(StoreError::VersionTaken { version }) => {
                    return Err(Error::OperationNotPermitted {
                        message: format!(
                            "Subject {subject} already has version {version}; import it under a new version"
                        ),
                    });
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(Error::Store(StoreError::Stale))
    }

    /// Checks a schema against a subject without registering it. `version` None checks the versions the
    /// subject's level names; Some checks that one version only. Returns the incompatibilities (empty:
    /// compatible).
    pub async fn check_compatibility(
        &self,
        subject: &Subject,
        input: SchemaInput,
        version: Option<VersionSpec>,
    ) -> Result<Vec<String>> {
        check_subject(subject)?;
        let prepared = self.prepare(input).await?;
        let config = self.effective_config(Some(subject)).await?;
        let rows = self.subject_rows(subject).await?;
        let live: Vec<VersionRow> = rows
            .iter()
            .rev()
            .filter(|row| !row.deleted)
            .copied()
            .collect();
        let against: Vec<VersionRow> = match version {
            None => versions_to_check(config.level, &live).to_vec(),
            Some(VersionSpec::Latest) => live.first().copied().into_iter().collect(),
            Some(VersionSpec::Number(number)) => {
                if live.is_empty() {
                    return Err(Error::SubjectNotFound {
                        subject: subject.clone(),
                    });
                }
                let row = live
                    .iter()
                    .find(|row| row.version == number)
                    .ok_or_else(|| Error::VersionNotFound {
                        version: number.to_string(),
                    })?;
                vec![*row]
            }
        };
        self.incompatibilities(config, &prepared, &against).await
    }

    async fn incompatibilities(
        &self,
        config: CompatibilityConfig,
        candidate: &PreparedSchema,
        previous_newest_first: &[VersionRow],
    ) -> Result<Vec<String>> {
        for row in previous_newest_first {
            let previous = self.schema_by_id(row.schema_id).await?;
            let mut messages = Vec::new();
            for &direction in config.level.directions() {
                let key = CompatKey {
                    previous: previous.id,
                    candidate_fingerprint: candidate.fingerprint.clone(),
                    direction,
                    policy: config.policy,
                };
                let found = match self.cache.compat(&key) {
                    Some(found) => found,
                    None => {
                        let computed = Arc::new(check_pair(
                            direction,
                            config.policy,
                            SchemaSide {
                                value: &previous.value,
                                references: &previous.resolved,
                            },
                            SchemaSide {
                                value: &candidate.value,
                                references: &candidate.resolved,
                            },
                        ));
                        self.cache.put_compat(key, computed.clone());
                        computed
                    }
                };
                messages.extend(found.iter().cloned());
            }
            if !messages.is_empty() {
                return Ok(messages);
            }
        }
        Ok(Vec::new())
    }

    // ---- deletes --------------------------------------------------------------------------------

    /// Deletes a subject: soft, or permanent after a soft delete. Returns the deleted versions.
    pub async fn delete_subject(&self, subject: &Subject, permanent: bool) -> Result<Vec<i32>> {
        check_subject(subject)?;
        self.ensure_writable(subject).await?;
        let rows = self.store.subject_versions(subject).await?;
        if rows.is_empty() {
            return Err(Error::SubjectNotFound {
                subject: subject.clone(),
            });
        }
        let any_live = rows.iter().any(|row| !row.deleted);
        if permanent && any_live {
            return Err(Error::SubjectNotSoftDeleted {
                subject: subject.clone(),
            });
        }
        if !permanent && !any_live {
            return Err(Error::SubjectSoftDeleted {
                subject: subject.clone(),
            });
        }
        let affected: Vec<i32> = rows
            .iter()
            .filter(|row| permanent || !row.deleted)
            .map(|row| row.version)
            .collect();
        for &version in &affected {
            self.ensure_unreferenced(subject, version).await?;
        }
        if permanent {
            self.store.hard_delete(subject, None).await?;
            self.cache.invalidate_settings();
        } else {
            self.store.soft_delete(subject, None).await?;
        }
        self.cache.invalidate_subject(subject);
        tracing::info!(%subject, permanent, versions = ?affected, "subject deleted");
        Ok(affected)
    }

    /// Deletes one version: soft, or permanent after a soft delete. Returns the version.
    pub async fn delete_version(
        &self,
        subject: &Subject,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<i32> {
        check_subject(subject)?;
        self.ensure_writable(subject).await?;
        let rows = self.store.subject_versions(subject).await?;
        if rows.is_empty() || (!permanent && rows.iter().all(|row| row.deleted)) {
            return Err(Error::SubjectNotFound {
                subject: subject.clone(),
            });
        }
        let row = match spec {
            VersionSpec::Latest if permanent => rows.last(),
            VersionSpec::Latest => rows.iter().rev().find(|row| !row.deleted),
            VersionSpec::Number(number) => rows.iter().find(|row| row.version == number),
        }
        .copied()
        .ok_or_else(|| Error::VersionNotFound {
            version: spec.describe(),
        })?;
        if !permanent && row.deleted {
            return Err(Error::VersionSoftDeleted {
                subject: subject.clone(),
                version: row.version,
            });
        }
        if permanent && !row.deleted {
            return Err(Error::VersionNotSoftDeleted {
                subject: subject.clone(),
                version: row.version,
            });
        }
        self.ensure_unreferenced(subject, row.version).await?;
        if permanent {
            self.store.hard_delete(subject, Some(row.version)).await?;
        } else {
            self.store.soft_delete(subject, Some(row.version)).await?;
        }
        self.cache.invalidate_subject(subject);
        tracing::info!(%subject, permanent, version = row.version, "version deleted");
        Ok(row.version)
    }

    async fn ensure_unreferenced(&self, subject: &Subject, version: i32) -> Result<()> {
        if self.store.referenced_by(subject, version).await?.is_empty() {
            Ok(())
        } else {
            Err(Error::ReferenceExists {
                subject: subject.clone(),
                version,
            })
        }
    }

    async fn ensure_writable(&self, subject: &Subject) -> Result<()> {
        if self.effective_mode(Some(subject)).await? == Mode::ReadOnly {
            return Err(Error::OperationNotPermitted {
                message: format!(
                    "Subject {subject} is in read-only mode; set the mode to READWRITE to change it"
                ),
            });
        }
        Ok(())
    }

    // ---- configuration and modes ----------------------------------------------------------------

    /// The configuration of a subject (or global with None). A subject without its own configuration is
    /// 40408 unless `default_to_global`.
    pub async fn config(
        &self,
        subject: Option<&Subject>,
        default_to_global: bool,
    ) -> Result<CompatibilityConfig> {
        let settings = self.load_settings().await?;
        scoped(&settings.configs, subject, default_to_global).ok_or_else(|| {
            Error::SubjectConfigNotFound {
                subject: subject.cloned().unwrap_or_default(),
            }
        })
    }

    /// The configuration in force for a subject: its own, else the global one, else BACKWARD/STRICT.
    pub async fn effective_config(&self, subject: Option<&Subject>) -> Result<CompatibilityConfig> {
        self.config(subject, true).await
    }

    /// Sets a configuration.
    pub async fn set_config(
        &self,
        subject: Option<&Subject>,
        config: CompatibilityConfig,
    ) -> Result<CompatibilityConfig> {
        if let Some(subject) = subject {
            check_subject(subject)?;
        }
        self.store.put_config(subject, Some(config)).await?;
        self.cache.invalidate_settings();
        Ok(config)
    }

    /// Removes a subject's configuration, or resets the global one; returns what was in force.
    pub async fn delete_config(&self, subject: Option<&Subject>) -> Result<CompatibilityConfig> {
        let previous = self.config(subject, false).await?;
        self.store.put_config(subject, None).await?;
        self.cache.invalidate_settings();
        Ok(previous)
    }

    /// The mode of a subject (or global with None). A subject without its own mode is 40409 unless
    /// `default_to_global`.
    pub async fn mode(&self, subject: Option<&Subject>, default_to_global: bool) -> Result<Mode> {
        let settings = self.load_settings().await?;
        scoped(&settings.modes, subject, default_to_global).ok_or_else(|| {
            Error::SubjectModeNotFound {
                subject: subject.cloned().unwrap_or_default(),
            }
        })
    }

    async fn effective_mode(&self, subject: Option<&Subject>) -> Result<Mode> {
        self.mode(subject, true).await
    }

    /// Sets a mode. IMPORT on a registry or subject that holds schemas needs `force`.
    pub async fn set_mode(
        &self,
        subject: Option<&Subject>,
        mode: Mode,
        force: bool,
    ) -> Result<Mode> {
        if let Some(subject) = subject {
            check_subject(subject)?;
        }
        if mode == Mode::Import && !force && self.store.has_versions(subject).await? {
            return Err(Error::OperationNotPermitted {
                message: "Cannot import since found existing subjects; set force=true to switch to IMPORT anyway"
                    .to_owned(),
            });
        }
        self.store.put_mode(subject, Some(mode)).await?;
        self.cache.invalidate_settings();
        Ok(mode)
    }

    /// Removes a subject's mode, or resets the global one; returns what was in force.
    pub async fn delete_mode(&self, subject: Option<&Subject>) -> Result<Mode> {
        let previous = self.mode(subject, false).await?;
        self.store.put_mode(subject, None).await?;
        self.cache.invalidate_settings();
        Ok(previous)
    }

    // ---- payload validation ---------------------------------------------------------------------

    /// Validates JSON documents against a registered schema; one error list per document (empty: valid).
    pub async fn validate(
        &self,
        target: ValidationTarget,
        documents: &[String],
    ) -> Result<(SchemaId, Vec<Vec<PayloadError>>)> {
        if documents.len() > self.settings.max_validation_documents {
            return Err(Error::InvalidRequest {
                field: "documents".into(),
                reason: format!(
                    "{} documents in one request; the limit is {}, split the batch",
                    documents.len(),
                    self.settings.max_validation_documents
                ),
            });
        }
        let schema = match target {
            ValidationTarget::Id(id) => self.schema_by_id(id).await?,
            ValidationTarget::SubjectVersion(subject, spec) => {
                self.version(&subject, spec, false).await?.schema
            }
        };
        let validator = schema.validator().map_err(|detail| Error::InvalidSchema {
            schema: shorten(&schema.text),
            detail,
        })?;
        let results = documents
            .iter()
            .map(|text| match serde_json::from_str::<Value>(text) {
                Ok(document) => validator.validate(&document),
                Err(err) => vec![PayloadError {
                    instance_path: String::new(),
                    schema_path: String::new(),
                    message: format!(
                        "invalid JSON at line {} column {}: {err}",
                        err.line(),
                        err.column()
                    ),
                }],
            })
            .collect();
        Ok((schema.id, results))
    }

    // ---- cross-replica cache coherence ----------------------------------------------------------

    /// On PostgreSQL, listens for the change notifications of every replica and invalidates the cache
    /// until `shutdown` resolves. A lost connection invalidates everything that can change. On SQLite
    /// (one process) it returns at once.
    pub async fn watch_changes(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        if self.store.backend() != Backend::Postgres {
            return;
        }
        tokio::pin!(shutdown);
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect(self.store.url()).await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "registry change listener cannot connect; retrying");
                    self.cache.invalidate_mutable();
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            if let Err(err) = listener.listen(crate::store::CHANGE_CHANNEL).await {
                tracing::warn!(error = %err, "registry change listener cannot LISTEN; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever changed before LISTEN took effect is unknown.
            self.cache.invalidate_mutable();
            loop {
                tokio::select! {
                    () = &mut shutdown => return,
                    received = listener.try_recv() => match received {
                        Ok(Some(notification)) => self.apply_change(notification.payload()),
                        Ok(None) => {
                            tracing::warn!("registry change listener lost its connection; cache invalidated");
                            self.cache.invalidate_mutable();
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "registry change listener failed; reconnecting");
                            self.cache.invalidate_mutable();
                            break;
                        }
                    },
                }
            }
        }
    }

    fn apply_change(&self, payload: &str) {
        if payload == SETTINGS_CHANGED {
            self.cache.invalidate_settings();
        } else {
            self.cache.invalidate_subject(&Subject::new(payload));
        }
    }

    // ---- internals ------------------------------------------------------------------------------

    async fn subject_rows(&self, subject: &Subject) -> Result<Arc<Vec<VersionRow>>> {
        if let Some(rows) = self.cache.subject(subject) {
            return Ok(rows);
        }
        let rows = Arc::new(self.store.subject_versions(subject).await?);
        self.cache.put_subject(subject.clone(), rows.clone());
        Ok(rows)
    }

    async fn view(&self, subject: &Subject, row: VersionRow) -> Result<VersionView> {
        let schema = self.schema_by_id(row.schema_id).await?;
        Ok(VersionView {
            subject: subject.clone(),
            version: row.version,
            schema,
            deleted: row.deleted,
        })
    }

    async fn load_settings(&self) -> Result<Arc<Settings>> {
        if let Some(settings) = self.cache.settings() {
            return Ok(settings);
        }
        let settings = Arc::new(Settings {
            configs: self.store.configs().await?.into_iter().collect(),
            modes: self.store.modes().await?.into_iter().collect(),
        });
        self.cache.put_settings(settings.clone());
        Ok(settings)
    }

    fn load_schema<'a>(
        &'a self,
        id: SchemaId,
        depth: usize,
    ) -> BoxFuture<'a, Result<Option<Arc<StoredSchema>>>> {
        Box::pin(async move {
            if let Some(schema) = self.cache.schema(id) {
                return Ok(Some(schema));
            }
            let Some(row) = self.store.schema(id).await? else {
                return Ok(None);
            };
            let parsed =
                parse_schema(&row.text, self.settings.default_draft).map_err(|detail| {
                    Error::InvalidSchema {
                        schema: shorten(&row.text),
                        detail,
                    }
                })?;
            let resolved = self.resolve_references(&row.references, depth + 1).await?;
            let schema = Arc::new(StoredSchema {
                id: row.id,
                schema_type: row.schema_type,
                text: row.text,
                references: row.references,
                fingerprint: Arc::from(row.fingerprint),
                value: Arc::new(parsed.value),
                draft: parsed.draft,
                resolved,
                validator: OnceLock::new(),
                encoded: OnceLock::new(),
            });
            self.cache.put_schema(schema.clone());
            Ok(Some(schema))
        })
    }

    async fn resolve_references(
        &self,
        references: &[SchemaReference],
        depth: usize,
    ) -> Result<ResolvedReferences> {
        let mut resolved = ResolvedReferences::new();
        if references.is_empty() {
            return Ok(resolved);
        }
        if depth > MAX_REFERENCE_DEPTH {
            return Err(invalid_reference(format!(
                "references nest deeper than {MAX_REFERENCE_DEPTH} levels or form a cycle"
            )));
        }
        for reference in references {
            if reference.name.is_empty() {
                return Err(invalid_reference(
                    "a reference has an empty `name`; give the URI its `$ref` uses".into(),
                ));
            }
            check_subject(&reference.subject)?;
            let rows = self.subject_rows(&reference.subject).await?;
            let row = rows.iter().find(|row| row.version == reference.version).copied().ok_or_else(|| {
                invalid_reference(format!(
                    "reference `{}` names subject `{}` version {}, which is not registered; register it first",
                    reference.name, reference.subject, reference.version
                ))
            })?;
            let target =
                self.load_schema(row.schema_id, depth)
                    .await?
                    .ok_or(Error::SchemaNotFound {
                        id: Some(row.schema_id),
                    })?;
            for (name, value) in &target.resolved {
                resolved
                    .entry(name.clone())
                    .or_insert_with(|| value.clone());
            }
            resolved.insert(reference.name.clone(), target.value.clone());
        }
        Ok(resolved)
    }

    /// Parses, meta-validates and resolves a client schema (cached by its exact text and references).
    pub async fn prepare(&self, input: SchemaInput) -> Result<Arc<PreparedSchema>> {
        if input.text.len() > self.settings.max_schema_bytes {
            return Err(Error::SchemaTooLarge {
                size: input.text.len(),
                limit: self.settings.max_schema_bytes,
            });
        }
        let mut key = String::with_capacity(input.text.len() + 32);
        key.push_str(input.schema_type.as_str());
        for reference in &input.references {
            key.push_str(&format!(
                "\u{0}{}\u{0}{}\u{0}{}",
                reference.name, reference.subject, reference.version
            ));
        }
        key.push('\u{1}');
        key.push_str(&input.text);
        if let Some(prepared) = self.cache.prepared(&key) {
            return Ok(prepared);
        }
        let parsed = parse_schema(&input.text, self.settings.default_draft).map_err(|detail| {
            Error::InvalidSchema {
                schema: shorten(&input.text),
                detail,
            }
        })?;
        let resolved = self.resolve_references(&input.references, 1).await?;
        // Compiling proves every `$ref` resolves (unknown references are refused here, not at first use).
        CompiledValidator::compile(&parsed.value, parsed.draft, resolved.clone()).map_err(
            |detail| Error::InvalidSchema {
                schema: shorten(&input.text),
                detail,
            },
        )?;
        let prepared = Arc::new(PreparedSchema {
            fingerprint: Arc::from(fingerprint(
                input.schema_type,
                &parsed.canonical,
                &input.references,
            )),
            canonical: parsed.canonical,
            value: Arc::new(parsed.value),
            draft: parsed.draft,
            schema_type: input.schema_type,
            references: input.references,
            resolved,
        });
        self.cache.put_prepared(Arc::from(key), prepared.clone());
        Ok(prepared)
    }
}

/// A setting (configuration or mode) for a subject or the registry: the subject's own, else, when
/// `default_to_global` (always for the registry itself), the global one or the default. `None` when the
/// subject has none of its own and the global one was not asked for.
fn scoped<T: Copy + Default>(
    table: &std::collections::HashMap<Option<Subject>, T>,
    subject: Option<&Subject>,
    default_to_global: bool,
) -> Option<T> {
    let global = || table.get(&None).copied().unwrap_or_default();
    match subject {
        None => Some(global()),
        Some(subject) => match table.get(&Some(subject.clone())) {
            Some(own) => Some(*own),
            None => default_to_global.then(global),
        },
    }
}

fn check_subject(subject: &Subject) -> Result<()> {
    validate_subject(subject).map_err(|err| Error::InvalidSubject {
        reason: err.to_string(),
    })
}

fn invalid_reference(reason: String) -> Error {
    Error::InvalidSchema {
        schema: String::new(),
        detail: InvalidSchema::new("/references", reason),
    }
}
