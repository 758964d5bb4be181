//! The reusable configuration blocks services compose their config from.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::Validate;
use crate::auth::TokenStore;
use crate::error::ConfigError;

/// A TCP address to listen on.
///
/// It has no `Default`: every service listens on its own ports, see [`ListenConfig::on_port`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// `host:port`; port 0 picks a free port (tests).
    #[serde(with = "socket_addr")]
    pub listen: SocketAddr,
}

impl ListenConfig {
    /// Listens on all IPv4 interfaces on `port`.
    pub fn on_port(port: u16) -> Self {
        ListenConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        }
    }
}

/// Server-side TLS. Setting `client_ca_path` requires every client to present a certificate signed by
/// that CA (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// PEM bundle of CAs that sign client certificates; set = mTLS required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_path: Option<PathBuf>,
}

impl Validate for TlsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_file("cert_path", &self.cert_path)?;
        check_file("key_path", &self.key_path)?;
        if let Some(client_ca_path) = &self.client_ca_path {
            check_file("client_ca_path", client_ca_path)?;
        }
        Ok(())
    }
}

/// Bearer-token authentication.
///
/// The tokens file has one token per line, `<role> <token> [name]` with role `read`, `write` or
/// `admin`; `#` starts a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a token on every non-public request.
    #[serde(default)]
    pub enabled: bool,
    /// The tokens file; required when `enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
}

impl Validate for AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(tokens_file) = &self.tokens_file else {
            return Err(ConfigError::Invalid {
                key: "tokens_file".to_owned(),
                reason: "required when auth is enabled; point it at a file of \
                         `<read|write|admin> <token> [name]` lines, or set `enabled = false`"
                    .to_owned(),
            });
        };
        TokenStore::load(tokens_file)
            .map(|_| ())
            .map_err(|err| ConfigError::Invalid {
                key: "tokens_file".to_owned(),
                reason: err.to_string(),
            })
    }
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logs, traces and metrics export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// A `tracing` filter: a level (`info`) or directives (`info,plinth_runtime=debug`). `RUST_LOG`
    /// overrides it when set.
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`; unset = no trace or metric export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<Url>,
    /// How often metrics are pushed to the collector.
    #[serde(with = "super::duration")]
    pub otlp_export_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            otlp_export_interval: Duration::from_secs(60),
        }
    }
}

impl Validate for TelemetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        crate::telemetry::parse_log_filter(&self.log_level).map_err(|reason| {
            ConfigError::Invalid {
                key: "log_level".to_owned(),
                reason,
            }
        })?;
        if let Some(endpoint) = &self.otlp_endpoint
            && !matches!(endpoint.scheme(), "http" | "https")
        {
            return Err(ConfigError::Invalid {
                key: "otlp_endpoint".to_owned(),
                reason: format!(
                    "scheme `{}` is not supported; use http:// or https://, e.g. http://127.0.0.1:4317",
                    endpoint.scheme()
                ),
            });
        }
        if self.otlp_export_interval.is_zero() {
            return Err(ConfigError::Invalid {
                key: "otlp_export_interval".to_owned(),
                reason: "must be greater than zero, e.g. 60s".to_owned(),
            });
        }
        Ok(())
    }
}

/// Everything a Plinth server needs: its two listeners, TLS, auth and request limits.
///
/// It has no `Default` because ports differ per service: start from [`ServerConfig::with_ports`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The gRPC listener (services, health, reflection).
    pub grpc: ListenConfig,
    /// The HTTP listener (REST routes, `/metrics`, `/healthz`, `/readyz`).
    pub http: ListenConfig,
    /// TLS for both listeners; unset = plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Bearer-token auth for both listeners.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Longest time a request may take to produce its response headers.
    #[serde(with = "super::duration", default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// Largest accepted HTTP request body, and largest gRPC message.
    #[serde(default = "default_max_request_body_bytes")]
    pub max_request_body_bytes: usize,
    /// How long in-flight requests may run after shutdown starts.
    #[serde(with = "super::duration", default = "default_shutdown_grace_period")]
    pub shutdown_grace_period: Duration,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_request_body_bytes() -> usize {
    4 * 1024 * 1024
}

fn default_shutdown_grace_period() -> Duration {
    Duration::from_secs(20)
}

impl ServerConfig {
    /// Listens on all interfaces, gRPC on `grpc` and HTTP on `http`, with default limits, no TLS and
    /// no auth.
    pub fn with_ports(grpc: u16, http: u16) -> Self {
        ServerConfig {
            grpc: ListenConfig::on_port(grpc),
            http: ListenConfig::on_port(http),
            tls: None,
            auth: AuthConfig::default(),
            request_timeout: default_request_timeout(),
            max_request_body_bytes: default_max_request_body_bytes(),
            shutdown_grace_period: default_shutdown_grace_period(),
        }
    }
}

impl Validate for ServerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.grpc.listen == self.http.listen && self.grpc.listen.port() != 0 {
            return Err(ConfigError::Invalid {
                key: "http.listen".to_owned(),
                reason: format!(
                    "{} is also `grpc.listen`; give each listener its own port",
                    self.http.listen
                ),
            });
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "request_timeout".to_owned(),
                reason: "must be greater than zero, e.g. 30s".to_owned(),
            });
        }
        if self.max_request_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "max_request_body_bytes".to_owned(),
                reason: "must be greater than zero, e.g. 4194304".to_owned(),
            });
        }
        if let Some(tls) = &self.tls {
            tls.validate().map_err(|err| err.within("tls"))?;
        }
        self.auth.validate().map_err(|err| err.within("auth"))
    }
}

/// A SQL database: SQLite (`sqlite:...`) or PostgreSQL (`postgres://...`).
///
/// `Debug` hides the password of the URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://plinth.db?mode=rwc`, `sqlite::memory:` or `postgres://user:pass@host/db`.
    pub url: String,
    /// Size of the connection pool.
    pub max_connections: u32,
    /// How long to wait for a connection.
    #[serde(with = "super::duration")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://plinth.db?mode=rwc".to_owned(),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl DatabaseConfig {
    /// The URL with its password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_password(&self.url)
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Validate for DatabaseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        const SCHEMES: [&str; 3] = ["sqlite:", "postgres://", "postgresql://"];
        if !SCHEMES.iter().any(|scheme| self.url.starts_with(scheme)) {
            return Err(ConfigError::Invalid {
                key: "url".to_owned(),
                reason: format!(
                    "{} is not a database URL; it must start with sqlite:, postgres:// or postgresql://",
                    self.redacted_url()
                ),
            });
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "max_connections".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

fn check_file(key: &str, path: &Path) -> Result<(), ConfigError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: key.to_owned(),
            reason: format!("{} does not exist or is not a file", path.display()),
        })
    }
}

