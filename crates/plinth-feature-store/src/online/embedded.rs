//! The embedded online store: one SQLite table, for `plinth up` and tests without Redis.
//!
//! Table `feature_store_online(entity_key, view, event_ts, created_ts, row)` with the primary key
//! `(entity_key, view)` (`embedded/schema.sql`). A write is one transaction of upserts guarded by
//! `(excluded.event_ts, excluded.created_ts) >= (stored ...)` (`embedded/upsert.sql`), so the write
//! rule holds inside SQLite, per key, in batch order. A read is one `SELECT ... IN (...)` per chunk of
//! keys (one for usual request sizes).
//!
//! The table is created with `CREATE TABLE IF NOT EXISTS` rather than a sqlx migration so the store
//! can share a SQLite file with the registry without the two migration histories colliding.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{AnyPool, Row};

use super::{OnlineError, OnlineStore, WriteOutcome};
use crate::domain::entity_key::EntityKey;
use crate::domain::online_row::{self, OnlineRow};

const BACKEND: &str = "embedded";
const SCHEMA: &str = include_str!("embedded/schema.sql");
const UPSERT: &str = include_str!("embedded/upsert.sql");

/// Bound parameters per read query, under SQLite's limit with room to spare.
const MAX_READ_PARAMETERS: usize = 900;

/// The SQLite online store (see the module doc).
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    pool: AnyPool,
}

impl EmbeddedStore {
    /// Opens (creating if missing) the SQLite database at `url` (`sqlite://path/online.db`) and
    /// creates the table. Not `sqlite::memory:`: each pooled connection would see its own empty
    /// database; a throwaway store is a file in a temporary directory.
    pub async fn open(url: &str) -> Result<Self, OnlineError> {
        if plinth_runtime::database::Backend::of(url) != plinth_runtime::database::Backend::Sqlite
            || url.contains(":memory:")
        {
            return Err(OnlineError::Backend {
                backend: BACKEND,
                cause: format!(
                    "`{url}` is not a SQLite file URL; the embedded online store takes `sqlite://<path>` (a file, not `:memory:`), or use Redis"
                ),
            });
        }
        let pool = plinth_runtime::database::connect(url, 4, std::time::Duration::from_secs(10))
            .await
            .map_err(|err| map_error("opening the database", &err))?;
        Self::with_pool(pool).await
    }

    /// Uses an open SQLite pool (for example the registry's) and creates the table.
    pub async fn with_pool(pool: AnyPool) -> Result<Self, OnlineError> {
        sqlx::query(SCHEMA)
            .execute(&pool)
            .await
            .map_err(|err| map_error("creating the online table", &err))?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl OnlineStore for EmbeddedStore {
    async fn write(
        &self,
        view: &str,
        rows: Vec<(EntityKey, OnlineRow)>,
    ) -> Result<WriteOutcome, OnlineError> {
        let mut outcome = WriteOutcome::default();
        if rows.is_empty() {
            return Ok(outcome);
        }
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|err| map_error("starting a write", &err))?;
        for (key, row) in rows {
            let encoded = online_row::encode(&row).map_err(|err| OnlineError::Unencodable {
                view: view.to_owned(),
                cause: err.to_string(),
            })?;
            let result = sqlx::query(UPSERT)
                .bind(key.into_bytes())
                .bind(view)
                .bind(row.event_ts)
                .bind(row.created_ts)
                .bind(encoded)
                .execute(&mut *transaction)
                .await
                .map_err(|err| map_error("writing a row", &err))?;
            if result.rows_affected() > 0 {
                outcome.written += 1;
            } else {
                outcome.skipped += 1;
            }
        }
        transaction
            .commit()
            .await
            .map_err(|err| map_error("committing a write", &err))?;
        Ok(outcome)
    }

    async fn read(
        &self,
        views: &[&str],
        keys: &[EntityKey],
    ) -> Result<Vec<Vec<Option<OnlineRow>>>, OnlineError> {
        let mut result: Vec<Vec<Option<OnlineRow>>> = vec![vec![None; views.len()]; keys.len()];
        if views.is_empty() || keys.is_empty() {
            return Ok(result);
        }
        let view_idx_by_name: HashMap<&str, usize> = views
            .iter()
            .enumerate()
            .map(|(view_idx, view)| (*view, view_idx))
            .collect();
        // A key may be asked for twice: every position gets the row.
        let mut key_idxs_by_bytes: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (key_idx, key) in keys.iter().enumerate() {
            key_idxs_by_bytes
                .entry(key.as_bytes())
                .or_default()
                .push(key_idx);
        }
        let unique_keys: Vec<&[u8]> = key_idxs_by_bytes.keys().copied().collect();
        let keys_per_query = MAX_READ_PARAMETERS.saturating_sub(views.len()).max(1);
        for chunk in unique_keys.chunks(keys_per_query) {
            let sql = format!(
                "SELECT entity_key, view, row FROM feature_store_online WHERE view IN ({}) AND entity_key IN ({})",
                placeholders(views.len()),
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for view in views {
                query = query.bind(*view);
            }
            for key in chunk {
                query = query.bind(key.to_vec());
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(|err| map_error("reading rows", &err))?;
            for stored in rows {
                let column_error = |err: sqlx::Error| map_error("reading a row", &err);
                let key_bytes: Vec<u8> = stored.try_get(0).map_err(column_error)?;
                let view: String = stored.try_get(1).map_err(column_error)?;
                let bytes: Vec<u8> = stored.try_get(2).map_err(column_error)?;
                let (Some(key_idxs), Some(&view_idx)) = (
                    key_idxs_by_bytes.get(key_bytes.as_slice()),
                    view_idx_by_name.get(view.as_str()),
                ) else {
                    continue;
                };
                let row = online_row::decode(&bytes).map_err(|err| OnlineError::Corrupt {
                    view: view.clone(),
                    entity_key: EntityKey::from_bytes(key_bytes.clone()).to_hex(),
                    cause: err.to_string(),
                })?;
                for &key_idx in key_idxs {
                    result[key_idx][view_idx] = Some(row.clone());
                }
            }
        }
        Ok(result)
    }

    async fn delete_view(&self, view: &str) -> Result<(), OnlineError> {
        sqlx::query("DELETE FROM feature_store_online WHERE view = ?")
            .bind(view)
            .execute(&self.pool)
            .await
            .map_err(|err| map_error("deleting a view's rows", &err))?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), OnlineError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|err| map_error("ping", &err))?;
        Ok(())
    }
}

fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// A pool that cannot hand out a connection, or a file that cannot be read, is `Unavailable`; a busy
/// database too (another writer held it past the busy timeout). Anything else is a `Backend` error.
fn map_error(what: &str, err: &sqlx::Error) -> OnlineError {
    let unavailable = plinth_runtime::database::is_unavailable(err);
    let cause = format!("{what} failed: {err}");
    if unavailable {
        OnlineError::Unavailable {
            backend: BACKEND,
            cause,
        }
    } else {
        OnlineError::Backend {
            backend: BACKEND,
            cause,
        }
    }
}
