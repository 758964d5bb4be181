//! Confluent's semantics through the registry API, on both backends.

use plinth_proto::ids::{SchemaId, Subject};
use plinth_schema_registry::domain::config::{
    CompatibilityConfig, CompatibilityLevel, CompatibilityPolicy, Mode,
};
use plinth_schema_registry::domain::schema::SchemaReference;
use plinth_schema_registry::error::Error;
use plinth_schema_registry::registry::{DeletedFilter, SchemaInput, ValidationTarget, VersionSpec};
use serde_json::json;

use crate::backend::{BACKENDS, registry, unique_name};

fn input(schema: serde_json::Value) -> SchemaInput {
    SchemaInput {
        text: schema.to_string(),
        ..SchemaInput::default()
    }
}

fn subject(prefix: &str) -> Subject {
    Subject::new(unique_name(prefix))
}

fn person() -> serde_json::Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
}

#[tokio::test]
async fn ids_and_versions_follow_confluent() {
    for backend in BACKENDS {
        let (registry, _db) = registry(backend).await;
        let orders = subject("orders");
        let first = registry
            .register(&orders, input(person()), None, None)
            .await
            .unwrap();
        assert_eq!(first.version, 1);

        // Same schema with other key order and whitespace: same id and version, no new version.
        let reordered = SchemaInput {
            text: r#"{ "required": ["name"],
                       "properties": { "name": { "type": "string" } }, "type": "object" }"#
                .to_owned(),
            ..SchemaInput::default()
        };
        let again = registry
            .register(&orders, reordered, None, None)
            .await
            .unwrap();
        assert_eq!(
            (again.schema.id, again.version),
            (first.schema.id, 1),
            "{backend:?}"
        );
        assert_eq!(
            registry
                .versions(&orders, DeletedFilter::default())
                .await
                .unwrap(),
            vec![1]
        );

        // The same schema under another subject gets the same global id.
        let other = subject("other");
        let shared = registry
            .register(&other, input(person()), None, None)
            .await
            .unwrap();
        assert_eq!(shared.schema.id, first.schema.id);
        assert_eq!(shared.version, 1);
        let usages = registry
            .usages(first.schema.id, DeletedFilter::default())
            .await
            .unwrap();
        assert_eq!(usages.len(), 2);

        // A compatible change makes version 2 with a new id.
        let evolved = json!({"type": "object", "properties": {"name": {"type": "string"}}});
        let second = registry
            .register(&orders, input(evolved), None, None)
            .await
            .unwrap();
        assert_eq!(second.version, 2);
        assert_ne!(second.schema.id, first.schema.id);
        let latest = registry
            .version(&orders, VersionSpec::Latest, false)
            .await
            .unwrap();
        assert_eq!(latest.version, 2);
        let fetched = registry.schema_by_id(second.schema.id).await.unwrap();
        assert_eq!(fetched.text, second.schema.text);

        // Lookup finds the version holding a schema; an unknown schema is 40403.
        let found = registry
            .lookup(&orders, input(person()), false)
            .await
            .unwrap();
        assert_eq!(found.version, 1);
        let missing = registry
            .lookup(&orders, input(json!({"type": "string"})), false)
            .await
            .unwrap_err();
        assert_eq!(missing.error_code(), 40403);
    }
}

