//! The registry's configuration: runtime blocks plus the `[registry]` block. Loaded from a TOML file plus
//! `PLINTH_*` environment overrides (for example `PLINTH_DATABASE__URL`), validated at start.

use std::path::Path;

use plinth_runtime::config::{
    self, ConfigError, DatabaseConfig, ServerConfig, TelemetryConfig, Validate,
};
use serde::{Deserialize, Serialize};

use crate::domain::schema::SchemaDraft;
use crate::registry::RegistrySettings;

/// Default gRPC port (PLATFORM.md).
pub const DEFAULT_GRPC_PORT: u16 = 7001;
/// Default HTTP port: the Confluent REST API, `/metrics`, `/healthz`, `/readyz`.
pub const DEFAULT_HTTP_PORT: u16 = 8081;

/// The whole registry configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, TLS, auth, limits.
    pub server: ServerConfig,
    /// Logs, traces and metrics.
    pub telemetry: TelemetryConfig,
    /// Where subjects, versions and ids are stored.
    pub database: DatabaseConfig,
    /// Registry behaviour.
    pub registry: RegistryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::with_ports(DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT),
            telemetry: TelemetryConfig::default(),
            database: DatabaseConfig {
                url: "sqlite://schema-registry.db?mode=rwc".to_owned(),
                ..DatabaseConfig::default()
            },
            registry: RegistryConfig::default(),
        }
    }
}

/// The `[registry]` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// The JSON Schema draft for schemas without `$schema`: `4`, `6`, `7`, `2019-09` or `2020-12`.
    pub default_draft: String,
    /// The largest schema text accepted, in bytes.
    pub max_schema_bytes: usize,
    /// The `error_code` of an incompatible registration: `409` (Confluent up to 2025) or `40901`.
    pub incompatible_error_code: u32,
    /// The most documents one validation request may carry.
    pub max_validation_documents: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        let settings = RegistrySettings::default();
        Self {
            default_draft: settings.default_draft.as_str().to_owned(),
            max_schema_bytes: settings.max_schema_bytes,
            incompatible_error_code: settings.incompatible_error_code,
            max_validation_documents: settings.max_validation_documents,
        }
    }
}

impl RegistryConfig {
    /// The validated settings.
    pub fn settings(&self) -> Result<RegistrySettings, ConfigError> {
        let default_draft = self
            .default_draft
            .parse::<SchemaDraft>()
            .map_err(|reason| ConfigError::Invalid {
                key: "registry.default_draft".to_owned(),
                reason,
            })?;
        if ![409, 40901].contains(&self.incompatible_error_code) {
            return Err(ConfigError::Invalid {
                key: "registry.incompatible_error_code".to_owned(),
                reason: format!(
                    "{} is not allowed; use 409 or 40901",
                    self.incompatible_error_code
                ),
            });
        }
        if self.max_schema_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "registry.max_schema_bytes".to_owned(),
                reason: "must be greater than zero, e.g. 1048576".to_owned(),
            });
        }
        if self.max_validation_documents == 0 {
            return Err(ConfigError::Invalid {
                key: "registry.max_validation_documents".to_owned(),
                reason: "must be greater than zero, e.g. 10000".to_owned(),
            });
        }
        Ok(RegistrySettings {
            default_draft,
            max_schema_bytes: self.max_schema_bytes,
            incompatible_error_code: self.incompatible_error_code,
            max_validation_documents: self.max_validation_documents,
        })
    }
}

impl Config {
    /// Loads the file (if any) plus `PLINTH_*` environment overrides and validates every block.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = config::load_from_env(file)?;
        config.validate()?;
        Ok(config)
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate().map_err(|err| err.within("server"))?;
        self.telemetry
            .validate()
            .map_err(|err| err.within("telemetry"))?;
        self.database
            .validate()
            .map_err(|err| err.within("database"))?;
        self.registry.settings().map(|_| ())
    }
}