/// Replaces the password in `scheme://user:password@host` with `***`.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|index| index + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |index| scheme_end + index);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end],
        &authority[..colon],
        &url[scheme_end + at..]
    )
}

/// Socket addresses as `host:port` strings, with an error that says what is expected.
mod socket_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        addr: &SocketAddr,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(addr)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SocketAddr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| {
            serde::de::Error::custom(
                "invalid socket address syntax (expected host:port, e.g. 0.0.0.0:7001)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_are_redacted() {
        for (url, expected) in [
            (
                "postgres://u:secret@db:5432/x",
                "postgres://u:***@db:5432/x",
            ),
            ("postgres://u@db/x", "postgres://u@db/x"),
            ("sqlite://plinth.db?mode=rwc", "sqlite://plinth.db?mode=rwc"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redact_password(url), expected);
        }
    }
}

/// Another Plinth service this one calls over gRPC (the feature store for model serving, the data hub for
/// the feature store): its URL, the bearer token to send, the CA that signs its certificate, and the
/// deadline of each call.
///
/// Only `url` is required; a service that has a default peer address gives the field a serde default.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// `http://host:port`, or `https://host:port` when the peer serves TLS.
    pub url: Url,
    /// The bearer token sent with every call; prefer `token_file` in production.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the bearer token (a mounted Kubernetes secret); read at start.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signs the peer's certificate; unset trusts the system roots.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Connect timeout and default deadline of each call.
    #[serde(with = "super::duration", default = "default_peer_timeout")]
    pub timeout: Duration,
}

fn default_peer_timeout() -> Duration {
    Duration::from_secs(10)
}

impl PeerConfig {
    /// A peer at `url` with no token, system roots and a 10 s deadline.
    pub fn at(url: Url) -> Self {
        Self {
            url,
            token: None,
            token_file: None,
            ca_cert: None,
            timeout: default_peer_timeout(),
        }
    }

    /// The token to send: the file's content (trimmed) when `token_file` is set, else `token`.
    pub fn resolve_token(&self) -> Result<Option<String>, ConfigError> {
        match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|token| Some(token.trim().to_owned()))
                .map_err(|err| ConfigError::Invalid {
                    key: "token_file".to_owned(),
                    reason: format!("cannot read {}: {err}", path.display()),
                }),
            None => Ok(self.token.clone()),
        }
    }

    /// A channel to the peer that connects on first use and reconnects after failures, so services
    /// may start in any order.
    pub fn connect_lazy(&self) -> Result<crate::client::AuthChannel, ConfigError> {
        let tls = self.ca_cert.as_ref().map(|ca| crate::tls::ClientTls {
            ca_path: Some(ca.clone()),
            cert_path: None,
            key_path: None,
        });
        crate::client::connect_lazy(&self.url, tls.as_ref(), self.resolve_token()?, self.timeout)
            .map_err(|err| ConfigError::Invalid {
                key: "url".to_owned(),
                reason: err.to_string(),
            })
    }
}

impl fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerConfig")
            .field("url", &self.url.as_str())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("token_file", &self.token_file)
            .field("ca_cert", &self.ca_cert)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Validate for PeerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                key: "url".to_owned(),
                reason: format!("`{}` must be an http:// or https:// URL", self.url),
            });
        }
        if self.ca_cert.is_some() && self.url.scheme() != "https" {
            return Err(ConfigError::Invalid {
                key: "ca_cert".to_owned(),
                reason: "is set but the url is http://; use https:// or remove ca_cert".to_owned(),
            });
        }
        if let Some(path) = &self.ca_cert {
            check_file("ca_cert", path)?;
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "timeout".to_owned(),
                reason: "must be greater than zero, e.g. `10s`".to_owned(),
            });
        }
        Ok(())
    }
}