#[tokio::test]
async fn compatibility_is_enforced_per_level() {
    for backend in BACKENDS {
        let (registry, _db) = registry(backend).await;
        let events = subject("events");
        let open = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        registry
            .register(&events, input(open), None, None)
            .await
            .unwrap();

        // Confluent STRICT: an optional property added to an open content model is incompatible.
        let added = json!({"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}});
        let err = registry
            .register(&events, input(added.clone()), None, None)
            .await
            .unwrap_err();
        let Error::Incompatible {
            details,
            error_code,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*error_code, 409);
        assert!(
            details
                .iter()
                .any(|detail| detail.contains("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")),
            "{details:?}"
        );
        assert!(
            details
                .last()
                .unwrap()
                .contains("compatibility: 'BACKWARD'"),
            "{details:?}"
        );
        let messages = registry
            .check_compatibility(&events, input(added.clone()), None)
            .await
            .unwrap();
        assert!(!messages.is_empty());

        // LENIENT allows it.
        let lenient = CompatibilityConfig {
            level: CompatibilityLevel::Backward,
            policy: CompatibilityPolicy::Lenient,
        };
        registry.set_config(Some(&events), lenient).await.unwrap();
        assert!(
            registry
                .check_compatibility(&events, input(added.clone()), None)
                .await
                .unwrap()
                .is_empty()
        );
        registry
            .register(&events, input(added), None, None)
            .await
            .unwrap();

        // Type narrowing is refused under BACKWARD and accepted under NONE.
        registry
            .set_config(Some(&events), CompatibilityConfig::default())
            .await
            .unwrap();
        let narrowed = json!({"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}}});
        assert!(
            registry
                .register(&events, input(narrowed.clone()), None, None)
                .await
                .is_err()
        );
        let none = CompatibilityConfig {
            level: CompatibilityLevel::None,
            ..CompatibilityConfig::default()
        };
        registry.set_config(Some(&events), none).await.unwrap();
        assert_eq!(
            registry
                .register(&events, input(narrowed), None, None)
                .await
                .unwrap()
                .version,
            3
        );

        // Subject config falls back to global; 40408 without defaultToGlobal.
        let fresh = subject("fresh");
        assert_eq!(
            registry
                .config(Some(&fresh), false)
                .await
                .unwrap_err()
                .error_code(),
            40408
        );
        assert_eq!(
            registry.config(Some(&fresh), true).await.unwrap().level,
            CompatibilityLevel::Backward
        );
    }
}

#[tokio::test]
async fn transitive_levels_check_every_version() {
    for backend in BACKENDS {
        let (registry, _db) = registry(backend).await;
        let subject = subject("transitive");
        let none = CompatibilityConfig {
            level: CompatibilityLevel::None,
            ..CompatibilityConfig::default()
        };
        registry.set_config(Some(&subject), none).await.unwrap();
        let v1 = json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false});
        let v2 = json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false});
        registry
            .register(&subject, input(v1), None, None)
            .await
            .unwrap();
        registry
            .register(&subject, input(v2), None, None)
            .await
            .unwrap();
        // v3 = v1 again with an extra optional property in a closed model: compatible with v1 only.
        let candidate = json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "additionalProperties": false});
        let backward = CompatibilityConfig {
            level: CompatibilityLevel::Backward,
            ..CompatibilityConfig::default()
        };
        registry.set_config(Some(&subject), backward).await.unwrap();
        assert!(
            !registry
                .check_compatibility(&subject, input(candidate.clone()), None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            registry
                .check_compatibility(
                    &subject,
                    input(candidate.clone()),
                    Some(VersionSpec::Number(1))
                )
                .await
                .unwrap()
                .is_empty()
        );
        let transitive = CompatibilityConfig {
            level: CompatibilityLevel::BackwardTransitive,
            ..CompatibilityConfig::default()
        };
        registry
            .set_config(Some(&subject), transitive)
            .await
            .unwrap();
        assert!(
            !registry
                .check_compatibility(&subject, input(candidate), None)
                .await
                .unwrap()
                .is_empty()
        );
        // An explicit missing version is 40402.
        let err = registry
            .check_compatibility(&subject, input(person()), Some(VersionSpec::Number(9)))
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 40402);
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> u32 {
    result.expect_err("must fail").error_code()
}

