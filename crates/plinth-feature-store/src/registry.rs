//! The registry: the applied project in SQL (sqlx `Any`: SQLite embedded, PostgreSQL in production), one
//! row per object with its definition as JSON, plus each feature view's materialization watermark.
//!
//! Tables are created at start with `CREATE TABLE IF NOT EXISTS` (`registry/schema.sql`, prefix
//! `feature_store_`), not with a sqlx migrator, so the registry can share a database with other services.
//! An apply runs in one transaction that first takes the registry's write lock (a PostgreSQL transaction
//! advisory lock, and on both backends an update of the version row), so applies from two replicas never
//! interleave: each sees the other's result whole or not at all.

use std::time::Duration;

use plinth_runtime::database::Backend;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::domain::definitions::{Project, Tags};
use crate::domain::parse::{Definition, DefinitionKind};
use crate::domain::plan::{Change, ChangeType};

mod record;

const SCHEMA: &str = include_str!("registry/schema.sql");

/// The key of the PostgreSQL advisory lock that serializes schema creation and applies (`plinthfs`).
const LOCK_KEY: i64 = 0x706c_696e_7468_6673;

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The database does not answer (down, pool exhausted, closed); retrying later may work.
    #[error("the registry database does not answer ({source}); retry shortly")]
    Unavailable {
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The database refused a statement.
    #[error("registry database error: {source}")]
    Database {
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The registry moved on since the plan was made: another apply landed in between.
    #[error(
        "the registry changed since the plan was made (version {expected}, now {found}); plan again and apply that plan"
    )]
    Conflict {
        /// The version the plan was made against.
        expected: i64,
        /// The version found.
        found: i64,
    },
    /// A stored definition does not read back (written by an incompatible version, or edited by hand).
    #[error(
        "the registry's {kind} `{name}` does not read: {message}; apply its definition file again"
    )]
    Corrupt {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// What does not read.
        message: String,
    },
}

impl RegistryError {
    /// Whether the database was unreachable (a retry may succeed).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RegistryError::Unavailable { .. })
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(source: sqlx::Error) -> Self {
        if plinth_runtime::database::is_unavailable(&source) {
            RegistryError::Unavailable { source }
        } else {
            RegistryError::Database { source }
        }
    }
}

/// The registry's result type.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Which objects [`Registry::list`] returns; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this kind.
    pub kind: Option<DefinitionKind>,
    /// Only objects carrying every one of these tags with the same value.
    pub tags: Tags,
    /// Only objects of this owner.
    pub owner: Option<String>,
}

/// An object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDefinition {
    /// The object.
    pub definition: Definition,
    /// When it was last created or updated, in microseconds since the epoch.
    pub update_time_micros: i64,
}

/// The registry's database.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: AnyPool,
    backend: Backend,
}

