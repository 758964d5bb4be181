//! Several replicas on one PostgreSQL, and PostgreSQL dropping away mid-load.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plinth_proto::ids::Subject;
use plinth_schema_registry::domain::config::{CompatibilityConfig, CompatibilityLevel};
use plinth_schema_registry::error::Error;
use plinth_schema_registry::registry::{
    DeletedFilter, Registry, RegistrySettings, SchemaInput, VersionSpec,
};
use plinth_schema_registry::store::Store;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::backend::{PostgresSchema, postgres_schema_url, registry_on, unique_name};

fn schema_for(n: usize) -> SchemaInput {
    SchemaInput {
        text: json!({"type": "object", "title": format!("schema {n}"), "properties": {"n": {"const": n}}}).to_string(),
        ..SchemaInput::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_register_concurrently_without_duplicates_or_losses() {
    let schema = unique_name("t");
    let url = postgres_schema_url(&schema).await;
    let _cleanup = PostgresSchema(schema);
    let first = registry_on(&url).await;
    let second = registry_on(&url).await;
    let none = CompatibilityConfig {
        level: CompatibilityLevel::None,
        ..CompatibilityConfig::default()
    };
    first.set_config(None, none).await.unwrap();
    let watchers: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .map(|replica| tokio::spawn(replica.watch_changes(std::future::pending())))
        .collect();

    let subjects: Vec<Subject> = (0..3)
        .map(|idx| Subject::new(format!("replicated-{idx}")))
        .collect();
    let mut tasks = Vec::new();
    for (replica_idx, replica) in [first.clone(), second.clone()].into_iter().enumerate() {
        for subject in subjects.clone() {
            let replica = replica.clone();
            tasks.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                // Schemas 0..12 are registered by both replicas (same schema, racing); 100+ by one only.
                for n in (0..12).chain((0..6).map(|k| 100 + replica_idx * 10 + k)) {
                    let view = replica
                        .register(&subject, schema_for(n), None, None)
                        .await
                        .expect("registration succeeds");
                    acknowledged.push((subject.clone(), n, view.schema.id, view.version));
                }
                acknowledged
            }));
        }
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }

    // Every acknowledged registration is stored, once, as acknowledged.
    let mut id_of_schema: HashMap<usize, plinth_proto::ids::SchemaId> = HashMap::new();
    for (subject, n, id, version) in &acknowledged {
        let previous = id_of_schema.insert(*n, *id);
        assert!(
            previous.is_none_or(|previous| previous == *id),
            "schema {n} got two ids"
        );
        let stored = first
            .version(subject, VersionSpec::Number(*version), false)
            .await
            .unwrap();
        assert_eq!(stored.schema.id, *id, "{subject} v{version}");
    }
    let distinct_ids: HashSet<_> = id_of_schema.values().collect();
    assert_eq!(
        distinct_ids.len(),
        id_of_schema.len(),
        "two schemas share an id"
    );
    for subject in &subjects {
        let versions = first
            .versions(subject, DeletedFilter::default())
            .await
            .unwrap();
        // 12 shared + 6 + 6 one-replica schemas: 24 versions, contiguous, each schema exactly once.
        assert_eq!(versions, (1..=24).collect::<Vec<i32>>(), "{subject}");
        let mut schemas_seen = BTreeMap::new();
        for version in versions {
            let view = first
                .version(subject, VersionSpec::Number(version), false)
                .await
                .unwrap();
            assert!(
                schemas_seen.insert(view.schema.id, version).is_none(),
                "{subject}: schema twice"
            );
        }
    }

    // Reads stay correct across replicas: a version registered on one is seen by the other's cache.
    let probe = Subject::new("replicated-probe");
    second
        .register(&probe, schema_for(1), None, None)
        .await
        .unwrap();
    assert_eq!(
        first
            .version(&probe, VersionSpec::Latest, false)
            .await
            .unwrap()
            .version,
        1
    );
    first
        .register(&probe, schema_for(2), None, None)
        .await
        .unwrap();
    let mut seen = 0;
    for _ in 0..50 {
        seen = second
            .version(&probe, VersionSpec::Latest, false)
            .await
            .unwrap()
            .version;
        if seen == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 2, "replica cache never saw the new version");
    for watcher in watchers {
        watcher.abort();
    }
}

/// A TCP proxy to PostgreSQL that can drop every connection and refuse new ones, like a restart.
struct Outage {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Outage {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let up_rx = up.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !*up_rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut down = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dropping_mid_load_fails_cleanly_and_loses_nothing() {
    let schema = unique_name("t");
    let direct_url = postgres_schema_url(&schema).await;
    let _cleanup = PostgresSchema(schema.clone());
    let outage = Outage::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied_url = direct_url.replace("127.0.0.1:5432", &outage.addr.to_string());
    let store = Store::connect(&proxied_url, 4, Duration::from_secs(1))
        .await
        .unwrap();
    let registry = Arc::new(Registry::new(store, RegistrySettings::default()));
    let none = CompatibilityConfig {
        level: CompatibilityLevel::None,
        ..CompatibilityConfig::default()
    };
    registry.set_config(None, none).await.unwrap();

    let subject = Subject::new("through-outage");
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    for n in 0..60 {
        if n == 20 {
            outage.set_up(false);
        }
        if n == 40 {
            outage.set_up(true);
        }
        match registry.register(&subject, schema_for(n), None, None).await {
            Ok(view) => acknowledged.push((n, view.schema.id, view.version)),
            Err(Error::Store(err)) => {
                failures += 1;
                assert!(
                    (20..45).contains(&n),
                    "failure outside the outage at {n}: {err}"
                );
                assert_eq!(Error::Store(err).error_code(), 50001);
            }
            Err(other) => panic!("unexpected error at {n}: {other}"),
        }
    }
    assert!(
        failures >= 15,
        "the outage was not observed ({failures} failures)"
    );
    assert!(
        acknowledged.iter().any(|(n, _, _)| *n >= 45),
        "registrations did not recover after the outage"
    );

    // Every acknowledged registration is there, read straight from PostgreSQL.
    let direct = registry_on(&direct_url).await;
    for (n, id, version) in &acknowledged {
        let view = direct
            .version(&subject, VersionSpec::Number(*version), false)
            .await
            .unwrap();
        assert_eq!(view.schema.id, *id, "schema {n}");
        assert!(
            view.schema.text.contains(&format!("schema {n}")),
            "schema {n} at v{version}"
        );
    }
    let versions = direct
        .versions(&subject, DeletedFilter::default())
        .await
        .unwrap();
    assert_eq!(
        versions.len(),
        acknowledged.len(),
        "a registration was stored but not acknowledged, or lost"
    );
}
