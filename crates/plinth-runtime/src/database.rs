//! The SQL pool every service opens the same way: sqlx `Any` over SQLite (embedded) or PostgreSQL
//! (production), chosen by the URL's scheme. SQLite files are created when missing and run in WAL mode
//! with a busy timeout, so one process's readers and its writer do not block each other.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

use crate::config::DatabaseConfig;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or `:memory:`).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend of `url`: `sqlite:` URLs are SQLite, everything else PostgreSQL.
    pub fn of(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

/// Opens a pool for `config` (see [`connect`]).
pub async fn connect_config(config: &DatabaseConfig) -> Result<AnyPool, sqlx::Error> {
    connect(&config.url, config.max_connections, config.connect_timeout).await
}

/// Opens a pool for `url`. SQLite: the file is created (`mode=rwc` unless the URL says otherwise), WAL
/// mode, a 10 s busy timeout, foreign keys on, and at most 4 connections (one writer at a time anyway).
pub async fn connect(
    url: &str,
    max_connections: u32,
    connect_timeout: Duration,
) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url);
    let mut connect_url = url.to_owned();
    if backend == Backend::Sqlite
        && !connect_url.contains("mode=")
        && !connect_url.contains(":memory:")
    {
        connect_url.push_str(if connect_url.contains('?') {
            "&mode=rwc"
        } else {
            "?mode=rwc"
        });
    }
    AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite {
            max_connections.min(4)
        } else {
            max_connections
        })
        .acquire_timeout(connect_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                }
                Ok(())
            })
        })
        .connect(&connect_url)
        .await
}

/// Whether `err` means the database cannot be reached right now (down, restarting, pool exhausted or
/// closed, a connection lost, SQLite busy past its timeout), so retrying later may succeed, as opposed to
/// a statement the database refused.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => {
            // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, connection exceptions.
            database.code().is_some_and(|code| {
                matches!(code.as_ref(), "57P01" | "57P02" | "57P03") || code.starts_with("08")
            }) || database.message().contains("is locked")
        }
        _ => false,
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
/// a deferred transaction that reads first and writes later cannot wait for another writer (SQLite
/// answers "database is locked" at once instead of using the busy timeout), while an immediate one
/// waits its turn. On PostgreSQL a plain `BEGIN`.
pub async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Transaction<'static, Any>, sqlx::Error> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
}

/// Takes a PostgreSQL transaction-scoped advisory lock on `key` (released at commit or rollback), so
/// replicas serialize the writes that take it. SQLite has one writer anyway: nothing to do.
pub async fn advisory_lock(
    transaction: &mut Transaction<'_, Any>,
    backend: Backend,
    key: i64,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        // Selected through a subquery so the row has an integer column: the `Any` driver cannot decode
        // `void`, the lock function's own type.
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
            .bind(key)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

/// Creates a service's tables from portable SQL (`CREATE TABLE IF NOT EXISTS ...;` statements, `--`
/// comment lines allowed) in one transaction under the advisory lock `lock_key`, so two replicas starting
/// at once do not race on PostgreSQL's catalog. Services keep a table prefix so they can share a database.
pub async fn create_tables(
    pool: &AnyPool,
    backend: Backend,
    lock_key: i64,
    schema: &str,
) -> Result<(), sqlx::Error> {
    let mut transaction = begin_write(pool, backend).await?;
    advisory_lock(&mut transaction, backend, lock_key).await?;
    let schema = schema
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in schema
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
    {
        sqlx::query(statement).execute(&mut *transaction).await?;
    }
    transaction.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(Backend::of("sqlite://x.db?mode=rwc"), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://u@h/db"), Backend::Postgres);
    }

    #[tokio::test]
    async fn a_sqlite_file_is_created_and_answers() {
        let dir = std::env::temp_dir().join(format!("plinth-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let pool = connect(&url, 8, Duration::from_secs(5)).await.ok();
        let pool = pool
            .as_ref()
            .map(|pool| sqlx::query("SELECT 1").execute(pool));
        assert!(match pool {
            Some(query) => query.await.is_ok(),
            None => false,
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
