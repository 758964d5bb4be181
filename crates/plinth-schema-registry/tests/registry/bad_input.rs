//! Bad input gets a specific error with Confluent's code, never a panic.

use plinth_proto::ids::Subject;
use plinth_schema_registry::error::Error;
use plinth_schema_registry::registry::{
    RegistrySettings, SchemaInput, ValidationTarget, VersionSpec,
};
use plinth_schema_registry::store::Store;
use serde_json::json;

use crate::backend::{Backend, TestDatabase, registry, unique_name};

fn check(result: Result<impl std::fmt::Debug, Error>, code: u32, message_part: &str) {
    let err = result.expect_err("must fail");
    assert_eq!(err.error_code(), code, "{err}");
    assert!(
        err.to_string().contains(message_part),
        "`{err}` lacks `{message_part}`"
    );
}

fn text(text: &str) -> SchemaInput {
    SchemaInput {
        text: text.to_owned(),
        ..SchemaInput::default()
    }
}

#[tokio::test]
async fn invalid_schemas_are_refused_with_pointer_and_reason() {
    let (registry, _db) = registry(Backend::Sqlite).await;
    let subject = Subject::new(unique_name("bad"));
    check(
        registry
            .register(&subject, text("{\"type\": "), None, None)
            .await,
        42201,
        "invalid JSON at line 1",
    );
    check(
        registry.register(&subject, text("[]"), None, None).await,
        42201,
        "must be a JSON object",
    );
    check(
        registry.register(&subject, text("42"), None, None).await,
        42201,
        "must be a JSON object",
    );
    check(
        registry
            .register(&subject, text(r#"{"type": "integr"}"#), None, None)
            .await,
        42201,
        "at `/type`",
    );
    check(
        registry
            .register(
                &subject,
                text(r##"{"properties": {"a": {"$ref": "#/definitions/missing"}}}"##),
                None,
                None,
            )
            .await,
        42201,
        "missing",
    );
    check(
        registry
            .register(&subject, text(r##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##), None, None)
            .await,
        42201,
        "cycle",
    );
    let err = "AVRO"
        .parse::<plinth_schema_registry::domain::schema::SchemaType>()
        .unwrap_err();
    assert!(err.reason.contains("not supported"), "{err}");
    // Nothing was registered by any of these.
    check(
        registry.versions(&subject, Default::default()).await,
        40401,
        "not found",
    );
}

#[tokio::test]
async fn bad_names_versions_and_sizes() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let store = Store::connect(&database.url, 2, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let settings = RegistrySettings {
        max_schema_bytes: 1024,
        max_validation_documents: 3,
        ..RegistrySettings::default()
    };
    let registry = plinth_schema_registry::registry::Registry::new(store, settings);

    check(
        registry
            .register(&Subject::new(""), text("{}"), None, None)
            .await,
        42208,
        "empty",
    );
    check(
        registry
            .register(&Subject::new("a\u{7}b"), text("{}"), None, None)
            .await,
        42208,
        "control character",
    );
    check(
        registry
            .register(&Subject::new("x".repeat(300)), text("{}"), None, None)
            .await,
        42208,
        "255",
    );

    let huge = json!({"description": "x".repeat(2048)}).to_string();
    check(
        registry
            .register(&Subject::new("huge"), text(&huge), None, None)
            .await,
        42209,
        "limit is 1024",
    );

    check(VersionSpec::parse("0"), 42202, "not a valid version id");
    check(VersionSpec::parse("abc"), 42202, "not a valid version id");
    check(
        VersionSpec::parse("99999999999"),
        42202,
        "not a valid version id",
    );
    assert_eq!(VersionSpec::parse("latest").unwrap(), VersionSpec::Latest);
    assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);

    check(
        registry
            .version(&Subject::new("nobody"), VersionSpec::Latest, false)
            .await,
        40401,
        "Subject 'nobody' not found.",
    );
    check(
        registry
            .schema_by_id(plinth_proto::ids::SchemaId::new(999))
            .await,
        40403,
        "Schema 999 not found",
    );

    registry
        .register(
            &Subject::new("docs"),
            text(r#"{"type": "object"}"#),
            None,
            None,
        )
        .await
        .unwrap();
    let target = || ValidationTarget::SubjectVersion(Subject::new("docs"), VersionSpec::Latest);
    let too_many: Vec<String> = (0..4).map(|_| "{}".to_owned()).collect();
    check(
        registry.validate(target(), &too_many).await,
        42201,
        "limit is 3",
    );
    let (_, results) = registry
        .validate(target(), &["{oops".to_owned(), "[]".to_owned()])
        .await
        .unwrap();
    assert!(
        results[0][0].message.contains("invalid JSON"),
        "{:?}",
        results[0]
    );
    assert_eq!(results[1].len(), 1, "an array is not an object");
}

#[test]
fn config_values_are_checked_at_start() {
    use plinth_runtime::config::Validate as _;
    let mut config = plinth_schema_registry::Config::default();
    config.registry.default_draft = "8".into();
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("registry.default_draft") && err.contains("`8`"),
        "{err}"
    );

    let mut config = plinth_schema_registry::Config::default();
    config.registry.incompatible_error_code = 500;
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("registry.incompatible_error_code") && err.contains("409 or 40901"),
        "{err}"
    );

    let env = [("PLINTH_DATABASE__URL".to_owned(), "mysql://nope".to_owned())];
    let config: plinth_schema_registry::Config = plinth_runtime::config::load(None, env).unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("database.url"), "{err}");
}

#[test]
fn the_binary_refuses_to_start_on_a_bad_value_and_names_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_plinth-schema-registry"))
        .env("PLINTH_SERVER__GRPC__LISTEN", "abc")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`server.grpc.listen` = \"abc\"")
            && stderr.contains("PLINTH_SERVER__GRPC__LISTEN"),
        "{stderr}"
    );
    assert!(!stderr.contains("Stack backtrace"), "{stderr}");
}
