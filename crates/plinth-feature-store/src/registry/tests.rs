//! One scenario per behavior, each run on SQLite (a temp file) and on the PostgreSQL at
//! 127.0.0.1:5432 (a fresh schema per test, chosen through `search_path`).

use std::time::Duration;

use sqlx::Connection as _;

use super::*;
use crate::domain::parse::parse;
use crate::domain::plan::plan;

const DEFINITIONS: &str = "\
entities:
  - name: driver
    join_keys: [{name: driver_id, type: int64}]
    owner: mobility
    tags: {team: mobility}
  - name: customer
    join_keys: [{name: customer_id, type: string}]
    owner: growth
    tags: {team: growth}
sources:
  - name: stats
    lake: {dataset: stats}
    timestamp_field: ts
    created_timestamp_column: created
    field_mapping: {rate_v2: rate}
  - name: events
    stream: {topic: events_topic}
    timestamp_field: ts
  - name: pushed
    push: {}
    timestamp_field: ts
  - name: files
    parquet: {url: 'file:///data/files'}
    timestamp_field: ts
feature_views:
  - name: hourly
    entities: [driver, customer]
    source: stats
    ttl: 1d
    online: false
    features:
      - {name: rate, type: float32, description: the rate}
    owner: mobility
    tags: {team: mobility, tier: gold}
feature_services:
  - name: ranking
    features: [{hourly: [rate]}]
";

/// A database for one test: a SQLite file in a temp dir, or a PostgreSQL schema dropped at the end.
struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

impl TestDatabase {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("registry.db").display());
                Self {
                    url,
                    _dir: Some(dir),
                    schema: None,
                }
            }
            Backend::Postgres => {
                let schema = format!("fs_registry_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(POSTGRES)
                    .await
                    .unwrap_or_else(|err| {
                        panic!("PostgreSQL at {POSTGRES} is required by these tests: {err}")
                    });
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.ok();
                Self {
                    url: format!("{POSTGRES}?options=-c%20search_path%3D{schema}"),
                    _dir: None,
                    schema: Some(schema),
                }
            }
        }
    }

    async fn registry(&self) -> Registry {
        Registry::connect(&self.url, 4, Duration::from_secs(10))
            .await
            .unwrap()
    }

    async fn drop_schema(self) {
        if let Some(schema) = &self.schema {
            let mut conn = sqlx::PgConnection::connect(POSTGRES).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.ok();
        }
    }
}

fn project(text: &str) -> Project {
    parse(&[("defs.yaml", text)]).unwrap().project
}

async fn applies_and_loads_the_same_project(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let registry = database.registry().await;
    assert_eq!(registry.load_project().await.unwrap(), Project::default());
    assert_eq!(registry.version().await.unwrap(), 0);

    let desired = project(DEFINITIONS);
    let changes = plan(&Project::default(), &desired, false).unwrap();
    assert_eq!(registry.apply(&changes).await.unwrap(), 1);
    assert_eq!(registry.load_project().await.unwrap(), desired);

    // A second connection (another replica) sees the same; re-applying changes nothing.
    let other = database.registry().await;
    let current = other.load_project().await.unwrap();
    let again = plan(&current, &desired, true).unwrap();
    assert_eq!(other.apply(&again).await.unwrap(), 1);

    // An update and a prune land together.
    let updated = project(&DEFINITIONS.replace("ttl: 1d", "ttl: 2d").replace(
        "  - name: files\n    parquet: {url: 'file:///data/files'}\n    timestamp_field: ts\n",
        "",
    ));
    let changes = plan(&current, &updated, true).unwrap();
    assert_eq!(registry.apply(&changes).await.unwrap(), 2);
    assert_eq!(other.load_project().await.unwrap(), updated);
    let view = other
        .get(DefinitionKind::FeatureView, "hourly")
        .await
        .unwrap()
        .unwrap();
    assert!(view.update_time_micros > 0);
    assert!(
        other
            .get(DefinitionKind::Source, "files")
            .await
            .unwrap()
            .is_none()
    );
    database.drop_schema().await;
}

async fn lists_by_kind_owner_and_tags(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let registry = database.registry().await;
    let desired = project(DEFINITIONS);
    registry
        .apply(&plan(&Project::default(), &desired, false).unwrap())
        .await
        .unwrap();
    let names = |found: Vec<StoredDefinition>| -> Vec<String> {
        found
            .iter()
            .map(|stored| format!("{}/{}", stored.definition.kind(), stored.definition.name()))
            .collect()
    };
    let all = registry.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(
        names(all)[..3],
        ["entity/customer", "entity/driver", "source/events"]
    );
    let sources = ListFilter {
        kind: Some(DefinitionKind::Source),
        ..ListFilter::default()
    };
    assert_eq!(
        names(registry.list(&sources).await.unwrap()),
        [
            "source/events",
            "source/files",
            "source/pushed",
            "source/stats"
        ]
    );
    let mobility = ListFilter {
        owner: Some("mobility".into()),
        ..ListFilter::default()
    };
    assert_eq!(
        names(registry.list(&mobility).await.unwrap()),
        ["entity/driver", "feature_view/hourly"]
    );
    let gold = ListFilter {
        tags: Tags::from([("tier".to_owned(), "gold".to_owned())]),
        ..ListFilter::default()
    };
    assert_eq!(
        names(registry.list(&gold).await.unwrap()),
        ["feature_view/hourly"]
    );
    let none = ListFilter {
        kind: Some(DefinitionKind::Entity),
        tags: Tags::from([("tier".to_owned(), "gold".to_owned())]),
        owner: None,
    };
    assert!(registry.list(&none).await.unwrap().is_empty());
    database.drop_schema().await;
}

