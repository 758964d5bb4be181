//! Errors: the wire error every service returns ([`ApiError`], mapped once to gRPC and HTTP), and the
//! errors of this crate's own operations (loading configuration, starting telemetry, binding servers).

mod api;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use self::api::{ApiError, ERROR_DOMAIN, ErrorCode, FieldViolation};

/// Where a configuration value came from; named in configuration errors so the user knows what to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// The service's built-in default (`T::default()`).
    Default,
    /// A TOML configuration file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::Default => f.write_str("the built-in default"),
            ConfigOrigin::File(path) => write!(f, "file {}", path.display()),
            ConfigOrigin::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// Loading or validating configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}: {source}; check the path and its permissions", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("cannot parse configuration file {} at line {line}, column {column}: {message}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// A key holds a value of the wrong shape or type.
    #[error(
        "invalid configuration: key `{key}`{}{}: {reason}",
        value.as_deref().map(|value| format!(" = {value}")).unwrap_or_default(),
        origin.as_ref().map(|origin| format!(" (from {origin})")).unwrap_or_default()
    )]
    InvalidValue {
        /// Dotted key path, e.g. `grpc.listen`.
        key: String,
        /// The offending value as TOML, when it is a scalar or an array.
        value: Option<String>,
        /// Where the value came from, when known.
        origin: Option<ConfigOrigin>,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A key that the configuration does not know.
    #[error("invalid configuration: unknown key `{key}` (from {origin}); {expected}")]
    UnknownKey {
        /// Dotted key path of the unknown key.
        key: String,
        /// Where the key came from.
        origin: ConfigOrigin,
        /// The keys allowed at that level.
        expected: String,
    },
    /// A value is well-formed but violates a rule checked by [`crate::config::Validate`].
    #[error("invalid configuration: key `{key}`: {reason}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A `PLINTH_*` environment variable cannot be mapped to a key.
    #[error("invalid environment variable {name}: {reason}")]
    InvalidEnvVar {
        /// The variable name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The built-in default could not be turned into TOML (a bug in the service's config type).
    #[error("cannot serialize the default configuration: {reason}")]
    Defaults {
        /// The serializer's message.
        reason: String,
    },
}

impl ConfigError {
    /// Prefixes the key path of a validation error with the key of the enclosing block, so a block
    /// validated inside a larger config reports `server.auth.tokens_file` instead of `tokens_file`.
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        let join = |key: String| {
            if key.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{key}")
            }
        };
        match self {
            ConfigError::Invalid { key, reason } => ConfigError::Invalid {
                key: join(key),
                reason,
            },
            ConfigError::InvalidValue {
                key,
                value,
                origin,
                reason,
            } => ConfigError::InvalidValue {
                key: join(key),
                value,
                origin,
                reason,
            },
            ConfigError::UnknownKey {
                key,
                origin,
                expected,
            } => ConfigError::UnknownKey {
                key: join(key),
                origin,
                expected,
            },
            other => other,
        }
    }
}

/// Starting telemetry failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter (`log_level` or `RUST_LOG`) is not a valid directive.
    #[error("invalid log filter {directive:?} from {origin}: {reason}")]
    InvalidLogFilter {
        /// The directive as given.
        directive: String,
        /// `telemetry.log_level` or `RUST_LOG`.
        origin: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// An OTLP exporter could not be built.
    #[error("cannot build the OTLP {signal} exporter for {endpoint}: {reason}")]
    Exporter {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// The configured endpoint.
        endpoint: String,
        /// The exporter's message.
        reason: String,
    },
    /// The background runtime that drives OTLP exports could not start.
    #[error("cannot start the telemetry export runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// Loading tokens or authenticating failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The tokens file could not be read.
    #[error("cannot read tokens file {}: {source}; check `auth.tokens_file`", path.display())]
    ReadTokens {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A line of the tokens file is malformed.
    #[error("tokens file {} line {line}: {reason}; expected `<read|write|admin> <token> [name]`", path.display())]
    InvalidLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The tokens file holds no token, so no request could ever be authorized.
    #[error("tokens file {} holds no token; add lines `<role> <token> [name]` or disable auth", path.display())]
    NoTokens {
        /// The file.
        path: PathBuf,
    },
}

/// Building a TLS configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot load {what} from {}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the file should hold, e.g. `certificate chain`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// rustls rejected the certificates or key.
    #[error("invalid TLS configuration ({context}): {source}")]
    Rustls {
        /// Which step failed.
        context: String,
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
    /// The client CA bundle could not be turned into a client certificate verifier.
    #[error("cannot use {} as client CA: {reason}", path.display())]
    ClientVerifier {
        /// The CA file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Building, binding or running a server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error(
        "cannot bind the {listener} listener to {addr}: {source}; is another process using the port? change `{key}`"
    )]
    Bind {
        /// `gRPC` or `HTTP`.
        listener: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The config key to change.
        key: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The gRPC reflection service could not be built from the descriptor sets.
    #[error("cannot build the gRPC reflection service: {reason}")]
    Reflection {
        /// What tonic-reflection said.
        reason: String,
    },
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Auth is enabled but the tokens could not be loaded.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Auth is enabled but no tokens file is configured.
    #[error("auth is enabled but `auth.tokens_file` is not set; set it or disable auth")]
    AuthWithoutTokens,
}

/// Connecting a client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL is not usable.
    #[error("invalid endpoint {endpoint}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// The client TLS settings could not be loaded.
    #[error("cannot set up TLS for {endpoint}: {source}")]
    Tls {
        /// The endpoint being connected.
        endpoint: String,
        /// What went wrong.
        #[source]
        source: TlsError,
    },
    /// The token cannot be sent as a header value.
    #[error("the API token contains characters that cannot be sent in a header; check the token")]
    InvalidToken,
    /// The endpoint could not be reached.
    #[error("cannot reach {endpoint}: {reason}; {hint}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The innermost cause, e.g. `connection refused`.
        reason: String,
        /// What to check next.
        hint: &'static str,
    },
}