impl Registry {
    /// Connects (creating a SQLite file when missing) and creates the tables.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<Self> {
        let pool = plinth_runtime::database::connect(url, max_connections, connect_timeout).await?;
        Self::open(pool, Backend::of(url)).await
    }

    /// Uses an open pool of `backend` and creates the tables.
    pub async fn open(pool: AnyPool, backend: Backend) -> Result<Self> {
        plinth_runtime::database::create_tables(&pool, backend, LOCK_KEY, SCHEMA).await?;
        let registry = Self { pool, backend };
        Ok(registry)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores a plan's changes in one transaction: creates and updates write the desired definitions,
    /// deletes remove the objects (and a deleted view's watermark). Returns the registry version after,
    /// unchanged when the plan changes nothing.
    pub async fn apply(&self, changes: &[Change]) -> Result<i64> {
        self.apply_checked(changes, None).await
    }

    /// [`Registry::apply`], refused with [`RegistryError::Conflict`] unless the registry is still at
    /// `expected_version`, the version the plan was computed against: a plan shown to a user is applied
    /// only if nobody applied in between.
    pub async fn apply_if_version(&self, changes: &[Change], expected_version: i64) -> Result<i64> {
        self.apply_checked(changes, Some(expected_version)).await
    }

    async fn apply_checked(
        &self,
        changes: &[Change],
        expected_version: Option<i64>,
    ) -> Result<i64> {
        let writes: Vec<&Change> = changes
            .iter()
            .filter(|change| {
                matches!(
                    change.change,
                    ChangeType::Create | ChangeType::Update | ChangeType::Delete
                )
            })
            .collect();
        if writes.is_empty() {
            let version = self.version().await?;
            return match expected_version {
                Some(expected) if expected != version => Err(RegistryError::Conflict {
                    expected,
                    found: version,
                }),
                _ => Ok(version),
            };
        }
        let now = crate::feature_store::now_micros();
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        self.lock(&mut transaction).await?;
        // The first statement writes, so SQLite takes its write lock here (waiting on a concurrent
        // apply) rather than failing to upgrade a read lock later.
        sqlx::query(
            "UPDATE feature_store_registry_version SET version = version + 1, update_time = $1 WHERE id = 1",
        )
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        for change in writes {
            match (&change.change, &change.desired) {
                (ChangeType::Delete, _) => {
                    sqlx::query("DELETE FROM feature_store_objects WHERE kind = $1 AND name = $2")
                        .bind(change.kind.as_str())
                        .bind(change.name.as_str())
                        .execute(&mut *transaction)
                        .await?;
                    if change.kind == DefinitionKind::FeatureView {
                        sqlx::query("DELETE FROM feature_store_watermarks WHERE feature_view = $1")
                            .bind(change.name.as_str())
                            .execute(&mut *transaction)
                            .await?;
                    }
                }
                (_, Some(definition)) => {
                    upsert(&mut transaction, definition, now).await?;
                }
                (_, None) => {}
            }
        }
        let version: i64 =
            sqlx::query("SELECT version FROM feature_store_registry_version WHERE id = 1")
                .fetch_one(&mut *transaction)
                .await?
                .try_get(0)?;
        if let Some(expected) = expected_version
            && version != expected + 1
        {
            transaction.rollback().await?;
            return Err(RegistryError::Conflict {
                expected,
                found: version - 1,
            });
        }
        transaction.commit().await?;
        Ok(version)
    }

    /// The registry's version: how many applies changed something.
    pub async fn version(&self) -> Result<i64> {
        let row = sqlx::query("SELECT version FROM feature_store_registry_version WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => 0,
        })
    }

    /// The whole applied project.
    pub async fn load_project(&self) -> Result<Project> {
        let mut project = Project::default();
        for stored in self.list(&ListFilter::default()).await? {
            stored.definition.insert_into(&mut project);
        }
        Ok(project)
    }

    /// The object `name` of `kind`.
    pub async fn get(&self, kind: DefinitionKind, name: &str) -> Result<Option<StoredDefinition>> {
        let row = sqlx::query(
            "SELECT kind, name, definition, update_time FROM feature_store_objects WHERE kind = $1 AND name = $2",
        )
        .bind(kind.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored).transpose()
    }

    /// The objects that pass `filter`, by kind (entities first) then name.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<StoredDefinition>> {
        let rows = sqlx::query(
            "SELECT kind, name, definition, update_time FROM feature_store_objects
             WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR owner = $2)",
        )
        .bind(filter.kind.map_or("", DefinitionKind::as_str))
        .bind(filter.owner.as_deref().unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let stored = stored(row)?;
            let tags = &stored.definition.metadata().tags;
            if filter
                .tags
                .iter()
                .all(|(key, value)| tags.get(key) == Some(value))
            {
                found.push(stored);
            }
        }
        found.sort_by(|left, right| {
            (left.definition.kind(), left.definition.name())
                .cmp(&(right.definition.kind(), right.definition.name()))
        });
        Ok(found)
    }

    /// How far `view` is materialized, in microseconds since the epoch; `None` when never.
    pub async fn watermark(&self, view: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT materialized_until FROM feature_store_watermarks WHERE feature_view = $1",
        )
        .bind(view)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    /// Moves `view`'s watermark to `until` (microseconds since the epoch) if that is later than the
    /// stored one; whether it moved. A watermark never goes back, so a slow, older materialization
    /// finishing last cannot undo a newer one.
    pub async fn set_watermark(&self, view: &str, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO feature_store_watermarks (feature_view, materialized_until, update_time)
             VALUES ($1, $2, $3)
             ON CONFLICT (feature_view) DO UPDATE
             SET materialized_until = excluded.materialized_until, update_time = excluded.update_time
             WHERE feature_store_watermarks.materialized_until < excluded.materialized_until",
        )
        .bind(view)
        .bind(until)
        .bind(crate::feature_store::now_micros())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// On PostgreSQL, takes the registry's transaction-scoped advisory lock.
    async fn lock(&self, transaction: &mut Transaction<'_, Any>) -> Result<()> {
        plinth_runtime::database::advisory_lock(transaction, self.backend, LOCK_KEY).await?;
        Ok(())
    }
}

async fn upsert(
    transaction: &mut Transaction<'_, Any>,
    definition: &Definition,
    now: i64,
) -> Result<()> {
    let corrupt = |message: String| RegistryError::Corrupt {
        kind: definition.kind().as_str().to_owned(),
        name: definition.name().to_owned(),
        message,
    };
    let json = record::encode(definition).map_err(|error| corrupt(error.to_string()))?;
    let metadata = definition.metadata();
    let tags = serde_json::to_string(&metadata.tags).map_err(|error| corrupt(error.to_string()))?;
    sqlx::query(
        "INSERT INTO feature_store_objects (kind, name, definition, owner, tags, update_time)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (kind, name) DO UPDATE
         SET definition = excluded.definition, owner = excluded.owner, tags = excluded.tags,
             update_time = excluded.update_time",
    )
    .bind(definition.kind().as_str())
    .bind(definition.name())
    .bind(json)
    .bind(metadata.owner.as_str())
    .bind(tags)
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

fn stored(row: &AnyRow) -> Result<StoredDefinition> {
    let kind_text: String = row.try_get("kind")?;
    let name: String = row.try_get("name")?;
    let json: String = row.try_get("definition")?;
    let update_time_micros: i64 = row.try_get("update_time")?;
    let corrupt = |message: String| RegistryError::Corrupt {
        kind: kind_text.clone(),
        name: name.clone(),
        message,
    };
    let kind: DefinitionKind = kind_text
        .parse()
        .map_err(|error: crate::domain::parse::UnknownDefinitionKind| corrupt(error.to_string()))?;
    let definition = record::decode(kind, &json).map_err(corrupt)?;
    if definition.name() != name {
        return Err(corrupt(format!(
            "the stored definition is named `{}`",
            definition.name()
        )));
    }
    Ok(StoredDefinition {
        definition,
        update_time_micros,
    })
}

#[cfg(test)]
mod tests;