#[tokio::test]
async fn deletes_follow_confluent_error_codes() {
    for backend in BACKENDS {
        let (registry, _db) = registry(backend).await;
        let subject = subject("deletes");
        let none = CompatibilityConfig {
            level: CompatibilityLevel::None,
            ..CompatibilityConfig::default()
        };
        registry.set_config(Some(&subject), none).await.unwrap();
        let v1 = registry
            .register(&subject, input(person()), None, None)
            .await
            .unwrap();
        registry
            .register(&subject, input(json!({"type": "object"})), None, None)
            .await
            .unwrap();

        // Permanent before soft: 40407 (version) and 40405 (subject).
        assert_eq!(
            code(
                registry
                    .delete_version(&subject, VersionSpec::Number(1), true)
                    .await
            ),
            40407
        );
        assert_eq!(code(registry.delete_subject(&subject, true).await), 40405);

        assert_eq!(
            registry
                .delete_version(&subject, VersionSpec::Number(1), false)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            code(
                registry
                    .delete_version(&subject, VersionSpec::Number(1), false)
                    .await
            ),
            40406
        );
        assert_eq!(
            registry
                .versions(&subject, DeletedFilter::default())
                .await
                .unwrap(),
            vec![2]
        );
        let all = DeletedFilter {
            deleted: true,
            deleted_only: false,
        };
        assert_eq!(registry.versions(&subject, all).await.unwrap(), vec![1, 2]);
        assert_eq!(
            code(
                registry
                    .version(&subject, VersionSpec::Number(1), false)
                    .await
            ),
            40402
        );
        assert!(
            registry
                .version(&subject, VersionSpec::Number(1), true)
                .await
                .unwrap()
                .deleted
        );

        assert_eq!(
            registry.delete_subject(&subject, false).await.unwrap(),
            vec![2]
        );
        assert_eq!(code(registry.delete_subject(&subject, false).await), 40404);
        assert_eq!(
            code(registry.versions(&subject, DeletedFilter::default()).await),
            40401
        );
        assert!(
            !registry
                .subjects("", DeletedFilter::default())
                .await
                .unwrap()
                .contains(&subject)
        );
        assert!(registry.subjects("", all).await.unwrap().contains(&subject));
        // Ids keep resolving after a soft delete.
        assert_eq!(
            registry.schema_by_id(v1.schema.id).await.unwrap().id,
            v1.schema.id
        );

        assert_eq!(
            registry.delete_subject(&subject, true).await.unwrap(),
            vec![1, 2]
        );
        assert_eq!(code(registry.delete_subject(&subject, false).await), 40401);
        assert!(!registry.subjects("", all).await.unwrap().contains(&subject));

        // Registering the same schema again after a permanent delete reuses its id, from version 1.
        let again = registry
            .register(&subject, input(person()), None, None)
            .await
            .unwrap();
        assert_eq!((again.schema.id, again.version), (v1.schema.id, 1));
    }
}

#[tokio::test]
async fn references_resolve_for_validation_and_block_deletes() {
    for backend in BACKENDS {
        let (registry, _db) = registry(backend).await;
        let address_subject = subject("address");
        let address = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
        registry
            .register(&address_subject, input(address), None, None)
            .await
            .unwrap();

        let customer_subject = subject("customer");
        let customer = SchemaInput {
            text: json!({"type": "object", "properties": {"home": {"$ref": "address.json"}}, "required": ["home"]})
                .to_string(),
            references: vec![SchemaReference { name: "address.json".into(), subject: address_subject.clone(), version: 1 }],
            ..SchemaInput::default()
        };
        let registered = registry
            .register(&customer_subject, customer, None, None)
            .await
            .unwrap();
        let ids = registry
            .referenced_by(&address_subject, VersionSpec::Number(1))
            .await
            .unwrap();
        assert_eq!(ids, vec![registered.schema.id]);

        let documents = vec![
            json!({"home": {"city": "Oslo"}}).to_string(),
            json!({"home": {}}).to_string(),
        ];
        let (id, results) = registry
            .validate(ValidationTarget::Id(registered.schema.id), &documents)
            .await
            .unwrap();
        assert_eq!(id, registered.schema.id);
        assert!(results[0].is_empty());
        assert_eq!(results[1].len(), 1);
        assert_eq!(results[1][0].instance_path, "/home");

        // The referenced version cannot be deleted while referenced.
        let err = registry
            .delete_version(&address_subject, VersionSpec::Number(1), false)
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 42206);

        // A reference to a version that does not exist, and a $ref with no reference, are invalid schemas.
        let dangling = SchemaInput {
            text: json!({"$ref": "address.json"}).to_string(),
            references: vec![SchemaReference {
                name: "address.json".into(),
                subject: address_subject.clone(),
                version: 7,
            }],
            ..SchemaInput::default()
        };
        let err = registry
            .register(&subject("dangling"), dangling, None, None)
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 42201, "{err}");
        let unknown = input(json!({"properties": {"x": {"$ref": "nowhere.json"}}}));
        let err = registry
            .register(&subject("unknown-ref"), unknown, None, None)
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 42201);
        assert!(err.to_string().contains("nowhere.json"), "{err}");
    }
}

