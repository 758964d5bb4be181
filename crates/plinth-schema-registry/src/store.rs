//! Durable state in SQL through sqlx: SQLite for embedded runs, PostgreSQL in production. Both share
//! one set of statements (`store/sql/*.sql`) and one migration; only the write lock differs: a
//! transaction-scoped advisory lock on PostgreSQL (so several replicas serialize their writes), a
//! process mutex on SQLite (one process owns the file).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use plinth_proto::ids::{SchemaId, Subject};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use tokio::sync::Mutex;

use crate::domain::config::{CompatibilityConfig, CompatibilityLevel, CompatibilityPolicy, Mode};
use crate::domain::schema::{SchemaReference, SchemaType};

/// The PostgreSQL NOTIFY channel on which every committed write announces what changed.
pub const CHANGE_CHANNEL: &str = "plinth_schema_registry";
/// The payload announcing a change of configuration or mode rather than of one subject.
pub const SETTINGS_CHANGED: &str = "\u{1}settings";

const WRITE_LOCK_KEY: i64 = 0x504c_494e_5448_0001;
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another writer changed the subject since it was read; the caller re-reads and retries.
    #[error("the subject changed concurrently")]
    Stale,
    /// In IMPORT mode, the given id already holds a different schema.
    #[error("schema id {id} already holds a different schema")]
    IdTaken {
        /// The id.
        id: SchemaId,
    },
    /// In IMPORT mode, the given version already exists.
    #[error("version {version} already exists")]
    VersionTaken {
        /// The version.
        version: i32,
    },
    /// A stored value does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which database the store runs on.
pub use plinth_runtime::database::Backend;

/// One version row of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRow {
    /// Version number.
    pub version: i32,
    /// Schema id.
    pub schema_id: SchemaId,
    /// Soft-deleted.
    pub deleted: bool,
}

/// A stored schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRow {
    /// Global id.
    pub id: SchemaId,
    /// Fingerprint (type, canonical text, references).
    pub fingerprint: String,
    /// Schema type.
    pub schema_type: SchemaType,
    /// Canonical schema text.
    pub text: String,
    /// References, in registration order.
    pub references: Vec<SchemaReference>,
}

/// What to register.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// The subject.
    pub subject: &'a Subject,
    /// The schema's fingerprint.
    pub fingerprint: &'a str,
    /// The schema type.
    pub schema_type: SchemaType,
    /// The canonical text.
    pub text: &'a str,
    /// The references.
    pub references: &'a [SchemaReference],
    /// The latest live version the caller checked compatibility against (None: no live version).
    pub expected_latest: Option<i32>,
    /// IMPORT mode: the id to keep.
    pub import_id: Option<SchemaId>,
    /// IMPORT mode: the version to keep.
    pub import_version: Option<i32>,
}

/// The outcome of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The global id.
    pub id: SchemaId,
    /// The version under the subject.
    pub version: i32,
    /// False when the schema already was a live version of the subject.
    pub created: bool,
}

/// The SQL store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    sqlite_write_lock: Arc<Mutex<()>>,
}

