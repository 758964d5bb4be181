//! Test backends: a fresh SQLite file per test, or a fresh PostgreSQL schema per test.

use std::sync::Arc;
use std::time::Duration;

use plinth_schema_registry::registry::{Registry, RegistrySettings};
use plinth_schema_registry::store::Store;

/// The PostgreSQL server the tests use (trust auth, database `test`).
pub(crate) fn postgres_base_url() -> String {
    std::env::var("PLINTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Which database a scenario runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A database URL unique to one test. Kept alive (the SQLite directory) by the returned guard.
pub(crate) struct TestDatabase {
    pub(crate) url: String,
    _dir: Option<TempDir>,
    _schema: Option<PostgresSchema>,
}

/// A PostgreSQL schema dropped when the test ends, so the shared `test` database does not grow.
pub(crate) struct PostgresSchema(pub(crate) String);

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let schema = self.0.clone();
        // Drop runs inside the test's runtime; do the async cleanup on a thread with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_base_url()).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl TestDatabase {
    pub(crate) async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique_name("plinth_registry"));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let url = format!("sqlite://{}/registry.db", dir.display());
                Self {
                    url,
                    _dir: Some(TempDir(dir)),
                    _schema: None,
                }
            }
            Backend::Postgres => {
                let schema = unique_name("t");
                let url = postgres_schema_url(&schema).await;
                Self {
                    url,
                    _dir: None,
                    _schema: Some(PostgresSchema(schema)),
                }
            }
        }
    }
}

/// Creates a PostgreSQL schema and returns a URL whose connections use it as `search_path`.
pub(crate) async fn postgres_schema_url(schema: &str) -> String {
    use sqlx::Connection as _;
    let base = postgres_base_url();
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {base} is required by these tests: {err}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    conn.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

pub(crate) async fn registry_on(url: &str) -> Arc<Registry> {
    let store = Store::connect(url, 5, Duration::from_secs(5))
        .await
        .expect("store connects");
    Arc::new(Registry::new(store, RegistrySettings::default()))
}

pub(crate) async fn registry(backend: Backend) -> (Arc<Registry>, TestDatabase) {
    let database = TestDatabase::new(backend).await;
    let registry = registry_on(&database.url).await;
    (registry, database)
}
