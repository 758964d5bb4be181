use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestConfig {
    name: String,
    tags: Vec<String>,
    grpc: ListenConfig,
    database: DatabaseConfig,
    telemetry: TelemetryConfig,
    server: ServerConfig,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            name: "registry".to_owned(),
            tags: Vec::new(),
            grpc: ListenConfig::on_port(7001),
            database: DatabaseConfig::default(),
            telemetry: TelemetryConfig::default(),
            server: ServerConfig::with_ports(7001, 7002),
        }
    }
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

fn load_test(
    file: Option<&tempfile::NamedTempFile>,
    vars: &[(&str, &str)],
) -> Result<TestConfig, ConfigError> {
    load(file.map(|file| file.path()), env(vars))
}

fn error_of(file: Option<&tempfile::NamedTempFile>, vars: &[(&str, &str)]) -> String {
    load_test(file, vars).unwrap_err().to_string()
}

#[test]
fn defaults_alone_round_trip() {
    assert_eq!(load_test(None, &[]).unwrap(), TestConfig::default());
}

#[test]
fn file_merges_tables_key_by_key() {
    let file = file(
        r#"
        name = "features"
        [database]
        max_connections = 3
        [server]
        request_timeout = "2m"
        [server.grpc]
        listen = "127.0.0.1:9001"
        "#,
    );
    let config = load_test(Some(&file), &[]).unwrap();
    assert_eq!(config.name, "features");
    assert_eq!(config.database.max_connections, 3);
    // Untouched keys of a merged table keep their defaults.
    assert_eq!(config.database.url, DatabaseConfig::default().url);
    assert_eq!(config.server.request_timeout, Duration::from_secs(120));
    assert_eq!(
        config.server.grpc.listen,
        "127.0.0.1:9001".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.server.http, ListenConfig::on_port(7002));
}