async fn watermarks_only_move_forward(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let registry = database.registry().await;
    let desired = project(DEFINITIONS);
    registry
        .apply(&plan(&Project::default(), &desired, false).unwrap())
        .await
        .unwrap();
    assert_eq!(registry.watermark("hourly").await.unwrap(), None);
    assert!(registry.set_watermark("hourly", 1_000).await.unwrap());
    assert!(registry.set_watermark("hourly", 2_000).await.unwrap());
    assert!(!registry.set_watermark("hourly", 1_500).await.unwrap());
    assert!(!registry.set_watermark("hourly", 2_000).await.unwrap());
    assert_eq!(registry.watermark("hourly").await.unwrap(), Some(2_000));

    // Deleting the view forgets its watermark: a view of the same name created later starts over.
    let mut without_view = desired.clone();
    without_view.feature_views.clear();
    without_view.feature_services.clear();
    registry
        .apply(&plan(&desired, &without_view, true).unwrap())
        .await
        .unwrap();
    assert_eq!(registry.watermark("hourly").await.unwrap(), None);
    database.drop_schema().await;
}

async fn concurrent_applies_do_not_interleave(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let first = database.registry().await;
    let second = database.registry().await;
    let desired = project(DEFINITIONS);
    // Each replica applies a whole project where every view has its own TTL; after both, the project
    // is one of the two whole, never a mix, and the version counts every apply.
    let variant = |ttl: &str| project(&DEFINITIONS.replace("ttl: 1d", ttl));
    let one = plan(&Project::default(), &variant("ttl: 1h"), false).unwrap();
    let two = plan(&Project::default(), &variant("ttl: 2h"), false).unwrap();
    let mut tasks = Vec::new();
    for round in 0..8 {
        let (registry, changes) = if round % 2 == 0 {
            (first.clone(), one.clone())
        } else {
            (second.clone(), two.clone())
        };
        tasks.push(tokio::spawn(async move { registry.apply(&changes).await }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<i64>>());
    let stored = first.load_project().await.unwrap();
    assert!(stored == variant("ttl: 1h") || stored == variant("ttl: 2h"));
    assert_eq!(stored.entities, desired.entities);
    database.drop_schema().await;
}

async fn a_plan_made_before_another_apply_is_refused(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let registry = database.registry().await;
    let desired = project(DEFINITIONS);
    let version = registry.version().await.unwrap();
    let changes = plan(&Project::default(), &desired, false).unwrap();
    assert_eq!(
        registry.apply_if_version(&changes, version).await.unwrap(),
        1
    );
    // The same plan again, made against version 0, is stale now.
    let error = registry
        .apply_if_version(&changes, version)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Conflict {
                expected: 0,
                found: 1
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("plan again"));
    let nothing = plan(&desired, &desired, false).unwrap();
    assert!(registry.apply_if_version(&nothing, 0).await.is_err());
    assert_eq!(registry.apply_if_version(&nothing, 1).await.unwrap(), 1);
    assert_eq!(registry.load_project().await.unwrap(), desired);
    database.drop_schema().await;
}

async fn a_corrupt_row_is_named(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let registry = database.registry().await;
    sqlx::query(
        "INSERT INTO feature_store_objects (kind, name, definition, owner, tags, update_time) VALUES ('entity', 'broken', '{\"name\": 1}', '', '{}', 0)",
    )
    .execute(&registry.pool)
    .await
    .unwrap();
    let error = registry.load_project().await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the registry's entity `broken` does not read"),
        "{error}"
    );
    database.drop_schema().await;
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    applies_and_loads_the_same_project,
    lists_by_kind_owner_and_tags,
    watermarks_only_move_forward,
    concurrent_applies_do_not_interleave,
    a_plan_made_before_another_apply_is_refused,
    a_corrupt_row_is_named,
);

#[test]
fn every_kind_survives_the_json_round_trip() {
    for definition in Definition::all_of(&project(DEFINITIONS)) {
        let json = record::encode(&definition).unwrap();
        assert_eq!(record::decode(definition.kind(), &json), Ok(definition));
    }
}