impl Store {
    /// Connects, creating the SQLite file if needed, and runs migrations.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> StoreResult<Self> {
        let backend = Backend::of(url);
        let pool = plinth_runtime::database::connect(url, max_connections, connect_timeout).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            url: url.to_owned(),
            sqlite_write_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL the store connected to (for the PostgreSQL change listener).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every version row of a subject, ascending.
    pub async fn subject_versions(&self, subject: &Subject) -> StoreResult<Vec<VersionRow>> {
        let rows = sqlx::query(include_str!("store/sql/subject_versions.sql"))
            .bind(subject.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(version_row).collect()
    }

    /// A schema by id.
    pub async fn schema(&self, id: SchemaId) -> StoreResult<Option<SchemaRow>> {
        let row = sqlx::query(include_str!("store/sql/schema_by_id.sql"))
            .bind(i64::from(id.value))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(schema_row).transpose()
    }

    /// The id of a schema with this fingerprint, if one was ever registered.
    pub async fn id_by_fingerprint(&self, fingerprint: &str) -> StoreResult<Option<SchemaId>> {
        let row = sqlx::query("SELECT id FROM schemas WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| decode_id(&row, "id")).transpose()
    }

    /// Subjects with whether each has a live (not soft-deleted) version, sorted.
    pub async fn subjects(&self, prefix: &str) -> StoreResult<Vec<(Subject, bool)>> {
        let rows = sqlx::query(include_str!("store/sql/subjects.sql"))
            .bind(prefix)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    Subject::new(row.try_get::<String, _>("subject")?),
                    row.try_get::<i64, _>("live")? > 0,
                ))
            })
            .collect()
    }

    /// The subject/version pairs that use a schema id.
    pub async fn usages(&self, id: SchemaId) -> StoreResult<Vec<(Subject, VersionRow)>> {
        let rows = sqlx::query(
            "SELECT subject, version, schema_id, deleted FROM subject_versions WHERE schema_id = $1 ORDER BY subject, version",
        )
        .bind(i64::from(id.value))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    Subject::new(row.try_get::<String, _>("subject")?),
                    version_row(row)?,
                ))
            })
            .collect()
    }

    /// Ids of schemas referencing a subject version.
    pub async fn referenced_by(
        &self,
        subject: &Subject,
        version: i32,
    ) -> StoreResult<Vec<SchemaId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT schema_id FROM schema_references WHERE ref_subject = $1 AND ref_version = $2 ORDER BY schema_id",
        )
        .bind(subject.as_str())
        .bind(i64::from(version))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| decode_id(row, "schema_id")).collect()
    }

    /// Every configuration: `None` scope is global.
    pub async fn configs(&self) -> StoreResult<Vec<(Option<Subject>, CompatibilityConfig)>> {
        let rows = sqlx::query("SELECT scope, compatibility, policy FROM configs")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let level = parse_stored::<CompatibilityLevel>(row, "compatibility")?;
                let policy = parse_stored::<CompatibilityPolicy>(row, "policy")?;
                Ok((scope_of(row)?, CompatibilityConfig { level, policy }))
            })
            .collect()
    }

    /// Every mode: `None` scope is global.
    pub async fn modes(&self) -> StoreResult<Vec<(Option<Subject>, Mode)>> {
        let rows = sqlx::query("SELECT scope, mode FROM modes")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((scope_of(row)?, parse_stored::<Mode>(row, "mode")?)))
            .collect()
    }

    /// Whether any subject version exists (IMPORT mode may only be set on an empty registry without force).
    pub async fn has_versions(&self, subject: Option<&Subject>) -> StoreResult<bool> {
        let row = match subject {
            Some(subject) => {
                sqlx::query("SELECT COUNT(*) AS n FROM subject_versions WHERE subject = $1")
                    .bind(subject.as_str())
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT COUNT(*) AS n FROM subject_versions")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Registers a schema under a subject, or returns the live version that already holds it.
    pub async fn register(&self, new: NewVersion<'_>) -> StoreResult<Registered> {
        let _process_guard = self.lock_process().await;
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(include_str!("store/sql/subject_versions.sql"))
            .bind(new.subject.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let versions = rows
            .iter()
            .map(version_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let existing_id = match sqlx::query("SELECT id FROM schemas WHERE fingerprint = $1")
            .bind(new.fingerprint)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => Some(decode_id(&row, "id")?),
            None => None,
        };
        if let Some(id) = existing_id
            && let Some(live) = versions
                .iter()
                .rev()
                .find(|row| !row.deleted && row.schema_id == id)
            && new.import_id.is_none_or(|wanted| wanted == id)
        {
            return Ok(Registered {
                id,
                version: live.version,
                created: false,
            });
        }
        let latest_live = versions
            .iter()
            .rev()
            .find(|row| !row.deleted)
            .map(|row| row.version);
        if latest_live != new.expected_latest {
            return Err(StoreError::Stale);
        }
        let id = match (existing_id, new.import_id) {
            (Some(existing), Some(wanted)) if existing != wanted => {
                return Err(StoreError::IdTaken { id: wanted });
            }
            (Some(existing), _) => existing,
            (None, Some(wanted)) => {
                let taken = sqlx::query("SELECT id FROM schemas WHERE id = $1")
                    .bind(i64::from(wanted.value))
                    .fetch_optional(&mut *tx)
                    .await?;
                if taken.is_some() {
                    return Err(StoreError::IdTaken { id: wanted });
                }
                self.insert_schema(&mut tx, wanted, &new).await?;
                wanted
            }
            (None, None) => {
                let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS max_id FROM schemas")
                    .fetch_one(&mut *tx)
                    .await?;
                let next = row.try_get::<i64, _>("max_id")? + 1;
                let id = SchemaId::new(
                    u32::try_from(next)
                        .map_err(|_| StoreError::Corrupt("schema ids exhausted".into()))?,
                );
                self.insert_schema(&mut tx, id, &new).await?;
                id
            }
        };
        let version = match new.import_version {
            Some(wanted) if versions.iter().any(|row| row.version == wanted) => {
                return Err(StoreError::VersionTaken { version: wanted });
            }
            Some(wanted) => wanted,
            None => versions.last().map_or(1, |row| row.version + 1),
        };
        sqlx::query("INSERT INTO subject_versions (subject, version, schema_id, deleted) VALUES ($1, $2, $3, 0)")
            .bind(new.subject.as_str())
            .bind(i64::from(version))
            .bind(i64::from(id.value))
            .execute(&mut *tx)
            .await?;
        self.notify(&mut tx, new.subject.as_str()).await?;
        tx.commit().await?;
        Ok(Registered {
            id,
            version,
            created: true,
        })
    }

    async fn insert_schema(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: SchemaId,
        new: &NewVersion<'_>,
    ) -> StoreResult<()> {
        let references_json = references_to_json(new.references);
        sqlx::query(
            "INSERT INTO schemas (id, fingerprint, schema_type, schema_text, references_json) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(i64::from(id.value))
        .bind(new.fingerprint)
        .bind(new.schema_type.as_str())
        .bind(new.text)
        .bind(references_json)
        .execute(&mut **tx)
        .await?;
        for reference in new.references {
            sqlx::query(
                "INSERT INTO schema_references (schema_id, name, ref_subject, ref_version) VALUES ($1, $2, $3, $4)",
            )
            .bind(i64::from(id.value))
            .bind(&reference.name)
            .bind(reference.subject.as_str())
            .bind(i64::from(reference.version))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Marks versions of a subject soft-deleted (all live ones when `version` is None).
    pub async fn soft_delete(&self, subject: &Subject, version: Option<i32>) -> StoreResult<()> {
        let _process_guard = self.lock_process().await;
        let mut tx = self.begin_write().await?;
        match version {
            Some(version) => {
                sqlx::query(
                    "UPDATE subject_versions SET deleted = 1 WHERE subject = $1 AND version = $2",
                )
                .bind(subject.as_str())
                .bind(i64::from(version))
                .execute(&mut *tx)
                .await?
            }
            None => {
                sqlx::query("UPDATE subject_versions SET deleted = 1 WHERE subject = $1")
                    .bind(subject.as_str())
                    .execute(&mut *tx)
                    .await?
            }
        };
        self.notify(&mut tx, subject.as_str()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes soft-deleted versions of a subject for good (all of them when `version` is None). The
    /// schemas themselves stay, so their ids are never reused and keep resolving.
    pub async fn hard_delete(&self, subject: &Subject, version: Option<i32>) -> StoreResult<()> {
        let _process_guard = self.lock_process().await;
        let mut tx = self.begin_write().await?;
        match version {
            Some(version) => sqlx::query(
                "DELETE FROM subject_versions WHERE subject = $1 AND version = $2 AND deleted = 1",
            )
            .bind(subject.as_str())
            .bind(i64::from(version))
            .execute(&mut *tx)
            .await?,
            None => {
                sqlx::query("DELETE FROM subject_versions WHERE subject = $1 AND deleted = 1")
                    .bind(subject.as_str())
                    .execute(&mut *tx)
                    .await?
            }
        };
        if version.is_none() {
            for table in [
                "DELETE FROM configs WHERE scope = $1",
                "DELETE FROM modes WHERE scope = $1",
            ] {
                sqlx::query(table)
                    .bind(subject.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            self.notify(&mut tx, SETTINGS_CHANGED).await?;
        }
        self.notify(&mut tx, subject.as_str()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or with `None`, removes) a configuration.
    pub async fn put_config(
        &self,
        scope: Option<&Subject>,
        config: Option<CompatibilityConfig>,
    ) -> StoreResult<()> {
        let _process_guard = self.lock_process().await;
        let mut tx = self.begin_write().await?;
        let scope = scope.map_or("", Subject::as_str);
        match config {
            Some(config) => {
                sqlx::query(
                    "INSERT INTO configs (scope, compatibility, policy) VALUES ($1, $2, $3) \
                     ON CONFLICT (scope) DO UPDATE SET compatibility = excluded.compatibility, policy = excluded.policy",
                )
                .bind(scope)
                .bind(config.level.as_str())
                .bind(config.policy.as_str())
                .execute(&mut *tx)
                .await?
            }
            None => sqlx::query("DELETE FROM configs WHERE scope = $1").bind(scope).execute(&mut *tx).await?,
        };
        self.notify(&mut tx, SETTINGS_CHANGED).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or with `None`, removes) a mode.
    pub async fn put_mode(&self, scope: Option<&Subject>, mode: Option<Mode>) -> StoreResult<()> {
        let _process_guard = self.lock_process().await;
        let mut tx = self.begin_write().await?;
        let scope = scope.map_or("", Subject::as_str);
        match mode {
            Some(mode) => {
                sqlx::query(
                    "INSERT INTO modes (scope, mode) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET mode = excluded.mode",
                )
                .bind(scope)
                .bind(mode.as_str())
                .execute(&mut *tx)
                .await?
            }
            None => sqlx::query("DELETE FROM modes WHERE scope = $1").bind(scope).execute(&mut *tx).await?,
        };
        self.notify(&mut tx, SETTINGS_CHANGED).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lock_process(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.sqlite_write_lock.lock().await),
            Backend::Postgres => None,
        }
    }

    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    async fn notify(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        payload: &str,
    ) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGE_CHANNEL)
                .bind(payload)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

fn version_row(row: &AnyRow) -> StoreResult<VersionRow> {
    let version = row.try_get::<i64, _>("version")?;
    Ok(VersionRow {
        version: i32::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("version {version}")))?,
        schema_id: decode_id(row, "schema_id")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
    })
}

fn decode_id(row: &AnyRow, column: &str) -> StoreResult<SchemaId> {
    let id = row.try_get::<i64, _>(column)?;
    u32::try_from(id)
        .map(SchemaId::new)
        .map_err(|_| StoreError::Corrupt(format!("schema id {id}")))
}

fn schema_row(row: &AnyRow) -> StoreResult<SchemaRow> {
    let references_json = row.try_get::<String, _>("references_json")?;
    Ok(SchemaRow {
        id: decode_id(row, "id")?,
        fingerprint: row.try_get("fingerprint")?,
        schema_type: parse_stored::<SchemaType>(row, "schema_type")?,
        text: row.try_get("schema_text")?,
        references: references_from_json(&references_json)?,
    })
}

fn scope_of(row: &AnyRow) -> StoreResult<Option<Subject>> {
    let scope = row.try_get::<String, _>("scope")?;
    Ok((!scope.is_empty()).then(|| Subject::new(scope)))
}

fn parse_stored<T: FromStr>(row: &AnyRow, column: &str) -> StoreResult<T> {
    let text = row.try_get::<String, _>(column)?;
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} `{text}`")))
}

fn references_to_json(references: &[SchemaReference]) -> String {
    let list: Vec<serde_json::Value> = references
        .iter()
        .map(|reference| {
            serde_json::json!({"name": reference.name, "subject": reference.subject.as_str(), "version": reference.version})
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn references_from_json(text: &str) -> StoreResult<Vec<SchemaReference>> {
    let corrupt = || StoreError::Corrupt(format!("references `{text}`"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    let items = value.as_array().ok_or_else(corrupt)?;
    items
        .iter()
        .map(|item| {
            let decoded = (|| {
                Some(SchemaReference {
                    name: item.get("name")?.as_str()?.to_owned(),
                    subject: Subject::new(item.get("subject")?.as_str()?),
                    version: i32::try_from(item.get("version")?.as_i64()?).ok()?,
                })
            })();
            decoded.ok_or_else(corrupt)
        })
        .collect()
}