#[tokio::test]
async fn modes_guard_writes_and_import_keeps_ids() {
    for backend in BACKENDS {
        let (registry, _db) = registry(backend).await;
        let locked = subject("locked");
        registry
            .register(&locked, input(person()), None, None)
            .await
            .unwrap();
        registry
            .set_mode(Some(&locked), Mode::ReadOnly, false)
            .await
            .unwrap();
        let err = registry
            .register(&locked, input(json!({"type": "object"})), None, None)
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 42205);
        assert_eq!(
            registry
                .delete_subject(&locked, false)
                .await
                .unwrap_err()
                .error_code(),
            42205
        );
        assert_eq!(
            registry.mode(Some(&locked), false).await.unwrap(),
            Mode::ReadOnly
        );
        assert_eq!(
            registry.delete_mode(Some(&locked)).await.unwrap(),
            Mode::ReadOnly
        );
        assert_eq!(
            registry
                .mode(Some(&locked), false)
                .await
                .unwrap_err()
                .error_code(),
            40409
        );

        // An explicit id outside IMPORT mode is refused.
        let imported = subject("imported");
        let err = registry
            .register(
                &imported,
                input(person()),
                Some(SchemaId::new(5000)),
                Some(3),
            )
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 42205);
        // IMPORT on a subject with no schemas, then the given id and version are kept.
        registry
            .set_mode(Some(&imported), Mode::Import, false)
            .await
            .unwrap();
        let kept = registry
            .register(
                &imported,
                input(json!({"type": "object", "title": "imported"})),
                Some(SchemaId::new(5000)),
                Some(3),
            )
            .await
            .unwrap();
        assert_eq!((kept.schema.id, kept.version), (SchemaId::new(5000), 3));
        // The id now holds a schema: importing another schema under it is 42207.
        let err = registry
            .register(
                &imported,
                input(json!({"type": "array"})),
                Some(SchemaId::new(5000)),
                Some(4),
            )
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), 42207);
        // IMPORT on a subject that has schemas needs force.
        assert_eq!(
            registry
                .set_mode(Some(&locked), Mode::Import, false)
                .await
                .unwrap_err()
                .error_code(),
            42205
        );
        registry
            .set_mode(Some(&locked), Mode::Import, true)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn compatibility_follows_each_side_to_its_own_reference_version() {
    for backend in BACKENDS {
        let (registry, _db) = registry(backend).await;
        let address_subject = subject("address");
        let none = CompatibilityConfig {
            level: CompatibilityLevel::None,
            ..CompatibilityConfig::default()
        };
        registry
            .set_config(Some(&address_subject), none)
            .await
            .unwrap();
        let city = |kind: &str| json!({"type": "object", "properties": {"city": {"type": kind}}, "additionalProperties": false});
        registry
            .register(&address_subject, input(city("string")), None, None)
            .await
            .unwrap();
        registry
            .register(&address_subject, input(city("integer")), None, None)
            .await
            .unwrap();

        let customer = |address_version: i32, extra: bool| {
            let mut properties = json!({"home": {"$ref": "address.json"}});
            if extra {
                properties["nickname"] = json!({"type": "string"});
            }
            SchemaInput {
                text: json!({"type": "object", "properties": properties, "additionalProperties": false}).to_string(),
                references: vec![SchemaReference {
                    name: "address.json".into(),
                    subject: address_subject.clone(),
                    version: address_version,
                }],
                ..SchemaInput::default()
            }
        };
        let customer_subject = subject("customer");
        registry
            .register(&customer_subject, customer(1, false), None, None)
            .await
            .unwrap();

        // Same name, another version whose `city` changed type: incompatible through the reference.
        let messages = registry
            .check_compatibility(&customer_subject, customer(2, false), None)
            .await
            .unwrap();
        assert!(
            messages
                .iter()
                .any(|message| message.contains("#/properties/home/properties/city")),
            "{messages:?}"
        );
        // The same reference version and a new optional property in a closed model: compatible.
        let messages = registry
            .check_compatibility(&customer_subject, customer(1, true), None)
            .await
            .unwrap();
        assert!(messages.is_empty(), "{messages:?}");
    }
}