#[test]
fn env_overrides_nested_keys_and_beats_the_file() {
    let file = file("[database]\nmax_connections = 3\n");
    let config = load_test(
        Some(&file),
        &[
            ("PLINTH_DATABASE__MAX_CONNECTIONS", "20"),
            ("PLINTH_GRPC__LISTEN", "127.0.0.1:9000"),
            ("PLINTH_SERVER__SHUTDOWN_GRACE_PERIOD", "500ms"),
            ("PLINTH_SERVER__AUTH__ENABLED", "true"),
            ("PLINTH_TAGS", r#"["a", "b"]"#),
            ("OTHER_VARIABLE", "ignored"),
            ("PLINTH_CONFIG", "/etc/plinth.toml"),
        ],
    )
    .unwrap();
    assert_eq!(config.database.max_connections, 20);
    assert_eq!(
        config.grpc.listen,
        "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.server.shutdown_grace_period,
        Duration::from_millis(500)
    );
    assert!(config.server.auth.enabled);
    assert_eq!(config.tags, ["a", "b"]);
}

#[test]
fn numeric_looking_env_value_for_a_string_key_stays_a_string() {
    let config = load_test(
        None,
        &[
            ("PLINTH_NAME", "1234"),
            ("PLINTH_TELEMETRY__LOG_LEVEL", "true"),
        ],
    )
    .unwrap();
    assert_eq!(config.name, "1234");
    assert_eq!(config.telemetry.log_level, "true");
}

#[test]
fn bad_socket_address_names_key_value_origin_and_expectation() {
    assert_eq!(
        error_of(None, &[("PLINTH_GRPC__LISTEN", "abc")]),
        "invalid configuration: key `grpc.listen` = \"abc\" (from environment variable \
         PLINTH_GRPC__LISTEN): invalid socket address syntax (expected host:port, e.g. 0.0.0.0:7001)"
    );
    let file = file("[server.http]\nlisten = \"localhost\"\n");
    let message = error_of(Some(&file), &[]);
    assert!(
        message.starts_with(
            "invalid configuration: key `server.http.listen` = \"localhost\" (from file "
        ),
        "{message}"
    );
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn unknown_key_names_key_and_source() {
    let file = file("[database]\nmax_conections = 3\n");
    let message = error_of(Some(&file), &[]);
    assert!(
        message.starts_with(
            "invalid configuration: unknown key `database.max_conections` (from file "
        ),
        "{message}"
    );
    assert!(
        message.contains("max_connections"),
        "lists the allowed keys: {message}"
    );

    let message = error_of(None, &[("PLINTH_SERVER__GRPC__PORT", "1")]);
    assert!(
        message.starts_with(
            "invalid configuration: unknown key `server.grpc.port` (from environment variable PLINTH_SERVER__GRPC__PORT)"
        ),
        "{message}"
    );
}

#[test]
fn bad_duration_names_key_value_and_format() {
    let message = error_of(None, &[("PLINTH_SERVER__REQUEST_TIMEOUT", "soon")]);
    assert!(
        message.starts_with("invalid configuration: key `server.request_timeout` = \"soon\" (from environment variable PLINTH_SERVER__REQUEST_TIMEOUT): invalid duration"),
        "{message}"
    );
    assert!(message.contains("e.g. 500ms, 30s"), "{message}");

    // A bare number has no unit: say so instead of guessing seconds.
    let message = error_of(None, &[("PLINTH_SERVER__REQUEST_TIMEOUT", "30")]);
    assert!(
        message.contains("key `server.request_timeout` = \"30\""),
        "{message}"
    );
    assert!(message.contains("add a unit, e.g. \"30s\""), "{message}");
}

#[test]
fn wrong_type_in_file_says_what_was_expected() {
    let file = file("[database]\nmax_connections = \"many\"\n");
    let message = error_of(Some(&file), &[]);
    assert!(
        message.contains("key `database.max_connections` = \"many\""),
        "{message}"
    );
    assert!(message.contains("u32"), "{message}");
}

#[test]
fn missing_key_in_a_partial_table_is_named() {
    let message = error_of(None, &[("PLINTH_SERVER__TLS__CERT_PATH", "/tmp/cert.pem")]);
    assert!(message.contains("key `server.tls.key_path`"), "{message}");
    assert!(message.contains("missing"), "{message}");
}

#[test]
fn file_errors_name_the_path_and_line() {
    let file = file("name = \"x\"\n[database\nurl = 1\n");
    let message = error_of(Some(&file), &[]);
    assert!(
        message.starts_with("cannot parse configuration file "),
        "{message}"
    );
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("at line 2"), "{message}");

    let missing = std::path::Path::new("/nonexistent/plinth.toml");
    let message = load::<TestConfig>(Some(missing), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("cannot read configuration file /nonexistent/plinth.toml: "),
        "{message}"
    );
}

#[test]
fn malformed_env_name_is_rejected() {
    let message = error_of(None, &[("PLINTH_DATABASE____URL", "x")]);
    assert!(
        message.starts_with("invalid environment variable PLINTH_DATABASE____URL"),
        "{message}"
    );
    let message = error_of(None, &[("PLINTH_NAME__INNER", "x")]);
    assert!(message.contains("`name` is not a table"), "{message}");
}

#[test]
fn validation_rules() {
    let mut server = ServerConfig::with_ports(7001, 7002);
    server.validate().unwrap();

    server.auth.enabled = true;
    let message = server.validate().unwrap_err().within("server").to_string();
    assert!(
        message.starts_with(
            "invalid configuration: key `server.auth.tokens_file`: required when auth is enabled"
        ),
        "{message}"
    );

    let mut tokens = tempfile::NamedTempFile::new().unwrap();
    writeln!(tokens, "# comment only").unwrap();
    server.auth.tokens_file = Some(tokens.path().to_owned());
    let message = server.validate().unwrap_err().to_string();
    assert!(message.contains("holds no token"), "{message}");
    writeln!(tokens, "admin s3cret ops").unwrap();
    server.validate().unwrap();

    let same_ports = ServerConfig::with_ports(7001, 7001);
    assert!(
        same_ports
            .validate()
            .unwrap_err()
            .to_string()
            .contains("http.listen")
    );

    let database = DatabaseConfig {
        url: "mysql://u:pw@db/x".to_owned(),
        ..DatabaseConfig::default()
    };
    let message = database.validate().unwrap_err().to_string();
    assert!(
        message.contains("must start with sqlite:, postgres:// or postgresql://"),
        "{message}"
    );
    assert!(!message.contains("pw"), "password leaked: {message}");
    for url in ["sqlite::memory:", "postgres://db/x", "postgresql://db/x"] {
        DatabaseConfig {
            url: url.to_owned(),
            ..DatabaseConfig::default()
        }
        .validate()
        .unwrap();
    }

    for level in ["info", "WARN", "info,plinth_runtime=debug", "plinth=trace"] {
        TelemetryConfig {
            log_level: level.to_owned(),
            ..TelemetryConfig::default()
        }
        .validate()
        .unwrap();
    }
    for level in ["verbose", "info,=", "plinth=loud"] {
        let err = TelemetryConfig {
            log_level: level.to_owned(),
            ..TelemetryConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("key `log_level`"), "{level}: {err}");
    }
}

#[test]
fn database_debug_hides_the_password() {
    let database = DatabaseConfig {
        url: "postgres://plinth:hunter2@db:5432/plinth".to_owned(),
        ..DatabaseConfig::default()
    };
    let debug = format!("{database:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("postgres://plinth:***@db:5432/plinth"),
        "{debug}"
    );
}

#[test]
fn durations_parse_and_format() {
    for (text, expected) in [
        ("0", Duration::ZERO),
        ("500ms", Duration::from_millis(500)),
        ("30s", Duration::from_secs(30)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("1h30m", Duration::from_secs(5400)),
        ("1m 5s", Duration::from_secs(65)),
        ("250us", Duration::from_micros(250)),
        ("2d", Duration::from_secs(172_800)),
    ] {
        assert_eq!(duration::parse(text), Ok(expected), "{text}");
    }
    for text in ["", "s", "5", "5 s", "1.5s", "-1s", "5sec", "1h30"] {
        assert!(duration::parse(text).is_err(), "{text}");
    }
    for duration in [
        Duration::ZERO,
        Duration::from_millis(1500),
        Duration::from_secs(45),
        Duration::from_secs(120),
        Duration::from_secs(7200),
        Duration::from_micros(3),
        Duration::from_nanos(7),
    ] {
        assert_eq!(duration::parse(&duration::format(duration)), Ok(duration));
    }
    assert_eq!(duration::format(Duration::from_secs(30)), "30s");
    assert_eq!(duration::format(Duration::from_millis(500)), "500ms");
}

#[test]
fn another_prefix_reads_only_its_own_variables() {
    let config: TestConfig = load_with_prefix(
        "PLINTH_REGISTRY_",
        None,
        env(&[
            ("PLINTH_REGISTRY_NAME", "scoped"),
            ("PLINTH_NAME", "global"),
        ]),
    )
    .unwrap();
    assert_eq!(config.name, "scoped");
}

#[test]
fn other_tools_plinth_variables_are_not_configuration() {
    // The CLI's and the build's variables share the prefix; a service must still start beside them.
    let loaded = load_test(
        None,
        &[
            ("PLINTH_TOKEN", "secret"),
            ("PLINTH_TOOLS_DIR", "/tmp/tools"),
        ],
    )
    .unwrap();
    let defaults = load_test(None, &[]).unwrap();
    assert_eq!(format!("{loaded:?}"), format!("{defaults:?}"));
    // A nested key is always configuration: a misspelled section is refused, not skipped.
    let message = error_of(None, &[("PLINTH_DATABSE__URL", "sqlite::memory:")]);
    assert!(message.contains("unknown key `databse`"), "{message}");
}
